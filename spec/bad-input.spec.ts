/**
 * The bad input catalogue: every public method of Cache / MemoryCache called with
 * wrong types and values. For each row: a command never throws synchronously (it
 * answers a promise that rejects), a constructor or setter throws; the error has the
 * right class; the message starts with `[oniocache]` and says what to do; and nothing
 * was written (the store's size and entries, and the cache's own settings, are as
 * they were). The table is the one docs/reliability-and-security.md prints under "## Bad input".
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Cache, CacheHandler, type Context, MemoryBackend, MemoryCache, type Next } from '../lib/index.js'
import { MemcachedCache } from '../lib/memcached.js'
import { RedisCache } from '../lib/redis.js'

type ErrorClass = typeof TypeError | typeof RangeError

interface Row {
  /** The method, setter or constructor called. */
  method: string
  /** What was wrong with the input, as docs/reliability-and-security.md shows it. */
  input: string
  /** `command`: must answer a rejecting promise; `sync`: must throw (constructors, setters, buildKey, use). */
  kind: 'command' | 'sync'
  call: (cache: MemoryCache) => unknown
  expect: ErrorClass
  message: RegExp
}

const HUGE = 'k'.repeat(1024 * 1024)
const passThrough = (_ctx: Context, next: Next): Promise<void> => next()

const KEY_MUST = /a key must be a string; got /
const TTL_MUST = /ttl must be a number of seconds >= 0 or a string such as '250ms'/
const TIMEOUT_MUST = /timeout must be a number of seconds >= 0 or a string such as '250ms'/
const DELTA_MUST = /increment: delta must be a safe integer; got /
const PAIR_MUST = /multiSet: pairs\[\d+\] is .*, not a \[key, value\] pair; nothing was written/
const PAIRS_MUST = /multiSet: pairs must be an iterable of \[key, value\] pairs/
const KEYS_MUST = /multiGet: keys must be an array \(or iterable\) of strings; got /
const OPTIONS_MUST = /options must be an object \(\{ .* \}\); got /
const UNKNOWN_OPTION = /unknown option "[^"]+"; known: /
const PLUGIN_MUST = new RegExp(
  'plugins\\[\\d+\\] is .*: a plugin is a middleware function \\(ctx, next\\) ' +
    'or an object with a middleware\\(ctx, next\\) method',
)
const NAMESPACE_MUST = /namespace must be a string; got /

const BAD_KEYS: Array<[string, unknown]> = [
  ['number key 42', 42],
  ['object key {}', {}],
  ["Symbol('k') key", Symbol('k')],
  ["array key ['a']", ['a']],
  ['undefined key', undefined],
  ['null key', null],
]

/** Existing keys, so that a bad call that wrote would show in the entries. */
const KEYED: Array<[string, (cache: MemoryCache, key: never) => unknown]> = [
  ['add', (cache, key) => cache.add(key, 1)],
  ['get', (cache, key) => cache.get(key)],
  ['set', (cache, key) => cache.set(key, 1)],
  ['delete', (cache, key) => cache.delete(key)],
  ['exists', (cache, key) => cache.exists(key)],
  ['increment', (cache, key) => cache.increment(key)],
  ['expire', (cache, key) => cache.expire(key, 10)],
]

const BAD_DURATIONS: Array<[string, unknown]> = [
  ['NaN', Number.NaN],
  ['-1', -1],
  ['Infinity', Infinity],
  ["'soon'", 'soon'],
  ["'-5s'", '-5s'],
  ["'10 years'", '10 years'],
]

const NOT_PLUGINS: Array<[string, unknown]> = [
  ['42', 42],
  ['{}', {}],
  ['{ middleware: 1 }', { middleware: 1 }],
  ['null', null],
]

const rows: Row[] = []
const command = (method: string, input: string, call: Row['call'], expect: ErrorClass, message: RegExp): void => {
  rows.push({ method, input, kind: 'command', call, expect, message })
}
const sync = (method: string, input: string, call: Row['call'], expect: ErrorClass, message: RegExp): void => {
  rows.push({ method, input, kind: 'sync', call, expect, message })
}

// Keys of the wrong type, for every single-key command.
for (const [method, call] of KEYED) {
  for (const [input, key] of BAD_KEYS) command(method, input, (cache) => call(cache, key as never), TypeError, KEY_MUST)
}
command(
  'set',
  'value undefined',
  (cache) => cache.set('seed', undefined),
  TypeError,
  /is undefined, which could not be told apart from a miss; store null instead/,
)
command(
  'add',
  'value undefined',
  (cache) => cache.add('fresh', undefined),
  TypeError,
  /is undefined, which could not be told apart from a miss; store null instead/,
)

// multiGet: keys that are not an iterable of strings.
for (const [input, keys] of [
  ['keys 42', 42],
  ['keys null', null],
  ['keys undefined', undefined],
  ['keys {}', {}],
  ["keys 'ab' (a string)", 'ab'],
] as const) {
  command('multiGet', input, (cache) => cache.multiGet(keys as never), TypeError, KEYS_MUST)
}
for (const [input, keys] of [
  ["keys ['seed', 42]", ['seed', 42]],
  ['keys [undefined]', [undefined]],
  ["keys [Symbol('k')]", [Symbol('k')]],
] as const) {
  command('multiGet', input, (cache) => cache.multiGet(keys as never), TypeError, KEY_MUST)
}

// multiSet: pairs that are not an iterable of pairs; with one bad pair none is stored.
for (const [input, pairs] of [
  ['pairs 42', 42],
  ['pairs null', null],
  ['pairs undefined', undefined],
  ['pairs {}', {}],
  ["pairs 'ab' (a string)", 'ab'],
] as const) {
  command('multiSet', input, (cache) => cache.multiSet(pairs as never), TypeError, PAIRS_MUST)
}
for (const [input, pairs] of [
  ["[['a']]", [['a']]],
  ["[['a', 1, 2]]", [['a', 1, 2]]],
  ["['ab']", ['ab']],
  ['[null]', [null]],
  ["[['ok', 1], ['b']] (bad second pair)", [['ok', 1], ['b']]],
] as const) {
  command('multiSet', `pairs ${input}`, (cache) => cache.multiSet(pairs as never), TypeError, PAIR_MUST)
}
command(
  'multiSet',
  "pairs [['ok', 1], [42, 2]] (bad second key)",
  (cache) =>
    cache.multiSet([
      ['ok', 1],
      [42, 2],
    ] as never),
  TypeError,
  KEY_MUST,
)
command(
  'multiSet',
  "pairs new Map([[1, 'a']])",
  (cache) => cache.multiSet(new Map([[1, 'a']]) as never),
  TypeError,
  KEY_MUST,
)
command(
  'multiSet',
  "pairs [['ok', 1], ['u', undefined]]",
  (cache) =>
    cache.multiSet([
      ['ok', 1],
      ['u', undefined],
    ]),
  TypeError,
  /store null instead/,
)

// increment: deltas that are not safe integers.
for (const [input, delta] of [
  ['delta NaN', Number.NaN],
  ['delta Infinity', Infinity],
  ['delta 1.5', 1.5],
  ["delta '1'", '1'],
  ['delta 2 ** 60', 2 ** 60],
] as const) {
  command('increment', input, (cache) => cache.increment('counter', delta as never), TypeError, DELTA_MUST)
}

// Durations: ttl (set, add, multiSet, expire) and timeout (every command).
for (const [input, ttl] of BAD_DURATIONS) {
  command('set', `ttl ${input}`, (cache) => cache.set('seed', 2, { ttl: ttl as never }), RangeError, TTL_MUST)
  command('add', `ttl ${input}`, (cache) => cache.add('fresh', 2, { ttl: ttl as never }), RangeError, TTL_MUST)
  command(
    'multiSet',
    `ttl ${input}`,
    (cache) =>
      cache.multiSet(
        [
          ['seed', 2],
          ['fresh', 3],
        ],
        { ttl: ttl as never },
      ),
    RangeError,
    TTL_MUST,
  )
  command('expire', `ttl ${input}`, (cache) => cache.expire('seed', ttl as never), RangeError, TTL_MUST)
  command(
    'set',
    `timeout ${input}`,
    (cache) => cache.set('seed', 2, { timeout: ttl as never }),
    RangeError,
    TIMEOUT_MUST,
  )
  command('get', `timeout ${input}`, (cache) => cache.get('seed', { timeout: ttl as never }), RangeError, TIMEOUT_MUST)
  command('clear', `timeout ${input}`, (cache) => cache.clear({ timeout: ttl as never }), RangeError, TIMEOUT_MUST)
}
command(
  'set',
  'ttl true (not a duration)',
  (cache) => cache.set('seed', 2, { ttl: true as never }),
  RangeError,
  TTL_MUST,
)
command(
  'expire',
  'ttl missing',
  (cache) => (cache.expire as (key: string) => Promise<boolean>)('seed'),
  RangeError,
  /expire: ttl is required \(seconds, or 0 \/ null to remove the expiry\)/,
)
for (const [method, call] of [
  ['add', (cache: MemoryCache) => cache.add('fresh', 1, { timeout: -1 })],
  ['multiGet', (cache: MemoryCache) => cache.multiGet(['seed'], { timeout: -1 })],
  ['multiSet', (cache: MemoryCache) => cache.multiSet([['fresh', 1]], { timeout: -1 })],
  ['delete', (cache: MemoryCache) => cache.delete('seed', { timeout: -1 })],
  ['exists', (cache: MemoryCache) => cache.exists('seed', { timeout: -1 })],
  ['increment', (cache: MemoryCache) => cache.increment('counter', 1, { timeout: -1 })],
  ['expire', (cache: MemoryCache) => cache.expire('seed', 10, { timeout: -1 })],
] as const) {
  command(method, 'timeout -1', call, RangeError, TIMEOUT_MUST)
}

// Options: unknown names and values that are not objects, per command.
const OPTION_CALLS: Array<[string, (cache: MemoryCache, options: never) => unknown, string]> = [
  ['add', (cache, options) => cache.add('fresh', 1, options), 'casToken'],
  ['get', (cache, options) => cache.get('seed', options), 'ttl'],
  ['multiGet', (cache, options) => cache.multiGet(['seed'], options), 'default'],
  ['set', (cache, options) => cache.set('seed', 2, options), 'tll'],
  ['multiSet', (cache, options) => cache.multiSet([['seed', 2]], options), 'casToken'],
  ['delete', (cache, options) => cache.delete('seed', options), 'ttl'],
  ['exists', (cache, options) => cache.exists('seed', options), 'default'],
  ['increment', (cache, options) => cache.increment('counter', 1, options), 'ttl'],
  ['expire', (cache, options) => cache.expire('seed', 10, options), 'ttl'],
  ['clear', (cache, options) => (cache.clear as (options: unknown) => Promise<true>)(options), 'ns'],
]
for (const [method, call, unknown] of OPTION_CALLS) {
  command(
    method,
    `unknown option { ${unknown}: 1 }`,
    (cache) => call(cache, { [unknown]: 1 } as never),
    TypeError,
    UNKNOWN_OPTION,
  )
  command(method, "options 'x'", (cache) => call(cache, 'x' as never), TypeError, OPTIONS_MUST)
  command(method, 'options 5', (cache) => call(cache, 5 as never), TypeError, OPTIONS_MUST)
  command(method, 'options null', (cache) => call(cache, null as never), TypeError, OPTIONS_MUST)
}
command('get', 'namespace 42', (cache) => cache.get('seed', { namespace: 42 as never }), TypeError, NAMESPACE_MUST)
command('set', 'namespace 42', (cache) => cache.set('seed', 2, { namespace: 42 as never }), TypeError, NAMESPACE_MUST)
command(
  'multiSet',
  'namespace 42',
  (cache) => cache.multiSet([['seed', 2]], { namespace: 42 as never }),
  TypeError,
  NAMESPACE_MUST,
)
command('clear', 'namespace 42', (cache) => cache.clear({ namespace: 42 as never }), TypeError, NAMESPACE_MUST)

// raw: a command that is not a string or not a Map method.
command('raw', 'command 42', (cache) => cache.raw(42 as never), TypeError, /raw: the command must be a string; got 42/)
command('raw', "command 'nope'", (cache) => cache.raw('nope'), TypeError, /raw runs a Map method .*"nope" is not one/)

// buildKey: synchronous, like the setters.
for (const [input, key] of BAD_KEYS)
  sync('buildKey', input, (cache) => cache.buildKey(key as never), TypeError, /buildKey: a key must be a string; got /)
sync('buildKey', 'namespace 42', (cache) => cache.buildKey('k', 42 as never), TypeError, NAMESPACE_MUST)

// Plugins that are not plugins: use(), the setter and the constructors.
for (const [input, plugin] of NOT_PLUGINS) {
  sync('use', `plugin ${input}`, (cache) => cache.use(plugin as never), TypeError, PLUGIN_MUST)
  sync('plugins =', `[${input}]`, (cache) => (cache.plugins = [plugin as never]), TypeError, PLUGIN_MUST)
  sync('new Cache', `{ plugins: [${input}] }`, () => new Cache({ plugins: [plugin as never] }), TypeError, PLUGIN_MUST)
  sync(
    'new MemoryCache',
    `{ plugins: [${input}] }`,
    () => new MemoryCache({ plugins: [plugin as never] }),
    TypeError,
    PLUGIN_MUST,
  )
}
for (const [input, plugins] of [
  ['42', 42],
  ["'x'", 'x'],
  ['null', null],
  ['{}', {}],
] as const) {
  sync(
    'plugins =',
    input,
    (cache) => (cache.plugins = plugins as never),
    TypeError,
    /plugins must be an array of plugins or middleware functions; got /,
  )
}

// Setters.
for (const [input, namespace] of [
  ['42', 42],
  ['null', null],
  ['undefined', undefined],
] as const) {
  sync('namespace =', input, (cache) => (cache.namespace = namespace as never), TypeError, NAMESPACE_MUST)
}
for (const [input, value] of BAD_DURATIONS) {
  sync('ttl =', input, (cache) => (cache.ttl = value as never), RangeError, TTL_MUST)
  sync('timeout =', input, (cache) => (cache.timeout = value as never), RangeError, TIMEOUT_MUST)
}
for (const [input, serializer] of [
  ['42', 42],
  ['null', null],
  ['{}', {}],
  ['{ dumps() {} } (no loads)', { dumps() {} }],
] as const) {
  sync(
    'serializer =',
    input,
    (cache) => (cache.serializer = serializer as never),
    TypeError,
    /serializer must have dumps\(value\) and loads\(stored\) methods/,
  )
}

// Constructors: options that are not objects, unknown options, bad values.
for (const [input, options] of [
  ["'x'", 'x'],
  ['5', 5],
  ['null', null],
] as const) {
  sync('new Cache', input, () => new Cache(options as never), TypeError, /Cache: options must be an object; got /)
  sync(
    'new MemoryCache',
    input,
    () => new MemoryCache(options as never),
    TypeError,
    /MemoryCache: options must be an object; got /,
  )
}
sync(
  'new Cache',
  '{ bogus: 1 }',
  () => new Cache({ bogus: 1 } as never),
  TypeError,
  /Cache: unknown option "bogus"; known: /,
)
sync(
  'new Cache',
  '{ maxSize: 1 } (a MemoryCache option)',
  () => new Cache({ maxSize: 1 } as never),
  TypeError,
  /Cache: unknown option "maxSize"; known: /,
)
sync(
  'new MemoryCache',
  '{ bogus: 1 }',
  () => new MemoryCache({ bogus: 1 } as never),
  TypeError,
  /MemoryCache: unknown option "bogus"; known: /,
)
sync(
  'new MemoryCache',
  '{ backend: new MemoryBackend() }',
  () => new MemoryCache({ backend: new MemoryBackend() } as never),
  TypeError,
  /MemoryCache: unknown option "backend"; known: /,
)
for (const [input, ttl] of BAD_DURATIONS) {
  sync('new Cache', `{ ttl: ${input} }`, () => new Cache({ ttl: ttl as never }), RangeError, TTL_MUST)
  sync(
    'new MemoryCache',
    `{ timeout: ${input} }`,
    () => new MemoryCache({ timeout: ttl as never }),
    RangeError,
    TIMEOUT_MUST,
  )
}
sync('new Cache', '{ plugins: 42 }', () => new Cache({ plugins: 42 as never }), TypeError, /plugins must be an array/)
sync('new Cache', '{ namespace: 42 }', () => new Cache({ namespace: 42 as never }), TypeError, NAMESPACE_MUST)
sync(
  'new Cache',
  '{ serializer: {} }',
  () => new Cache({ serializer: {} as never }),
  TypeError,
  /serializer must have dumps\(value\) and loads\(stored\) methods/,
)
sync(
  'new Cache',
  '{ backend: {} }',
  () => new Cache({ backend: {} as never }),
  TypeError,
  /backend must be a Backend instance/,
)
sync(
  'new Cache',
  '{ keyBuilder: 42 }',
  () => new Cache({ keyBuilder: 42 as never }),
  TypeError,
  /keyBuilder must be a function \(key, namespace\) => string/,
)
sync(
  'new MemoryCache',
  "{ maxSize: 'x' }",
  () => new MemoryCache({ maxSize: 'x' as never }),
  TypeError,
  /maxSize must be a positive integer/,
)
sync(
  'new MemoryCache',
  '{ maxSize: 0 }',
  () => new MemoryCache({ maxSize: 0 }),
  TypeError,
  /maxSize must be a positive integer/,
)

// The backends' own options, checked at construction whether the backend module is loaded (RedisCache,
// MemcachedCache) or not yet (a cache built from a config or a URL).
const fromConfig = (options: Record<string, unknown>) => () =>
  new CacheHandler().setConfig({ default: options as never })
for (const [input, options, message] of [
  ['{ connectionsPerServer: 0 }', { connectionsPerServer: 0 }, /connectionsPerServer must be an integer >= 1/],
  ['{ connectTimeout: -1 }', { connectTimeout: -1 }, /connectTimeout must be a number of seconds/],
  ['{ servers: [] }', { servers: [] }, /servers must be a non-empty list/],
  ["{ servers: ['h'] }", { servers: ['h'] }, /'host:port' string/],
  ['{ bogus: 1 }', { bogus: 1 }, /unknown option "bogus"/],
] as const) {
  const expected = /connectTimeout/.test(input) ? RangeError : TypeError
  sync('new MemcachedCache', input, () => new MemcachedCache(options as never), expected, message)
  sync(
    "caches.setConfig({ cache: 'memcached' })",
    input,
    fromConfig({ cache: 'memcached', ...options }),
    expected,
    message,
  )
}
for (const [input, options, message] of [
  ['{ cluster: [] }', { cluster: [] }, /cluster must be a non-empty list of root nodes/],
  ['{ cluster: [42] }', { cluster: [42] }, /cluster\[0\]: a node is \{ url \} or 'host:port'; got 42/],
  ["{ cluster: ['h:0'] }", { cluster: ['h:0'] }, /cluster\[0\]: the node has a port out of range/],
  ['{ url: 42 }', { url: 42 }, /url must be a string; got 42/],
  ['{ client: {} }', { client: {} }, /client must be a node-redis client or cluster/],
  ["{ connectTimeout: 'soon' }", { connectTimeout: 'soon' }, /connectTimeout must be a number of seconds/],
] as const) {
  const expected = /connectTimeout/.test(input) ? RangeError : TypeError
  sync('new RedisCache', input, () => new RedisCache(options as never), expected, message)
  sync("caches.setConfig({ cache: 'redis' })", input, fromConfig({ cache: 'redis', ...options }), expected, message)
}

// ---------------------------------------------------------------------------

interface Snapshot {
  size: number
  entries: string
  settings: string
}

async function seeded(plugins: boolean): Promise<MemoryCache> {
  const cache = new MemoryCache(plugins ? { plugins: [passThrough] } : {})
  await cache.set('seed', 1, { ttl: 100 })
  await cache.set('counter', 5)
  await cache.set('other', 'x')
  return cache
}

async function snapshot(cache: MemoryCache): Promise<Snapshot> {
  const entries = [...((await cache.raw('entries')) as IterableIterator<[string, unknown]>)]
  return {
    size: cache.backend.size,
    entries: JSON.stringify(entries),
    settings: JSON.stringify([
      cache.namespace,
      cache.ttl,
      cache.timeout,
      cache.serializer.constructor.name,
      cache.plugins.length,
    ]),
  }
}

function checkMessage(row: Row, error: unknown, label: string): void {
  assert.ok(error instanceof row.expect, `${label}: expected a ${row.expect.name}, got ${String(error)}`)
  const { message } = error as Error
  assert.ok(message.startsWith('[oniocache] '), `${label}: message starts with [oniocache]: ${message}`)
  assert.match(message, row.message, `${label}: ${message}`)
  assert.ok(message.length < 1000, `${label}: message is short (${message.length} chars)`)
}

async function check(row: Row, plugins: boolean): Promise<void> {
  const label = `${row.method} with ${row.input}${plugins ? ' (with a middleware)' : ''}`
  const cache = await seeded(plugins)
  const before = await snapshot(cache)
  if (row.kind === 'command') {
    let answer: unknown
    try {
      answer = row.call(cache)
    } catch (error) {
      assert.unreachable(`${label}: threw synchronously instead of rejecting: ${String(error)}`)
    }
    assert.instance(answer, Promise, `${label}: answers a promise`)
    const outcome = await (answer as Promise<unknown>).then(
      (value) => ({ ok: true as const, value }),
      (error: unknown) => ({ ok: false as const, error }),
    )
    if (outcome.ok) assert.unreachable(`${label}: resolved with ${String(outcome.value)} instead of rejecting`)
    else checkMessage(row, outcome.error, label)
  } else {
    let thrown: unknown
    let threw = false
    try {
      row.call(cache)
    } catch (error) {
      threw = true
      thrown = error
    }
    assert.ok(threw, `${label}: throws`)
    checkMessage(row, thrown, label)
  }
  assert.equal(await snapshot(cache), before, `${label}: nothing was written`)
}

test(`the catalogue has one row per bad input (${rows.length} rows)`, () => {
  assert.ok(rows.length > 200)
  const commands = new Set(rows.map((r) => r.method))
  for (const method of [
    'add',
    'get',
    'multiGet',
    'set',
    'multiSet',
    'delete',
    'exists',
    'increment',
    'expire',
    'clear',
    'raw',
    'buildKey',
    'use',
    'plugins =',
    'namespace =',
    'ttl =',
    'timeout =',
    'serializer =',
    'new Cache',
    'new MemoryCache',
  ]) {
    assert.ok(commands.has(method), `a row for ${method}`)
  }
})

/** Checks every row and reports all the rows that failed, not only the first. */
async function checkAll(table: readonly Row[], plugins: boolean): Promise<void> {
  const failures: string[] = []
  for (const row of table) {
    try {
      await check(row, plugins)
    } catch (error) {
      failures.push(error instanceof Error ? error.message : String(error))
    }
  }
  assert.ok(failures.length === 0, `${failures.length} of ${table.length} rows failed:\n${failures.join('\n')}`)
}

test('bad input on a cache without plugins (the synchronous path): the right error, nothing written', async () => {
  await checkAll(rows, false)
})

test('bad input on a cache with a middleware (the chain path): the same errors, nothing written', async () => {
  await checkAll(
    rows.filter((r) => r.kind === 'command'),
    true,
  )
})

test('a 1 MB key: the memory backend stores it as any other key', async () => {
  const cache = await seeded(false)
  const size = cache.backend.size
  assert.is(await cache.set(HUGE, 1), true)
  assert.is(cache.backend.size, size + 1)
  assert.is(await cache.get(HUGE), 1)
  assert.is(await cache.exists(HUGE), true)
  assert.is(await cache.increment(HUGE, 2), 3)
  assert.equal(await cache.multiGet([HUGE, 'seed']), [3, 1])
  assert.is(await cache.delete(HUGE), 1)
  assert.is(cache.backend.size, size)
})

test('a 1 MB key in an error message is cut short', async () => {
  const cache = await seeded(false)
  const before = await snapshot(cache)
  for (const [label, call] of [
    ['set undefined', () => cache.set(HUGE, undefined)],
    ['multiSet undefined', () => cache.multiSet([[HUGE, undefined]])],
    ['multiGet [huge, 42]', () => cache.multiGet([HUGE, 42 as never])],
  ] as const) {
    const error = await call().then(
      () => undefined,
      (e: unknown) => e,
    )
    assert.instance(error, TypeError, label)
    assert.ok((error as Error).message.length < 1000, `${label}: ${(error as Error).message.length} chars`)
  }
  assert.equal(await snapshot(cache), before)
})

/** `BAD_INPUT_TABLE=1` prints the rows as the markdown table docs/reliability-and-security.md shows. */
if (process.env.BAD_INPUT_TABLE === '1') {
  for (const row of rows) console.log(`| ${row.method} | ${row.input} | ${row.expect.name} | ${row.message.source} |`)
}

test.run()

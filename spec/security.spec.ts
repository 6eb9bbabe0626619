/**
 * Security, proved adversarially on real servers started by the harness:
 *
 * 1. A namespace never widens `clear`: glob characters are literal on Redis (single
 *    node and Cluster) and on the memory backend; tables and fast-check properties.
 * 2. No key, namespace, flag or value injects a memcached command: every command either
 *    treats the key as a key or rejects with InvalidKeyError before any I/O; a canary and
 *    the server's own counters show that nothing else ran.
 * 3. Deserializing never pollutes prototypes (`__proto__`, `constructor`), through the
 *    serializers and through a cache on every backend.
 * 4. The README warns about V8Serializer and MsgPackSerializer; the reliability guide lists these guarantees.
 * 5. A password in a URL or an option never shows in an error (message, stack, String,
 *    JSON, util.inspect, causes), in the cache itself, or in a NODE_DEBUG line.
 */
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import * as net from 'node:net'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { serialize as v8Serialize } from 'node:v8'
import fc from 'fast-check'
import { Packr } from 'msgpackr'
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import {
  BackendError,
  Cache,
  InvalidKeyError,
  JsonSerializer,
  MemoryBackend,
  MsgPackSerializer,
  type Serializer,
  StringSerializer,
  V8Serializer,
} from '../lib/index.js'
import { MemcachedCache } from '../lib/memcached.js'
import { RedisCache } from '../lib/redis.js'
import { childEnv } from './support/children.js'
import { checkAsync } from './support/fc-config.js'
import { rejection } from './support/fixtures/backends.js'
import { exposure, type Outcome, passwordScenarios, type Targets } from './support/fixtures/password-scenarios.js'
import {
  encodeRedisCommand,
  type MemcachedServer,
  memcachedCommand,
  parseResp,
  type RedisServer,
  type RespValue,
  redisCommand,
  startMemcached,
  startRedis,
  startRedisCluster,
} from './support/servers.js'

const root = new URL('..', import.meta.url).pathname

// Every server this file uses is its own, started once and stopped by the last suite.
const started: Array<{ stop(): Promise<void> }> = []
function startOnce<T extends { stop(): Promise<void> }>(start: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined
  return () =>
    (pending ??= start().then((server) => {
      started.push(server)
      return server
    }))
}
const redis = startOnce(() => startRedis())
const cluster = startOnce(() => startRedisCluster({ masters: 3 }))
const memcached = startOnce(() => startMemcached())
// The Cluster takes about 2 s to form: start it now, while the first tests run. A failure
// surfaces in the test that awaits it.
cluster().catch(() => undefined)

/** Every key of a store, with its value (as text). */
type Snapshot = Map<string, string>

interface Store {
  name: string
  /** A cache on the store, with the given namespace; values are stored as text. */
  cache(namespace: string): Cache
  /** Every key and value, read without oniocache. */
  snapshot(): Promise<Snapshot>
  /** Empties the store (only stores this file started). */
  reset(): Promise<void>
  close(): Promise<void>
}

function memoryStore(): Store {
  const backend = new MemoryBackend()
  return {
    name: 'memory',
    cache: (namespace) => new Cache({ backend, namespace, serializer: new StringSerializer() }),
    snapshot: async () => new Map(backend.raw('entries', []) as Iterable<[string, string]>),
    reset: async () => {
      backend.clear(null)
    },
    close: async () => backend.close(),
  }
}

async function redisStore(): Promise<Store> {
  const server = await redis()
  const caches = new Map<string, Cache>()
  return {
    name: 'redis',
    cache: (namespace) =>
      once(
        caches,
        namespace,
        () => new RedisCache({ port: server.port, namespace, serializer: new StringSerializer() }),
      ),
    snapshot: () => nodeSnapshot([server]),
    reset: async () => {
      await redisCommand(server.port, 'FLUSHALL')
    },
    close: async () => {
      await Promise.all([...caches.values()].map((cache) => cache.close()))
      caches.clear()
    },
  }
}

async function clusterStore(): Promise<Store> {
  const c = await cluster()
  const caches = new Map<string, Cache>()
  const info = await c.clusterNodes()
  const primaries = c.nodes.filter((node) => info.some((i) => i.port === node.port && i.role === 'master'))
  const masters = async (): Promise<RedisServer[]> => primaries
  return {
    name: 'redis cluster',
    cache: (namespace) =>
      once(
        caches,
        namespace,
        () => new RedisCache({ cluster: c.rootNodes, namespace, serializer: new StringSerializer() }),
      ),
    snapshot: async () => nodeSnapshot(await masters()),
    reset: async () => {
      for (const node of await masters()) await redisCommand(node.port, 'FLUSHALL')
    },
    close: async () => {
      await Promise.all([...caches.values()].map((cache) => cache.close()))
      caches.clear()
    },
  }
}

/** The cache for `namespace`, made once per store (one connection each). */
function once(caches: Map<string, Cache>, namespace: string, make: () => Cache): Cache {
  let cache = caches.get(namespace)
  if (cache === undefined) caches.set(namespace, (cache = make()))
  return cache
}

/**
 * KEYS * and a GET of each key on each node, pipelined over one connection of the harness's own RESP client (our
 * servers only).
 */
async function nodeSnapshot(nodes: readonly RedisServer[]): Promise<Snapshot> {
  const out: Snapshot = new Map()
  for (const node of nodes) {
    const keys = (await redisCommand(node.port, 'KEYS', '*')) as string[]
    const values = await pipeline(
      node.port,
      keys.map((key) => ['GET', key]),
    )
    keys.forEach((key, i) => {
      out.set(key, values[i] as string)
    })
  }
  return out
}

/** Sends every command on one connection and resolves their replies, in order. */
function pipeline(port: number, commands: ReadonlyArray<readonly string[]>): Promise<RespValue[]> {
  if (commands.length === 0) return Promise.resolve([])
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port })
    let received = Buffer.alloc(0)
    const replies: RespValue[] = []
    let offset = 0
    socket.on('error', reject)
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk])
      for (let parsed = parseResp(received, offset); parsed !== undefined; parsed = parseResp(received, offset)) {
        replies.push(parsed.value)
        offset = parsed.next
      }
      if (replies.length === commands.length) {
        socket.end()
        resolve(replies)
      }
    })
    socket.write(Buffer.concat(commands.map((command) => encodeRedisCommand(command))))
  })
}

/** Writes, through a namespace-'' cache, one entry per (namespace, key), the value naming both. */
async function seed(store: Store, namespaces: readonly string[]): Promise<Map<string, string>> {
  const writer = store.cache('')
  const entries = new Map<string, string>()
  for (const namespace of new Set(namespaces)) {
    for (const key of ['k', 'k:2', '*']) entries.set(writer.buildKey(key, namespace), JSON.stringify([namespace, key]))
  }
  // One SET per key: a cluster cannot MSET across slots.
  await Promise.all([...entries].map(([key, value]) => writer.set(key, value)))
  return entries
}

/**
 * Seeds every namespace, clears `target` (by option, or as the cache's own namespace),
 * and checks the store against the contract: exactly the keys starting with
 * `buildKey('', target)` are gone, every other key is there with its value.
 */
async function clearAndCheck(
  store: Store,
  target: string,
  siblings: readonly string[],
  how: 'option' | 'own',
): Promise<void> {
  await store.reset()
  const entries = await seed(store, [target, ...siblings])
  const before = await store.snapshot()
  assert.equal(before, entries, `${store.name}: the store holds exactly the seeded entries`)
  const prefix = store.cache('').buildKey('', target)
  assert.ok(
    [...entries.keys()].some((key) => key.startsWith(prefix)),
    'the target namespace has keys to clear',
  )
  if (how === 'option') assert.is(await store.cache('').clear({ namespace: target }), true)
  else assert.is(await store.cache(target).clear(), true)
  const after = await store.snapshot()
  const expected = new Map([...entries].filter(([key]) => !key.startsWith(prefix)))
  if (!sameEntries(after, expected)) {
    const wrongly = [...expected.keys()].filter((key) => after.get(key) !== expected.get(key))
    const left = [...after.keys()].filter((key) => !expected.has(key))
    assert.unreachable(
      `${store.name}: clear(${JSON.stringify(target)}, ${how}) removed or changed ${JSON.stringify(wrongly)} and ` +
        `left ${JSON.stringify(left)}`,
    )
  }
}

function sameEntries(a: Snapshot, b: Snapshot): boolean {
  return a.size === b.size && [...a].every(([key, value]) => b.get(key) === value)
}

// Namespaces made of glob syntax (Redis MATCH: * ? [ ] [^ ] [a-z] \), brace-expansion
// and regex look-alikes, and "empty-ish" or unicode ones.
const ADVERSARIAL = [
  '*',
  '?',
  '[',
  ']',
  '^',
  '-',
  '\\',
  '{',
  '}',
  '[]',
  '[a-z]',
  '[^a]',
  '[!a]',
  '[*]',
  'a*',
  '*a',
  '**',
  'a?',
  '?a',
  '[a]',
  'a[',
  'a]',
  '\\*',
  '\\?',
  'a\\',
  '\\\\',
  '\\[a]',
  '{a,b}',
  '{}',
  'a-z',
  '^a',
  '*:*',
  '.*',
  '%',
  '$',
  '|',
  ':',
  '::',
  ' ',
  '\t',
  '\u200b',
  'é',
  '🙂',
  'ns\u0000x',
]
// What those globs would match if they were not escaped, and near misses of the literal prefixes.
const SIBLINGS = [
  'a',
  'b',
  'ab',
  'abc',
  'z',
  'A',
  'user',
  'users',
  '*x',
  'x*',
  '?x',
  'ax',
  'a]x',
  'x]',
  '\\a',
  'a\\b',
  '{a',
  'b}',
  'a,b',
  '^b',
  'b-',
  'aa',
  '[ab]',
  'é:',
  '🙂🙂',
  'a:b',
  '*:',
  '[a',
  ']a',
  '-a',
  'e',
  'ee',
  '\u200bx',
]

const clearing = suite('security: a namespace never widens clear')

clearing(
  'memory: clear({ namespace }) and clear() of a namespaced cache remove exactly that namespace, for every ' +
    'glob-like namespace',
  async () => {
    const store = memoryStore()
    for (const target of ADVERSARIAL) {
      const siblings = [...ADVERSARIAL.filter((n) => n !== target), ...SIBLINGS]
      await clearAndCheck(store, target, siblings, 'option')
      await clearAndCheck(store, target, siblings, 'own')
    }
    await store.close()
  },
)

clearing('Redis single node: the same, with SCAN MATCH and every glob character escaped', async () => {
  const store = await redisStore()
  try {
    // Both ways for every namespace on memory (above); here each way for every other one.
    for (const [i, target] of ADVERSARIAL.entries()) {
      await clearAndCheck(
        store,
        target,
        [...ADVERSARIAL.filter((n) => n !== target), ...SIBLINGS],
        i % 2 === 0 ? 'option' : 'own',
      )
    }
  } finally {
    await store.close()
  }
})

clearing('Redis Cluster (3 masters): the same on every master, hash-tag braces included', async () => {
  const store = await clusterStore()
  try {
    for (const [i, target] of ['*', '?', '[a-z]', '[^a]', 'a\\', '{a}', '{a,b}', '🙂'].entries()) {
      await clearAndCheck(
        store,
        target,
        [...ADVERSARIAL.filter((n) => n !== target), ...SIBLINGS, '{a}x', 'x{a}'],
        i % 2 === 0 ? 'option' : 'own',
      )
    }
  } finally {
    await store.close()
  }
})

// Generated namespaces: mostly glob syntax, some letters, colons and non-BMP characters.
// Lone surrogates are left out on Redis: a key is bytes there, and '\uD800' is written
// as U+FFFD, the same bytes as '\uFFFD' (one key for two strings, not a wider clear).
const units = ['*', '?', '[', ']', '^', '-', '!', '\\', '{', '}', ',', ':', 'a', 'b', 'é', '🙂', ' ']
const namespaceArb = fc.string({ unit: fc.constantFrom(...units), minLength: 1, maxLength: 6 })
/** A target and siblings: random ones and ones derived from the target (what an unescaped glob would reach). */
const clearCase = fc
  .record({ target: namespaceArb, others: fc.array(namespaceArb, { maxLength: 6 }) })
  .map(({ target, others }) => {
    const chars = Array.from(target)
    const derived = [
      target + 'x',
      'x' + target,
      chars.slice(1).join(''),
      chars.slice(0, -1).join(''),
      chars.map((c) => (/[*?[\]^!\\{},-]/.test(c) ? 'a' : c)).join(''),
      chars.filter((c) => c !== '\\').join(''),
      target + ':',
      target.toUpperCase(),
    ].filter((n) => n !== '' && n !== target)
    return { target, siblings: [...others.filter((n) => n !== target), ...derived] }
  })

clearing('property (memory): for generated glob-like namespaces, clear removes exactly the namespace', async () => {
  const store = memoryStore()
  await checkAsync(
    'memory clear never widens',
    fc.asyncProperty(clearCase, fc.boolean(), async ({ target, siblings }, own) => {
      await clearAndCheck(store, target, siblings, own ? 'own' : 'option')
    }),
    { numRuns: 300 },
  )
  await store.close()
})

clearing('property (Redis single node): the same against SCAN MATCH on a real server', async () => {
  const store = await redisStore()
  try {
    await checkAsync(
      'redis clear never widens',
      fc.asyncProperty(clearCase, fc.boolean(), async ({ target, siblings }, own) => {
        await clearAndCheck(store, target, siblings, own ? 'own' : 'option')
      }),
      { numRuns: 60 },
    )
  } finally {
    await store.close()
  }
})

clearing('Redis: keys with CR, LF and RESP look-alikes are plain keys (RESP is length-prefixed)', async () => {
  const server = await redis()
  await redisCommand(server.port, 'CONFIG', 'RESETSTAT')
  await redisCommand(server.port, 'SET', 'canary', 'safe')
  await using cache = new RedisCache({ port: server.port, namespace: 'resp\r\n*1\r\n$8\r\nFLUSHALL\r\n' })
  for (const key of ['a\r\nFLUSHALL\r\n', '*1\r\n$8\r\nFLUSHALL', '\r\n', ' ', '\u0000']) {
    await cache.set(key, `value of ${key}`)
    assert.is(await cache.get(key), `value of ${key}`)
    assert.is(
      await redisCommand(server.port, 'GET', cache.buildKey(key)),
      JSON.stringify(`value of ${key}`),
      'stored under the exact key',
    )
  }
  assert.is(await redisCommand(server.port, 'GET', 'canary'), 'safe', 'nothing was flushed')
  const info = (await redisCommand(server.port, 'INFO', 'commandstats')) as string
  assert.match(info, /cmdstat_set:calls=\d+/, 'the counters are live')
  assert.not.match(info, /cmdstat_(flushall|flushdb|del|unlink):/, 'no flush or delete ran')
})

clearing.run()

// ---------------------------------------------------------------------------
// 2. Memcached: nothing injects a command

/** `stats` of our memcached, as numbers. */
async function stats(server: MemcachedServer): Promise<Record<string, number>> {
  const text = await memcachedCommand(server.port, 'stats')
  const out: Record<string, number> = {}
  for (const [, name, value] of text.matchAll(/^STAT (\S+) (\S+)\r$/gm)) out[name!] = Number(value)
  return out
}
/** Counters that move when a command reaches the server. */
const COUNTERS = [
  'cmd_get',
  'cmd_set',
  'cmd_flush',
  'cmd_touch',
  'get_hits',
  'get_misses',
  'delete_hits',
  'delete_misses',
  'incr_hits',
  'incr_misses',
  'decr_hits',
  'decr_misses',
  'cas_hits',
  'cas_misses',
  'cas_badval',
  'touch_hits',
  'touch_misses',
  'curr_items',
  'total_items',
] as const
const pick = (s: Record<string, number>): Record<string, number> =>
  Object.fromEntries(COUNTERS.map((name) => [name, s[name] ?? -1]))

const CONTROL_CHARACTERS = [
  ...Array.from({ length: 0x21 }, (_, i) => String.fromCharCode(i)).filter((c) => c !== ' '),
  '\u007f',
]
/** Keys that must be refused: control characters (every one of them), CR/LF command payloads, too long. */
const REFUSED_KEYS = [
  ...CONTROL_CHARACTERS.map((c) => `ctl${c}x`),
  ...CONTROL_CHARACTERS,
  'a\r\nflush_all\r\n',
  'x 0 0 1\r\n',
  'k\r\nms inj:canary 4 T0\r\npwnd',
  'k\nmd canary',
  'k\r\nmn',
  'get canary\r\n',
  'a\r',
  'a\n',
  '\r\n',
  'k\r\nflush_all 0\r\nmg inj:x',
  'k v\r\nms canary 2\r\nno',
  'k'.repeat(247),
  'é'.repeat(124),
  'x'.repeat(10_000),
  'a\r\n'.repeat(100),
]
/**
 * Keys that look like protocol but hold no control character and fit: plain keys (spaces become `_`, as in aiocache).
 */
const PLAIN_KEYS = [
  'x 0 0 1',
  'flush_all',
  'mg canary v',
  'ms canary 4 T0',
  'md canary',
  'a b c',
  'VA 5',
  'END',
  'HD',
  'EN',
  'NS',
  'ERROR',
  'CLIENT_ERROR',
  'é',
  '🙂',
  '\u0085nel',
  '\u00a0nbsp',
  '\u2028ls',
  '\u3000ideo',
  '\ufeffbom',
  'k'.repeat(246),
  'é'.repeat(123),
  'b64+/=',
  'q',
  'k q',
  'O123 k',
]
const NAMESPACE = 'inj'

/** Every command of the cache (and the backend's raw and deleteIf) on one key; each answers or rejects. */
function everyCommand(cache: MemcachedCache, key: string): Array<[string, () => Promise<unknown>]> {
  const built = cache.buildKey(key)
  return [
    ['set', () => cache.set(key, 'v')],
    ['get', () => cache.get(key)],
    ['multiGet', () => cache.multiGet([key])],
    ['multiGet with a good key', () => cache.multiGet(['good', key])],
    ['add', () => cache.add(key, 'v')],
    ['exists', () => cache.exists(key)],
    ['expire', () => cache.expire(key, 100)],
    ['set with a casToken', () => cache.set(key, 'w', { casToken: '"v"' })],
    ['increment', () => cache.increment(key)],
    ['multiSet', () => cache.multiSet([[key, 'v']])],
    [
      'multiSet after a good pair',
      () =>
        cache.multiSet([
          ['okm', 'v'],
          [key, 'v'],
        ]),
    ],
    ['set with a ttl', () => cache.set(key, 'v', { ttl: 100 })],
    ['deleteIf', () => cache.backend.deleteIf(built, '"v"')],
    ['raw mg', () => cache.raw('mg', built, 'v')],
    ['raw ms', () => cache.raw('ms', built, 'raw', 'T100')],
    ['raw ma', () => cache.raw('ma', built)],
    ['raw md', () => cache.raw('md', built)],
    ['delete', () => cache.delete(key)],
  ]
}

const injection = suite<{ server: MemcachedServer; cache: MemcachedCache }>(
  'security: nothing injects a memcached command',
)

injection.before(async (ctx) => {
  ctx.server = await memcached()
  ctx.cache = new MemcachedCache({ servers: [ctx.server.server], namespace: NAMESPACE })
})
injection.after(async ({ cache }) => {
  await cache.close()
})

injection(
  'keys with control characters, CR/LF payloads or over 250 bytes: every command rejects with InvalidKeyError and ' +
    'sends nothing',
  async ({ server, cache }) => {
    assert.match(await memcachedCommand(server.port, 'set canary 0 0 4\r\nsafe'), /^STORED\r\n/)
    // connects and learns the item size limit, so the counters below move only for commands
    await cache.set('warm-up', 1)
    await cache.delete('warm-up')
    const before = pick(await stats(server))
    for (const key of REFUSED_KEYS) {
      for (const [command, run] of everyCommand(cache, key)) {
        const error = await rejection(run())
        assert.instance(error, InvalidKeyError, `${command} of ${JSON.stringify(key.slice(0, 30))}: ${String(error)}`)
        assert.match((error as Error).message, /^\[oniocache\] \[memcached\]/)
      }
    }
    // The namespace is part of the key: a namespace with CR/LF injects nothing either.
    await using evil = new MemcachedCache({ servers: [server.server], namespace: 'ns\r\nflush_all\r\n' })
    for (const [command, run] of everyCommand(evil, 'k')) {
      assert.instance(await rejection(run()), InvalidKeyError, `${command} under a CR/LF namespace`)
    }
    const refused = await rejection(evil.clear())
    assert.instance(refused, BackendError, 'clearing by namespace is refused, not sent')
    assert.equal(pick(await stats(server)), before, 'no command reached the server')
    assert.match(await memcachedCommand(server.port, 'mg canary v'), /^VA 4\r\nsafe\r\n/, 'the canary is untouched')
  },
)

injection('meta flags given to raw cannot carry a second command either', async ({ server, cache }) => {
  const before = pick(await stats(server))
  for (const flag of [
    'v\r\nflush_all',
    'v flush_all',
    'T0\r\n',
    'v\n',
    'O\u0000',
    ' v',
    '',
    'q',
    'v'.repeat(65),
    'T\u007f',
  ]) {
    assert.instance(await rejection(cache.raw('mg', 'inj:k', flag)), TypeError, JSON.stringify(flag))
    assert.instance(await rejection(cache.raw('ms', 'inj:k', 'x', flag)), TypeError, JSON.stringify(flag))
  }
  assert.instance(
    await rejection(cache.raw('mg', 'inj:k', ...Array.from({ length: 17 }, () => 'v'))),
    TypeError,
    'more than 16 flags',
  )
  assert.instance(await rejection(cache.raw('flush_all\r\nmg', 'k')), TypeError)
  assert.instance(await rejection(cache.raw('stats', 'k')), TypeError)
  assert.equal(pick(await stats(server)), before, 'nothing was sent')
})

injection(
  'protocol look-alike keys without control characters are plain keys: every command works on them, stored under ' +
    'the key itself',
  async ({ server, cache }) => {
    for (const key of PLAIN_KEYS) {
      const stored = cache.buildKey(key).replaceAll(' ', '_')
      assert.is(await cache.set(key, { key }), true)
      assert.equal(await cache.get(key), { key }, JSON.stringify(key))
      const raw = await memcachedCommand(server.port, `mg ${stored} v`)
      const text = JSON.stringify({ key })
      assert.is(raw, `VA ${Buffer.byteLength(text)}\r\n${text}\r\n`, `stored as ${JSON.stringify(stored)}`)
      assert.equal(await cache.multiGet(['good', key]), [undefined, { key }])
      assert.is(await cache.exists(key), true)
      assert.is(await cache.expire(key, 100), true)
      assert.instance(await rejection(cache.add(key, 1)), Error)
      assert.is(await cache.set(key, 'w', { casToken: text }), true, 'casToken')
      assert.instance(await rejection(cache.increment(key)), TypeError, 'not an integer')
      await cache.multiSet([
        ['okm', 1],
        [key, 7],
      ])
      assert.is(await cache.increment(key, 2), 9)
      assert.is(await cache.backend.deleteIf(stored, '9'), true)
      assert.is(await cache.add(key, 'again'), true)
      assert.is(await cache.delete(key), 1)
      assert.is(await cache.delete('okm'), 1)
      assert.is(await cache.exists(key), false)
    }
    assert.match(await memcachedCommand(server.port, 'mg canary v'), /^VA 4\r\nsafe\r\n/, 'the canary is untouched')
    const after = await stats(server)
    assert.is(after.cmd_flush, 0, 'no flush_all ran')
    assert.is(after.curr_items, 1, 'only the canary is left: no stray item was written')
  },
)

/** Stores values as given (strings as UTF-8, bytes as bytes) so the data block carries the raw text. */
class RawSerializer implements Serializer<string | Uint8Array> {
  readonly encoding = null
  dumps(value: unknown): string | Uint8Array {
    if (typeof value === 'string' || value instanceof Uint8Array) return value
    throw new TypeError('RawSerializer stores strings and bytes')
  }
  loads(stored: string | Uint8Array | undefined): unknown {
    return stored
  }
}

injection(
  'values holding protocol text (\\r\\nEND\\r\\n, VA lines, flush_all, NUL, bare CR/LF) round-trip byte for byte',
  async ({ server }) => {
    const values = [
      '\r\nEND\r\n',
      'VA 5 \r\nhello\r\n',
      'a\r\nflush_all\r\n',
      'ms inj:canary 4\r\npwnd\r\n',
      '\r\n',
      '\r',
      '\n',
      'END',
      '',
      '\u0000\r\n\u0000',
      `${'x'.repeat(5000)}\r\nEND\r\n`,
      'SERVER_ERROR out of memory\r\n',
      'EN\r\n',
      'HD\r\nHD\r\n',
      'mn\r\n',
      '\r\n\r\n\r\n',
      'é\r\n🙂',
    ]
    await using text = new MemcachedCache({
      servers: [server.server],
      namespace: 'val',
      serializer: new StringSerializer(),
    })
    await using bytes = new MemcachedCache({
      servers: [server.server],
      namespace: 'bin',
      serializer: new RawSerializer(),
    })
    await using json = new MemcachedCache({ servers: [server.server], namespace: 'json' })
    for (const [i, value] of values.entries()) {
      const key = `v${i}`
      await text.set(key, value)
      assert.is(await text.get(key), value, JSON.stringify(value))
      const raw = await memcachedCommand(server.port, `mg val:${key} v`)
      assert.is(raw, `VA ${Buffer.byteLength(value)}\r\n${value}\r\n`, 'stored exactly')
      assert.equal(await text.multiGet([key, 'missing', key]), [value, undefined, value])
      assert.is(await text.set(key, value + '!', { casToken: value }), true)
      assert.instance(await rejection(text.add(key, value)), Error)
      assert.instance(await rejection(text.increment(key)), TypeError)
      assert.is(await text.get(key), value + '!', 'the failed increment changed nothing')
      await text.multiSet([
        [`m${i}`, value],
        [key, value],
      ])
      assert.equal(await text.multiGet([`m${i}`, key]), [value, value])
      const blob = Buffer.concat([Buffer.from(value), Buffer.from([0xff, 0x00, 0x0d, 0x0a, 0xc3, 0x28])])
      await bytes.set(key, blob)
      assert.equal([...((await bytes.get(key)) as Uint8Array)], [...blob])
      await json.set(key, { value })
      assert.equal(await json.get(key), { value })
    }
    assert.match(await memcachedCommand(server.port, 'mg canary v'), /^VA 4\r\nsafe\r\n/, 'the canary is untouched')
    const after = await stats(server)
    assert.is(after.cmd_flush, 0, 'no flush_all ran')
    assert.is(after.curr_items, 1 + values.length * 4, 'the canary and exactly the items written')
  },
)

injection(
  'the counters are live: clear() on a namespace-"" cache is one flush_all, and the canary goes',
  async ({ server }) => {
    await using all = new MemcachedCache({ servers: [server.server] })
    assert.is((await stats(server)).cmd_flush, 0)
    await all.clear()
    assert.is((await stats(server)).cmd_flush, 1, 'cmd_flush counts flush_all: the zeros above meant something')
    assert.match(await memcachedCommand(server.port, 'mg canary v'), /^EN\r\n/)
  },
)

injection.run()

// ---------------------------------------------------------------------------
// 3. Prototype pollution

const PAYLOADS = [
  '{"__proto__":{"polluted":1}}',
  '{"a":{"b":{"__proto__":{"polluted":1}}}}',
  '[{"__proto__":{"polluted":1}},{"x":[{"__proto__":{"polluted":1}}]}]',
  '{"constructor":{"prototype":{"polluted":1}}}',
  '{"__proto__":{"__proto__":{"polluted":1}},"constructor":{"prototype":{"polluted":1}}}',
  '{"__proto__":{"constructor":{"prototype":{"polluted":1}}}}',
  '{"__proto__":null,"polluted":0}',
  '{"__proto__":[],"toString":"x","hasOwnProperty":1,"valueOf":{"polluted":1}}',
  '{"prototype":{"polluted":1},"__defineGetter__":1,"__lookupGetter__":{"polluted":1}}',
]

/** Nothing shared was changed: Object, Array and Function prototypes carry no `polluted`. */
function assertUnpolluted(label: string): void {
  for (const [name, proto] of [
    ['Object', Object.prototype],
    ['Array', Array.prototype],
    ['Function', Function.prototype],
  ] as const) {
    assert.not.ok(Object.hasOwn(proto, 'polluted'), `${label}: ${name}.prototype was polluted`)
  }
  assert.is(({} as Record<string, unknown>).polluted, undefined, `${label}: ({}).polluted`)
  assert.is(Object.getPrototypeOf({}), Object.prototype)
  assert.is({}.toString(), '[object Object]', `${label}: Object.prototype.toString is intact`)
}

/**
 * What JsonSerializer promises: plain data, keys kept as own data properties
 * (`__proto__` and `constructor` included), objects with Object.prototype as prototype.
 */
function assertPlainJson(value: unknown, text: string, label: string): void {
  assert.equal(reencode(value), reencode(JSON.parse(text)), `${label}: the same data`)
  const walk = (item: unknown, raw: unknown): void => {
    if (item === null || typeof item !== 'object') return
    if (!Array.isArray(item)) assert.is(Object.getPrototypeOf(item), Object.prototype, `${label}: a plain object`)
    for (const name of Object.keys(raw as object)) {
      const descriptor = Object.getOwnPropertyDescriptor(item, name)
      assert.ok(
        descriptor !== undefined && 'value' in descriptor,
        `${label}: ${JSON.stringify(name)} is an own data property`,
      )
      walk(descriptor!.value, (raw as Record<string, unknown>)[name])
    }
  }
  walk(value, JSON.parse(text))
}

/** JSON of a value with its own keys, `__proto__` included (JSON.stringify reads own properties). */
function reencode(value: unknown): string {
  return JSON.stringify(value)
}

const pollution = suite('security: deserializing never pollutes prototypes')

pollution(
  'JsonSerializer.loads: __proto__ and constructor keys stay own data properties; nothing shared changes',
  () => {
    const json = new JsonSerializer()
    for (const text of PAYLOADS) {
      const value = json.loads(text)
      assertUnpolluted(text)
      assertPlainJson(value, text, text)
      assertPlainJson(json.loads(Buffer.from(text)), text, `${text} (bytes)`)
    }
    const out = json.loads('{"__proto__":{"polluted":1}}') as Record<string, unknown>
    assert.is(out.polluted, undefined, 'the loaded object does not inherit from the payload')
    assert.equal(Object.keys(out), ['__proto__'], 'the key is kept as data (documented), not dropped')
    const ctor = json.loads('{"constructor":{"prototype":{"polluted":1}}}') as { constructor: { prototype: object } }
    assert.is.not(ctor.constructor, Object, "constructor is the payload's own data, not Object")
    assertUnpolluted('after reading constructor.prototype')
  },
)

pollution(
  'MsgPackSerializer: "__proto__" keys come back renamed "__proto_" (msgpackr\'s guard) in every map encoding and ' +
    'in records; nothing shared changes',
  () => {
    const msgpack = new MsgPackSerializer()
    const key = Buffer.from('__proto__')
    const inner = Buffer.concat([Buffer.from([0x81, 0xa8]), Buffer.from('polluted'), Buffer.from([0x01])])
    const encodings = {
      'fixmap, fixstr key': Buffer.concat([Buffer.from([0x81, 0xa9]), key, inner]),
      'map16, str8 key': Buffer.concat([Buffer.from([0xde, 0x00, 0x01, 0xd9, 0x09]), key, inner]),
      'map32, str16 key': Buffer.concat([Buffer.from([0xdf, 0x00, 0x00, 0x00, 0x01, 0xda, 0x00, 0x09]), key, inner]),
      'fixmap, str32 key': Buffer.concat([Buffer.from([0x81, 0xdb, 0x00, 0x00, 0x00, 0x09]), key, inner]),
      nested: Buffer.concat([Buffer.from([0x81, 0xa1, 0x61, 0x81, 0xa9]), key, inner]),
    }
    for (const [label, bytes] of Object.entries(encodings)) {
      const value = msgpack.loads(bytes) as Record<string, unknown>
      assertUnpolluted(label)
      const object = label === 'nested' ? (value.a as Record<string, unknown>) : value
      assert.is(Object.getPrototypeOf(object), Object.prototype, label)
      assert.not.ok(Object.hasOwn(object, '__proto__'), `${label}: no own __proto__`)
      assert.equal(
        Object.getOwnPropertyDescriptor(object, '__proto_')?.value,
        { polluted: 1 },
        `${label}: renamed to __proto_`,
      )
      assert.is(object.polluted, undefined)
    }
    // msgpackr records (its own extension), read by the serializer's unpacker: past a
    // few objects msgpackr compiles a reader with new Function — still renamed.
    const records = new Packr({ useRecords: true }).pack(
      Array.from({ length: 40 }, () =>
        JSON.parse('{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}}}'),
      ),
    )
    for (const object of msgpack.loads(records) as Array<Record<string, unknown>>) {
      assert.equal(Object.keys(object), ['__proto_', 'constructor'])
      assert.is(Object.getPrototypeOf(object), Object.prototype)
    }
    assertUnpolluted('records')
    // A map key that is not a string cannot become "__proto__" by conversion: refused.
    const arrayKey = Buffer.concat([Buffer.from([0x81, 0x91, 0xa9]), key, inner])
    assert.throws(() => msgpack.loads(arrayKey))
    for (const text of PAYLOADS) {
      msgpack.loads(msgpack.dumps(JSON.parse(text)))
      assertUnpolluted(`msgpack ${text}`)
    }
  },
)

pollution(
  'V8Serializer: a "__proto__" key is kept as an own data property (structured clone defines, never assigns); ' +
    'nothing shared changes',
  () => {
    const v8 = new V8Serializer()
    for (const text of PAYLOADS) {
      const value = v8.loads(v8Serialize(JSON.parse(text)))
      assertUnpolluted(`v8 ${text}`)
      assertPlainJson(value, text, `v8 ${text}`)
    }
  },
)

pollution(
  "through a cache on every backend: a __proto__ payload written behind the cache's back reads as plain data (get, " +
    'multiGet, cached)',
  async () => {
    const payload = '{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},"ok":1}'
    const check = (value: unknown, label: string): void => {
      assertUnpolluted(label)
      assertPlainJson(value, payload, label)
    }
    const memory = new Cache({ serializer: new JsonSerializer() })
    memory.backend.raw('set', ['evil', payload])
    check(await memory.get('evil'), 'memory get')
    check((await memory.multiGet(['evil']))[0], 'memory multiGet')

    const server = await redis()
    await redisCommand(server.port, 'SET', 'pp:evil', payload)
    await using onRedis = new RedisCache({ port: server.port, namespace: 'pp' })
    check(await onRedis.get('evil'), 'redis get')
    check((await onRedis.multiGet(['evil', 'evil']))[1], 'redis multiGet')

    const mc = await memcached()
    assert.match(
      await memcachedCommand(mc.port, `set pp:evil 0 0 ${Buffer.byteLength(payload)}\r\n${payload}`),
      /^STORED/,
    )
    await using onMemcached = new MemcachedCache({ servers: [mc.server], namespace: 'pp' })
    check(await onMemcached.get('evil'), 'memcached get')
    check((await onMemcached.multiGet(['evil']))[0], 'memcached multiGet')

    await using packed = new RedisCache({ port: server.port, namespace: 'pp', serializer: new MsgPackSerializer() })
    await redisCommand(
      server.port,
      'SET',
      'pp:packed',
      Buffer.concat([
        Buffer.from([0x81, 0xa9]),
        Buffer.from('__proto__'),
        Buffer.from([0x81, 0xa8]),
        Buffer.from('polluted'),
        Buffer.from([0x01]),
      ]),
    )
    const unpacked = (await packed.get('packed')) as Record<string, unknown>
    assert.equal(Object.keys(unpacked), ['__proto_'])
    assertUnpolluted('redis msgpack')
  },
)

pollution.run()

// ---------------------------------------------------------------------------
// 4. The guide says it

const readme = suite('security: the guide')

readme(
  'warns that V8Serializer and MsgPackSerializer must never read data an attacker can write, and lists the guarantees',
  () => {
    const readmeText = readFileSync(join(root, 'README.md'), 'utf8')
    assert.match(readmeText, /Never let `V8Serializer` or `MsgPackSerializer`\s+read data an attacker can write/)
    const text = readFileSync(join(root, 'docs/reliability-and-security.md'), 'utf8')
    const section = /\n## Security\n([\s\S]*?)\n## /.exec(text)?.[1]
    assert.ok(section !== undefined, 'docs/reliability-and-security.md has a "## Security" section')
    for (const claim of [
      /clear/,
      /glob/i,
      /memcached/i,
      /InvalidKeyError/,
      /__proto__/,
      /V8Serializer/,
      /MsgPackSerializer/,
      /password/i,
      /NODE_DEBUG/,
    ]) {
      assert.match(section!, claim)
    }
    assert.match(text, /spec\/security\.spec\.ts/, 'the page names the spec that proves it')
  },
)

readme.run()

// ---------------------------------------------------------------------------
// 5. Passwords stay out of errors, caches and debug lines

const PASSWORD = 'Zq7-s3cr3t/PASS?x'
/** Fragments that give the password away, encoded or not. */
const LEAKS = [PASSWORD, encodeURIComponent(PASSWORD), 's3cr3t', 'Zq7', 'PASS?x']

function leaked(text: string): string | undefined {
  return LEAKS.find((fragment) => text.includes(fragment))
}

async function freePort(): Promise<number> {
  const probe = net.createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address() as net.AddressInfo
  await new Promise((resolve) => probe.close(resolve))
  return port
}

/** The servers: one that wants PASSWORD, one that wants another, and one to pause for each run of the scenarios. */
const passwordTargets = startOnce(async () => {
  const [good, wrong, paused, pausedForChild] = await Promise.all([
    startRedis(),
    startRedis(),
    startRedis(),
    startRedis(),
  ])
  // The harness checks readiness with an unauthenticated PING: the passwords are set once they are up.
  await redisCommand(good.port, 'CONFIG', 'SET', 'requirepass', PASSWORD)
  await redisCommand(wrong.port, 'CONFIG', 'SET', 'requirepass', 'other-password')
  for (const server of [paused, pausedForChild])
    await redisCommand(server.port, 'CONFIG', 'SET', 'requirepass', PASSWORD)
  const targets: Targets = {
    password: PASSWORD,
    down: await freePort(),
    good: good.port,
    wrong: wrong.port,
    paused: paused.port,
  }
  return {
    targets,
    paused,
    pausedForChild,
    stop: async () =>
      Promise.all([good, wrong, paused, pausedForChild].map((server) => server.stop())).then(() => undefined),
  }
})

interface ChildRun {
  code: number | null
  stdout: string
  stderr: string
}

/**
 * Runs the scenarios in a child process with NODE_DEBUG=oniocache, against its own
 * paused server, which it resumes when the child says `paused`.
 */
async function runScenariosInChild(): Promise<ChildRun> {
  const { targets, pausedForChild } = await passwordTargets()
  await pausedForChild.pause()
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'spec/support/fixtures/password-scenarios.ts',
      JSON.stringify({ ...targets, paused: pausedForChild.port }),
    ],
    {
      cwd: root,
      env: childEnv({ NODE_DEBUG: 'oniocache', FORCE_COLOR: '0', NO_COLOR: '1' }),
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  )
  let stdout = ''
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  try {
    for await (const line of createInterface({ input: child.stdout })) {
      stdout += line + '\n'
      if (line === 'paused') {
        await pausedForChild.resume()
        child.stdin.write('resumed\n')
      }
    }
    return { code: await exited, stdout, stderr }
  } finally {
    clearTimeout(killer)
    if (pausedForChild.paused) await pausedForChild.resume()
  }
}

function assertNoLeak(outcomes: readonly Outcome[]): void {
  for (const { label, error, texts } of outcomes) {
    for (const text of texts) {
      const fragment = leaked(text)
      assert.ok(fragment === undefined, `${label} (${error}) shows ${JSON.stringify(fragment)}: ${text.slice(0, 400)}`)
    }
  }
}

const passwords = suite('security: a password never shows')
let childRun: Promise<ChildRun> | undefined

passwords.before(() => {
  // The child runs while the in-process tests do; its test reads the outcome.
  childRun = runScenariosInChild()
  childRun.catch(() => undefined)
})

passwords(
  'in errors (down, wrong password, timeout, malformed URL), their causes, and the caches themselves',
  async () => {
    const { targets, paused } = await passwordTargets()
    await paused.pause()
    let outcomes: Outcome[]
    try {
      outcomes = await passwordScenarios(targets, () => paused.resume())
    } finally {
      if (paused.paused) await paused.resume()
    }
    assertNoLeak(outcomes)
    const errors = (label: RegExp): string[] =>
      outcomes.filter((o) => label.test(o.label) && !o.label.startsWith('the cache itself')).map((o) => o.error)
    // The failures are the ones meant: not vacuous passes.
    assert.ok(
      errors(/down/).length >= 10 && errors(/down/).every((name) => name === 'BackendError'),
      `down: ${errors(/down/).join(', ')}`,
    )
    assert.ok(errors(/wrong password/).length >= 8 && errors(/wrong password/).every((name) => name === 'BackendError'))
    const wrongTexts = outcomes
      .filter((o) => /wrong password/.test(o.label))
      .flatMap((o) => o.texts)
      .join('\n')
    assert.match(wrongTexts, /WRONGPASS/, 'the server refused the password, and the error says so')
    assert.equal(errors(/^paused server/), ['TimeoutError', 'TimeoutError', 'TimeoutError'])
    const malformed = errors(/malformed\)$/)
    assert.ok(
      malformed.every((name) => ['TypeError', 'RangeError', 'InvalidCacheTypeError', 'none'].includes(name)),
      malformed.join(', '),
    )
    assert.ok(
      malformed.filter((name) => name !== 'none').length >= 28,
      `malformed URLs are refused: ${malformed.join(', ')}`,
    )
    assert.ok(
      errors(/^new RedisCache\(\{ url: malformed \}\)$/).filter((name) => name === 'TypeError').length >= 8,
      'malformed url options are refused by the constructor',
    )
    assert.ok(
      errors(/^new RedisCache\(\{ cluster: \[\{ url: malformed \}\] \}\)$/).filter((name) => name === 'TypeError')
        .length >= 8,
      'malformed cluster urls are refused by the constructor',
    )
    assert.equal(errors(/^good password/), ['none'], 'the good password reached the server')
    assert.equal(errors(/^cached\(\)/), ['none'], 'cached() answered despite the broken cache')
    assert.ok(outcomes.filter((o) => o.label.startsWith('the cache itself')).length >= 20)
  },
)

passwords(
  'the url and cluster options repeat no part of a malformed URL (node-redis would: its "Invalid URL" error carries ' +
    'the input), and are checked by the constructor',
  () => {
    const urls = [
      'redis://u:1/Zq7-s3cr3t@127.0.0.1',
      'redis://:1/s3cr3t@h/0',
      'redis://u:1?s3cr3t@h',
      'redis://:a#s3cr3t@h',
      'redis://h:1/s3cr3t',
      'redis://:s3cr3t@[::1',
      'redis://:s3cr3t%zz@h:1',
    ]
    for (const url of urls) {
      for (const options of [{ url }, { cluster: [{ url }] }]) {
        let error: unknown
        try {
          new RedisCache(options)
        } catch (e) {
          error = e
        }
        assert.instance(error, TypeError, `${Object.keys(options)[0]}: ${url.replace(/s3cr3t/, '…')}`)
        assert.match((error as Error).message, /^\[oniocache\] (\[redis\] |(a|the path of a) redis:\/\/ URL )/)
        assert.not.ok(exposure(error).join('\n').includes('s3cr3t'), (error as Error).message)
      }
    }
  },
)

passwords(
  'in NODE_DEBUG=oniocache output: a child process runs the same scenarios; its stdout and stderr never show the ' +
    'password',
  async () => {
    const { code, stdout, stderr } = await childRun!
    assert.is(code, 0, stderr.slice(-2000))
    assert.match(stdout, /^done \d+$/m, 'the child ran every scenario')
    for (const [name, text] of [
      ['stdout', stdout],
      ['stderr', stderr],
    ] as const) {
      const fragment = leaked(text)
      assert.ok(
        fragment === undefined,
        `${name} shows ${JSON.stringify(fragment)} around: ` +
          `${text.slice(Math.max(0, text.indexOf(fragment ?? '') - 300), text.indexOf(fragment ?? '') + 100)}`,
      )
    }
    // The debug lines were there to read: failures, timeouts, the refused password and cached()'s report.
    assert.match(stderr, /^ONIOCACHE \d+: get k error BackendError: \[oniocache\] \[redis 127\.0\.0\.1:\d+\]/m)
    assert.match(stderr, /^ONIOCACHE \d+: get k error TimeoutError/m)
    assert.match(stderr, /^ONIOCACHE \d+: \[redis 127\.0\.0\.1:\d+\] .*(WRONGPASS|ECONNREFUSED)/m)
    assert.match(stderr, /^ONIOCACHE \d+: getOrSet loadUser#[0-9a-f]{8}\("42"\): cache read failed/m)
    assert.match(stderr, /^ONIOCACHE \d+: set k [\d.]+ms$/m, 'the successful commands were logged too')
  },
)

passwords.run()

// ---------------------------------------------------------------------------

const cleanup = suite('security: servers stop')
cleanup('the servers this file started are stopped', async () => {
  const targets = started.length
  await Promise.all(started.splice(0).map((server) => server.stop()))
  assert.ok(targets > 0)
})
cleanup.run()

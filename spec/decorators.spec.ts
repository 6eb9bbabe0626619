import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { argumentsKey, functionTag, MAX_KEY_BYTES } from '../lib/decorators/key-encoding.js'
import {
  BackendError,
  Cache,
  Cached,
  type Context,
  cached,
  JsonSerializer,
  type MemoryBackend,
  MemoryCache,
  MultiCached,
  multiCached,
  NullSerializer,
  SerializationError,
  TimeoutError,
} from '../lib/index.js'
import { childEnv } from './support/children.js'
import {
  AsyncBackend,
  HangingBackend,
  ManualClock,
  rejection,
  rejectionError,
  SpyBackend,
  sleep,
  watchUnhandled,
} from './support/fixtures/backends.js'
import { FailingBackend } from './support/fixtures/failing-backend.js'

/** A default key without its function's tag: `load#1a2b3c4d~2(1)` is `load(1)`. */
const untagged = (key: string): string => key.replace(/#[0-9a-f]{8}(~\d+)?(?=\()/, '')

/** The keys the memory store holds, as built (function tags left out), sorted. */
async function storedKeys(cache: Cache): Promise<string[]> {
  return [...((await cache.raw('keys')) as Iterable<string>)].map(untagged).sort()
}

/** What a memory store holds under the default key that reads `key` once its function tag is left out. */
function storedUnder(store: MemoryBackend, key: string): unknown {
  const found = [...(store.raw('keys', []) as Iterable<string>)].find((k) => untagged(k) === key)
  return found === undefined ? undefined : store.get(found)
}

/** An async function named `name` (default `fetchThing`) that records its calls. */
function counted<Args extends unknown[], R>(
  answer: (...args: Args) => R,
  name = 'fetchThing',
): { fn: (...args: Args) => Promise<R>; calls: Args[] } {
  const calls: Args[] = []
  const fn = async (...args: Args): Promise<R> => {
    calls.push(args)
    return answer(...args)
  }
  Object.defineProperty(fn, 'name', { value: name })
  return { calls, fn }
}

/** Collects unhandled rejections while `body` runs (and a little after). */
async function withoutUnhandledRejections(body: () => Promise<void>): Promise<unknown[]> {
  const seen: unknown[] = []
  const listener = (reason: unknown): void => {
    seen.push(reason)
  }
  process.on('unhandledRejection', listener)
  try {
    await body()
    await sleep(30)
  } finally {
    process.off('unhandledRejection', listener)
  }
  return seen
}

const throwingPlugin = (ctx: Context): never => {
  throw new Error(`plugin broke on ${ctx.command}`)
}

// ---------------------------------------------------------------------------
// cached: hits and misses

test('cached: a miss calls fn and stores its result; a hit answers it without calling fn', async () => {
  const cache = new MemoryCache()
  let loads = 0
  const { fn, calls } = counted((id: string) => ({ id, loadedAt: ++loads }))
  const getUser = cached(fn, { cache })
  assert.is(getUser.cache, cache)
  const first = await getUser('42')
  assert.equal(first, { id: '42', loadedAt: 1 })
  const second = await getUser('42')
  assert.is(second, first, 'the hit is the stored value itself (NullSerializer)')
  assert.is(calls.length, 1)
  await getUser('43')
  assert.is(calls.length, 2, 'other arguments are another entry')
  assert.equal(await storedKeys(cache), ['fetchThing("42")', 'fetchThing("43")'])
})

test('cached: the wrapper is always async, keeps `this`, and is named like fn', async () => {
  const cache = new MemoryCache()
  const double = cached(
    function double(this: { factor: number }, n: number): number {
      return n * this.factor
    },
    { cache },
  )
  assert.is(double.name, 'double')
  const promise = double.call({ factor: 2 }, 5)
  assert.instance(promise, Promise)
  assert.is(await promise, 10)
  // A hit: `this` no longer matters, the key is the arguments.
  assert.is(await double.call({ factor: 3 }, 5), 10)
})

test('cached: null is a value and is cached; undefined is not (it cannot be stored), so fn runs again', async () => {
  const cache = new MemoryCache()
  const nulls = counted((_id: number) => null)
  const getNull = cached(nulls.fn, { cache })
  assert.is(await getNull(1), null)
  assert.is(await getNull(1), null)
  assert.is(nulls.calls.length, 1)
  const undefs = counted((_id: number) => undefined, 'fetchNothing')
  const getUndefined = cached(undefs.fn, { cache })
  assert.is(await getUndefined(1), undefined)
  assert.is(await getUndefined(1), undefined)
  assert.is(undefs.calls.length, 2)
})

test('cached: skipCache(result) true leaves the result unstored; false stores it', async () => {
  const cache = new MemoryCache()
  const { fn, calls } = counted((n: number) => ({ n, partial: n < 0 }))
  const seen: unknown[] = []
  const get = cached(fn, {
    cache,
    skipCache: (result) => {
      seen.push(result)
      return result.partial
    },
  })
  await get(-1)
  await get(-1)
  assert.is(calls.length, 2, 'a skipped result is asked for again')
  await get(1)
  await get(1)
  assert.is(calls.length, 3)
  assert.equal(
    seen,
    [
      { n: -1, partial: true },
      { n: -1, partial: true },
      { n: 1, partial: false },
    ],
    'skipCache sees each computed result, not hits',
  )
  assert.equal(await storedKeys(cache), ['fetchThing(1)'])
})

test('cached: an error thrown by fn propagates unchanged and is not cached', async () => {
  const cache = new MemoryCache()
  const boom = new RangeError('no such user')
  let calls = 0
  const get = cached(
    async function failing(_id: number): Promise<number> {
      calls++
      if (calls === 1) throw boom
      return 7
    },
    { cache },
  )
  assert.is(await rejectionError(get(1)), boom)
  assert.equal(await storedKeys(cache), [])
  assert.is(await get(1), 7)
  assert.is(calls, 2)
  // A synchronous throw is a rejection too.
  const sync = cached(
    function syncFailing(): number {
      throw boom
    },
    { cache },
  )
  let threw = false
  let promise: Promise<number> | undefined
  try {
    promise = sync()
  } catch {
    threw = true
  }
  assert.not.ok(threw, 'never throws synchronously')
  assert.is(await rejectionError(promise!), boom)
})

test(
  'cached: key is one fixed key for every call; keyBuilder(args, fn) builds it per call with ' + "the call's this",
  async () => {
    const cache = new MemoryCache()
    const fixed = counted((n: number) => n * 2)
    const config = cached(fixed.fn, { cache, key: 'the-config' })
    assert.is(await config(1), 2)
    assert.is(await config(2), 2, 'one key: the first result answers every call')
    assert.is(fixed.calls.length, 1)
    assert.equal(await storedKeys(cache), ['the-config'])

    const built = counted((id: string, _db: { query(): void }) => id.toUpperCase())
    const builderCalls: unknown[][] = []
    const find = cached(built.fn, {
      cache,
      keyBuilder(this: unknown, args, fn) {
        builderCalls.push([this, args, fn])
        return `user:${args[0]}`
      },
    })
    const self = { tenant: 't1' }
    const db = { query(): void {} }
    assert.is(await find.call(self, 'a', db), 'A', 'a function argument is fine with a keyBuilder')
    assert.is(await find.call(self, 'a', { query(): void {} }), 'A')
    assert.is(built.calls.length, 1)
    assert.equal(builderCalls[0], [self, ['a', db], built.fn])
    assert.ok((await storedKeys(cache)).includes('user:a'))

    const bad = cached(
      async function badKey(): Promise<number> {
        return 1
      },
      { cache, keyBuilder: () => 5 as unknown as string },
    )
    const error = await rejectionError(bad())
    assert.instance(error, TypeError)
    assert.match(error.message, /keyBuilder must return a string/)
  },
)

test('cached: ttl applies to the stored entry (injected clock), as seconds or a string', async () => {
  const clock = new ManualClock()
  const cache = new MemoryCache({ clock })
  const { fn, calls } = counted((id: number) => id)
  const get = cached(fn, { cache, ttl: 10 })
  await get(1)
  clock.advance(9)
  await get(1)
  assert.is(calls.length, 1, 'still fresh after 9 s')
  clock.advance(2)
  await get(1)
  assert.is(calls.length, 2, 'expired after 11 s')

  const short = counted((id: number) => id)
  const getShort = cached(short.fn, { cache, ttl: '500ms' })
  await getShort(2)
  clock.advance(0.4)
  await getShort(2)
  clock.advance(0.2)
  await getShort(2)
  assert.is(short.calls.length, 2)

  const defaulted = new MemoryCache({ clock, ttl: 5 })
  const dflt = counted((id: number) => id)
  const getDefault = cached(dflt.fn, { cache: defaulted })
  await getDefault(1)
  clock.advance(6)
  await getDefault(1)
  assert.is(dflt.calls.length, 2, "without ttl the cache's default ttl applies")
  const forever = cached(dflt.fn, { cache: defaulted, ttl: 0 })
  await forever(2)
  clock.advance(1e6)
  await forever(2)
  assert.is(dflt.calls.length, 3, 'ttl 0 never expires')
})

test('cached: namespace applies to the stored entry and to the lookup', async () => {
  const cache = new MemoryCache({ namespace: 'main' })
  const { fn, calls } = counted((id: number) => id)
  const users = cached(fn, { cache, namespace: 'users' })
  const plain = cached(fn, { cache })
  await users(1)
  await users(1)
  await plain(1)
  assert.is(calls.length, 2, 'another namespace is another entry')
  assert.equal(await storedKeys(cache), ['main:fetchThing(1)', 'users:fetchThing(1)'])
  assert.is(storedUnder(cache.backend, 'users:fetchThing(1)'), 1)
})

// ---------------------------------------------------------------------------
// cached: the default key

/** Whether two argument lists share a cache entry: the second call must not call fn. */
async function shareEntry(a: unknown[], b: unknown[]): Promise<boolean> {
  const cache = new MemoryCache()
  let calls = 0
  const f = cached(
    async function probe(..._args: unknown[]): Promise<number> {
      return ++calls
    },
    { cache },
  )
  await f(...a)
  await f(...b)
  return calls === 1
}

const date0 = new Date(0)
const bytes = (values: number[]): Uint8Array => new Uint8Array(values)

test('default key: argument lists that differ get different entries', async () => {
  const differ: Array<[string, unknown[], unknown[]]> = [
    ["'1' vs 1", ['1'], [1]],
    ['true vs "true"', [true], ['true']],
    ['missing vs undefined', [1], [1, undefined]],
    ['null vs undefined', [null], [undefined]],
    ['null vs "null"', [null], ['null']],
    ['0 vs "0" vs Date(0)', [0], ['0']],
    ['Date(0) vs 0', [date0], [0]],
    ['Date(0) vs its ISO string', [date0], [date0.toISOString()]],
    ['Date(0) vs Date(1)', [date0], [new Date(1)]],
    ['1n vs 1', [1n], [1]],
    ['1n vs "1n"', [1n], ['1n']],
    ['[1,2] vs "1,2"', [[1, 2]], ['1,2']],
    ['[1,2] vs 1,2', [[1, 2]], [1, 2]],
    ['[[1],2] vs [1,[2]]', [[[1], 2]], [[1, [2]]]],
    // biome-ignore lint/suspicious/noSparseArray: a hole is what this case encodes
    ['hole vs undefined', [[, 1]], [[undefined, 1]]],
    ['{a:1} vs {a:"1"}', [{ a: 1 }], [{ a: '1' }]],
    ['{a:undefined} vs {}', [{ a: undefined }], [{}]],
    ['{} vs []', [{}], [[]]],
    ['{} vs Map', [{}], [new Map()]],
    ['Map vs Set', [new Map()], [new Set()]],
    ['Map {1=>2} vs Map {"1"=>2}', [new Map([[1, 2]])], [new Map([['1', 2]])]],
    ['Map {1=>2} vs {1:2}', [new Map([[1, 2]])], [{ 1: 2 }]],
    ['Set {1} vs Set {"1"}', [new Set([1])], [new Set(['1'])]],
    ['Set {1,2} vs [1,2]', [new Set([1, 2])], [[1, 2]]],
    ['Uint8Array [1] vs [1]', [bytes([1])], [[1]]],
    ['Uint8Array vs Int8Array', [bytes([1])], [new Int8Array([1])]],
    ['Uint8Array vs Buffer', [bytes([1])], [Buffer.from([1])]],
    ['Uint8Array [1,2] vs [1,3]', [bytes([1, 2])], [bytes([1, 3])]],
    ['NaN vs "NaN"', [Number.NaN], ['NaN']],
    ['Infinity vs -Infinity', [Infinity], [-Infinity]],
    ['"a b" vs "a_b" (Memcached turns spaces into _)', ['a b'], ['a_b']],
    ['"a,b" vs "a","b"', ['a,b'], ['a', 'b']],
    ['"\\"" vs "\\\\"', ['"'], ['\\']],
    ['/a/g vs /a/i', [/a/g], [/a/i]],
    ['/a/ vs "/a/"', [/a/], ['/a/']],
    ['new Number(1) vs 1', [new Number(1)], [1]],
    ['URL a vs URL b', [new URL('http://a.example/')], [new URL('http://b.example/')]],
    [
      'instances of different classes',
      [
        new (class User {
          id = 1
        })(),
      ],
      [
        new (class Team {
          id = 1
        })(),
      ],
    ],
    [
      'an instance vs a plain object',
      [
        new (class User {
          id = 1
        })(),
      ],
      [{ id: 1 }],
    ],
    ['nested values differ deep down', [{ a: [{ b: new Set([1]) }] }], [{ a: [{ b: new Set([2]) }] }]],
    ['long strings that differ at the end (hashed keys)', ['x'.repeat(300) + 'a'], ['x'.repeat(300) + 'b']],
  ]
  for (const [label, a, b] of differ) {
    assert.not.ok(await shareEntry(a, b), `must differ: ${label}`)
    assert.not.ok(await shareEntry(b, a), `must differ: ${label} (reversed)`)
  }
})

test('default key: argument lists that are deeply equal share one entry', async () => {
  const match: Array<[string, unknown[], unknown[]]> = [
    ['object key order', [{ a: 1, b: 2 }], [{ b: 2, a: 1 }]],
    ['nested key order', [{ x: { a: 1, b: [1, { c: 1, d: 2 }] } }], [{ x: { b: [1, { d: 2, c: 1 }], a: 1 } }]],
    ['equal but distinct objects', [{ a: [1, 2] }], [{ a: [1, 2] }]],
    ['null-prototype object vs plain object', [Object.assign(Object.create(null) as object, { a: 1 })], [{ a: 1 }]],
    ['NaN equals itself', [Number.NaN], [Number.NaN]],
    ['-0 and 0 (documented: SameValueZero, as Map keys and JSON)', [-0], [0]],
    ['equal Dates', [new Date(5)], [new Date(5)]],
    [
      'Map entry order is ignored',
      [
        new Map<unknown, number>([
          ['a', 1],
          [2, 2],
        ]),
      ],
      [
        new Map<unknown, number>([
          [2, 2],
          ['a', 1],
        ]),
      ],
    ],
    ['Set member order is ignored', [new Set([3, 1, 2])], [new Set([1, 2, 3])]],
    ['equal typed arrays', [bytes([1, 2])], [bytes([1, 2])]],
    ['a view is its own bytes only', [new Uint8Array([9, 1, 2]).subarray(1)], [bytes([1, 2])]],
    ['equal bigints', [10n ** 30n], [10n ** 30n]],
    ['equal URLs (through toJSON)', [new URL('http://a.example/x')], [new URL('http://a.example/x')]],
    [
      'instances with equal properties',
      [
        new (class Point {
          x = 1
          y = 2
        })(),
      ],
      [
        new (class Point {
          y = 2
          x = 1
        })(),
      ],
    ],
    [
      'a shared (acyclic) reference',
      [
        (() => {
          const shared = { n: 1 }
          return { a: shared, b: shared }
        })(),
      ],
      [{ a: { n: 1 }, b: { n: 1 } }],
    ],
    ['equal long arguments (hashed keys)', ['y'.repeat(500)], ['y'.repeat(500)]],
    ['no arguments', [], []],
  ]
  for (const [label, a, b] of match) assert.ok(await shareEntry(a, b), `must match: ${label}`)
})

test('default key: the encoding is readable and documented', () => {
  const cases: Array<[unknown[], string]> = [
    [[], 'f()'],
    [['42'], 'f("42")'],
    [[1, -1.5, Number.NaN, -0, Infinity], 'f(1,-1.5,NaN,0,Infinity)'],
    [[true, null, undefined], 'f(true,null,undefined)'],
    [[12n], 'f(12n)'],
    [['a b'], 'f("a\\u0020b")'],
    // biome-ignore lint/suspicious/noSparseArray: a hole is what this case encodes
    [[[1, , 'x']], 'f([1,~,"x"])'],
    [[{ b: 1, a: { d: [], c: {} } }], 'f({"a":{"c":{},"d":[]},"b":1})'],
    [[new Date(0)], 'f(Date(1970-01-01T00:00:00.000Z))'],
    [[new Date(Number.NaN)], 'f(Date(Invalid))'],
    [
      [
        new Map<unknown, string>([
          ['b', 'x'],
          [1, 'y'],
        ]),
      ],
      'f(Map("b"=>"x",1=>"y"))',
    ],
    [[new Set(['b', 'a'])], 'f(Set("a","b"))'],
    [[Buffer.from('hi')], 'f(Buffer(6869))'],
    [[new Float64Array([1])], 'f(Float64Array(000000000000f03f))'],
    [[/a.c/gi], 'f(RegExp("a.c","gi"))'],
    [[new Uint8Array([1, 2]).buffer], 'f(ArrayBuffer(0102))'],
    [[new String('x')], 'f(String("x"))'],
    [[new URL('http://a.example/p')], 'f(URL("http://a.example/p"))'],
    [
      [
        new (class User {
          id = 7
        })(),
      ],
      'f(User{"id":7})',
    ],
  ]
  for (const [args, key] of cases) assert.is(argumentsKey('f', args), key)
})

test('default key: past 200 bytes it is the name and a sha256 digest of the arguments', async () => {
  const long = 'é'.repeat(150) // 150 characters, 300 bytes
  const key = argumentsKey('getUser', [long])
  assert.match(key, /^getUser\(sha256:[0-9a-f]{64}\)$/)
  assert.is(argumentsKey('getUser', [long]), key, 'stable')
  // f("…") is the string's length + 5 bytes: 200 bytes stay readable, 201 are hashed.
  assert.is(argumentsKey('f', ['x'.repeat(MAX_KEY_BYTES - 5)]), `f("${'x'.repeat(MAX_KEY_BYTES - 5)}")`)
  assert.match(argumentsKey('f', ['x'.repeat(MAX_KEY_BYTES - 4)]), /^f\(sha256:[0-9a-f]{64}\)$/)
  const cache = new MemoryCache()
  const get = cached(
    async function getUser(s: string): Promise<number> {
      return s.length
    },
    { cache },
  )
  await get(long)
  assert.equal(await storedKeys(cache), [key])
})

test(
  'default key: a function or a symbol among the arguments rejects with a TypeError naming where it is; fn is ' +
    'not called',
  async () => {
    const cache = new MemoryCache()
    const { fn, calls } = counted((..._args: unknown[]) => 1)
    const get = cached(fn, { cache })
    const cases: Array<[unknown[], RegExp]> = [
      [[1, () => 1], /arguments\[1\] is a function/],
      [[Symbol('s')], /arguments\[0\] is a symbol \(Symbol\(s\)\)/],
      [[{ user: { onSave(): void {} } }], /arguments\[0\]\.user\.onSave is a function/],
      [[[1, [2, Symbol.iterator]]], /arguments\[0\]\[1\]\[1\] is a symbol/],
      [[{ [Symbol('k')]: 1 }], /arguments\[0\]\[Symbol\(k\)\] is a symbol-keyed property/],
      [[new Map([[1, () => 1]])], /arguments\[0\]\.get\(<key 0>\) is a function/],
      [[Promise.resolve(1)], /arguments\[0\] is a Promise/],
      [[new WeakMap()], /arguments\[0\] is a WeakMap/],
    ]
    for (const [args, message] of cases) {
      const error = await rejectionError(get(...args))
      assert.instance(error, TypeError)
      assert.match(error.message, message)
      assert.match(error.message, /^\[oniocache\] cached fetchThing: cannot build a key/)
      assert.match(error.message, /keyBuilder/, 'says what to do instead')
    }
    assert.is(calls.length, 0)
  },
)

test('default key: a cycle rejects with a TypeError that says so', async () => {
  const cache = new MemoryCache()
  const get = cached(
    async function walk(_node: unknown): Promise<number> {
      return 1
    },
    { cache },
  )
  const node: { name: string; self?: unknown } = { name: 'n' }
  node.self = { back: node }
  const error = await rejectionError(get(node))
  assert.instance(error, TypeError)
  assert.match(error.message, /arguments\[0\]\.self\.back refers back to an object that contains it \(a cycle\)/)
})

test(
  'default key: a function is told apart by a digest of its source and, among equal ones, by the order they were ' +
    'made',
  async () => {
    const cache = new MemoryCache()
    const make = () => async (id: number) => id
    const first = make()
    const second = make()
    const a = cached(first, { cache })
    const aAgain = cached(first, { cache })
    const b = cached(second, { cache })
    const other = cached(async (id: number) => id + 1, { cache })
    await a(1)
    assert.is(await aAgain(1), 1)
    await b(1)
    await other(1)
    const keys = [...((await cache.raw('keys')) as Iterable<string>)]
    assert.is(keys.length, 3, keys.join(' '))
    const digest = functionTag(first).slice(0, 9)
    assert.equal(
      keys.slice(0, 2),
      [`anonymous${digest}(1)`, `anonymous${digest}~2(1)`],
      'the same function shares its key; an equal one made later does not',
    )
    assert.match(keys[2]!, /^anonymous#[0-9a-f]{8}\(1\)$/)
    assert.is.not(keys[2]!.slice(9, 18), digest, 'other source, other digest')
  },
)

test('default key: two different functions with the same name never share a key', async () => {
  const cache = new MemoryCache()
  const users = {
    fetch: async function getUser(id: number) {
      return `user ${id}`
    },
  }
  const admins = {
    fetch: async function getUser(id: number) {
      return `admin ${id}`
    },
  }
  const forUsers = cached(users.fetch, { cache })
  const forAdmins = cached(admins.fetch, { cache })
  assert.is(await forUsers(1), 'user 1')
  assert.is(await forAdmins(1), 'admin 1', "not the other function's cached result")
  const factory = (prefix: string) =>
    async function getUser(id: number) {
      return `${prefix} ${id}`
    }
  const one = cached(factory('one'), { cache })
  const two = cached(factory('two'), { cache })
  assert.is(await one(1), 'one 1')
  assert.is(await two(1), 'two 1', 'closures of one factory are different functions')
  assert.is([...((await cache.raw('keys')) as Iterable<string>)].length, 4)
})

// ---------------------------------------------------------------------------
// cached: per-call options

test('options({ cacheRead: false }) always calls fn and still stores its result', async () => {
  const cache = new MemoryCache()
  let version = 0
  const get = cached(
    async function load(_id: number): Promise<number> {
      return ++version
    },
    { cache },
  )
  assert.is(await get(1), 1)
  const fresh = get.options({ cacheRead: false })
  assert.is(await fresh(1), 2)
  assert.is(await fresh(1), 3)
  assert.is(await get(1), 3, 'the refreshed result was stored')
})

test('options({ cacheWrite: false }) reads the cache but does not store', async () => {
  const cache = new MemoryCache()
  const { fn, calls } = counted((id: number) => id)
  const get = cached(fn, { cache })
  const readOnly = get.options({ cacheWrite: false })
  await readOnly(1)
  await readOnly(1)
  assert.is(calls.length, 2)
  assert.equal(await storedKeys(cache), [])
  await get(1)
  await readOnly(1)
  assert.is(calls.length, 3, 'a stored entry is read')
})

test('options({ waitForWrite: false }) answers before the store finishes; the store lands shortly after', async () => {
  const backend = new AsyncBackend({ delayMs: 30 })
  const cache = new Cache({ backend, serializer: new NullSerializer() })
  const get = cached(
    async function load(id: number): Promise<string> {
      return `v${id}`
    },
    { cache },
  )
  const started = Date.now()
  assert.is(await get.options({ waitForWrite: false })(1), 'v1')
  assert.is(storedUnder(backend.store, 'load(1)'), undefined, 'not stored yet when the call answers')
  await sleep(60)
  assert.is(storedUnder(backend.store, 'load(1)'), 'v1', 'stored in the background')
  assert.ok(Date.now() - started >= 25, 'the lookup itself was awaited')

  const waiting = Date.now()
  await get.options({ cacheRead: false })(2)
  assert.ok(Date.now() - waiting >= 25, 'by default the store is awaited')
  assert.is(storedUnder(backend.store, 'load(2)'), 'v2')
})

test('options(): unknown switches and non-booleans are TypeErrors; options are per variant', async () => {
  const cache = new MemoryCache()
  const get = cached(
    async function load(id: number): Promise<number> {
      return id
    },
    { cache },
  )
  assert.throws(
    () => get.options({ cacheread: false } as never),
    (e: unknown) => e instanceof TypeError && /cacheread/.test((e as Error).message),
  )
  assert.throws(
    () => get.options({ cacheRead: 'no' } as never),
    (e: unknown) => e instanceof TypeError && /cacheRead must be a boolean/.test((e as Error).message),
  )
  assert.throws(() => get.options(null as never), TypeError)
  const skip = get.options({ cacheWrite: false })
  await skip(1)
  await get(2)
  assert.equal(await storedKeys(cache), ['load(2)'], 'the variant did not change the original')
  assert.is(get.options({}).name, 'load')
})

// ---------------------------------------------------------------------------
// cached: a failing cache never breaks the caller

test(
  'cached: a throwing middleware makes every lookup a miss and every store a no-op; the caller ' + "gets fn's result",
  async () => {
    const cache = new MemoryCache({ plugins: [throwingPlugin] })
    const { fn, calls } = counted((id: number) => ({ id }))
    const get = cached(fn, { cache })
    assert.equal(await get(1), { id: 1 })
    assert.equal(await get(1), { id: 1 })
    assert.is(calls.length, 2)
    assert.is(cache.backend.size, 0)
  },
)

test("cached: a backend that rejects with BackendError: fn's result is returned", async () => {
  const backend = new FailingBackend()
  const cache = new Cache({ backend })
  assert.instance(await rejectionError(cache.get('x')), BackendError, 'the fixture really fails')
  const { fn, calls } = counted((id: number) => `user ${id}`)
  const get = cached(fn, { cache })
  assert.is(await get(1), 'user 1')
  assert.is(calls.length, 1)
  assert.equal(backend.calls.slice(-2), ['get', 'set'], 'both the lookup and the store were tried')
})

test("cached: a hanging backend times out (TimeoutError) and fn's result is returned", async () => {
  const backend = new HangingBackend()
  try {
    const cache = new Cache({ backend, timeout: 0.05 })
    assert.instance(await rejectionError(cache.get('probe')), TimeoutError)
    const get = cached(
      async function load(id: number): Promise<number> {
        return id * 2
      },
      { cache },
    )
    const started = Date.now()
    assert.is(await get(21), 42)
    assert.ok(Date.now() - started < 1000, 'bounded by the timeouts of the lookup and the store')
    assert.is(await get.options({ waitForWrite: false })(1), 2)
  } finally {
    backend.release()
  }
})

test('cached: a result the serializer cannot encode (SerializationError) is returned, not stored', async () => {
  const cache = new MemoryCache({ serializer: new JsonSerializer() })
  assert.instance(await rejectionError(cache.set('probe', 1n)), SerializationError)
  const { fn, calls } = counted(() => 10n ** 20n)
  const get = cached(fn, { cache })
  assert.is(await get(), 10n ** 20n)
  assert.is(await get(), 10n ** 20n)
  assert.is(calls.length, 2)
  assert.equal(await storedKeys(cache), [])
})

test('cached: a failed lookup does not stop the store (a cache that fails only on get)', async () => {
  const cache = new MemoryCache({
    plugins: [
      (ctx: Context, next) => {
        if (ctx.command === 'get') throw new Error('reads are broken')
        return next()
      },
    ],
  })
  const { fn } = counted((id: number) => id)
  await cached(fn, { cache })(5)
  assert.equal(await storedKeys(cache), ['fetchThing(5)'])
})

test('cached: a failed background store (waitForWrite false) leaves no unhandled rejection', async () => {
  const unhandled = await withoutUnhandledRejections(async () => {
    const down = cached(
      async function load(id: number): Promise<number> {
        return id
      },
      { cache: new Cache({ backend: new FailingBackend() }) },
    )
    assert.is(await down.options({ waitForWrite: false })(1), 1)
    const broken = cached(
      async function load(id: number): Promise<number> {
        return id
      },
      { cache: new MemoryCache({ plugins: [throwingPlugin] }) },
    )
    assert.is(await broken.options({ waitForWrite: false })(2), 2)
    const json = cached(
      async function load(): Promise<bigint> {
        return 1n
      },
      { cache: new MemoryCache({ serializer: new JsonSerializer() }) },
    )
    assert.is(await json.options({ waitForWrite: false })(), 1n)
    const many = multiCached(
      async function loadMany(ids: string[]): Promise<Record<string, number>> {
        return Object.fromEntries(ids.map((id) => [id, 1]))
      },
      { cache: new Cache({ backend: new FailingBackend() }), keysFrom: 0 },
    )
    assert.equal(await many.options({ waitForWrite: false })(['a']), { a: 1 })
  })
  assert.equal(unhandled, [])
})

// ---------------------------------------------------------------------------
// cached: options checked up front

test('cached: bad options throw when wrapping: TypeError, RangeError for a duration', () => {
  const cache = new MemoryCache()
  const fn = async (id: number): Promise<number> => id
  const typeError =
    (pattern: RegExp) =>
    (e: unknown): boolean =>
      e instanceof TypeError && pattern.test((e as Error).message)
  assert.throws(() => cached(fn, { cache, tll: 5 } as never), typeError(/unknown option "tll"/))
  assert.throws(() => cached(fn, {} as never), typeError(/cache option is required/))
  assert.throws(() => cached(fn, { cache: {} as never }), typeError(/cache must be a Cache/))
  assert.throws(() => cached(fn, { cache: (() => cache) as never }), typeError(/for the method decorators/))
  assert.throws(() => cached(fn, { cache, key: 1 as never }), typeError(/key must be a string/))
  assert.throws(() => cached(fn, { cache, key: 'k', keyBuilder: () => 'k' }), typeError(/not both/))
  assert.throws(() => cached(fn, { cache, keyBuilder: 'k' as never }), typeError(/keyBuilder must be a function/))
  assert.throws(() => cached(fn, { cache, skipCache: true as never }), typeError(/skipCache must be a function/))
  assert.throws(() => cached(fn, { cache, namespace: 1 as never }), typeError(/namespace must be a string/))
  assert.throws(() => cached('fn' as never, { cache }), typeError(/fn must be a function/))
  assert.throws(() => cached(fn, null as never), typeError(/options must be an object/))
  for (const ttl of [-1, 'soon', Number.NaN]) {
    assert.throws(
      () => cached(fn, { cache, ttl: ttl as never }),
      (e: unknown) => e instanceof RangeError && /ttl/.test((e as Error).message),
      String(ttl),
    )
  }
})

// ---------------------------------------------------------------------------
// multiCached

/** A multi-key loader over a fixed table that records which keys it was asked for. */
function usersLoader(): {
  fn: (ids: string[], tenant?: string) => Promise<Record<string, { id: string; tenant: string | undefined }>>
  asked: string[][]
} {
  const asked: string[][] = []
  return {
    asked,
    fn: async function usersById(ids, tenant) {
      asked.push([...ids])
      return Object.fromEntries(ids.filter((id) => id !== 'ghost').map((id) => [id, { id, tenant }]))
    },
  }
}

/** A cache on a backend that records the calls it receives. */
function spied(): { cache: Cache; backend: SpyBackend } {
  const backend = new SpyBackend()
  return { cache: new Cache({ backend, serializer: new NullSerializer() }), backend }
}

test('multiCached: nothing cached: fn gets every key, one multiGet, one multiSet of what it answered', async () => {
  const { cache, backend } = spied()
  const { fn, asked } = usersLoader()
  const get = multiCached(fn, { cache, keysFrom: 0 })
  assert.is(get.cache, cache)
  const users = await get(['a', 'b'], 't1')
  assert.equal(users, { a: { id: 'a', tenant: 't1' }, b: { id: 'b', tenant: 't1' } })
  assert.equal(asked, [['a', 'b']])
  assert.equal(
    backend.calls.map(([method]) => method),
    ['multiGet', 'multiSet'],
  )
  assert.equal(backend.calls[1], [
    'multiSet',
    [
      ['a', users.a],
      ['b', users.b],
    ],
    0,
  ])
})

test('multiCached: fn gets only the missing keys; the answer holds all, in the requested order', async () => {
  const { cache, backend } = spied()
  const { fn, asked } = usersLoader()
  const get = multiCached(fn, { cache, keysFrom: 0 })
  await cache.set('b', { id: 'b', tenant: 'cached' })
  backend.calls.length = 0
  const users = await get(['a', 'b', 'c'], 't1')
  assert.equal(asked, [['a', 'c']])
  assert.equal(Object.keys(users), ['a', 'b', 'c'])
  assert.equal(users.b, { id: 'b', tenant: 'cached' })
  assert.equal(users.c, { id: 'c', tenant: 't1' })
  assert.equal(
    backend.calls.map(([method]) => method),
    ['multiGet', 'multiSet'],
  )
  assert.equal(
    (backend.calls[1]![1] as Array<[string, unknown]>).map(([key]) => key),
    ['a', 'c'],
    'only fetched keys are stored',
  )
})

test('multiCached: every key cached: fn is not called, nothing is written', async () => {
  const { cache, backend } = spied()
  const { fn, asked } = usersLoader()
  const get = multiCached(fn, { cache, keysFrom: 0 })
  await get(['a', 'b'], 't1')
  backend.calls.length = 0
  const users = await get(['b', 'a'], 't2')
  assert.equal(asked.length, 1)
  assert.equal(Object.keys(users), ['b', 'a'])
  assert.equal(users.a, { id: 'a', tenant: 't1' })
  assert.equal(
    backend.calls.map(([method]) => method),
    ['multiGet'],
  )
  assert.equal(await get([]), {}, 'no keys: no call, an empty answer')
  assert.equal(asked.length, 1)
})

test('multiCached: a Map-answering fn (returns: "map") answers Maps, also when every key is cached', async () => {
  const cache = new MemoryCache()
  const asked: string[][] = []
  const get = multiCached(
    async function scores(ids: string[]): Promise<Map<string, number>> {
      asked.push(ids)
      return new Map(ids.map((id) => [id, id.length]))
    },
    { cache, keysFrom: 0, returns: 'map' },
  )
  const first = await get(['a', 'bb'])
  assert.instance(first, Map)
  assert.equal(
    [...first],
    [
      ['a', 1],
      ['bb', 2],
    ],
  )
  const second = await get(['bb', 'ccc'])
  assert.equal(
    [...second],
    [
      ['bb', 2],
      ['ccc', 3],
    ],
  )
  const third = await get(['ccc', 'a'])
  assert.instance(third, Map)
  assert.equal(
    [...third],
    [
      ['ccc', 3],
      ['a', 1],
    ],
  )
  assert.equal(asked, [['a', 'bb'], ['ccc']])
})

test('multiCached: keysFrom as an index: the other arguments are passed on unchanged', async () => {
  const cache = new MemoryCache()
  const calls: unknown[][] = []
  const get = multiCached(
    async function lookup(prefix: string, ids: string[], options: { upper: boolean }): Promise<Record<string, string>> {
      calls.push([prefix, ids, options])
      return Object.fromEntries(ids.map((id) => [id, prefix + (options.upper ? id.toUpperCase() : id)]))
    },
    { cache, keysFrom: 1 },
  )
  const options = { upper: true }
  const ids = ['a', 'b']
  await get('x-', ['a'], options)
  assert.equal(await get('x-', ids, options), { a: 'x-A', b: 'x-B' })
  assert.equal(calls[1], ['x-', ['b'], options])
  assert.is(calls[1]![2], options, 'the same object, not a copy')
  assert.equal(ids, ['a', 'b'], "the caller's array is left alone")
})

test('multiCached: keysFrom a property: fn gets a copy of the first argument with the missing keys', async () => {
  const cache = new MemoryCache()
  const calls: Array<{ ids: string[]; tenant: string; db: object }> = []
  const get = multiCached(
    async function byQuery(query: { ids: string[]; tenant: string; db: object }): Promise<Record<string, string>> {
      calls.push(query)
      return Object.fromEntries(query.ids.map((id) => [id, `${query.tenant}/${id}`]))
    },
    { cache, keysFrom: 'ids' },
  )
  const db = {}
  await get({ ids: ['a'], tenant: 't', db })
  const query = { ids: ['a', 'b', 'c'], tenant: 't', db }
  assert.equal(await get(query), { a: 't/a', b: 't/b', c: 't/c' })
  assert.equal(calls[1], { ids: ['b', 'c'], tenant: 't', db })
  assert.is.not(calls[1], query)
  assert.is(calls[1]!.db, db)
  assert.equal(query.ids, ['a', 'b', 'c'], "the caller's object is left alone")
})

test(
  'multiCached: keys fn leaves out or answers undefined are absent and unstored; skipCache(key, value) skips the ' +
    'store; duplicates are asked once',
  async () => {
    const { cache, backend } = spied()
    const asked: string[][] = []
    const get = multiCached(
      async function partial(ids: string[]): Promise<Record<string, number | undefined>> {
        asked.push(ids)
        return { a: 1, b: undefined, c: -3, extra: 9 }
      },
      { cache, keysFrom: 0, skipCache: (key, value) => key === 'c' || value === 9 },
    )
    const answer = await get(['a', 'b', 'c', 'd', 'a'])
    assert.equal(answer, { a: 1, c: -3 })
    assert.equal(asked, [['a', 'b', 'c', 'd']])
    const set = backend.calls.find(([method]) => method === 'multiSet')!
    assert.equal(set[1], [['a', 1]])
  },
)

test('multiCached: keyBuilder(key, args), ttl and namespace apply to the stored entries', async () => {
  const clock = new ManualClock()
  const cache = new MemoryCache({ clock })
  const { fn, asked } = usersLoader()
  const get = multiCached(fn, {
    cache,
    keysFrom: 0,
    keyBuilder: (id, args) => `${args[1]}:user:${id}`,
    ttl: 10,
    namespace: 'users',
  })
  await get(['a'], 't1')
  await get(['a'], 't2')
  assert.equal(await storedKeys(cache), ['users:t1:user:a', 'users:t2:user:a'])
  await get(['a'], 't1')
  assert.is(asked.length, 2)
  clock.advance(11)
  await get(['a'], 't1')
  assert.is(asked.length, 3, 'expired after the ttl')
})

test('multiCached: options(): cacheRead false asks for every key; cacheWrite false stores nothing', async () => {
  const cache = new MemoryCache()
  const { fn, asked } = usersLoader()
  const get = multiCached(fn, { cache, keysFrom: 0 })
  await get.options({ cacheWrite: false })(['a'])
  assert.equal(await storedKeys(cache), [])
  await get(['a'])
  await get.options({ cacheRead: false })(['a', 'b'])
  assert.equal(asked, [['a'], ['a'], ['a', 'b']])
})

test("multiCached: a failing cache: every key counts as missing, fn's answer is returned", async () => {
  for (const cache of [new Cache({ backend: new FailingBackend() }), new MemoryCache({ plugins: [throwingPlugin] })]) {
    const { fn, asked } = usersLoader()
    const get = multiCached(fn, { cache, keysFrom: 0 })
    assert.equal(await get(['a', 'b']), { a: { id: 'a', tenant: undefined }, b: { id: 'b', tenant: undefined } })
    await get(['a', 'b'])
    assert.equal(asked, [
      ['a', 'b'],
      ['a', 'b'],
    ])
  }
  const backend = new HangingBackend()
  try {
    const { fn } = usersLoader()
    const get = multiCached(fn, { cache: new Cache({ backend, timeout: 0.05 }), keysFrom: 0 })
    assert.equal(Object.keys(await get(['a'])), ['a'])
  } finally {
    backend.release()
  }
})

test(
  'multiCached: misuse is a TypeError: keysFrom, a keys argument that is not an iterable of strings, an answer ' +
    'that is no record or Map',
  async () => {
    const cache = new MemoryCache()
    const { fn, asked } = usersLoader()
    for (const keysFrom of [-1, 1.5, '', null]) {
      assert.throws(
        () => multiCached(fn, { cache, keysFrom: keysFrom as never }),
        (e: unknown) => e instanceof TypeError && /keysFrom must be/.test((e as Error).message),
      )
    }
    assert.throws(() => multiCached(fn, { cache, keysFrom: 0, returns: 'set' as never }), TypeError)
    assert.throws(() => multiCached(fn, { cache, keysFrom: 0, key: 'x' } as never), TypeError)
    const get = multiCached(fn, { cache, keysFrom: 0 })
    const notArray = await rejectionError(get('a' as never))
    assert.instance(notArray, TypeError)
    assert.match(notArray.message, /argument 0 \(keysFrom\) must be an iterable of string keys/)
    assert.instance(await rejectionError(get([1] as never)), TypeError)
    const byProp = multiCached(async (query: { ids: string[] }) => Object.fromEntries(query.ids.map((id) => [id, 1])), {
      cache,
      keysFrom: 'ids',
    })
    assert.match(
      (await rejectionError(byProp({ id: [] } as never))).message,
      /the "ids" property of the first argument/,
    )
    assert.equal(asked, [])

    const listFn = async (ids: string[]): Promise<Record<string, number>> => ids as never
    assert.match(
      (await rejectionError(multiCached(listFn, { cache, keysFrom: 0 })(['s']))).message,
      /must answer a record or a Map/,
    )
  },
)

test(
  'multiCached: the keys argument may be any iterable of strings (a Set, a generator); fn gets the missing ones ' +
    'in the same kind',
  async () => {
    const cache = new MemoryCache()
    const asked: unknown[] = []
    const load = multiCached(
      async (ids: Iterable<string>) => {
        asked.push(ids instanceof Set ? ['Set', ...ids] : ['Array', ...ids])
        return Object.fromEntries([...ids].map((id) => [id, id.toUpperCase()]))
      },
      { cache, keysFrom: 0 },
    )
    assert.equal(await load(new Set(['a', 'b'])), { a: 'A', b: 'B' })
    function* ids(): Generator<string> {
      yield 'b'
      yield 'c'
    }
    assert.equal(await load(ids()), { b: 'B', c: 'C' })
    assert.equal(await load(new Set(['a', 'c'])), { a: 'A', c: 'C' }, 'every key cached: fn not called')
    assert.equal(asked, [
      ['Set', 'a', 'b'],
      ['Array', 'c'],
    ])
    const byString = await rejectionError(load('ab' as never))
    assert.instance(byString, TypeError, 'a string is not a keys argument')
  },
)

test('multiCached: a Map answer is cached like a record; the shape answered follows returns', async () => {
  const cache = new MemoryCache()
  let calls = 0
  const mapFn = async (ids: string[]): Promise<Map<string, number>> => {
    calls++
    return new Map(ids.map((id) => [id, id.length]))
  }
  const asRecord = multiCached(mapFn, { cache, keysFrom: 0 } as never) as (ids: string[]) => Promise<unknown>
  assert.equal(await asRecord(['q', 'rr']), { q: 1, rr: 2 }, 'a Map answer, returned as a record')
  assert.equal(await asRecord(['q', 'rr']), { q: 1, rr: 2 }, 'and cached: fn not called again')
  assert.is(calls, 1)
  const asMap = multiCached(mapFn, { cache, keysFrom: 0, returns: 'map' })
  assert.equal(
    await asMap(['q', 'sss']),
    new Map([
      ['q', 1],
      ['sss', 3],
    ]),
  )
  const recordFn = async (ids: string[]): Promise<Record<string, number>> =>
    Object.fromEntries(ids.map((id) => [id, 7]))
  const recordAsMap = multiCached(recordFn, { cache: new MemoryCache(), keysFrom: 0, returns: 'map' } as never) as (
    ids: string[],
  ) => Promise<unknown>
  assert.equal(await recordAsMap(['x']), new Map([['x', 7]]), 'a record answer with returns: map is a Map')
})

// ---------------------------------------------------------------------------
// Method decorators

const shared = new MemoryCache()

class UserService {
  static loads = 0
  readonly cache = new MemoryCache()
  readonly db: Array<string | number>
  readonly tag: string
  constructor(tag: string) {
    this.tag = tag
    this.db = []
  }

  @Cached({ cache: shared, ttl: 60 })
  async find(id: number): Promise<string> {
    this.db.push(id)
    return `user ${id} (loaded by ${this.tag})`
  }

  @Cached({ cache: (self: UserService) => self.cache })
  async ownFind(id: number): Promise<string> {
    this.db.push(id)
    return `${this.tag}:${id}`
  }

  @Cached({
    cache: shared,
    keyBuilder(this: UserService, args) {
      return `${this.tag}/${String(args[0])}`
    },
  })
  async perTag(id: number): Promise<string> {
    this.db.push(id)
    return `${this.tag}:${id}`
  }

  @Cached({ cache: shared })
  static async lookup(name: string): Promise<number> {
    // biome-ignore lint/complexity/noThisInStatic: the class a static call runs on, as users write it
    this.loads++
    return name.length
  }

  @MultiCached({ cache: shared, keysFrom: 0 })
  async findMany(ids: string[]): Promise<Record<string, string>> {
    this.db.push(...ids)
    return Object.fromEntries(ids.map((id) => [id, `${this.tag}:${id}`]))
  }

  @MultiCached({ cache: (self: UserService) => self.cache, keysFrom: 'ids', returns: 'map' })
  async findMap(query: { ids: string[] }): Promise<Map<string, number>> {
    this.db.push(...query.ids)
    return new Map(query.ids.map((id) => [id, id.length]))
  }
}

class AdminService extends UserService {}

test('@Cached: `this` is the instance; key Class.method(args); instances share a shared cache', async () => {
  await shared.clear()
  const a = new UserService('a')
  const b = new UserService('b')
  assert.is(await a.find(1), 'user 1 (loaded by a)')
  assert.is(await a.find(1), 'user 1 (loaded by a)')
  assert.equal(a.db, [1])
  assert.is(await b.find(1), 'user 1 (loaded by a)', 'this is not part of the key: b gets the entry a stored')
  assert.equal(b.db, [])
  await b.find(2)
  assert.equal(b.db, [2])
  assert.equal(await storedKeys(shared), ['UserService.find(1)', 'UserService.find(2)'])
  assert.is(a.find.name, 'find')
})

test('@Cached: cache as (self) => Cache gives each instance its own cache', async () => {
  const a = new UserService('a')
  const b = new UserService('b')
  assert.is(await a.ownFind(1), 'a:1')
  assert.is(await b.ownFind(1), 'b:1')
  assert.is(await a.ownFind(1), 'a:1')
  assert.equal(a.db, [1])
  assert.equal(b.db, [1])
  assert.equal(await storedKeys(a.cache), ['UserService.ownFind(1)'])
  assert.equal(await storedKeys(b.cache), ['UserService.ownFind(1)'])
})

test('@Cached: keyBuilder runs with the instance as this', async () => {
  await shared.clear()
  const a = new UserService('a')
  const b = new UserService('b')
  await a.perTag(1)
  assert.is(await b.perTag(1), 'b:1')
  assert.is(await a.perTag(1), 'a:1')
  assert.equal(a.db, [1])
  assert.equal(await storedKeys(shared), ['a/1', 'b/1'])
})

test('@Cached: static methods keyed by their class; a subclass uses the defining class', async () => {
  await shared.clear()
  UserService.loads = 0
  assert.is(await UserService.lookup('ada'), 3)
  assert.is(await UserService.lookup('ada'), 3)
  assert.is(UserService.loads, 1)
  assert.is(await AdminService.lookup('ada'), 3)
  assert.is(UserService.loads, 1, 'AdminService.lookup is UserService.lookup')
  assert.equal(await storedKeys(shared), ['UserService.lookup("ada")'])

  // Called first through a subclass, before the defining class ever ran it.
  const cache = new MemoryCache()
  class Base {
    @Cached({ cache })
    async find(id: number): Promise<number> {
      return id
    }
    @Cached({ cache })
    static async count(): Promise<number> {
      return 0
    }
  }
  class Derived extends Base {}
  await new Derived().find(7)
  await Derived.count()
  assert.equal(await storedKeys(cache), ['Base.count()', 'Base.find(7)'])
})

test('@MultiCached: `this` is the instance; only missing keys are asked for; record and Map answers', async () => {
  await shared.clear()
  const a = new UserService('a')
  assert.equal(await a.findMany(['x', 'y']), { x: 'a:x', y: 'a:y' })
  assert.equal(await a.findMany(['y', 'z']), { y: 'a:y', z: 'a:z' })
  assert.equal(a.db, ['x', 'y', 'z'])
  const first = await a.findMap({ ids: ['p', 'qq'] })
  const second = await a.findMap({ ids: ['qq'] })
  assert.instance(second, Map)
  assert.equal(
    [...first],
    [
      ['p', 1],
      ['qq', 2],
    ],
  )
  assert.equal([...second], [['qq', 2]])
  assert.equal(a.db, ['x', 'y', 'z', 'p', 'qq'])
})

test("@Cached on a failing cache: the method's result is returned", async () => {
  class Flaky {
    calls = 0
    @Cached({ cache: new Cache({ backend: new FailingBackend() }) })
    async get(id: number): Promise<number> {
      this.calls++
      return id
    }
  }
  const flaky = new Flaky()
  assert.is(await flaky.get(1), 1)
  assert.is(await flaky.get(1), 1)
  assert.is(flaky.calls, 2)
})

test('decorators check what they decorate and their options', () => {
  const decorator = Cached({ cache: shared })
  const fieldContext = {
    kind: 'field',
    name: 'x',
    static: false,
    private: false,
  } as unknown as ClassMethodDecoratorContext
  assert.throws(
    () => decorator(async () => 1, fieldContext as never),
    (e: unknown) => e instanceof TypeError && /decorates methods.*a field/.test((e as Error).message),
  )
  const getterContext = {
    kind: 'getter',
    name: 'x',
    static: false,
    private: false,
  } as unknown as ClassMethodDecoratorContext
  assert.throws(() => MultiCached({ cache: shared, keysFrom: 0 })(async () => ({}), getterContext as never), TypeError)
  assert.throws(() => Cached({ cache: shared, ttl: -1 }), RangeError)
  assert.throws(
    () => Cached({ cache: 'x' as never }),
    (e: unknown) => e instanceof TypeError && /function \(self\) => Cache/.test((e as Error).message),
  )
  assert.throws(() => MultiCached({ cache: shared, keysFrom: -2 }), TypeError)
})

test('@Cached: a cache function that answers something else rejects the call with a TypeError', async () => {
  class Odd {
    @Cached({ cache: () => ({}) as never })
    async get(): Promise<number> {
      return 1
    }
  }
  assert.match((await rejectionError(new Odd().get())).message, /the cache function answered an object, not a Cache/)
})

test('@Cached on a private method names the class of `this`', async () => {
  const cache = new MemoryCache()
  class Secretive {
    @Cached({ cache })
    async #load(id: number): Promise<number> {
      return id
    }
    run(id: number): Promise<number> {
      return this.#load(id)
    }
  }
  await new Secretive().run(3)
  assert.equal(await storedKeys(cache), ['Secretive.#load(3)'])
})

test('multiCached merges concurrent misses key by key: a key in flight is waited for, not asked again', async () => {
  const cache = new MemoryCache()
  const asked: string[][] = []
  let release: () => void = () => {}
  const gate = new Promise<void>((resolve) => (release = resolve))
  const load = multiCached(
    async (ids: string[]) => {
      asked.push([...ids])
      await gate
      return Object.fromEntries(ids.filter((id) => id !== 'none').map((id) => [id, id.toUpperCase()]))
    },
    { cache, keysFrom: 0 },
  )
  const first = load(['a', 'b', 'none'])
  await sleep(1) // the first call is in flight
  const second = load(['b', 'c', 'none'])
  await sleep(1)
  release()
  assert.equal(await first, { a: 'A', b: 'B' })
  assert.equal(await second, { b: 'B', c: 'C' })
  assert.equal(asked, [['a', 'b', 'none'], ['c']], 'b and none were waited for, not asked again')
  assert.equal(await cache.multiGet(['a', 'b', 'c']), ['A', 'B', 'C'])
  // A failure of the call in flight reaches the call waiting for its keys, and nothing is left unhandled.
  const unhandled = watchUnhandled()
  let fail: (error: Error) => void = () => {}
  const failing = multiCached(
    (ids: string[]) => {
      asked.push([...ids])
      return ids.includes('x') ? new Promise<Record<string, string>>((_, reject) => (fail = reject)) : { y: 'Y' }
    },
    { cache, keysFrom: 0 },
  )
  const owner = failing(['x'])
  await sleep(1)
  const waiter = failing(['x', 'y'])
  await sleep(1)
  const boom = new Error('source down')
  fail(boom)
  assert.is(await rejection(owner), boom)
  assert.is(await rejection(waiter), boom)
  assert.equal(asked.slice(2), [['x'], ['y']], 'the waiter asked only for the key nobody was fetching')
  // The flight is over: a new call asks again.
  const again = failing(['x'])
  await sleep(1)
  fail(new Error('still down'))
  assert.match(String(await rejection(again)), /still down/)
  assert.equal(asked.slice(4), [['x']])
  await sleep(5)
  unhandled.stop()
  unhandled.check()
  await cache.close()
})

// ---------------------------------------------------------------------------
// Child processes: debug lines and the example

test(
  'NODE_DEBUG=oniocache: every cache failure a decorator swallows is logged, and none leaves an unhandled ' +
    'rejection',
  () => {
    const script = fileURLToPath(new URL('./support/fixtures/decorators-debug.ts', import.meta.url))
    const child = spawnSync(process.execPath, ['--import', 'tsx', script], {
      env: childEnv({ NODE_DEBUG: 'oniocache', ONIOCACHE_DISABLE: '' }),
      encoding: 'utf8',
      timeout: 20_000,
    })
    assert.is(child.status, 0, `exits 0 (an unhandled rejection would crash it):\n${child.stderr}`)
    const answers = JSON.parse(child.stdout.trim().split('\n').at(-1)!) as unknown[]
    assert.equal(
      answers,
      [{ id: 1 }, { id: 2 }, 30, 'v4', '100000000000000000000', { a: 'A', b: 'B' }],
      'every call answered its own result',
    )
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this pattern is about
    const stderr = child.stderr.replace(/\u001b\[[0-9;]*m/g, '')
    const expected = [
      // A plain call is a getOrSet, which logs what it handles itself.
      /getOrSet lookup#[0-9a-f]{8}\(1\): cache read failed, calling the function: BackendError: \[oniocache\] \[/,
      /getOrSet lookup#[0-9a-f]{8}\(1\): cache write failed, the value is returned uncached: BackendError/,
      /cached lookup#[0-9a-f]{8}\(2\): cache write failed, the result is returned uncached: BackendError/,
      /cached viaPlugin#[0-9a-f]{8}\(3\): the cache failed, calling the function: Error: plugin broke on getOrSet/,
      /getOrSet onHangingServer#[0-9a-f]{8}\(4\): cache read failed, calling the function: TimeoutError/,
      /getOrSet onHangingServer#[0-9a-f]{8}\(4\): cache write failed, the value is returned uncached: TimeoutError/,
      /getOrSet bigNumber#[0-9a-f]{8}\(\): cache write failed, the value is returned uncached: SerializationError/,
      /multiCached usersById: cache read failed, every key counts as missing: BackendError/,
      /multiCached usersById: cache write failed, the values are returned uncached: BackendError/,
    ]
    for (const line of expected)
      assert.match(stderr, new RegExp(`^ONIOCACHE \\d+: ${line.source}`, 'm'), `${line.source}\n${stderr}`)
  },
)

test('examples/decorators.ts runs and shows hits, misses and the keys', () => {
  const root = fileURLToPath(new URL('..', import.meta.url))
  const child = spawnSync(process.execPath, ['--import', 'tsx', 'examples/decorators.ts'], {
    cwd: root,
    env: childEnv({ NODE_DEBUG: '', FORCE_COLOR: '0', NO_COLOR: '1' }),
    encoding: 'utf8',
    timeout: 20_000,
  })
  assert.is(child.status, 0, child.stderr)
  assert.match(child.stdout, /getUser#[0-9a-f]{8}\("42"\)/)
  assert.match(child.stdout, /loads: 1/)
  assert.match(child.stdout, /UserRepository\.find#[0-9a-f]{8}\(7\)/)
  assert.match(child.stdout, /asked for: c/)
})

test.run()

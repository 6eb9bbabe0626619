import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  Cache,
  type Context,
  JsonSerializer,
  KeyExistsError,
  MemoryBackend,
  MemoryCache,
  NullSerializer,
  SerializationError,
  SimpleMemoryCache,
} from '../lib/index.js'
import { childEnv } from './support/children.js'
import { ManualClock, rejects, SpyBackend } from './support/fixtures/backends.js'

/** A memory cache on a clock the test moves by hand. */
function clocked(options: ConstructorParameters<typeof MemoryCache>[0] = {}): {
  cache: MemoryCache
  clock: ManualClock
} {
  const clock = new ManualClock()
  return { cache: new MemoryCache({ ...options, clock }), clock }
}

/** The keys the backend holds, as built. */
async function storedKeys(cache: Cache): Promise<string[]> {
  const keys = (await cache.raw('keys')) as IterableIterator<string>
  return [...keys].sort()
}

const isError =
  (type: new (...args: never[]) => Error) =>
  (error: unknown): boolean =>
    error instanceof type

// ---------------------------------------------------------------------------
// Construction and public properties

test('new Cache(): in-process memory, NullSerializer, namespace "", no ttl, timeout 5', async () => {
  const cache = new Cache()
  assert.instance(cache.backend, MemoryBackend)
  assert.instance(cache.serializer, NullSerializer)
  assert.is(cache.namespace, '')
  assert.is(cache.ttl, null)
  assert.is(cache.timeout, 5)
  const value = { nested: [1, 2] }
  await cache.set('k', value)
  // NullSerializer keeps the value itself.
  assert.is(await cache.raw('get', 'k'), value)
})

test('MemoryCache (alias SimpleMemoryCache) is a Cache on the memory backend with NullSerializer', async () => {
  assert.is(SimpleMemoryCache, MemoryCache)
  const cache = new MemoryCache()
  assert.instance(cache, Cache)
  assert.instance(cache.backend, MemoryBackend)
  assert.instance(cache.serializer, NullSerializer)
  const cached = new MemoryCache({ serializer: new JsonSerializer() })
  await cached.set('k', { a: 1 })
  assert.is(await cached.raw('get', 'k'), '{"a":1}')
  assert.equal(await cached.get('k'), { a: 1 })
})

test('a Cache given a backend uses it', async () => {
  const backend = new SpyBackend()
  const cache = new Cache({ backend })
  assert.is(cache.backend, backend)
  await cache.set('k', 1)
  // Not a memory backend: JsonSerializer by default.
  assert.instance(cache.serializer, JsonSerializer)
  assert.equal(backend.calls, [['set', 'k', '1', 0, undefined]])
  assert.is(await cache.get('k'), 1)
})

test('an unknown constructor option is a TypeError thrown by the constructor', () => {
  assert.throws(
    () => new Cache({ tll: 5 } as never),
    (e: unknown) => e instanceof TypeError && /tll/.test((e as Error).message),
  )
  assert.throws(
    () => new MemoryCache({ nameSpace: 'x' } as never),
    (e: unknown) => e instanceof TypeError && /nameSpace/.test((e as Error).message),
  )
  // MemoryCache picks its own backend.
  assert.throws(() => new MemoryCache({ backend: new MemoryBackend() } as never), isError(TypeError))
})

test('bad constructor values throw from the constructor: RangeError for durations, TypeError for the rest', () => {
  for (const ttl of [-1, Number.NaN, '5 minutes', '-1s']) {
    assert.throws(
      () => new Cache({ ttl: ttl as never }),
      (e: unknown) => e instanceof RangeError && /ttl/.test((e as Error).message),
      `ttl ${String(ttl)}`,
    )
  }
  for (const timeout of [-0.5, Number.NaN, 'soon', Infinity]) {
    assert.throws(
      () => new Cache({ timeout: timeout as never }),
      (e: unknown) => e instanceof RangeError && /timeout/.test((e as Error).message),
      `timeout ${String(timeout)}`,
    )
  }
  assert.throws(() => new Cache({ namespace: 5 as never }), isError(TypeError))
  assert.throws(() => new Cache({ keyBuilder: 'x' as never }), isError(TypeError))
  assert.throws(() => new Cache({ serializer: {} as never }), isError(TypeError))
  assert.throws(() => new Cache({ backend: {} as never }), isError(TypeError))
  assert.throws(() => new Cache({ plugins: 'x' as never }), isError(TypeError))
  assert.throws(() => new Cache('x' as never), isError(TypeError))
})

test('namespace, ttl, timeout and serializer are public writable properties', async () => {
  const { cache, clock } = clocked()
  cache.namespace = 'app'
  assert.is(cache.namespace, 'app')
  await cache.set('k', 1)
  assert.equal(await storedKeys(cache), ['app:k'])

  cache.ttl = '5m'
  assert.is(cache.ttl, 300)
  cache.ttl = 2
  assert.is(cache.ttl, 2)
  await cache.set('short', 1)
  clock.advance(2.5)
  assert.is(await cache.get('short'), undefined)

  cache.timeout = '250ms'
  assert.is(cache.timeout, 0.25)
  cache.timeout = 3
  assert.is(cache.timeout, 3)

  const json = new JsonSerializer()
  cache.serializer = json
  assert.is(cache.serializer, json)
  await cache.set('j', [1, 'two'])
  assert.is(await cache.raw('get', 'app:j'), '[1,"two"]')
  assert.equal(await cache.get('j'), [1, 'two'])
})

test('ttl 0 or null as the cache default means no expiry; timeout 0 or null disables the timeout', async () => {
  for (const none of [0, null]) {
    const { cache, clock } = clocked({ ttl: 10 })
    cache.ttl = none
    assert.ok(cache.ttl === 0 || cache.ttl === null, `ttl ${String(none)} reads back as none`)
    await cache.set('k', 'v')
    clock.advance(1e6)
    assert.is(await cache.get('k'), 'v')
    cache.timeout = none
    assert.ok(cache.timeout === 0 || cache.timeout === null, `timeout ${String(none)} reads back as none`)
  }
})

test('assigning a bad value to a property throws and keeps the old value', () => {
  const cache = new Cache({ namespace: 'n', ttl: 3, timeout: 1 })
  assert.throws(() => {
    cache.ttl = -1
  }, isError(RangeError))
  assert.throws(() => {
    cache.ttl = 'forever' as never
  }, isError(RangeError))
  assert.is(cache.ttl, 3)
  assert.throws(() => {
    cache.timeout = Number.NaN
  }, isError(RangeError))
  assert.throws(() => {
    cache.timeout = '1 sec' as never
  }, isError(RangeError))
  assert.is(cache.timeout, 1)
  assert.throws(() => {
    cache.namespace = null as never
  }, isError(TypeError))
  assert.is(cache.namespace, 'n')
  const serializer = cache.serializer
  assert.throws(() => {
    cache.serializer = { dumps: String } as never
  }, isError(TypeError))
  assert.is(cache.serializer, serializer)
})

test('MemoryCache maxSize evicts the least recently used entry', async () => {
  const cache = new MemoryCache({ maxSize: 2 })
  await cache.set('a', 1)
  await cache.set('b', 2)
  assert.is(await cache.get('a'), 1) // a is now the most recently used
  await cache.set('c', 3)
  assert.equal(await cache.multiGet(['a', 'b', 'c']), [1, undefined, 3])
  assert.is(cache.backend.size, 2)
  assert.throws(
    () => new MemoryCache({ maxSize: 0 }),
    (e: unknown) => e instanceof TypeError,
  )
})

// ---------------------------------------------------------------------------
// Key building

test('default keys: namespace + ":" + key, the key alone for namespace ""', async () => {
  const plain = new MemoryCache()
  await plain.set('k', 1)
  assert.equal(await storedKeys(plain), ['k'])

  const user = new MemoryCache({ namespace: 'user' })
  await user.set('42', 'ann')
  assert.equal(await storedKeys(user), ['user:42'])
  assert.is(await user.raw('get', 'user:42'), 'ann')
  assert.is(await user.get('42'), 'ann')
})

test('a per-call namespace overrides the cache namespace for every key command', async () => {
  const cache = new MemoryCache({ namespace: 'a' })
  const ns = { namespace: 'b' }
  await cache.set('k', 1, ns)
  await cache.add('added', 2, ns)
  await cache.multiSet([['m', 3]], ns)
  await cache.increment('n', 5, ns)
  assert.equal(await storedKeys(cache), ['b:added', 'b:k', 'b:m', 'b:n'])
  assert.is(await cache.get('k'), undefined)
  assert.is(await cache.get('k', ns), 1)
  assert.equal(await cache.multiGet(['k', 'm'], ns), [1, 3])
  assert.is(await cache.exists('k', ns), true)
  assert.is(await cache.exists('k'), false)
  assert.is(await cache.expire('k', 10, ns), true)
  assert.is(await cache.delete('k', ns), 1)
  assert.is(await cache.get('n', { namespace: '' }), undefined)
  await cache.set('bare', 1, { namespace: '' })
  assert.ok((await storedKeys(cache)).includes('bare'))
})

test('cache.buildKey is public and follows the cache namespace unless one is given', () => {
  const cache = new Cache({ namespace: 'ns' })
  assert.is(cache.buildKey('k'), 'ns:k')
  assert.is(cache.buildKey('k', 'other'), 'other:k')
  assert.is(cache.buildKey('k', ''), 'k')
  cache.namespace = 'changed'
  assert.is(cache.buildKey('k'), 'changed:k')
})

test('a custom keyBuilder replaces the default everywhere, clear included', async () => {
  const seen: Array<[string, string]> = []
  const keyBuilder = (key: string, namespace: string): string => {
    seen.push([key, namespace])
    return `${namespace}/${key}`
  }
  const cache = new MemoryCache({ namespace: 'app', keyBuilder })
  assert.is(cache.buildKey('k'), 'app/k')
  await cache.set('s', 1)
  await cache.add('a', 2)
  await cache.multiSet([
    ['m1', 3],
    ['m2', 4],
  ])
  await cache.increment('i')
  assert.equal(await storedKeys(cache), ['app/a', 'app/i', 'app/m1', 'app/m2', 'app/s'])
  assert.is(await cache.get('s'), 1)
  assert.equal(await cache.multiGet(['a', 'm2', 'nope']), [2, 4, undefined])
  assert.is(await cache.exists('a'), true)
  assert.is(await cache.expire('a', 5), true)
  assert.is(await cache.delete('a'), 1)
  assert.ok(seen.some(([key, namespace]) => key === 'nope' && namespace === 'app'))

  // Keys outside the builder's prefix survive clear(); the builder decides the prefix.
  await cache.raw('set', 'app:default-style', 1)
  await cache.raw('set', 'other/x', 1)
  seen.length = 0
  assert.is(await cache.clear(), true)
  assert.ok(
    seen.some(([key, namespace]) => key === '' && namespace === 'app'),
    'clear builds its prefix with the keyBuilder',
  )
  assert.equal(await storedKeys(cache), ['app:default-style', 'other/x'])
  await cache.clear({ namespace: 'other' })
  assert.equal(await storedKeys(cache), ['app:default-style'])
})

test('aiocache 1.0 style keyBuilder: plain namespace + key', async () => {
  const cache = new MemoryCache({ namespace: 'app', keyBuilder: (key, namespace) => namespace + key })
  await cache.set('x', 1)
  assert.equal(await storedKeys(cache), ['appx'])
  assert.is(await cache.get('x'), 1)
})

test('a keyBuilder that answers a non-string rejects with TypeError', async () => {
  const cache = new MemoryCache({ keyBuilder: () => 42 as never })
  await rejects(() => cache.set('k', 1), TypeError, 'set')
  await rejects(() => cache.get('k'), TypeError, 'get')
  assert.is(cache.backend.size, 0)
})

// ---------------------------------------------------------------------------
// add

test('add stores a missing key and resolves true', async () => {
  const cache = new MemoryCache({ namespace: 'n' })
  assert.is(await cache.add('k', 'v'), true)
  assert.is(await cache.get('k'), 'v')
  assert.is(await cache.raw('get', 'n:k'), 'v')
})

test('add on an existing key rejects with KeyExistsError and overwrites nothing', async () => {
  const cache = new MemoryCache()
  await cache.set('k', 'first')
  const error = await rejects(() => cache.add('k', 'second'), KeyExistsError, 'add')
  assert.is(error.name, 'KeyExistsError')
  assert.ok(error instanceof Error)
  assert.is(error.key, 'k')
  assert.match(error.message, 'k')
  assert.is(await cache.get('k'), 'first')
  // A stored null is a value: add still refuses.
  await cache.set('nul', null)
  await rejects(() => cache.add('nul', 1), KeyExistsError, 'add over null')
  assert.is(await cache.get('nul'), null)
})

test('add honours ttl (default and per call) and may store again once the key expired', async () => {
  const { cache, clock } = clocked({ ttl: 10 })
  await cache.add('default', 1)
  await cache.add('short', 1, { ttl: 1 })
  clock.advance(1.5)
  assert.is(await cache.exists('short'), false)
  assert.is(await cache.exists('default'), true)
  assert.is(await cache.add('short', 2), true)
  assert.is(await cache.get('short'), 2)
  clock.advance(9)
  assert.is(await cache.exists('default'), false)
})

// ---------------------------------------------------------------------------
// get

test('get answers the stored value, undefined on a miss, the default on a miss only', async () => {
  const cache = new MemoryCache()
  const value = { a: 1 }
  await cache.set('k', value)
  assert.is(await cache.get('k'), value)
  assert.is(await cache.get('missing'), undefined)
  assert.is(await cache.get('missing', { default: 'dflt' }), 'dflt')
  assert.is(await cache.get('k', { default: 'dflt' }), value)
})

test('get: falsy stored values (0, "", false, null) are values, not misses', async () => {
  const cache = new MemoryCache()
  for (const [key, value] of [
    ['zero', 0],
    ['empty', ''],
    ['no', false],
    ['nul', null],
  ] as const) {
    await cache.set(key, value)
    assert.is(await cache.get(key, { default: 'dflt' }), value, key)
  }
})

test('get reads the namespace given per call, and applies loads', async () => {
  const cache = new MemoryCache({ namespace: 'a' })
  await cache.raw('set', 'b:k', 'in b')
  await cache.raw('set', 'a:k', 'in a')
  assert.is(await cache.get('k'), 'in a')
  assert.is(await cache.get('k', { namespace: 'b' }), 'in b')
  assert.is(await cache.get('k', { loads: (stored) => `loaded ${String(stored)}` }), 'loaded in a')
})

// ---------------------------------------------------------------------------
// multiGet

test('multiGet answers values in key order with undefined for misses', async () => {
  const cache = new MemoryCache({ namespace: 'ns' })
  await cache.set('a', 1)
  await cache.set('c', 3)
  await cache.set('z', 0)
  assert.equal(await cache.multiGet(['c', 'b', 'a', 'z', 'c']), [3, undefined, 1, 0, 3])
  assert.equal(await cache.multiGet([]), [])
})

test('multiGet takes any iterable of keys: Set, generator, Map keys', async () => {
  const cache = new MemoryCache()
  await cache.multiSet([
    ['a', 1],
    ['b', 2],
  ])
  assert.equal(await cache.multiGet(new Set(['b', 'a', 'x'])), [2, 1, undefined])
  function* keys(): Generator<string> {
    yield 'a'
    yield 'x'
    yield 'b'
  }
  assert.equal(await cache.multiGet(keys()), [1, undefined, 2])
  assert.equal(
    await cache.multiGet(
      new Map([
        ['b', 0],
        ['a', 0],
      ]).keys(),
    ),
    [2, 1],
  )
})

test('multiGet with a namespace and loads', async () => {
  const cache = new MemoryCache()
  await cache.multiSet(
    [
      ['a', 1],
      ['b', 2],
    ],
    { namespace: 'x' },
  )
  assert.equal(await cache.multiGet(['a', 'b']), [undefined, undefined])
  assert.equal(await cache.multiGet(['a', 'b'], { namespace: 'x' }), [1, 2])
  assert.equal(
    await cache.multiGet(['a', 'nope'], { namespace: 'x', loads: (v) => (v === undefined ? 'miss' : Number(v) * 10) }),
    [10, undefined],
  )
})

test('multiGet rejects with TypeError for keys that are not an iterable of strings', async () => {
  const cache = new MemoryCache()
  await rejects(() => cache.multiGet('ab' as never), TypeError, 'string')
  await rejects(() => cache.multiGet(null as never), TypeError, 'null')
  await rejects(() => cache.multiGet(42 as never), TypeError, 'number')
  await rejects(() => cache.multiGet(['a', 1] as never), TypeError, 'non-string key')
})

// ---------------------------------------------------------------------------
// set and ttl

test('set stores and overwrites, resolving true', async () => {
  const cache = new MemoryCache()
  assert.is(await cache.set('k', 1), true)
  assert.is(await cache.set('k', 2), true)
  assert.is(await cache.get('k'), 2)
  assert.is(cache.backend.size, 1)
})

test('set: no ttl anywhere means the key never expires', async () => {
  const { cache, clock } = clocked()
  await cache.set('k', 'v')
  clock.advance(1e7)
  assert.is(await cache.get('k'), 'v')
})

test('set: the cache ttl is the default, a per-call ttl overrides it', async () => {
  const { cache, clock } = clocked({ ttl: 10 })
  await cache.set('default', 1)
  await cache.set('shorter', 1, { ttl: 2 })
  await cache.set('longer', 1, { ttl: '1m' })
  clock.advance(2)
  assert.is(await cache.get('shorter'), undefined, 'expired exactly at its ttl')
  assert.is(await cache.get('default'), 1)
  clock.advance(7.9)
  assert.is(await cache.get('default'), 1, 'alive just before 10s')
  clock.advance(0.2)
  assert.is(await cache.get('default'), undefined, 'gone after 10s')
  assert.is(await cache.get('longer'), 1)
  clock.advance(50)
  assert.is(await cache.get('longer'), undefined)
})

test('set: ttl 0 or null never expires, even with a cache default ttl', async () => {
  const { cache, clock } = clocked({ ttl: 1 })
  await cache.set('zero', 1, { ttl: 0 })
  await cache.set('null', 1, { ttl: null })
  await cache.set('default', 1)
  clock.advance(1e6)
  assert.equal(await cache.multiGet(['zero', 'null', 'default']), [1, 1, undefined])
})

test('set: fractional and unit ttls are seconds', async () => {
  const { cache, clock } = clocked()
  await cache.set('quarter', 1, { ttl: 0.25 })
  await cache.set('ms', 1, { ttl: '500ms' })
  clock.advance(0.3)
  assert.equal(await cache.multiGet(['quarter', 'ms']), [undefined, 1])
  clock.advance(0.3)
  assert.is(await cache.get('ms'), undefined)
})

test('set without a ttl drops the expiry an earlier set gave the key', async () => {
  const { cache, clock } = clocked()
  await cache.set('k', 1, { ttl: 1 })
  await cache.set('k', 2)
  clock.advance(5)
  assert.is(await cache.get('k'), 2)
})

test('set with casToken writes only while the stored value is still the token', async () => {
  const cache = new MemoryCache()
  const seen = { v: 1 }
  await cache.set('k', seen)
  assert.is(await cache.set('k', 'next', { casToken: seen }), true)
  assert.is(await cache.get('k'), 'next')
  assert.is(await cache.set('k', 'lost', { casToken: seen }), false)
  assert.is(await cache.get('k'), 'next')
})

test('set applies a per-call dumps', async () => {
  const cache = new MemoryCache()
  await cache.set('k', { a: 1 }, { dumps: (v) => JSON.stringify(v) })
  assert.is(await cache.raw('get', 'k'), '{"a":1}')
})

// ---------------------------------------------------------------------------
// multiSet

test('multiSet stores an array of pairs, a Map, Object.entries and a generator; resolves true', async () => {
  const cache = new MemoryCache({ namespace: 'm' })
  assert.is(
    await cache.multiSet([
      ['a', 1],
      ['b', 2],
    ]),
    true,
  )
  assert.is(
    await cache.multiSet(
      new Map<string, unknown>([
        ['c', 3],
        ['d', null],
      ]),
    ),
    true,
  )
  assert.is(await cache.multiSet(Object.entries({ e: 'five', f: 0 })), true)
  function* pairs(): Generator<[string, unknown]> {
    yield ['g', [7]]
  }
  assert.is(await cache.multiSet(pairs()), true)
  assert.equal(await cache.multiGet(['a', 'b', 'c', 'd', 'e', 'f', 'g']), [1, 2, 3, null, 'five', 0, [7]])
  assert.equal(await storedKeys(cache), ['m:a', 'm:b', 'm:c', 'm:d', 'm:e', 'm:f', 'm:g'])
})

test('multiSet: the ttl (default or per call) applies to every pair', async () => {
  const { cache, clock } = clocked({ ttl: 5 })
  await cache.multiSet([
    ['d1', 1],
    ['d2', 2],
  ])
  await cache.multiSet(
    [
      ['p1', 1],
      ['p2', 2],
    ],
    { ttl: 1 },
  )
  await cache.multiSet([['n1', 1]], { ttl: 0 })
  clock.advance(1)
  assert.equal(await cache.multiGet(['d1', 'd2', 'p1', 'p2', 'n1']), [1, 2, undefined, undefined, 1])
  clock.advance(4)
  assert.equal(await cache.multiGet(['d1', 'd2', 'n1']), [undefined, undefined, 1])
})

test('multiSet writes nothing when one pair is bad', async () => {
  const cache = new MemoryCache()
  await rejects(
    () =>
      cache.multiSet([
        ['a', 1],
        ['b', undefined],
      ]),
    TypeError,
    'undefined value',
  )
  await rejects(
    () =>
      cache.multiSet([
        ['a', 1],
        [2, 2],
      ] as never),
    TypeError,
    'non-string key',
  )
  await rejects(() => cache.multiSet([['a', 1], ['b']] as never), TypeError, 'short pair')
  await rejects(() => cache.multiSet([['a', 1], 'xy'] as never), TypeError, 'string pair')
  await rejects(() => cache.multiSet(42 as never), TypeError, 'not iterable')
  assert.is(cache.backend.size, 0)
  assert.is(await cache.exists('a'), false)
})

// ---------------------------------------------------------------------------
// delete, exists

test('delete resolves 1 when it removed the key, 0 when there was none', async () => {
  const cache = new MemoryCache({ namespace: 'd' })
  await cache.set('k', null)
  await cache.set('other', 1)
  assert.is(await cache.delete('k'), 1)
  assert.is(await cache.exists('k'), false)
  assert.is(await cache.delete('k'), 0)
  assert.is(await cache.delete('never'), 0)
  assert.is(await cache.get('other'), 1)
})

test('delete of an expired key resolves 0', async () => {
  const { cache, clock } = clocked()
  await cache.set('k', 1, { ttl: 1 })
  clock.advance(2)
  assert.is(await cache.delete('k'), 0)
})

test('exists: true for a stored value (null and 0 included), false for a missing or expired key', async () => {
  const { cache, clock } = clocked({ namespace: 'e' })
  await cache.set('nul', null)
  await cache.set('zero', 0)
  await cache.set('brief', 'x', { ttl: 1 })
  assert.is(await cache.exists('nul'), true)
  assert.is(await cache.exists('zero'), true)
  assert.is(await cache.exists('brief'), true)
  assert.is(await cache.exists('missing'), false)
  clock.advance(1)
  assert.is(await cache.exists('brief'), false)
})

// ---------------------------------------------------------------------------
// increment

test('increment: default delta 1, a missing key starts at 0, answers the new value', async () => {
  const cache = new MemoryCache({ namespace: 'c' })
  assert.is(await cache.increment('hits'), 1)
  assert.is(await cache.increment('hits'), 2)
  assert.is(await cache.increment('hits', 10), 12)
  assert.is(await cache.increment('hits', -20), -8)
  assert.is(await cache.get('hits'), -8)
  assert.is(await cache.increment('fresh', 5), 5)
  assert.is(await cache.increment('fresh', 0), 5)
  await cache.set('n', 41)
  assert.is(await cache.increment('n'), 42)
  assert.is(await cache.get('n'), 42)
})

test('increment on a stored value that is not an integer rejects with TypeError and leaves it', async () => {
  const cache = new MemoryCache()
  const values: Array<[string, unknown]> = [
    ['text', 'abc'],
    ['float', 1.5],
    ['obj', { n: 1 }],
    ['nul', null],
    ['bool', true],
  ]
  await cache.multiSet(values)
  for (const [key, value] of values) {
    await rejects(() => cache.increment(key), TypeError, key)
    assert.equal(await cache.get(key), value, key)
  }
})

test('increment with a non-integer delta rejects with TypeError and writes nothing', async () => {
  const cache = new MemoryCache()
  await cache.set('n', 1)
  for (const delta of [1.5, Number.NaN, Infinity, '1', 2 ** 60]) {
    await rejects(() => cache.increment('n', delta as never), TypeError, `delta ${String(delta)}`)
    await rejects(
      () => cache.increment('missing', delta as never),
      TypeError,
      `delta ${String(delta)} on a missing key`,
    )
  }
  assert.is(await cache.get('n'), 1)
  assert.is(await cache.exists('missing'), false)
})

// ---------------------------------------------------------------------------
// expire

test('expire gives an existing key a ttl and resolves true; false for a missing key', async () => {
  const { cache, clock } = clocked({ namespace: 'x' })
  await cache.set('k', 'v')
  assert.is(await cache.expire('k', 2), true)
  assert.is(await cache.expire('missing', 2), false)
  assert.is(await cache.exists('missing'), false, 'expire does not create the key')
  clock.advance(1.9)
  assert.is(await cache.get('k'), 'v')
  clock.advance(0.2)
  assert.is(await cache.get('k'), undefined)
  assert.is(await cache.expire('k', 2), false, 'an expired key is missing')
})

test('expire with ttl 0 or null removes the expiry', async () => {
  const { cache, clock } = clocked({ ttl: 1 })
  await cache.set('zero', 1)
  await cache.set('null', 1)
  assert.is(await cache.expire('zero', 0), true)
  assert.is(await cache.expire('null', null), true)
  clock.advance(100)
  assert.equal(await cache.multiGet(['zero', 'null']), [1, 1])
})

test('expire accepts unit strings and can shorten or lengthen a ttl', async () => {
  const { cache, clock } = clocked()
  await cache.set('a', 1, { ttl: 100 })
  await cache.set('b', 1, { ttl: 1 })
  await cache.expire('a', '500ms')
  await cache.expire('b', '1m')
  clock.advance(2)
  assert.equal(await cache.multiGet(['a', 'b']), [undefined, 1])
})

// ---------------------------------------------------------------------------
// clear

test('clear removes only the cache namespace: "user" never touches "users:…"', async () => {
  const backend = new MemoryBackend()
  const user = new Cache({ backend, namespace: 'user' })
  const users = new Cache({ backend, namespace: 'users' })
  const root = new Cache({ backend })
  await user.set('1', 'u1')
  await users.set('1', 'us1')
  await root.set('user', 'bare key named user')
  await root.set('userx', 'bare key starting with user')
  assert.is(await user.clear(), true)
  assert.is(await user.get('1'), undefined)
  assert.is(await users.get('1'), 'us1')
  assert.equal(await root.multiGet(['user', 'userx', 'users:1']), [
    'bare key named user',
    'bare key starting with user',
    'us1',
  ])
  assert.is(backend.size, 3)
})

test('clear on a cache whose namespace is "" empties the whole store', async () => {
  const backend = new MemoryBackend()
  const root = new Cache({ backend })
  await new Cache({ backend, namespace: 'a' }).set('k', 1)
  await new Cache({ backend, namespace: 'b' }).set('k', 1)
  await root.set('plain', 1)
  assert.is(await root.clear(), true)
  assert.is(backend.size, 0)
})

test('clear({ namespace }) removes exactly that namespace, whatever the cache namespace', async () => {
  const backend = new MemoryBackend()
  const root = new Cache({ backend })
  const a = new Cache({ backend, namespace: 'a' })
  await root.multiSet([
    ['a:1', 1],
    ['ab:1', 2],
    ['b:1', 3],
    ['plain', 4],
  ])
  assert.is(await root.clear({ namespace: 'a' }), true)
  assert.equal(await storedKeys(root), ['ab:1', 'b:1', 'plain'])
  assert.is(await a.clear({ namespace: 'b' }), true)
  assert.equal(await storedKeys(root), ['ab:1', 'plain'])
  await rejects(() => root.clear({ namespace: 5 as never }), TypeError, 'namespace 5')
  assert.equal(await storedKeys(root), ['ab:1', 'plain'])
})

// ---------------------------------------------------------------------------
// raw

test('raw runs a Map method on the memory store, with built keys', async () => {
  const cache = new MemoryCache({ namespace: 'r' })
  await cache.set('k', 'v')
  assert.is(await cache.raw('get', 'r:k'), 'v')
  assert.is(await cache.raw('has', 'r:k'), true)
  assert.is(await cache.raw('has', 'k'), false)
  await cache.raw('set', 'r:other', 'o')
  assert.is(await cache.get('other'), 'o')
  assert.equal([...((await cache.raw('keys')) as Iterable<string>)], ['r:k', 'r:other'])
  assert.is(await cache.raw('delete', 'r:k'), true)
  assert.is(await cache.exists('k'), false)
})

test('raw("size") answers the number of entries, as the memory backend\'s own error message promises', async () => {
  // MemoryBackend.raw's error message lists "size" among the commands it runs.
  const cache = new MemoryCache()
  await cache.multiSet([
    ['a', 1],
    ['b', 2],
  ])
  assert.is(await cache.raw('size'), 2)
})

test('raw with a name that is not a Map method rejects with TypeError', async () => {
  const cache = new MemoryCache()
  for (const command of ['nope', 'constructor', 'flushall']) {
    const error = await rejects(() => cache.raw(command), TypeError, command)
    assert.match(error.message, 'Map method')
  }
  await rejects(() => cache.raw(42 as never), TypeError, 'number')
})

// ---------------------------------------------------------------------------
// close, asyncDispose

test('close resolves, and the cache works again afterwards, expiry included', async () => {
  const { cache, clock } = clocked()
  await cache.set('k', 1, { ttl: 10 })
  assert.is(await cache.close(), undefined)
  assert.is(await cache.get('k'), 1)
  await cache.set('k2', 2, { ttl: 1 })
  assert.is(await cache.increment('n'), 1)
  clock.advance(1)
  assert.equal(await cache.multiGet(['k', 'k2', 'n']), [1, undefined, 1])
  await cache.close()
  await cache.close()
  assert.is(await cache.get('n'), 1)
})

test('close reaches the backend', async () => {
  const backend = new SpyBackend()
  const cache = new Cache({ backend })
  await cache.close()
  assert.equal(backend.calls, [['close']])
})

test('Symbol.asyncDispose closes the cache, so `await using` works', async () => {
  const backend = new SpyBackend()
  {
    await using cache = new Cache({ backend })
    await cache.set('k', 1)
    assert.equal(
      backend.calls.map(([method]) => method),
      ['set'],
    )
  }
  assert.equal(
    backend.calls.map(([method]) => method),
    ['set', 'close'],
  )

  let closes = 0
  class Counting extends MemoryCache {
    override close(): Promise<void> {
      closes++
      return super.close()
    }
  }
  const counting = new Counting()
  assert.is(await counting[Symbol.asyncDispose](), undefined)
  assert.is(closes, 1)
})

// ---------------------------------------------------------------------------
// Errors are rejections, never synchronous throws

test('storing undefined is a TypeError and nothing is stored (set, add, multiSet)', async () => {
  const backend = new SpyBackend()
  const cache = new Cache({ backend })
  await rejects(() => cache.set('k', undefined), TypeError, 'set')
  await rejects(() => cache.add('k', undefined), TypeError, 'add')
  await rejects(() => cache.multiSet([['k', undefined]]), TypeError, 'multiSet')
  assert.equal(backend.calls, [])
  assert.is(await cache.exists('k'), false)
})

test('a non-string key rejects with TypeError from every key command, before the backend', async () => {
  const backend = new SpyBackend()
  const cache = new Cache({ backend })
  for (const key of [1, null, undefined, { toString: () => 'k' }, Symbol('k')]) {
    const k = key as never
    const label = String(typeof key)
    await rejects(() => cache.add(k, 1), TypeError, `add ${label}`)
    await rejects(() => cache.get(k), TypeError, `get ${label}`)
    await rejects(() => cache.multiGet([k]), TypeError, `multiGet ${label}`)
    await rejects(() => cache.set(k, 1), TypeError, `set ${label}`)
    await rejects(() => cache.multiSet([[k, 1]]), TypeError, `multiSet ${label}`)
    await rejects(() => cache.delete(k), TypeError, `delete ${label}`)
    await rejects(() => cache.exists(k), TypeError, `exists ${label}`)
    await rejects(() => cache.increment(k), TypeError, `increment ${label}`)
    await rejects(() => cache.expire(k, 1), TypeError, `expire ${label}`)
  }
  assert.equal(backend.calls, [])
})

test('a negative, NaN or unparsable ttl is a RangeError raised before anything is written', async () => {
  const backend = new SpyBackend()
  const cache = new Cache({ backend })
  for (const ttl of [-1, -0.001, Number.NaN, Infinity, 'soon', '10', '-5s', '']) {
    const t = ttl as never
    const label = JSON.stringify(ttl) ?? String(ttl)
    const error = await rejects(() => cache.set('k', 1, { ttl: t }), RangeError, `set ttl ${label}`)
    assert.match(error.message, 'ttl')
    await rejects(() => cache.add('k', 1, { ttl: t }), RangeError, `add ttl ${label}`)
    await rejects(() => cache.multiSet([['k', 1]], { ttl: t }), RangeError, `multiSet ttl ${label}`)
  }
  assert.equal(backend.calls, [])
  assert.is(backend.store.size, 0)
})

test('expire with a bad ttl is a RangeError and leaves the key and its expiry alone', async () => {
  const { cache, clock } = clocked()
  await cache.set('k', 1, { ttl: 5 })
  for (const ttl of [-1, Number.NaN, 'later']) {
    await rejects(() => cache.expire('k', ttl as never), RangeError, String(ttl))
  }
  await rejects(() => cache.expire('k', undefined as never), RangeError, 'undefined ttl')
  clock.advance(4)
  assert.is(await cache.get('k'), 1)
  clock.advance(1)
  assert.is(await cache.get('k'), undefined)
})

test('an unknown per-command option is a TypeError rejection naming it', async () => {
  const backend = new SpyBackend()
  const cache = new Cache({ backend })
  const bad = { tll: 5 } as never
  const calls: Array<[string, () => Promise<unknown>]> = [
    ['add', () => cache.add('k', 1, bad)],
    ['get', () => cache.get('k', bad)],
    ['multiGet', () => cache.multiGet(['k'], bad)],
    ['set', () => cache.set('k', 1, bad)],
    ['multiSet', () => cache.multiSet([['k', 1]], bad)],
    ['delete', () => cache.delete('k', bad)],
    ['exists', () => cache.exists('k', bad)],
    ['increment', () => cache.increment('k', 1, bad)],
    ['expire', () => cache.expire('k', 1, bad)],
    ['clear', () => cache.clear(bad)],
  ]
  for (const [command, call] of calls) {
    const error = await rejects(call, TypeError, command)
    assert.match(error.message, 'tll', command)
  }
  // Options that belong to another command are unknown too.
  await rejects(() => cache.get('k', { ttl: 5 } as never), TypeError, 'get with ttl')
  await rejects(() => cache.add('k', 1, { casToken: 1 } as never), TypeError, 'add with casToken')
  await rejects(() => cache.delete('k', { default: 1 } as never), TypeError, 'delete with default')
  // Options must be an object.
  await rejects(() => cache.get('k', 5 as never), TypeError, 'options 5')
  await rejects(() => cache.set('k', 1, null as never), TypeError, 'options null')
  assert.equal(backend.calls, [])
})

test('a bad per-call timeout is a RangeError rejection; good ones are accepted', async () => {
  const backend = new SpyBackend()
  const cache = new Cache({ backend })
  for (const timeout of [-1, Number.NaN, 'soon', '5 secs', Infinity, true]) {
    const error = await rejects(() => cache.get('k', { timeout: timeout as never }), RangeError, String(timeout))
    assert.match(error.message, 'timeout')
    await rejects(() => cache.set('k', 1, { timeout: timeout as never }), RangeError, `set ${String(timeout)}`)
  }
  assert.equal(backend.calls, [])
  for (const timeout of [0, null, 0.5, '250ms', '1m'] as const) {
    assert.is(await cache.set('k', timeout, { timeout }), true)
  }
})

test('an unencodable value rejects with SerializationError (cause kept); nothing is written', async () => {
  const backend = new SpyBackend()
  const cache = new Cache({ backend }) // JsonSerializer
  const cycle: Record<string, unknown> = {}
  cycle.self = cycle
  const error = await rejects(() => cache.set('k', cycle), SerializationError, 'cycle')
  assert.is(error.name, 'SerializationError')
  assert.instance(error.cause, TypeError)
  await rejects(() => cache.set('k', 10n), SerializationError, 'bigint')
  await rejects(() => cache.add('k', () => 1), SerializationError, 'function')
  await rejects(
    () =>
      cache.multiSet([
        ['a', 1],
        ['b', cycle],
      ]),
    SerializationError,
    'multiSet',
  )
  await rejects(() => cache.set('k', 1, { dumps: () => undefined }), SerializationError, 'dumps answering undefined')
  assert.equal(backend.calls, [])
})

test('a stored value the serializer cannot decode rejects get and multiGet with SerializationError', async () => {
  const cache = new MemoryCache({ serializer: new JsonSerializer() })
  await cache.raw('set', 'broken', '{not json')
  const error = await rejects(() => cache.get('broken'), SerializationError, 'get')
  assert.instance(error.cause, SyntaxError)
  await rejects(() => cache.multiGet(['broken']), SerializationError, 'multiGet')
  const throwing = (): never => {
    throw new Error('bad loads')
  }
  assert.is(await cache.get('missing', { loads: throwing }), undefined, 'a miss does not call loads')
  await cache.set('k', 1)
  const viaLoads = await rejects(() => cache.get('k', { loads: throwing }), SerializationError, 'per-call loads')
  assert.is((viaLoads.cause as Error).message, 'bad loads')
})

// ---------------------------------------------------------------------------
// ONIOCACHE_DISABLE=1

/** Constructs with ONIOCACHE_DISABLE=1 set, restoring the environment afterwards. */
function disabled<T>(make: () => T): T {
  const before = process.env.ONIOCACHE_DISABLE
  process.env.ONIOCACHE_DISABLE = '1'
  try {
    return make()
  } finally {
    if (before === undefined) delete process.env.ONIOCACHE_DISABLE
    else process.env.ONIOCACHE_DISABLE = before
  }
}

test('ONIOCACHE_DISABLE=1: every command answers its neutral value and the backend is untouched', async () => {
  const backend = new SpyBackend()
  const live = new Cache({ backend })
  await live.multiSet([
    ['k', 'stored'],
    ['n', 10],
  ])
  backend.calls.length = 0

  let chainRuns = 0
  const cache = disabled(
    () =>
      new Cache({
        backend,
        plugins: [
          (_ctx: Context, next: () => Promise<void>) => {
            chainRuns++
            return next()
          },
        ],
      }),
  )
  assert.is(await cache.get('k'), undefined)
  assert.is(await cache.get('k', { default: 'dflt' }), undefined, 'the default is not used')
  assert.is(await cache.raw('get', 'k'), undefined)
  assert.is(await cache.set('k', 'new'), true)
  assert.is(await cache.add('k', 'new'), true)
  assert.is(
    await cache.multiSet([
      ['k', 'new'],
      ['x', 1],
    ]),
    true,
  )
  assert.is(await cache.clear(), true)
  assert.is(await cache.delete('k'), 0)
  assert.is(await cache.exists('k'), false)
  assert.is(await cache.expire('k', 1), false)
  assert.is(await cache.increment('n'), 1)
  assert.is(await cache.increment('n', 7), 7)
  assert.equal(await cache.multiGet(['k', 'n', 'zz']), [undefined, undefined, undefined])
  assert.equal(await cache.multiGet(new Set(['k', 'n'])), [undefined, undefined])

  assert.equal(backend.calls, [], 'the backend saw no call')
  assert.is(chainRuns, 0, 'the chain did not run')
  assert.equal(await live.multiGet(['k', 'n', 'x']), ['stored', 10, undefined])
})

test('ONIOCACHE_DISABLE is read when the cache is constructed', async () => {
  const before = new MemoryCache()
  const off = disabled(() => new MemoryCache())
  assert.is(process.env.ONIOCACHE_DISABLE, undefined, 'the helper restored the environment')
  const after = new MemoryCache()
  for (const cache of [before, after]) {
    await cache.set('k', 1)
    assert.is(await cache.get('k'), 1)
  }
  await off.set('k', 1)
  assert.is(off.backend.size, 0)
  assert.is(await off.get('k'), undefined)
  // Other values than "1" do not disable.
  const zero = (() => {
    process.env.ONIOCACHE_DISABLE = '0'
    try {
      return new MemoryCache()
    } finally {
      delete process.env.ONIOCACHE_DISABLE
    }
  })()
  await zero.set('k', 1)
  assert.is(await zero.get('k'), 1)
})

// ---------------------------------------------------------------------------
// NODE_DEBUG=oniocache

interface DebugRun {
  /** How many commands the script issued. */
  commands: number
  /** The debug lines, without the "ONIOCACHE <pid>: " prefix. */
  lines: string[]
  stderr: string
}
let debugRun: DebugRun | undefined
/** Runs spec/support/fixtures/debug-commands.ts once with NODE_DEBUG=oniocache. */
function runDebugScript(): DebugRun {
  if (debugRun !== undefined) return debugRun
  const script = fileURLToPath(new URL('./support/fixtures/debug-commands.ts', import.meta.url))
  const child = spawnSync(process.execPath, ['--import', 'tsx', script], {
    env: childEnv({ NODE_DEBUG: 'oniocache', ONIOCACHE_DISABLE: '' }),
    encoding: 'utf8',
    timeout: 20_000,
  })
  assert.is(child.status, 0, child.stderr)
  // debuglog colours the pid when colours are forced; strip ANSI escapes.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this pattern is about
  const stderr = child.stderr.replace(/\u001b\[[0-9;]*m/g, '')
  const prefix = /^ONIOCACHE \d+: /
  const lines = stderr
    .split('\n')
    .filter((line) => prefix.test(line))
    .map((line) => line.replace(prefix, ''))
  const commands = JSON.parse(child.stdout.trim().split('\n').at(-1)!) as number
  return (debugRun = { commands, lines, stderr })
}

test('NODE_DEBUG=oniocache logs one line per command: command, built key, hit/miss, time in ms', () => {
  const { commands, lines, stderr } = runDebugScript()
  assert.is(lines.length, commands, `one line per command:\n${stderr}`)
  for (const line of lines) assert.match(line, /\d+(\.\d+)?ms$/, line)

  const byCommand = (command: string): string[] => lines.filter((line) => line.startsWith(command + ' '))
  const find = (command: string, text: string): string =>
    byCommand(command).find((line) => line.includes(text)) ?? `no ${command} line with ${text}:\n${stderr}`
  // Fast path (no plugins, memory backend).
  assert.is(byCommand('set').filter((line) => line.includes('dbg:k')).length, 2, stderr)
  assert.match(find('get', 'dbg:k'), /^get dbg:k hit \d/)
  assert.match(find('get', 'dbg:missing'), /^get dbg:missing miss \d/)
  assert.match(find('multiGet', 'dbg:'), /^multiGet dbg:k,dbg:missing 1\/2 hits \d/)
  assert.match(find('delete', 'dbg:k'), /^delete dbg:k /)
  assert.match(find('add', 'dbg:k'), /^add dbg:k error KeyExistsError/)
  // Through the chain (with a plugin): the same lines.
  assert.match(find('get', 'chain:x'), /^get chain:x hit \d/)
  assert.match(find('get', 'chain:y'), /^get chain:y miss \d/)
  assert.match(find('set', 'chain:bad'), /^set chain:bad error TypeError/)
  assert.match(find('get', 'TimeoutError'), /^get .*TimeoutError/)
})

test('NODE_DEBUG=oniocache: a command that never reached the core step still names its built key', () => {
  // A get that timed out inside a slow middleware, and a get a middleware answered alone.
  const { lines, stderr } = runDebugScript()
  const timedOut = lines.find((line) => line.startsWith('get ') && line.includes('TimeoutError'))
  assert.ok(timedOut !== undefined, stderr)
  assert.match(timedOut, /^get slow:late /, 'the timed-out get names slow:late')
  const answered = lines.find((line) => line.startsWith('get ') && line.includes('ans:'))
  assert.ok(answered !== undefined, `the get answered by a middleware names ans:z:\n${stderr}`)
})

test('clear by namespace refuses when the keyBuilder gives the namespace no prefix: nothing is deleted', async () => {
  const cache = new MemoryCache({ keyBuilder: (key) => key, namespace: 'app' })
  await cache.set('a', 1)
  await cache.raw('set', 'other', 2)
  const error = await rejects(() => cache.clear(), TypeError, 'clear')
  assert.match(error.message, /no prefix/)
  await rejects(() => cache.clear({ namespace: 'x' }), TypeError, 'clear x')
  assert.equal([...((await cache.raw('keys')) as Iterable<string>)], ['a', 'other'])
  assert.is(await cache.clear({ namespace: '' }), true, "namespace '' still empties the store")
  assert.is(await cache.raw('size'), 0)
})

test.run()

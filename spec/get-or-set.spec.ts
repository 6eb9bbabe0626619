// getOrSet: single flight, the factory context, grace and fail-safe, soft and hard
// timeouts, eager refresh, the envelope and its bytes, defaults, close(), plugins and
// the error channel — on memory with a clock moved by hand, and on real Redis and
// Memcached servers.
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { COMMAND_OPTIONS, getOrSetArgs, withOptions } from '../lib/core/options.js'
import {
  BackendError,
  Cache,
  type Context,
  cached,
  type ErrorMessage,
  FactoryTimeoutError,
  HitMissRatioPlugin,
  JsonSerializer,
  MemoryBackend,
  MemoryCache,
  MsgPackSerializer,
  type Next,
  StringSerializer,
  TimingPlugin,
} from '../lib/index.js'
import { MemcachedCache } from '../lib/memcached.js'
import { RedisCache } from '../lib/redis.js'
import { AsyncBackend, ManualClock, rejection, sleep, watchUnhandled } from './support/fixtures/backends.js'
import { redisCommand, startMemcached, startRedis } from './support/servers.js'

const MAGIC = '\u0000oniocache:1\u0000'

/** A memory cache on a clock moved by hand (the backend's and getOrSet's), with the outcome of each getOrSet. */
function memory(options: Record<string, unknown> = {}) {
  const clock = new ManualClock()
  clock.t = Date.UTC(2026, 11, 3)
  const outcomes: unknown[] = []
  const recordOutcome = async (ctx: Context, next: Next) => {
    await next()
    if (ctx.command === 'getOrSet') outcomes.push(ctx.state.outcome)
  }
  const cache = new MemoryCache({ clock, plugins: [recordOutcome], ...options })
  return { cache, clock, outcomes }
}

/** The reports on oniocache:error while `body` runs. */
async function reportsDuring(body: () => Promise<void>): Promise<ErrorMessage[]> {
  const reports: ErrorMessage[] = []
  const listen = (message: unknown) => reports.push(message as ErrorMessage)
  subscribe('oniocache:error', listen)
  try {
    await body()
  } finally {
    unsubscribe('oniocache:error', listen)
  }
  return reports
}

test('a miss computes and stores; the next call is a fresh hit; the factory sees its context', async () => {
  const { cache, outcomes } = memory({ namespace: 'u' })
  const seen: unknown[] = []
  const value = await cache.getOrSet('42', async (f) => {
    seen.push([f.key, f.stale, f.signal.aborted])
    return { id: 42 }
  })
  assert.equal(value, { id: 42 })
  assert.equal(seen, [['42', undefined, false]])
  assert.equal(await cache.get('42'), { id: 42 }, 'stored under the built key, plain')
  assert.equal(cache.backend.raw('get', ['u:42']), { id: 42 })
  assert.equal(await cache.getOrSet('42', async () => assert.unreachable('a fresh hit calls no factory')), { id: 42 })
  assert.equal(outcomes, ['computed', 'fresh'])
  await cache.close()
})

test('single flight: 100 concurrent calls run the factory once and share its value or its error', async () => {
  const { cache } = memory()
  let calls = 0
  const slow = async () => {
    calls++
    await sleep(10)
    return `v${calls}`
  }
  const values = await Promise.all(Array.from({ length: 100 }, () => cache.getOrSet('k', slow)))
  assert.is(calls, 1)
  assert.ok(values.every((v) => v === 'v1'))
  const boom = new Error('source down')
  let failures = 0
  const failing = async () => {
    failures++
    await sleep(5)
    throw boom
  }
  const errors = await Promise.all(Array.from({ length: 20 }, () => rejection(cache.getOrSet('e', failing))))
  assert.is(failures, 1)
  assert.ok(
    errors.every((e) => e === boom),
    "without a stale value the factory's own error is the rejection",
  )
  // The flight is over: the next call runs the factory again.
  await rejection(cache.getOrSet('e', failing))
  assert.is(failures, 2)
  await cache.close()
})

test('on a store that does I/O, concurrent calls on a key share one read; other keys and timeouts do not', async () => {
  const backend = new AsyncBackend({ delayMs: 5 })
  const cache = new Cache({ backend })
  await cache.set('hot', 'v')
  backend.calls.length = 0
  const fn = async () => 'computed'
  const answers = await Promise.all([
    ...Array.from({ length: 50 }, () => cache.getOrSet('hot', fn)),
    cache.getOrSet('other', fn),
    cache.getOrSet('hot', fn, { timeout: 2 }),
  ])
  assert.ok(answers.slice(0, 50).every((a) => a === 'v'))
  assert.is(answers[50], 'computed')
  const reads = backend.calls.filter(([op]) => op === 'get').map(([, key]) => key)
  assert.equal(reads.sort(), ['hot', 'hot', 'other'], 'one read per key and timeout, not one per call')
  // Once answered, the next call reads again: nothing is kept past the read.
  await cache.set('hot', 'w')
  assert.is(await cache.getOrSet('hot', fn), 'w')
})

test('the options of getOrSet are copied by its own copier exactly as by withOptions, errors included', () => {
  const fn = async () => 1
  // Equal but for the options not given, which the copier may hold as undefined.
  const given = (args: object) => Object.fromEntries(Object.entries(args).filter(([, value]) => value !== undefined))
  const both = (options: unknown) => {
    const fast = getOrSetArgs('k', fn, options)
    const plain = withOptions('getOrSet', { key: 'k', fn }, options)
    return [fast instanceof TypeError ? fast.message : given(fast), plain instanceof TypeError ? plain.message : plain]
  }
  const valid: Record<(typeof COMMAND_OPTIONS.getOrSet)[number], unknown> = {
    ttl: 5,
    grace: '6s',
    graceBackoff: 7,
    softTimeout: 0.1,
    hardTimeout: '2s',
    eagerRefresh: 0.5,
    lock: 'distributed',
    lease: 3,
    namespace: 'ns',
    dumps: (value: unknown) => value,
    loads: (stored: unknown) => stored,
    timeout: 4,
    tags: ['t'],
  }
  const every: Record<string, unknown> = {}
  for (const name of COMMAND_OPTIONS.getOrSet) {
    const value = valid[name]
    every[name] = value
    const [fast, plain] = both({ [name]: value })
    assert.equal(fast, plain, name)
    assert.equal(fast, { key: 'k', fn, [name]: value }, `${name} is copied`)
  }
  assert.equal(...(both(every) as [unknown, unknown]), 'every option at once')
  assert.equal(...(both([]) as [unknown, unknown]), 'an empty array, as an object without options')
  for (const bad of [{ ttl: 1, tll: 2 }, { key: 'other' }, { fn }, null, 5, 'ttl', ['ttl']]) {
    const [fast, plain] = both(bad)
    assert.type(fast, 'string', `${JSON.stringify(bad)} is refused`)
    assert.is(fast, plain, `the same error for ${JSON.stringify(bad)}`)
  }
  // Values are checked as they are copied: a hit checks nothing more.
  for (const [bad, message] of [
    [{ ttl: -1 }, /getOrSet ttl must be a number of seconds/],
    [{ grace: 'soon' }, /getOrSet grace must be/],
    [{ hardTimeout: Number.NaN }, /getOrSet hardTimeout must be/],
    [{ eagerRefresh: 1 }, /getOrSet: eagerRefresh must be a fraction/],
    [{ lock: 'cluster' }, /getOrSet: lock must be 'process'/],
    [{ lease: 0 }, /getOrSet: lease must be a number of seconds above 0/],
    [{ timeout: '1 minute' }, /getOrSet timeout must be/],
  ] as const) {
    const fast = getOrSetArgs('k', fn, bad)
    assert.instance(fast, Error, JSON.stringify(bad))
    assert.match((fast as Error).message, message)
  }
})

test('undefined stores nothing, skip() answers without storing, setTtl overrides the ttl', async () => {
  const { cache, clock } = memory()
  assert.is(await cache.getOrSet('u', async () => undefined), undefined)
  assert.is(await cache.exists('u'), false)
  assert.is(
    await cache.getOrSet('s', async (f) => {
      f.skip()
      return 'once'
    }),
    'once',
  )
  assert.is(await cache.exists('s'), false)
  await cache.getOrSet(
    't',
    async (f) => {
      f.setTtl(5)
      return 'short'
    },
    { ttl: 100 },
  )
  clock.advance(4)
  assert.is(await cache.get('t'), 'short')
  clock.advance(2)
  assert.is(await cache.get('t'), undefined, 'setTtl(5) won over ttl 100')
  await cache.close()
})

test('grace: stale reads as a miss for get; the factory sees it; a failure answers it and backs off', async () => {
  const { cache, clock, outcomes } = memory({ serializer: new JsonSerializer() })
  await cache.getOrSet('p', async () => ({ price: 1 }), { ttl: 10, grace: 60 })
  clock.advance(11)
  assert.is(await cache.get('p'), undefined, 'past its ttl the entry is stale: get misses')
  assert.equal(await cache.multiGet(['p']), [undefined])
  let calls = 0
  const boom = new Error('db down')
  const failing = async (f: { stale: unknown }) => {
    calls++
    assert.equal(f.stale, { price: 1 })
    throw boom
  }
  const reports = await reportsDuring(async () => {
    assert.equal(await cache.getOrSet('p', failing, { ttl: 10, grace: 60 }), { price: 1 })
  })
  assert.equal(
    reports.map((r) => [r.command, r.error]),
    [['getOrSet', boom]],
  )
  // graceBackoff (default 10 s): no new call before it has passed.
  clock.advance(9)
  assert.equal(await cache.getOrSet('p', failing, { ttl: 10, grace: 60 }), { price: 1 })
  assert.is(calls, 1)
  clock.advance(2)
  assert.equal(await cache.getOrSet('p', async () => ({ price: 2 }), { ttl: 10, grace: 60 }), { price: 2 })
  assert.equal(await cache.get('p'), { price: 2 })
  assert.equal(outcomes, ['computed', 'stale', 'stale', 'computed'])
  // Past ttl + grace the entry is gone: a failure is the caller's again.
  clock.advance(71)
  const gone = async (f: { stale: unknown }) => {
    assert.is(f.stale, undefined)
    throw boom
  }
  assert.is(await rejection(cache.getOrSet('p', gone, { ttl: 10, grace: 60 })), boom)
  await cache.close()
})

test('hardTimeout: FactoryTimeoutError with no stale value, the stale value with one; the signal aborts', async () => {
  const { cache, clock } = memory()
  let signal: AbortSignal | undefined
  const hang = (f: { signal: AbortSignal }) => {
    signal = f.signal
    return new Promise<string>(() => {})
  }
  const error = await rejection(cache.getOrSet('h', hang, { hardTimeout: 0.02 }))
  assert.instance(error, FactoryTimeoutError)
  assert.is((error as FactoryTimeoutError).key, 'h')
  assert.ok(signal?.aborted && signal.reason === error, 'the factory was told to stop')
  await cache.getOrSet('h', async () => 'old', { ttl: 1, grace: 10 })
  clock.advance(2)
  const started = performance.now()
  assert.is(await cache.getOrSet('h', hang, { ttl: 1, grace: 10, hardTimeout: 0.02 }), 'old')
  assert.ok(performance.now() - started < 500)
  await cache.close()
})

test('softTimeout: with a stale value, answered at once; the factory goes on and its value is stored', async () => {
  const { cache, clock, outcomes } = memory()
  await cache.getOrSet('s', async () => 'old', { ttl: 1, grace: 10 })
  clock.advance(2)
  let finish: (value: string) => void = () => {}
  const started = performance.now()
  const value = await cache.getOrSet('s', () => new Promise<string>((resolve) => (finish = resolve)), {
    ttl: 1,
    grace: 10,
    softTimeout: 0.02,
  })
  assert.is(value, 'old')
  assert.ok(performance.now() - started < 500)
  finish('new')
  await sleep(5)
  assert.is(await cache.get('s'), 'new', 'the late value was stored')
  // Without a stale value, softTimeout does not apply: the caller waits.
  const fresh = await cache.getOrSet('n', async () => sleep(40).then(() => 'waited'), { softTimeout: 0.01 })
  assert.is(fresh, 'waited')
  assert.equal(outcomes, ['computed', 'stale', 'computed'])
  await cache.close()
})

test('eagerRefresh: a late hit answers the cached value and refreshes once in the background', async () => {
  const { cache, clock, outcomes } = memory()
  let version = 0
  const load = async () => {
    version++
    await sleep(5)
    return `v${version}`
  }
  const options = { ttl: 10, eagerRefresh: 0.5 }
  assert.is(await cache.getOrSet('e', load, options), 'v1')
  clock.advance(4)
  assert.is(await cache.getOrSet('e', load, options), 'v1')
  assert.is(version, 1, 'before 50 % of the ttl: no refresh')
  clock.advance(2)
  const answers = await Promise.all([1, 2, 3].map(() => cache.getOrSet('e', load, options)))
  assert.equal(answers, ['v1', 'v1', 'v1'], 'the hit answers at once')
  await sleep(20)
  assert.is(version, 2, 'one refresh for three late hits')
  assert.is(await cache.getOrSet('e', load, options), 'v2')
  assert.equal(outcomes, ['computed', 'fresh', 'fresh', 'fresh', 'fresh', 'fresh'])
  await cache.close()
})

test('a store that fails is never the caller’s failure: the value is answered, the failures reported', async () => {
  const backend = new AsyncBackend()
  const down = () => Promise.reject(new BackendError('async-test', 'down'))
  backend.get = down
  backend.set = down
  const cache = new Cache({ backend })
  const unhandled = watchUnhandled()
  const reports = await reportsDuring(async () => {
    assert.is(await cache.getOrSet('k', async () => 'computed'), 'computed')
  })
  unhandled.stop()
  unhandled.check()
  assert.equal(
    reports.map((r) => [r.command, (r.error as Error).name]),
    [
      ['getOrSet', 'BackendError'],
      ['getOrSet', 'BackendError'],
    ],
  )
  await cache.close()
})

test('timeout bounds the reads and writes of the store, not the factory: a hung store is a failing one', async () => {
  const backend = new AsyncBackend()
  const hang = () => new Promise<never>(() => {})
  const get = backend.get.bind(backend)
  const cache = new Cache({ backend, timeout: 0.03 })
  const slow = await cache.getOrSet('slow', () => sleep(80).then(() => 'worth the wait'))
  assert.is(slow, 'worth the wait', 'a factory slower than the timeout is not cut short')
  assert.is(await cache.get('slow'), 'worth the wait')
  assert.is(await get('slow'), '"worth the wait"', 'stored, as JSON')
  backend.get = hang
  backend.set = hang
  const reports = await reportsDuring(async () => {
    const started = performance.now()
    assert.is(await cache.getOrSet('k', async () => 'computed'), 'computed')
    assert.ok(performance.now() - started < 500)
  })
  assert.equal(
    reports.map((r) => (r.error as Error).message),
    [
      "[oniocache] getOrSet read timed out after 0.03s: raise the cache's or the call's timeout, or check the backend",
      "[oniocache] getOrSet write timed out after 0.03s: raise the cache's or the call's timeout, or check the backend",
    ],
  )
  await cache.close()
})

test('the envelope, byte for byte: JSON text, MessagePack bytes, an object in memory', async () => {
  const clock = new ManualClock()
  clock.t = 1_767_225_600_000
  const json = new MemoryCache({ clock, serializer: new JsonSerializer() })
  await json.getOrSet('a', async () => ({ n: 1 }), { ttl: 60, grace: 600 })
  assert.is(json.backend.raw('get', ['a']), `${MAGIC}{"e":1767225660000,"c":1767225600000,"g":1}\n{"n":1}`)
  const packed = new MemoryCache({ clock, serializer: new MsgPackSerializer() })
  await packed.getOrSet('b', async () => [1, 2], { ttl: 60, eagerRefresh: 0.5 })
  const bytes = packed.backend.raw('get', ['b']) as Uint8Array
  const header = Buffer.from(`${MAGIC}{"e":1767225660000,"c":1767225600000}\n`, 'utf8')
  assert.ok(Buffer.from(bytes.subarray(0, header.length)).equals(header))
  assert.equal(new MsgPackSerializer().loads(bytes.subarray(header.length)), [1, 2])
  assert.equal(await packed.get('b'), [1, 2])
  const objects = new MemoryCache({ clock })
  const value = { deep: true }
  await objects.getOrSet('c', async () => value, { ttl: 60, grace: 60 })
  assert.is(await objects.get('c'), value, 'the memory backend keeps the value itself, in an envelope object')
  // Without grace, eager refresh or tags, the write stays plain: aiocache reads it.
  await json.getOrSet('plain', async () => ({ n: 2 }), { ttl: 60 })
  assert.is(json.backend.raw('get', ['plain']), '{"n":2}')
  for (const cache of [json, packed, objects]) await cache.close()
})

test('a plain value that looks like an envelope is stored so that it reads back as written', async () => {
  const cache = new MemoryCache({ serializer: new StringSerializer() })
  const forged = `${MAGIC}{"e":1,"c":1}\nnot what was stored`
  await cache.set('f', forged)
  assert.is(await cache.get('f'), forged)
  await cache.multiSet([['g', forged]])
  assert.equal(await cache.multiGet(['f', 'g']), [forged, forged])
  assert.is(await cache.getOrSet('f', async () => assert.unreachable('it is a fresh hit')), forged)
  // A NUL first character that is no envelope is stored as it is.
  await cache.set('nul', '\u0000just text')
  assert.is(cache.backend.raw('get', ['nul']), '\u0000just text')
  assert.is(await cache.get('nul'), '\u0000just text')
  await cache.close()
})

test('defaults apply to every getOrSet, a call overrides them; bad options are clear errors', async () => {
  const { cache, clock } = memory({ serializer: new JsonSerializer(), defaults: { ttl: 10, grace: 60 } })
  await cache.getOrSet('d', async () => 1)
  assert.ok(String(cache.backend.raw('get', ['d'])).startsWith(MAGIC), 'grace from the defaults: an envelope')
  clock.advance(11)
  assert.is(await cache.getOrSet('d', async () => Promise.reject(new Error('x'))), 1, 'stale from the defaults')
  await cache.getOrSet('o', async () => 2, { grace: 0 })
  assert.is(cache.backend.raw('get', ['o']), '2', 'the call overrode grace')
  assert.throws(() => new MemoryCache({ defaults: { nope: 1 } as never }), /defaults: unknown option "nope"/)
  assert.throws(() => new MemoryCache({ defaults: { grace: -1 } }), RangeError)
  assert.throws(() => new MemoryCache({ defaults: { eagerRefresh: 1 } }), RangeError)
  const unknown = await rejection(cache.getOrSet('x', async () => 1, { nope: 1 } as never))
  assert.instance(unknown, TypeError)
  assert.match(String(unknown), /getOrSet: unknown option "nope"/)
  assert.instance(await rejection(cache.getOrSet('x', 'not a function' as never)), TypeError)
  assert.instance(await rejection(cache.getOrSet('x', async () => 1, { eagerRefresh: 1.5 })), RangeError)
  assert.instance(await rejection(cache.getOrSet('x', async () => 1, { hardTimeout: -1 })), RangeError)
  assert.instance(await rejection(cache.getOrSet(7 as never, async () => 1)), TypeError)
  await cache.close()
})

test('close() aborts the factories running in the background; what they finish later is not stored', async () => {
  const { cache, clock } = memory()
  await cache.getOrSet('c', async () => 'old', { ttl: 10, eagerRefresh: 0.5 })
  clock.advance(6)
  let signal: AbortSignal | undefined
  let finish: (value: string) => void = () => {}
  const refresh = (f: { signal: AbortSignal }) => {
    signal = f.signal
    return new Promise<string>((resolve) => (finish = resolve))
  }
  assert.is(await cache.getOrSet('c', refresh, { ttl: 10, eagerRefresh: 0.5 }), 'old')
  assert.ok(signal !== undefined && !signal.aborted, 'a refresh is running')
  await cache.close()
  assert.ok(signal.aborted, 'close() aborted it')
  finish('late')
  await sleep(5)
  assert.is(await cache.get('c'), 'old', 'the late value was not stored')
  await cache.close()
})

test('plugins see it: HitMissRatioPlugin counts fresh answers as hits, TimingPlugin times it', async () => {
  const clock = new ManualClock()
  const cache = new MemoryCache({ clock, plugins: [new HitMissRatioPlugin(), new TimingPlugin()] })
  await cache.getOrSet('k', async () => 1, { ttl: 1, grace: 10 })
  await cache.getOrSet('k', async () => 2)
  clock.advance(2)
  await cache.getOrSet('k', async () => Promise.reject(new Error('stale it is')), { ttl: 1, grace: 10 })
  assert.equal(cache.hitMissRatio, { hits: 1, total: 3, hitRatio: 1 / 3 })
  assert.is(cache.profiling?.getOrSet_total, 3)
  await cache.close()
})

test('cached is built on getOrSet: one call for concurrent misses, grace, the caller’s own errors', async () => {
  const { cache, clock, outcomes } = memory()
  let calls = 0
  const price = cached(
    async (item: string) => {
      calls++
      await sleep(10)
      if (item === 'broken') throw new Error('source down')
      return `${item}:${calls}`
    },
    { cache, ttl: 10, grace: 60 },
  )
  const answers = await Promise.all(Array.from({ length: 20 }, () => price('tea')))
  assert.is(calls, 1, 'twenty concurrent calls, one call of the function')
  assert.ok(answers.every((a) => a === 'tea:1'))
  assert.equal(outcomes, Array(20).fill('computed'), 'every caller went through getOrSet')
  // Grace passes through: past the ttl, a failing function answers the stale result.
  const flaky = cached(
    async () => {
      calls++
      if (calls > 2) throw new Error('source down')
      return 'first'
    },
    { cache, key: 'flaky', ttl: 10, grace: 60 },
  )
  assert.is(await flaky(), 'first')
  clock.advance(11)
  assert.is(await flaky(), 'first')
  // skipCache: answered, not stored.
  const skipping = cached(async (n: number) => n * 2, { cache, skipCache: (r) => r > 10 })
  assert.is(await skipping(6), 12)
  assert.is(await cache.exists(`${skipping.name}(6)`), false)
  // The function's own failure, and the hard timeout, are the caller's.
  assert.match(String(await rejection(price('broken'))), /source down/)
  const hanging = cached(() => new Promise<string>(() => {}), { cache, key: 'h', hardTimeout: 0.02 })
  assert.instance(await rejection(hanging()), FactoryTimeoutError)
  assert.throws(() => cached(async () => 1, { cache, grace: -1 }), RangeError)
  assert.throws(() => cached(async () => 1, { cache, eagerRefresh: 2 }), RangeError)
  await cache.close()
})

test('cached over a cache whose plugin throws: the function’s result, computed once', async () => {
  let calls = 0
  const cache = new MemoryCache({
    plugins: [
      async (ctx: Context, next: Next) => {
        await next()
        if (ctx.command === 'getOrSet') throw new Error('plugin broke')
      },
    ],
  })
  const double = cached(
    async (n: number) => {
      calls++
      return n * 2
    },
    { cache },
  )
  const reports = await reportsDuring(async () => {
    assert.is(await double(4), 8)
  })
  assert.is(calls, 1, 'the value computed inside getOrSet is answered, not computed again')
  assert.equal(
    reports.map((r) => (r.error as Error).message),
    ['plugin broke'],
  )
  await cache.close()
})

test('ONIOCACHE_DISABLE=1: the factory answers, nothing is read or stored', async () => {
  process.env.ONIOCACHE_DISABLE = '1'
  let cache: Cache
  try {
    cache = new Cache({ backend: new MemoryBackend() })
  } finally {
    delete process.env.ONIOCACHE_DISABLE
  }
  assert.is(await cache.getOrSet('k', async (f) => `computed ${f.key}`), 'computed k')
  assert.is(await cache.backend.exists('k'), false)
  assert.instance(await rejection(cache.getOrSet('k', 1 as never)), TypeError)
})

test('Redis and Memcached: computed, fresh, stale under failure; the envelope as the servers hold it', async () => {
  const [redis, memcached] = await Promise.all([startRedis(), startMemcached()])
  const clock = new ManualClock()
  clock.t = 1_767_225_600_000
  const caches = [
    new RedisCache({ port: redis.port, namespace: 'gos', clock }),
    new MemcachedCache({ servers: [memcached.server], namespace: 'gos', clock }),
  ]
  const unhandled = watchUnhandled()
  try {
    for (const cache of caches) {
      const options = { ttl: 10, grace: 600 }
      let calls = 0
      const load = async () => {
        calls++
        await sleep(5)
        return { n: calls }
      }
      const first = await Promise.all([1, 2, 3].map(() => cache.getOrSet('k', load, options)))
      assert.equal(first, [{ n: 1 }, { n: 1 }, { n: 1 }], cache.backend.name)
      assert.equal(await cache.getOrSet('k', load, options), { n: 1 })
      assert.is(calls, 1)
      clock.advance(11)
      assert.is(await cache.get('k'), undefined, `${cache.backend.name}: stale reads as a miss`)
      const stale = await cache.getOrSet('k', () => Promise.reject(new Error('down')), options)
      assert.equal(stale, { n: 1 }, `${cache.backend.name}: the stale value under failure`)
      clock.advance(11)
      assert.equal(await cache.getOrSet('k', load, options), { n: 2 })
      assert.equal(await cache.get('k'), { n: 2 })
    }
    const held = await redisCommand(redis.port, 'GET', 'gos:k')
    assert.is(held, `${MAGIC}{"e":1767225632000,"c":1767225622000,"g":1}\n{"n":2}`)
    const ttl = Number(await redisCommand(redis.port, 'TTL', 'gos:k'))
    assert.ok(ttl > 600 && ttl <= 610, `kept for ttl + grace: ${ttl}`)
  } finally {
    unhandled.stop()
    for (const cache of caches) await cache.close()
    await Promise.all([redis.stop(), memcached.stop()])
  }
  unhandled.check()
})

test('Redis stopped: every getOrSet is answered within its hard timeout; stored again after the restart', async () => {
  const redis = await startRedis()
  const cache = new RedisCache({ port: redis.port, namespace: 'down', timeout: 0.5 })
  const unhandled = watchUnhandled()
  const options = { ttl: 60, grace: 600, hardTimeout: 0.2 }
  try {
    let version = 0
    const load = async () => `v${++version}`
    assert.is(await cache.getOrSet('k', load, options), 'v1')
    await redis.kill('SIGKILL')
    const reports = await reportsDuring(async () => {
      const started = performance.now()
      const answers = await Promise.all(
        Array.from({ length: 50 }, (_, i) => cache.getOrSet(`k${i % 5}`, load, options)),
      )
      const took = performance.now() - started
      assert.ok(
        answers.every((a) => typeof a === 'string'),
        'every call answered',
      )
      assert.ok(took < 1500, `answered in ${took.toFixed(0)} ms, within the hard timeout and the store's timeout`)
    })
    assert.ok(reports.length > 0 && reports.every((r) => r.command === 'getOrSet'), 'the store failures are reported')
    await redis.restart()
    // Back without restarting the process: the next computed value is stored and read back.
    let stored: unknown
    for (let attempt = 0; attempt < 50 && stored === undefined; attempt++) {
      await cache.getOrSet('after', load, options)
      stored = await cache.get('after').catch(() => undefined)
      if (stored === undefined) await sleep(100)
    }
    assert.ok(typeof stored === 'string', 'a value computed after the restart was stored')
  } finally {
    unhandled.stop()
    await cache.close()
    await redis.stop()
  }
  unhandled.check()
})

test.run()

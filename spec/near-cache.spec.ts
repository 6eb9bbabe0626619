// NearCachePlugin in one process: what it answers from its copy, what drops it, the race guard and the stream's
// states. The stream here is a bus the test drives by hand (InvalidationBus is a public interface); the same
// plugin on real servers and processes is in near-cache-servers.spec.ts.
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import {
  BaseCache,
  Cache,
  type Context,
  type ErrorMessage,
  HitMissRatioPlugin,
  type InvalidationBus,
  type InvalidationListener,
  JsonSerializer,
  NearCachePlugin,
  type Next,
} from '../lib/index.js'
import { AsyncBackend, ManualClock, rejection, sleep } from './support/fixtures/backends.js'

/** A bus driven by the test: it records what is published and tells the plugin what the test says. */
class HandBus implements InvalidationBus {
  listener: InvalidationListener | undefined
  readonly published: unknown[] = []
  failWith: unknown
  stopped = 0
  async listen(listener: InvalidationListener) {
    this.listener = listener
    return async () => {
      this.stopped++
    }
  }
  publish(_from: InvalidationListener, change: unknown, failed: (error: unknown) => void): void {
    this.published.push(change)
    if (this.failWith !== undefined) failed(this.failWith)
  }
}

/** A cache over a backend that answers asynchronously, whose reads the test can hold. */
function setup(options: { maxSize?: number; ttl?: number; live?: boolean; plugins?: unknown[] } = {}) {
  const backend = new AsyncBackend()
  const bus = new HandBus()
  const clock = new ManualClock()
  const near = new NearCachePlugin({ maxSize: options.maxSize ?? 100, ttl: options.ttl ?? 60, bus, clock })
  const wall = new ManualClock()
  wall.t = 1_000_000
  const cache = new BaseCache({
    backend,
    serializer: new JsonSerializer(),
    plugins: [...((options.plugins ?? []) as never[]), near],
    clock: wall,
  })
  const gets = () => backend.calls.filter(([method]) => method === 'get' || method === 'multiGet').length
  return { backend, bus, clock, wall, near, cache, gets }
}

/** Starts the stream (the first command attaches the plugin) and makes it live. */
async function live(s: ReturnType<typeof setup>): Promise<void> {
  const first = s.cache.exists('warm-up') // waits until the stream says it is live
  s.bus.listener!.live()
  await first
}

const test = suite('NearCachePlugin')

test('a get hit is answered from the copy, without the backend', async () => {
  const s = setup()
  await live(s)
  await s.cache.set('a', { n: 1 })
  assert.equal(await s.cache.get('a'), { n: 1 })
  const before = s.gets()
  assert.equal(await s.cache.get('a'), { n: 1 })
  assert.equal(await s.cache.get('a'), { n: 1 })
  assert.is(s.gets(), before)
  assert.equal(s.near.stats, { hits: 2, misses: 1, invalidations: 0, size: 1 })
})

test('misses are not kept; default and loads pass through without filling', async () => {
  const s = setup()
  await live(s)
  assert.is(await s.cache.get('none', { default: 'd' }), 'd')
  assert.is(await s.cache.get('none'), undefined)
  assert.is(s.near.stats.size, 0)
  await s.cache.set('b', 2)
  assert.is(await s.cache.get('b', { loads: (raw) => `raw:${raw}` }), 'raw:2')
  assert.is(s.near.stats.size, 0)
  assert.is(await s.cache.get('b'), 2)
  assert.is(s.near.stats.size, 1)
  assert.is(await s.cache.get('b', { default: 'd' }), 2)
})

test('multiGet answers the keys held and asks only for the others, in order', async () => {
  const ratio = new HitMissRatioPlugin()
  const s = setup({ plugins: [ratio] })
  await live(s)
  await s.cache.multiSet([
    ['a', 1],
    ['b', 2],
    ['c', 3],
  ])
  await s.cache.get('b')
  s.backend.calls.length = 0
  assert.equal(await s.cache.multiGet(new Set(['a', 'b', 'c', 'z'])), [1, 2, 3, undefined])
  assert.equal(s.backend.calls, [['multiGet', ['a', 'c', 'z']]])
  // All of a, b, c are now held: none reaches the backend.
  s.backend.calls.length = 0
  assert.equal(await s.cache.multiGet(['c', 'a', 'b']), [3, 1, 2])
  assert.equal(s.backend.calls, [])
  // The hit/miss count outside the plugin sees every key.
  assert.equal(ratio.hitMissRatio.total, 1 + 4 + 3)
  assert.equal(ratio.hitMissRatio.hits, 1 + 3 + 3)
})

test('every write-like command drops what it touched, and tells the bus', async () => {
  const s = setup()
  await live(s)
  const held = async (key: string): Promise<boolean> => {
    const before = s.near.stats.hits
    await s.cache.get(key)
    return s.near.stats.hits > before
  }
  const fill = async (key: string, value: unknown = 1): Promise<void> => {
    await s.cache.set(key, value)
    await s.cache.get(key)
    assert.ok(await held(key), `${key} is held`)
  }
  await fill('k')
  await s.cache.set('k', 2)
  assert.not.ok(await held('k'))
  assert.is(await s.cache.get('k'), 2)
  await fill('d')
  await s.cache.delete('d')
  assert.not.ok(await held('d'))
  await fill('e')
  await s.cache.expire('e', 10)
  assert.not.ok(await held('e'))
  await fill('i', 5)
  assert.is(await s.cache.increment('i', 2), 7)
  assert.is(await s.cache.get('i'), 7)
  await fill('m')
  await s.cache.multiSet([['m', 9]])
  assert.is(await s.cache.get('m'), 9)
  await fill('r')
  await s.cache.raw('delete', 'r')
  assert.is(await s.cache.get('r'), undefined)
  await fill('c')
  await s.cache.clear()
  assert.is(await s.cache.get('c'), undefined)
  assert.equal(s.bus.published, [
    { keys: ['k'] },
    { keys: ['k'] },
    { keys: ['d'] },
    { keys: ['d'] },
    { keys: ['e'] },
    { keys: ['e'] },
    { keys: ['i'] },
    { keys: ['i'] },
    { keys: ['m'] },
    { keys: ['m'] },
    { keys: ['r'] },
    { keys: ['c'] },
    { prefix: '' },
  ])
})

test('a write that fails still drops its key (it may have been made)', async () => {
  const s = setup()
  await live(s)
  await s.cache.set('a', 1)
  await s.cache.get('a')
  s.backend.set = async () => {
    throw new Error('connection reset')
  }
  await rejection(s.cache.set('a', 2))
  assert.is(s.near.stats.size, 0)
  assert.equal(s.bus.published.at(-1), { keys: ['a'] })
})

test('another process’s change on the bus drops the copy; a lost stream drops everything', async () => {
  const s = setup()
  await live(s)
  await s.cache.multiSet([
    ['a', 1],
    ['b', 2],
  ])
  await s.cache.multiGet(['a', 'b'])
  assert.is(s.near.stats.size, 2)
  s.bus.listener!.invalidate(['ns-less', 'a'])
  assert.is(s.near.stats.size, 1)
  s.bus.listener!.invalidatePrefix('b')
  assert.is(s.near.stats.size, 0)
  await s.cache.multiGet(['a', 'b'])
  const errors: ErrorMessage[] = []
  const listener = (message: unknown): void => {
    errors.push(message as ErrorMessage)
  }
  subscribe('oniocache:error', listener)
  try {
    s.bus.listener!.lost(new Error('socket closed'))
  } finally {
    unsubscribe('oniocache:error', listener)
  }
  assert.is(s.near.stats.size, 0)
  assert.is(errors.length, 1)
  assert.is(errors[0]!.command, 'nearCache')
  assert.is((errors[0]!.error as Error).message, 'socket closed')
  // Until live again, reads go to the store and nothing is kept.
  assert.is(await s.cache.get('a'), 1)
  assert.is(await s.cache.get('a'), 1)
  assert.is(s.near.stats.size, 0)
  s.bus.listener!.live()
  await s.cache.get('a')
  assert.is(s.near.stats.size, 1)
  s.bus.listener!.invalidate(null)
  assert.is(s.near.stats.size, 0)
})

test('a read that crosses an invalidation of its key does not keep what it read', async () => {
  const s = setup()
  await live(s)
  await s.cache.set('a', 'old')
  s.backend.delayMs = 20
  const reading = s.cache.get('a')
  await sleep(5)
  // Changed elsewhere while the read is in flight.
  s.bus.listener!.invalidate(['a'])
  assert.is(await reading, 'old') // the caller gets what was read
  assert.is(s.near.stats.size, 0) // but it is not kept
  // Another key's invalidation does not stop a fill; nor does one that came before the read began.
  s.bus.listener!.invalidate(['a'])
  const again = s.cache.get('a')
  await sleep(5)
  s.bus.listener!.invalidate(['other'])
  await again
  assert.is(s.near.stats.size, 1)
})

test('the race guard holds with reads overlapping: each is judged from when it began', async () => {
  const s = setup()
  await live(s)
  await s.cache.multiSet([
    ['a', 1],
    ['b', 2],
  ])
  s.backend.delayMs = 30
  const first = s.cache.get('a') // begins before the invalidation of a
  await sleep(10)
  s.bus.listener!.invalidate(['a'])
  const second = s.cache.get('b') // begins after it, ends after the first
  await first
  await second
  assert.is(s.near.stats.size, 1)
  const before = s.near.stats.hits
  await s.cache.get('b')
  assert.is(s.near.stats.hits, before + 1)
  // multiGet and getOrSet are guarded the same way.
  const many = s.cache.multiGet(['a', 'b', 'c'])
  await sleep(10)
  s.bus.listener!.invalidate(['a'])
  await many
  const computed = s.cache.getOrSet('a', async () => 0)
  await sleep(10)
  s.bus.listener!.invalidate(['a'])
  assert.is(await computed, 1)
  assert.is(s.near.stats.size, 1)
})

test('a getOrSet issued after an invalidation never joins a read issued before it', async () => {
  const s = setup()
  await live(s)
  await s.cache.set('a', 'old')
  // Reads see the store when they are sent and answer 20 ms later, as a server's would.
  s.backend.get = (key: string) => {
    const value = s.backend.store.get(key)
    return new Promise((resolve) => setTimeout(() => resolve(value), 20))
  }
  const first = s.cache.getOrSet('a', async () => 'computed')
  await sleep(5)
  // Another process writes the key and its invalidation arrives while the first read is in flight.
  s.backend.store.set(s.cache.buildKey('a'), '"new"', 0)
  s.bus.listener!.invalidate([s.cache.buildKey('a')])
  const second = s.cache.getOrSet('a', async () => 'computed')
  assert.is(await first, 'old')
  assert.is(await second, 'new')
  assert.is(await s.cache.get('a'), 'new')
})

test('a stream lost (or made live) during a read: the read keeps nothing', async () => {
  const s = setup()
  await live(s)
  await s.cache.set('a', 1)
  s.backend.delayMs = 20
  const reading = s.cache.get('a')
  await sleep(5)
  s.bus.listener!.lost(new Error('gone'))
  s.bus.listener!.live()
  await reading
  assert.is(s.near.stats.size, 0)
})

test('the copy lives at most ttl, and never past its entry’s logical expiry', async () => {
  const s = setup({ ttl: 10 })
  await live(s)
  await s.cache.set('a', 1)
  await s.cache.get('a')
  s.clock.advance(9)
  const before = s.gets()
  await s.cache.get('a')
  assert.is(s.gets(), before)
  s.clock.advance(2)
  await s.cache.get('a')
  assert.is(s.gets(), before + 1)
  // getOrSet with grace: fresh for 4 s of the cache's clock; the copy keeps it no longer.
  assert.is(await s.cache.getOrSet('g', async () => 'v', { ttl: 4, grace: 60 }), 'v')
  assert.is(await s.cache.getOrSet('g', async () => 'never'), 'v') // from the store, kept
  const reads = s.gets()
  assert.is(await s.cache.getOrSet('g', async () => 'never'), 'v')
  assert.is(s.gets(), reads)
  s.clock.advance(5)
  s.wall.advance(5)
  assert.is(await s.cache.getOrSet('g', async () => 'new', { ttl: 4, grace: 60 }), 'new')
})

test('on its default clock too, a copy goes once its ttl has passed', async () => {
  const bus = new HandBus()
  const near = new NearCachePlugin({ ttl: 0.03, bus })
  const backend = new AsyncBackend()
  const cache = new BaseCache({ backend, serializer: new JsonSerializer(), plugins: [near] })
  const first = cache.set('a', 1)
  bus.listener!.live()
  await first
  await cache.get('a')
  await cache.get('a')
  assert.is(near.stats.hits, 1)
  await sleep(60)
  const reads = backend.calls.length
  assert.is(await cache.get('a'), 1)
  assert.is(backend.calls.length, reads + 1)
  await cache.close()
})

test('getOrSet: hits answered with outcome fresh; eager refresh still happens', async () => {
  const outcomes: unknown[] = []
  const outer = async (ctx: Context, next: Next) => {
    await next()
    if (ctx.command === 'getOrSet') outcomes.push(ctx.state.outcome)
  }
  const s = setup({ plugins: [outer] })
  await live(s)
  let calls = 0
  const fn = async () => ++calls
  const options = { ttl: 10, eagerRefresh: 0.5 }
  assert.is(await s.cache.getOrSet('e', fn, options), 1) // computed
  assert.is(await s.cache.getOrSet('e', fn, options), 1) // from the store, kept until the refresh is due
  assert.is(await s.cache.getOrSet('e', fn, options), 1) // from the copy
  assert.equal(outcomes, ['computed', 'fresh', 'fresh'])
  assert.is(s.near.stats.hits, 1)
  s.clock.advance(6)
  s.wall.advance(6)
  // Past the refresh point: the hit goes through to the store, which starts one refresh.
  assert.is(await s.cache.getOrSet('e', fn, options), 1)
  for (let i = 0; i < 50 && calls < 2; i++) await sleep(2)
  assert.is(calls, 2)
  // The computed value was a write: told on the bus.
  assert.equal(s.bus.published[0], { keys: ['e'] })
})

test('tagged entries are dropped when a tag is invalidated, here or on the bus', async () => {
  const s = setup()
  await live(s)
  await s.cache.set('t1', 1, { tags: ['g'] })
  await s.cache.set('t2', 2, { tags: ['g', 'h'] })
  await s.cache.multiGet(['t1', 't2'])
  assert.is(s.near.stats.size, 2)
  await s.cache.invalidateTags(['g'])
  assert.is(s.near.stats.size, 0)
  assert.is(await s.cache.get('t1'), undefined)
  await s.cache.set('t3', 3, { tags: ['h'] })
  await s.cache.get('t3')
  assert.is(s.near.stats.size, 1)
  // Another process invalidated tag h: its key is on the bus.
  s.bus.listener!.invalidate([s.cache.buildKey('__oniocache_tag:h')])
  assert.is(s.near.stats.size, 0)
})

test('maxSize bounds the copy; an entry read since it came round is kept over one that was not', async () => {
  const s = setup({ maxSize: 3 })
  await live(s)
  await s.cache.multiSet(['a', 'b', 'c', 'd'].map((k) => [k, k]))
  await s.cache.multiGet(['a', 'b', 'c'])
  await s.cache.get('a') // a is used
  await s.cache.get('d') // one must go: b, the oldest not used since
  assert.is(s.near.stats.size, 3)
  s.backend.calls.length = 0
  await s.cache.multiGet(['a', 'c', 'd'])
  assert.equal(s.backend.calls, [])
  await s.cache.get('b')
  assert.equal(s.backend.calls, [['get', 'b']])
  assert.is(s.near.stats.size, 3)
})

test('in front of memory the plugin keeps nothing: the store is as near as a copy', async () => {
  const near = new NearCachePlugin()
  const cache = new Cache({ plugins: [near] })
  await cache.set('a', 1, { ttl: 0.05 })
  assert.is(await cache.get('a'), 1)
  assert.is(await cache.get('a'), 1)
  assert.equal(near.stats, { hits: 0, misses: 0, invalidations: 0, size: 0 })
  await sleep(60)
  assert.is(await cache.get('a'), undefined)
  await cache.close()
})

test('without a bus or a stream the copy is process-local, live at once', async () => {
  const near = new NearCachePlugin()
  const cache = new BaseCache({ backend: new AsyncBackend(), serializer: new JsonSerializer(), plugins: [near] })
  await cache.set('a', 1)
  await cache.get('a')
  await cache.get('a')
  assert.equal(near.stats, { hits: 1, misses: 1, invalidations: 0, size: 1 })
  await cache.close()
  assert.is(near.stats.size, 0)
  // Closed and used again: it starts afresh.
  await cache.get('a')
  await cache.get('a')
  assert.is(near.stats.hits, 2)
})

test('keys outside the plugin’s reach pass through: bad keys, other namespaces on a stream', async () => {
  const s = setup()
  await live(s)
  const error = await rejection(s.cache.get(42 as unknown as string))
  assert.instance(error, TypeError)
  const many = await rejection(s.cache.multiGet(['a', 7 as unknown as string]))
  assert.instance(many, TypeError)
  await s.cache.set('a', 1, { namespace: 'x' })
  assert.is(await s.cache.get('a', { namespace: 'x' }), 1)
  assert.is(await s.cache.get('a', { namespace: 'x' }), 1)
  assert.is(s.near.stats.hits, 1) // the bus covers every key
})

test('namespaces and key builders: the copy follows the keys the cache builds', async () => {
  for (const keyBuilder of [undefined, (key: string, namespace: string) => `${namespace}/${key}`]) {
    const bus = new HandBus()
    const near = new NearCachePlugin({ bus })
    const cache = new BaseCache({
      backend: new AsyncBackend(),
      serializer: new JsonSerializer(),
      namespace: 'app',
      plugins: [near],
      ...(keyBuilder === undefined ? {} : { keyBuilder }),
    })
    const first = cache.exists('warm-up')
    bus.listener!.live()
    await first
    const hitsOf = async (key: string, options = {}): Promise<number> => {
      const before = near.stats.hits
      await cache.get(key, options)
      return near.stats.hits - before
    }
    await cache.set('a', 1)
    await cache.get('a')
    assert.is(await hitsOf('a'), 1)
    assert.is(await hitsOf('a', { namespace: 'app' }), 1) // the same key
    bus.listener!.invalidate([cache.buildKey('a')])
    assert.is(await hitsOf('a'), 0)
    assert.is(await hitsOf('a'), 1)
    await cache.set('a', 2, { namespace: 'other' })
    await cache.get('a', { namespace: 'other' })
    // Another namespace: with the library's builder it is outside the copy; with another builder it is held.
    assert.is(await hitsOf('a', { namespace: 'other' }), keyBuilder === undefined ? 0 : 1)
    bus.listener!.invalidatePrefix(cache.buildKey('', 'app'))
    assert.is(await hitsOf('a'), 0)
    // The cache's namespace changed after the plugin attached: keys are built again, none of them held.
    cache.namespace = 'next'
    await cache.set('a', 3)
    assert.is(await cache.get('a'), 3)
    assert.is(await hitsOf('a'), keyBuilder === undefined ? 0 : 1)
    assert.equal(bus.published.at(-1), { keys: [cache.buildKey('a')] })
  }
})

test('bad options and a second cache are refused with clear errors; close stops the stream', async () => {
  assert.throws(() => new NearCachePlugin({ maxSize: 0 }), /maxSize must be a positive integer/)
  assert.throws(() => new NearCachePlugin({ ttl: 0 }), /ttl must be a duration of more than 0.*got 0/)
  assert.throws(() => new NearCachePlugin({ ttl: null as never }), /ttl must be a duration of more than 0/)
  assert.throws(
    () => new NearCachePlugin({ ttl: 'soon' as never }),
    /ttl must be a duration of more than 0.*got "soon"/,
  )
  assert.throws(() => new NearCachePlugin({ ttl: -1 }), RangeError)
  assert.throws(() => new NearCachePlugin({ size: 1 } as never), /unknown option "size"/)
  assert.throws(() => new NearCachePlugin({ bus: {} as never }), /bus must have listen\(\) and publish\(\)/)
  assert.throws(() => new NearCachePlugin({ clock: 1 as never }), /clock must have a now\(\) method/)
  const s = setup()
  await live(s)
  const other = new Cache({ plugins: [s.near] })
  const error = await rejection(other.get('a'))
  assert.instance(error, TypeError)
  assert.match((error as Error).message, /one plugin serves one cache/)
  await s.cache.close()
  assert.is(s.bus.stopped, 1)
})

test('a publish that fails for good is reported', async () => {
  const s = setup()
  await live(s)
  const errors: ErrorMessage[] = []
  const listener = (message: unknown): void => {
    errors.push(message as ErrorMessage)
  }
  subscribe('oniocache:error', listener)
  try {
    s.bus.failWith = new Error('publish refused')
    await s.cache.set('a', 1)
  } finally {
    unsubscribe('oniocache:error', listener)
  }
  assert.is(errors.length, 1)
  assert.is(errors[0]!.command, 'nearCache')
})

test.run()

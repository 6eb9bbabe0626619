// getOrSet with lock: 'distributed': one factory call among caches that share a store
// — two caches over one memory backend in this process, then worker processes on a
// real Redis (woken by pub/sub) and a real Memcached (woken by a short poll).
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import {
  type Backend,
  Cache,
  type Context,
  cached,
  FactoryTimeoutError,
  lockChannel,
  MemoryBackend,
  type Next,
  RedLock,
} from '../lib/index.js'
import { MemcachedCache } from '../lib/memcached.js'
import { RedisCache } from '../lib/redis.js'
import { rejection, sleep, watchUnhandled } from './support/fixtures/backends.js'
import { runCrowd } from './support/fixtures/workers.js'
import { type MemcachedServer, type RedisServer, redisCommand, startMemcached, startRedis } from './support/servers.js'

/** Waits until `check` answers true (at most 2 s). */
async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const end = Date.now() + 2000
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(5)
  }
}

/** Two caches over one store, as two processes over one server: each has its own single flight. */
function pair(options: Record<string, unknown> = {}) {
  const backend = new MemoryBackend()
  const outcomes: unknown[] = []
  const recordOutcome = async (ctx: Context, next: Next) => {
    await next()
    if (ctx.command === 'getOrSet') outcomes.push(ctx.state.outcome)
  }
  const a = new Cache({ backend, plugins: [recordOutcome], ...options })
  const b = new Cache({ backend, plugins: [recordOutcome], ...options })
  return { backend, a, b, outcomes }
}

/** A factory that waits for `open()` before answering, and counts its calls. */
function gated<T>(value: T) {
  let open: () => void = () => {}
  const gate = new Promise<void>((resolve) => (open = resolve))
  const factory = {
    calls: 0,
    open: () => open(),
    fn: async () => {
      factory.calls++
      await gate
      return value
    },
  }
  return factory
}

const lock = { lock: 'distributed' as const }

/** The keys a cache's backend reads from now on. */
function readsOf(cache: Cache): string[] {
  const reads: string[] = []
  const get = cache.backend.get.bind(cache.backend)
  cache.backend.get = (key, encoding) => {
    reads.push(key)
    return get(key, encoding)
  }
  return reads
}

const local = suite('getOrSet lock distributed: caches sharing one store')

local('one factory call: the other cache waits for the value and reads it, woken by the release', async () => {
  const { backend, a, b, outcomes } = pair()
  const load = gated('v')
  const first = a.getOrSet('k', load.fn, { ...lock, lease: 10 })
  await sleep(5)
  assert.ok(backend.exists('k-lock'), 'the first cache holds the lock key')
  const started = performance.now()
  const second = Promise.all([1, 2, 3].map(() => b.getOrSet('k', load.fn, { ...lock, lease: 10 })))
  await sleep(20)
  load.open()
  assert.is(await first, 'v')
  assert.equal(await second, ['v', 'v', 'v'])
  const waited = performance.now() - started
  assert.ok(waited < 1000, `woken by the release, not by the 10 s lease: ${waited.toFixed(0)} ms`)
  assert.is(load.calls, 1)
  assert.is(backend.exists('k-lock'), false, 'the lock is released')
  assert.equal(outcomes, ['computed', 'fresh', 'fresh', 'fresh'], 'the waiters read a fresh entry')
})

local('a value written between the first read and the lock is answered, and the lock given back', async () => {
  const { backend, a, outcomes } = pair()
  backend.set('k', 'written meanwhile', 0)
  // The first reads miss, as if they came just before another process wrote the value.
  const get = backend.get.bind(backend)
  let misses = 2
  backend.get = (key) => (key === 'k' && misses-- > 0 ? undefined : get(key))
  let calls = 0
  assert.is(await a.getOrSet('k', async () => ++calls, lock), 'written meanwhile')
  assert.is(calls, 0)
  assert.is(backend.exists('k-lock'), false, 'the lock taken with the read is released')
  assert.equal(outcomes, ['fresh'])
})

local('the holder’s factory fails: it rejects, and a waiter takes the lock and calls its own', async () => {
  const { a, b } = pair()
  const boom = new Error('boom')
  let release: () => void = () => {}
  const gate = new Promise<void>((resolve) => (release = resolve))
  const failing = async () => {
    await gate
    throw boom
  }
  let calls = 0
  const first = a.getOrSet('k', failing, lock)
  await sleep(5)
  const second = b.getOrSet('k', async () => `b${++calls}`, lock)
  await sleep(5)
  release()
  assert.is(await rejection(first), boom)
  assert.is(await second, 'b1')
  assert.is(await a.get('k'), 'b1')
})

local('a holder that died (its lock never released) blocks the others for its lease only', async () => {
  const { backend, a } = pair()
  backend.add('k-lock', 'someone else', 0.2)
  const started = performance.now()
  assert.is(await a.getOrSet('k', async () => 'mine', { ...lock, lease: 0.2 }), 'mine')
  const waited = performance.now() - started
  assert.ok(waited >= 150 && waited < 1000, `waited out the lease: ${waited.toFixed(0)} ms`)
})

local('hardTimeout bounds the wait for another holder: FactoryTimeoutError, or the stale value', async () => {
  const { a, b } = pair()
  const slow = gated('late')
  const holding = a.getOrSet('k', slow.fn, { ...lock, lease: 5 })
  await sleep(5)
  let calls = 0
  const started = performance.now()
  const error = await rejection(b.getOrSet('k', async () => ++calls, { ...lock, hardTimeout: 0.1 }))
  assert.instance(error, FactoryTimeoutError)
  assert.ok(performance.now() - started < 1000)
  assert.is(calls, 0, 'the waiter never called its factory')
  slow.open()
  assert.is(await holding, 'late')

  // With a stale value at hand, the same wait answers it.
  const clockless = pair()
  await clockless.a.getOrSet('s', async () => 'old', { ttl: 0.05, grace: 60 })
  await sleep(60)
  const slow2 = gated('new')
  const refreshing = clockless.a.getOrSet('s', slow2.fn, { ...lock, ttl: 0.05, grace: 60, lease: 5 })
  await sleep(5)
  assert.is(
    await clockless.b.getOrSet('s', async () => 'b', { ...lock, ttl: 0.05, grace: 60, hardTimeout: 0.1 }),
    'old',
  )
  slow2.open()
  assert.is(await refreshing, 'new')
})

local('softTimeout with a stale value answers it at once while another cache holds the lock', async () => {
  const { a, b } = pair()
  const options = { ...lock, ttl: 0.05, grace: 60, softTimeout: 0.02, lease: 5 }
  await a.getOrSet('k', async () => 'old', options)
  await sleep(60)
  const slow = gated('new')
  const refreshing = a.getOrSet('k', slow.fn, { ...options, softTimeout: 0 })
  await sleep(5)
  const started = performance.now()
  assert.is(await b.getOrSet('k', async () => 'b', options), 'old')
  assert.ok(performance.now() - started < 500)
  slow.open()
  assert.is(await refreshing, 'new')
  await sleep(20)
  assert.is(await b.get('k'), 'new', 'the waiter’s flight read the holder’s value in the background')
})

local('the lock is RedLock’s: a getOrSet waits for a RedLock on the same key, then reads its value', async () => {
  const { a, b } = pair()
  const held = await RedLock.acquire(a, 'k', { lease: 5 })
  assert.ok(held.held)
  let calls = 0
  const waiting = b.getOrSet('k', async () => ++calls, lock)
  await sleep(20)
  await a.set('k', 41)
  await held.release()
  assert.is(await waiting, 41)
  assert.is(calls, 0)
})

local('close() ends a wait for another holder at once', async () => {
  const { a, b } = pair()
  const slow = gated('v')
  const holding = a.getOrSet('k', slow.fn, { ...lock, lease: 5 })
  await sleep(5)
  const waiting = rejection(b.getOrSet('k', async () => 'b', lock))
  await sleep(5)
  const started = performance.now()
  await b.close()
  const error = (await waiting) as Error
  assert.match(error.message, /closed/)
  assert.ok(performance.now() - started < 500)
  slow.open()
  assert.is(await holding, 'v')
})

local('options: lock and lease checked, in calls, defaults and cached; a store without deleteIf refused', async () => {
  const { a } = pair()
  const fn = async () => 1
  assert.instance(await rejection(a.getOrSet('k', fn, { lock: 'cluster' as never })), TypeError)
  assert.match(
    ((await rejection(a.getOrSet('k', fn, { lock: 'cluster' as never }))) as Error).message,
    /lock must be 'process'.*or 'distributed'/,
  )
  assert.instance(await rejection(a.getOrSet('k', fn, { ...lock, lease: 0 })), RangeError)
  assert.throws(() => new Cache({ defaults: { lock: 'everywhere' as never } }), /defaults.lock must be/)
  assert.throws(() => new Cache({ defaults: { lease: -1 } }), /defaults.lease must be a number of seconds above 0/)
  assert.throws(() => cached(fn, { cache: a, lock: 'x' as never }), /lock must be/)
  const withDefaults = new Cache({ backend: new MemoryBackend(), defaults: { lock: 'distributed', lease: '1s' } })
  const load = gated('d')
  const first = withDefaults.getOrSet('k', load.fn)
  await sleep(5)
  assert.ok(await withDefaults.exists('k-lock'), 'the defaults take the lock')
  load.open()
  assert.is(await first, 'd')

  const inner = new MemoryBackend()
  const noDeleteIf: Backend = {
    name: 'plain',
    get: (key) => inner.get(key),
    multiGet: (keys) => inner.multiGet(keys),
    set: (key, value, ttl) => inner.set(key, value, ttl),
    add: (key, value, ttl) => inner.add(key, value, ttl),
    multiSet: (pairs, ttl) => inner.multiSet(pairs, ttl),
    delete: (key) => inner.delete(key),
    exists: (key) => inner.exists(key),
    increment: (key, delta) => inner.increment(key, delta),
    expire: (key, ttl) => inner.expire(key, ttl),
    clear: (prefix) => inner.clear(prefix),
    raw: (command, args) => inner.raw(command, args),
    close: () => undefined,
  }
  const plain = new Cache({ backend: noDeleteIf })
  assert.match(
    ((await rejection(plain.getOrSet('k', fn, lock))) as Error).message,
    /lock 'distributed' needs a backend with deleteIf.*plain has none/,
  )
  assert.is(await plain.getOrSet('k', fn), 1, "lock: 'process' needs no lock")
})

local.run()

// ---------------------------------------------------------------------------
const xproc = suite<{ redis: RedisServer; memcached: MemcachedServer }>('getOrSet lock distributed: processes')

xproc.before(async (ctx) => {
  ;[ctx.redis, ctx.memcached] = await Promise.all([startRedis(), startMemcached()])
})
xproc.after(async (ctx) => {
  await Promise.all([ctx.redis.stop(), ctx.memcached.stop()])
})

/**
 * 4 worker processes × 5 concurrent getOrSet calls with a 10 s lease and a 300 ms factory, started together:
 * answers how often the factory ran and the slowest answer (ms after the go line).
 */
async function crowd(kind: string, where: string, namespace: string, open: () => Cache) {
  const unhandled = watchUnhandled()
  try {
    const results = await runCrowd([kind, where, 'getorset', namespace, '10'], 4)
    for (const { values } of results) assert.equal(values, Array(5).fill('value of k'))
    await using cache = open()
    assert.is(await cache.exists('k-lock'), false, 'the lock is released')
    const slowest = Math.max(...results.flatMap(({ took }) => took as number[]))
    return { runs: Number(await cache.get('runs')), slowest }
  } finally {
    unhandled.stop()
  }
}

xproc('redis: 4 processes × 5 calls run the factory once; the waiters are woken by pub/sub', async ({ redis }) => {
  const { runs, slowest } = await crowd(
    'redis',
    redis.url,
    'gl-redis',
    () => new RedisCache({ url: redis.url, namespace: 'gl-redis' }),
  )
  assert.is(runs, 1)
  assert.ok(slowest < 2000, `every answer ${slowest.toFixed(0)} ms after go: not after the 10 s lease`)
})

xproc('memcached: 4 processes × 5 calls run the factory once; the waiters poll the lock', async ({ memcached }) => {
  const { runs, slowest } = await crowd(
    'memcached',
    memcached.server,
    'gl-mc',
    () => new MemcachedCache({ servers: [memcached.server], namespace: 'gl-mc' }),
  )
  assert.is(runs, 1)
  assert.ok(slowest < 2000, `every answer ${slowest.toFixed(0)} ms after go: not after the 10 s lease`)
})

xproc(
  'redis: a waiter on another connection is woken by the release message, long before its next poll',
  async ({ redis }) => {
    // Two backends with different names share no in-process wake-up: only pub/sub (or the poll) can wake the waiter.
    await using a = new RedisCache({ host: '127.0.0.1', port: redis.port, namespace: 'gl-msg' })
    await using b = new RedisCache({ url: `redis://localhost:${redis.port}`, namespace: 'gl-msg' })
    const slow = gated('v')
    const holding = a.getOrSet('k', slow.fn, { ...lock, lease: 10 })
    await until(async () => await a.exists('k-lock'), 'the holder to take the lock')
    const waiting = b.getOrSet('k', async () => 'b', { ...lock, lease: 10 }).then((value) => [value, Date.now()])
    const channel = lockChannel('gl-msg:k-lock')
    await until(
      async () => Number(((await redisCommand(redis.port, 'PUBSUB', 'NUMSUB', channel)) as unknown[])[1]) === 1,
      'the waiter to subscribe',
    )
    // Its polls come about 0, 200, 600, 1000 ms after it subscribed: answer just after the one at 200.
    await sleep(230)
    // The holder hands its value over with the release: the waiter does not read it.
    const reads = readsOf(b)
    slow.open()
    await holding
    const released = Date.now()
    const [value, at] = await waiting
    assert.is(value, 'v')
    const latency = (at as number) - released
    assert.ok(latency < 60, `woken ${latency} ms after the release (the next poll would take ~370 ms)`)
    assert.equal(reads, [], 'the value came with the release message')
  },
)

/**
 * `a` takes the lock of `k` (its factory gated, answering `value`) and `b` (another connection) waits for it with
 * `fn`, subscribed to the release: answers once both are so.
 */
async function holderAndWaiter(port: number, a: Cache, b: Cache, value: string, fn = async () => 'b') {
  const slow = gated(value)
  const holding = a.getOrSet('k', slow.fn, { ...lock, lease: 10 })
  await until(async () => await a.exists('k-lock'), 'the holder to take the lock')
  const waiting = b.getOrSet('k', fn, { ...lock, lease: 10 })
  const channel = lockChannel(a.buildKey('k-lock'))
  await until(
    async () => Number(((await redisCommand(port, 'PUBSUB', 'NUMSUB', channel)) as unknown[])[1]) === 1,
    'the waiter to subscribe',
  )
  return { slow, holding, waiting }
}

xproc('redis: a release that hands the value over does not wait for the lock to be deleted', async ({ redis }) => {
  await using a = new RedisCache({ host: '127.0.0.1', port: redis.port, namespace: 'gl-early' })
  await using b = new RedisCache({ url: `redis://localhost:${redis.port}`, namespace: 'gl-early' })
  // The holder's compare-and-delete is sent, but its answer is held back until the test lets it through.
  let letThrough: () => void = () => {}
  const through = new Promise<void>((resolve) => (letThrough = resolve))
  const deleteIf = a.backend.deleteIf!.bind(a.backend)
  a.backend.deleteIf = async (key, token) => {
    const removed = await deleteIf(key, token)
    await through
    return removed
  }
  const { slow, holding, waiting } = await holderAndWaiter(redis.port, a, b, 'v')
  // Past its first check (a read and the lock's existence), before its first poll ~50 ms after it subscribed.
  await sleep(20)
  const reads = readsOf(b)
  let held = true
  void holding.then(() => {
    held = false
  })
  slow.open()
  assert.is(await waiting, 'v', 'the waiter answered with the value handed over')
  assert.equal(reads, [], 'by the release message, not by a poll')
  assert.is(held, true, 'while the holder still waited for its compare-and-delete')
  letThrough()
  assert.is(await holding, 'v')
  assert.is(await a.exists('k-lock'), false, 'the lock is gone')
})

xproc('redis: a release heard while a poll reads a miss hands the value over', async ({ redis }) => {
  await using a = new RedisCache({ host: '127.0.0.1', port: redis.port, namespace: 'gl-race' })
  await using b = new RedisCache({ url: `redis://localhost:${redis.port}`, namespace: 'gl-race' })
  const { slow, holding, waiting } = await holderAndWaiter(redis.port, a, b, 'v')
  await sleep(20) // past its first check, before its first poll
  // The poll's read reaches the server before the holder writes (a miss), and its answer comes back after the
  // release message has: the waiter must take the value handed over, not go on to take the lock.
  const calls: string[] = []
  const { backend } = b
  const get = backend.get.bind(backend)
  backend.get = async (key, encoding) => {
    calls.push(`get ${key}`)
    const stored = await get(key, encoding)
    slow.open()
    await holding
    await sleep(20)
    return stored
  }
  for (const name of ['exists', 'add'] as const) {
    const call = backend[name].bind(backend) as (...args: unknown[]) => Promise<unknown>
    backend[name] = ((...args: unknown[]) => {
      calls.push(`${name} ${args[0]}`)
      return call(...args)
    }) as never
  }
  assert.is(await waiting, 'v')
  assert.equal(
    calls,
    ['get gl-race:k', 'exists gl-race:k-lock'],
    'one read (a miss) and the lock checked with it, then the value handed over: the lock not taken',
  )
})

xproc('redis: a waiter reads the value and checks the lock in one round trip', async ({ redis }) => {
  await using a = new RedisCache({ host: '127.0.0.1', port: redis.port, namespace: 'gl-trip' })
  await using b = new RedisCache({ url: `redis://localhost:${redis.port}`, namespace: 'gl-trip' })
  const calls: string[] = []
  const { backend } = b
  const get = backend.get.bind(backend)
  backend.get = async (key, encoding) => {
    calls.push('get')
    const stored = await get(key, encoding)
    calls.push('got')
    return stored
  }
  const exists = backend.exists.bind(backend)
  backend.exists = (key) => {
    calls.push('exists')
    return exists(key)
  }
  const { slow, holding, waiting } = await holderAndWaiter(redis.port, a, b, 'v')
  await until(async () => calls.includes('exists'), 'the waiter to check the lock')
  slow.open()
  assert.is(await holding, 'v')
  assert.is(await waiting, 'v')
  const check = calls.indexOf('exists')
  assert.equal(calls.slice(check - 1, check + 2), ['get', 'exists', 'got'], `sent before the read answered: ${calls}`)
})

xproc('redis: a value too large to hand over is read by the waiters', async ({ redis }) => {
  await using a = new RedisCache({ host: '127.0.0.1', port: redis.port, namespace: 'gl-big' })
  await using b = new RedisCache({ url: `redis://localhost:${redis.port}`, namespace: 'gl-big' })
  const big = 'x'.repeat(100_000)
  let calls = 0
  const { slow, holding, waiting } = await holderAndWaiter(redis.port, a, b, big, async () => `${++calls}`)
  const reads = readsOf(b)
  slow.open()
  assert.is(await holding, big)
  assert.is(await waiting, big)
  assert.is(calls, 0)
  assert.ok(reads.includes('gl-big:k'), 'the waiter read the value')
})

xproc('redis: the holder process killed mid-factory; the others take over after its lease', async ({ redis }) => {
  const a = new RedisCache({ url: redis.url, namespace: 'gl-kill' })
  const b = new RedisCache({ url: redis.url, namespace: 'gl-kill' })
  try {
    const slow = gated('never')
    void a.getOrSet('k', slow.fn, { ...lock, lease: 0.3 }).catch(() => undefined)
    await until(async () => await b.exists('k-lock'), 'the holder to take the lock')
    // The holder goes away without releasing (its connection closed under it).
    await a.close()
    const started = performance.now()
    assert.is(await b.getOrSet('k', async () => 'b', { ...lock, lease: 0.3 }), 'b')
    const waited = performance.now() - started
    assert.ok(waited < 2000, `taken over after the lease: ${waited.toFixed(0)} ms`)
  } finally {
    await Promise.all([a.close(), b.close()])
  }
})

xproc.run()

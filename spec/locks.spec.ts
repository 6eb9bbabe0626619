// RedLock and OptimisticLock: the same test bodies on the memory backend, a real
// Redis and a real Memcached; then waiting across processes (worker processes
// against a shared Redis and a shared Memcached) and Redis' pub/sub connection.
import * as net from 'node:net'
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import {
  Cache,
  cachedStampede,
  lockChannel,
  MemoryBackend,
  OptimisticLock,
  OptimisticLockError,
  RedLock,
  TimeoutError,
} from '../lib/index.js'
import { MemcachedCache } from '../lib/memcached.js'
import { RedisCache } from '../lib/redis.js'
import { AsyncBackend, rejection, sleep, watchUnhandled } from './support/fixtures/backends.js'
import { startWorker, type Worker } from './support/fixtures/workers.js'
import { type MemcachedServer, type RedisServer, redisCommand, startMemcached, startRedis } from './support/servers.js'

async function until(condition: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

/** What each backend's suite needs: fresh caches on one shared store. */
interface Target {
  /** A new cache (own client) on the shared store. */
  make(namespace: string): Cache
  /** A lease short enough to wait out, and the least a waiter must then have waited (ms). */
  expiry: { lease: number; minWaitMs: number }
  stop(): Promise<void>
}

let unique = 0
const keyOf = (name: string): string => `${name}-${process.pid}-${++unique}`

function lockSuite(name: string, start: () => Promise<Target>): void {
  const test = suite<{ target: Target; unhandled: ReturnType<typeof watchUnhandled>; caches: Cache[] }>(
    `locks: ${name}`,
  )
  const cacheOf = (ctx: { target: Target; caches: Cache[] }, namespace = 'locks'): Cache => {
    const cache = ctx.target.make(namespace)
    ctx.caches.push(cache)
    return cache
  }

  test.before(async (ctx) => {
    ctx.unhandled = watchUnhandled()
    ctx.target = await start()
    ctx.caches = []
  })
  test.after.each(async (ctx) => {
    await Promise.all(ctx.caches.splice(0).map((c) => c.close()))
  })
  test.after(async (ctx) => {
    await ctx.target.stop()
    ctx.unhandled.check()
    ctx.unhandled.stop()
  })

  test('dogpile: 4 workers around read → miss → compute → set compute once; the others read it', async (ctx) => {
    const key = keyOf('dogpile')
    let computed = 0
    const worker = async (cache: Cache): Promise<unknown> => {
      const hit = await cache.get(key)
      if (hit !== undefined) return hit
      return RedLock.run(cache, key, { lease: 5 }, async () => {
        const again = await cache.get(key)
        if (again !== undefined) return again
        computed++
        await sleep(150)
        const value = { answer: 42 }
        await cache.set(key, value)
        return value
      })
    }
    const results = await Promise.all([0, 1, 2, 3].map(() => worker(cacheOf(ctx))))
    assert.is(computed, 1, 'compute ran once')
    for (const result of results) assert.equal(result, { answer: 42 })
  })

  test('the first caller holds buildKey(key + "-lock") with a random token; a waiter does not hold it', async (ctx) => {
    const key = keyOf('holds')
    const cache = cacheOf(ctx, 'ns1')
    const lock = await RedLock.acquire(cache, key, { lease: 5 })
    assert.is(lock.held, true)
    assert.is(lock.lease, 5)
    const stored = await cache.backend.get(`ns1:${key}-lock`, cache.serializer.encoding)
    assert.ok(stored !== undefined, 'the lock key is namespaced by the key builder')
    assert.match(String(cache.serializer.loads(stored)), /^[0-9a-f-]{36}$/, 'a random UUID token')
    const waiting = RedLock.acquire(cacheOf(ctx, 'ns1'), key, { lease: 5 })
    await sleep(50)
    assert.is(await lock.release(), true)
    const waiter = await waiting
    assert.is(waiter.held, false, 'a waiter goes on without taking the lock')
    assert.is(await cache.exists(`${key}-lock`), false)
    assert.is(await waiter.release(), false, "a waiter's release removes nothing")
  })

  test('a custom key builder and namespace apply to the lock key', async (ctx) => {
    const key = keyOf('builder')
    const base = ctx.target.make('app')
    const cache = new Cache({
      backend: base.backend,
      serializer: base.serializer,
      namespace: 'app',
      keyBuilder: (k, ns) => `${ns}/${k}`,
    })
    ctx.caches.push(base)
    await using lock = await RedLock.acquire(cache, key)
    assert.is(lock.held, true)
    assert.is(await cache.backend.exists(`app/${key}-lock`), true)
    assert.is(await cache.backend.exists(`app:${key}-lock`), false)
  })

  test('a release wakes waiters in the same process at once', async (ctx) => {
    const key = keyOf('prompt')
    const holder = await RedLock.acquire(cacheOf(ctx), key, { lease: 10 })
    const proceeded: number[] = []
    const waiters = [0, 1, 2].map(() =>
      RedLock.acquire(cacheOf(ctx), key, { lease: 10 }).then(() => proceeded.push(Date.now())),
    )
    await sleep(700) // every poll is at its longest interval by now
    const releasedAt = Date.now()
    await holder.release()
    await Promise.all(waiters)
    const latencies = proceeded.map((t) => t - releasedAt)
    for (const latency of latencies) assert.ok(latency >= 0 && latency < 40, `woken ${latency} ms after the release`)
  })

  test('the lease bounds the wait: a holder that never releases lets the waiters through after ~lease', async (ctx) => {
    const key = keyOf('lease')
    const { lease, minWaitMs } = ctx.target.expiry
    const holder = await RedLock.acquire(cacheOf(ctx), key, { lease })
    assert.is(holder.held, true)
    const started = Date.now()
    const waited = await Promise.all(
      [0, 1, 2].map(() =>
        RedLock.acquire(cacheOf(ctx), key, { lease }).then((lock) => ({ ms: Date.now() - started, held: lock.held })),
      ),
    )
    for (const { ms, held } of waited) {
      assert.is(held, false)
      assert.ok(ms >= minWaitMs && ms <= lease * 1000 + 600, `a waiter went on after ${ms} ms (lease ${lease} s)`)
    }
  })

  test('release removes only its own lock: once its lease ran out and another took it, it stays', async (ctx) => {
    const key = keyOf('owner')
    const cache = cacheOf(ctx)
    const first = await RedLock.acquire(cache, key, { lease: ctx.target.expiry.lease })
    await until(async () => !(await cache.exists(`${key}-lock`)), 4000, 'the lease to run out')
    const second = await RedLock.acquire(cacheOf(ctx), key, { lease: 10 })
    assert.is(second.held, true, 'the lock was free again')
    assert.is(await first.release(), false)
    assert.is(await cache.exists(`${key}-lock`), true, "the second holder's lock is still there")
    assert.is(await second.release(), true)
    assert.is(await cache.exists(`${key}-lock`), false)
    assert.is(await second.release(), false, 'releasing twice is a no-op')
  })

  test('run resolves to the callback result, releases after it, and releases when it throws', async (ctx) => {
    const key = keyOf('run')
    const cache = cacheOf(ctx)
    const result = await RedLock.run(cache, key, { lease: 5 }, async () => {
      assert.is(await cache.exists(`${key}-lock`), true, 'held while the callback runs')
      return 'done'
    })
    assert.is(result, 'done')
    assert.is(await cache.exists(`${key}-lock`), false)
    const boom = new Error('boom')
    const error = await rejection(
      RedLock.run(cache, key, { lease: 5 }, async () => {
        throw boom
      }),
    )
    assert.is(error, boom, "the callback's own error")
    assert.is(await cache.exists(`${key}-lock`), false, 'released after the throw')
    const next = await RedLock.acquire(cache, key, { lease: 5 })
    assert.is(next.held, true, 'the next caller takes it at once')
    await next.release()
  })

  test('await using releases the lock at the end of the block', async (ctx) => {
    const key = keyOf('using')
    const cache = cacheOf(ctx)
    {
      await using lock = await RedLock.acquire(cache, key)
      assert.is(lock.held, true)
      assert.is(await cache.exists(`${key}-lock`), true)
    }
    assert.is(await cache.exists(`${key}-lock`), false)
  })

  test('a bad lease is a RangeError and nothing reaches the store', async (ctx) => {
    const key = keyOf('bad')
    const cache = cacheOf(ctx)
    for (const lease of [0, -1, Number.NaN, 'soon', null]) {
      const error = await rejection(RedLock.acquire(cache, key, { lease: lease as never }))
      assert.instance(error, RangeError, `lease ${String(lease)}`)
      assert.match((error as Error).message, /lease/)
    }
    assert.instance(await rejection(RedLock.run(cache, key, { lease: 0 }, () => 1)), RangeError)
    assert.is(await cache.exists(`${key}-lock`), false)
    const ok = await RedLock.acquire(cache, key, { lease: '250ms' })
    assert.is(ok.lease, 0.25)
    await ok.release()
  })

  test('OptimisticLock: cas writes when the value is unchanged', async (ctx) => {
    const key = keyOf('cas')
    const cache = cacheOf(ctx)
    await cache.set(key, { n: 1 })
    await using lock = await OptimisticLock.acquire(cache, key)
    assert.is(await lock.cas({ n: 2 }, { ttl: 30 }), true)
    assert.equal(await cache.get(key), { n: 2 })
  })

  test('OptimisticLock: cas rejects with OptimisticLockError when someone wrote in between', async (ctx) => {
    const key = keyOf('conflict')
    const cache = cacheOf(ctx)
    await cache.set(key, 'one')
    const lock = await OptimisticLock.acquire(cache, key)
    await cacheOf(ctx).set(key, 'two')
    const error = await rejection(lock.cas('three'))
    assert.instance(error, OptimisticLockError)
    assert.is((error as Error).name, 'OptimisticLockError')
    assert.is(await cache.get(key), 'two', 'the other write stays')
  })

  test('OptimisticLock: a key missing at acquire never conflicts', async (ctx) => {
    const key = keyOf('missing')
    const cache = cacheOf(ctx)
    const lock = await OptimisticLock.acquire(cache, key)
    await cache.set(key, 'meanwhile')
    assert.is(await lock.cas('mine'), true)
    assert.is(await cache.get(key), 'mine')
  })

  test.run()
}

// ---------------------------------------------------------------------------
lockSuite('memory', async () => {
  const backend = new MemoryBackend()
  return {
    make: (namespace) => new Cache({ backend, namespace }),
    expiry: { lease: 0.5, minWaitMs: 450 },
    stop: async () => {},
  }
})

lockSuite('redis', async () => {
  const server = await startRedis()
  return {
    make: (namespace) => new RedisCache({ port: server.port, namespace }),
    expiry: { lease: 0.5, minWaitMs: 450 },
    stop: () => server.stop(),
  }
})

lockSuite('memcached', async () => {
  const server = await startMemcached()
  return {
    make: (namespace) => new MemcachedCache({ servers: [server.server], namespace }),
    // Memcached counts whole seconds on a clock that ticks once a second: a 2 s item lives 1–2 s.
    expiry: { lease: 2, minWaitMs: 900 },
    stop: () => server.stop(),
  }
})

// ---------------------------------------------------------------------------
// ---------------------------------------------------------------------------
// A hung server: every backend call a lock makes is bounded by the cache's timeout.

/** A memory store whose compare-and-delete and pub/sub never answer, as on a server that hangs mid-release. */
class HungRelease extends AsyncBackend {
  deleteIf(): Promise<boolean> {
    return new Promise(() => {})
  }
  subscribe(): Promise<() => Promise<void>> {
    return new Promise(() => {})
  }
  publish(): Promise<number> {
    return new Promise(() => {})
  }
}

const hung = suite<{ socket: NodeJS.Timeout }>('locks: a hung server never leaves a call pending past the timeout')
// A hung server's socket keeps the process alive; the deadline's own timer does not.
hung.before((ctx) => {
  ctx.socket = setInterval(() => {}, 1000)
})
hung.after((ctx) => {
  clearInterval(ctx.socket)
})

hung('RedLock.release rejects with TimeoutError once the cache timeout has passed', async () => {
  const cache = new Cache({ backend: new HungRelease(), timeout: 0.1 })
  const lock = await RedLock.acquire(cache, 'k', { lease: 5 })
  assert.ok(lock.held)
  const started = Date.now()
  const error = await rejection(lock.release())
  assert.instance(error, TimeoutError)
  assert.ok(Date.now() - started < 1000, `settled after ${Date.now() - started} ms`)
})

hung("cachedStampede answers the function's result although the release hangs", async () => {
  const cache = new Cache({ backend: new HungRelease(), timeout: 0.1 })
  const compute = cachedStampede(async (id: string) => `value ${id}`, { cache, lease: 5 })
  const started = Date.now()
  assert.is(await compute('a'), 'value a')
  assert.ok(Date.now() - started < 1000, `answered after ${Date.now() - started} ms`)
})

hung('a waiter whose subscription hangs falls back to polling and still ends its wait', async () => {
  const cache = new Cache({ backend: new HungRelease(), timeout: 0.1 })
  const holder = await RedLock.acquire(cache, 'w', { lease: 0.4 })
  const started = Date.now()
  const waiter = await RedLock.acquire(cache, 'w', { lease: 0.4 })
  assert.is(waiter.held, false)
  const waited = Date.now() - started
  assert.ok(waited >= 300 && waited < 1500, `waited ${waited} ms for a 400 ms lease`)
  assert.ok(holder.held)
})

hung.run()

const pubsub = suite<{ server: RedisServer }>('locks: redis pub/sub connection')

pubsub.before(async (ctx) => {
  ctx.server = await startRedis()
})
pubsub.after(async ({ server }) => {
  await server.stop()
})

/** The names of the commands Redis on `port` runs while `work` runs, in order (MONITOR on a socket of its own). */
async function monitored(port: number, work: () => Promise<void>): Promise<string[]> {
  const socket = net.connect(port, '127.0.0.1')
  let text = ''
  socket.setEncoding('utf8')
  socket.on('data', (chunk: string) => {
    text += chunk
  })
  socket.write('MONITOR\r\n')
  await until(async () => text.startsWith('+OK'), 2000, 'MONITOR answered')
  try {
    await work()
    await sleep(50) // the last lines on their way
  } finally {
    socket.destroy()
  }
  return [...text.matchAll(/\] "([A-Za-z]+)"/g)].map(([, name]) => name!.toUpperCase())
}

pubsub(
  'a release is announced after the lock is gone, even when Redis must be sent the script again',
  async ({ server }) => {
    await using cache = new RedisCache({ port: server.port, namespace: 'announce' })
    const lock = await RedLock.acquire(cache, 'job', { lease: 5 })
    await redisCommand(server.port, 'SCRIPT', 'FLUSH') // the compare-and-delete script answers NOSCRIPT first
    const commands = await monitored(server.port, async () => {
      assert.is(await lock.release(), true)
    })
    const deleted = commands.lastIndexOf('EVAL')
    assert.ok(deleted >= 0, `the script was sent again: ${commands.join(' ')}`)
    assert.ok(commands.indexOf('PUBLISH') > deleted, `PUBLISH after the delete: ${commands.join(' ')}`)
  },
)

const numsub = async (port: number, channel: string): Promise<number> =>
  ((await redisCommand(port, 'PUBSUB', 'NUMSUB', channel)) as [string, number])[1]

pubsub(
  'subscribe/publish deliver messages; unsubscribe and close() leave no subscription behind',
  async ({ server }) => {
    const cache = new RedisCache({ port: server.port })
    const got: string[] = []
    const off = await cache.backend.subscribe('chan', (message) => got.push(message))
    assert.is(await numsub(server.port, 'chan'), 1)
    assert.is(await cache.backend.publish('chan', 'hello'), 1)
    await until(async () => got.length === 1, 1000, 'the message')
    assert.equal(got, ['hello'])
    await off()
    await off()
    assert.is(await numsub(server.port, 'chan'), 0)
    await cache.backend.subscribe('chan', () => {})
    assert.is(await numsub(server.port, 'chan'), 1)
    await cache.close()
    await until(
      async () => (await numsub(server.port, 'chan')) === 0,
      2000,
      'close() to drop the subscriber connection',
    )
    // A client passed in stays the caller's, but the duplicated subscriber is oniocache's and closes.
    const clients = ((await redisCommand(server.port, 'CLIENT', 'LIST')) as string).trim().split('\n').length
    assert.ok(clients <= 1, `${clients} connections left`)
  },
)

pubsub('waiters subscribe to the lock channel while they wait and unsubscribe after', async ({ server }) => {
  await using cache = new RedisCache({ port: server.port, namespace: 'ps' })
  const holder = await RedLock.acquire(cache, 'k', { lease: 5 })
  const waiting = RedLock.acquire(cache, 'k', { lease: 5 })
  const channel = lockChannel('ps:k-lock')
  await until(async () => (await numsub(server.port, channel)) === 1, 1000, 'the waiter to subscribe')
  await holder.release()
  await waiting
  await until(async () => (await numsub(server.port, channel)) === 0, 1000, 'the waiter to unsubscribe')
})

pubsub(
  'a waiter unsubscribes a moment after its wait; a wait meanwhile subscribes again for free',
  async ({ server }) => {
    await using cache = new RedisCache({ port: server.port, namespace: 'linger' })
    const channel = lockChannel('linger:k-lock')
    let subscribes = 0
    const subscribe = cache.backend.subscribe.bind(cache.backend)
    cache.backend.subscribe = (name, listener) => {
      subscribes++
      return subscribe(name, listener)
    }
    /** One holder and one waiter on `k`, until the waiter holds the lock and lets it go. */
    const wait = async (): Promise<void> => {
      const holder = await RedLock.acquire(cache, 'k', { lease: 5 })
      const asked = subscribes
      const waiting = RedLock.acquire(cache, 'k', { lease: 5 })
      await until(async () => subscribes > asked && (await numsub(server.port, channel)) === 1, 1000, 'the waiter')
      await holder.release()
      await (await waiting).release()
    }
    let lingering = 0
    const commands = await monitored(server.port, async () => {
      await wait()
      await wait()
      lingering = await numsub(server.port, channel)
      await until(async () => (await numsub(server.port, channel)) === 0, 2000, 'the waiters to unsubscribe')
    })
    assert.is(subscribes, 2)
    assert.is(lingering, 1, 'the subscription outlives the wait')
    const count = (name: string) => commands.filter((command) => command === name).length
    assert.is(count('SUBSCRIBE'), 1, `the second wait found the first one's subscription: ${commands}`)
    assert.is(count('UNSUBSCRIBE'), 1)
  },
)

pubsub('a release message that never comes: the waiter polls and goes on long before the lease', async ({ server }) => {
  await using a = new RedisCache({ host: '127.0.0.1', port: server.port, namespace: 'lost' })
  await using b = new RedisCache({ url: `redis://localhost:${server.port}`, namespace: 'lost' })
  a.backend.publish = async () => 0 // the message is lost
  const holder = await RedLock.acquire(a, 'k', { lease: 10 })
  const waiting = RedLock.acquire(b, 'k', { lease: 10 }).then(() => Date.now())
  await until(
    async () => (await numsub(server.port, lockChannel('lost:k-lock'))) === 1,
    1000,
    'the waiter to subscribe',
  )
  const releasedAt = Date.now()
  assert.is(await holder.release(), true)
  const latency = (await waiting) - releasedAt
  // Its polls come about 0, 200, 600, 1000 ms after it subscribed.
  assert.ok(latency < 1000, `went on ${latency} ms after the release, by its poll (the lease is 10 s)`)
})

pubsub('the release message wakes a waiter on another connection long before its next poll', async ({ server }) => {
  // Two backends with different names share no in-process wake-up: only pub/sub (or the poll) can wake the waiter.
  await using a = new RedisCache({ host: '127.0.0.1', port: server.port, namespace: 'msg' })
  await using b = new RedisCache({ url: `redis://localhost:${server.port}`, namespace: 'msg' })
  assert.is.not(a.backend.name, b.backend.name)
  const holder = await RedLock.acquire(a, 'k', { lease: 10 })
  const waiting = RedLock.acquire(b, 'k', { lease: 10 }).then(() => Date.now())
  await until(async () => (await numsub(server.port, lockChannel('msg:k-lock'))) === 1, 1000, 'the waiter to subscribe')
  // Its polls come about 0, 200, 600, 1000 ms after it subscribed: release just after the one at 200.
  await sleep(230)
  const releasedAt = Date.now()
  assert.is(await holder.release(), true)
  const latency = (await waiting) - releasedAt
  assert.ok(latency < 60, `woken ${latency} ms after the release (the next poll would take ~370 ms)`)
})

// ---------------------------------------------------------------------------
/** One holder and `count` waiters in separate processes; answers each waiter's latency after the release (ms). */
async function crossProcess(kind: string, where: string, key: string, count: number): Promise<number[]> {
  const holder = startWorker([kind, where, 'holder', key, '10'])
  const waiters: Worker[] = []
  try {
    assert.is((await holder.next('held')).held, true)
    for (let i = 0; i < count; i++) waiters.push(startWorker([kind, where, 'waiter', key, '10']))
    await Promise.all(waiters.map((w) => w.next('waiting')))
    await sleep(1500) // every waiter is inside acquire, its poll at its longest interval
    holder.child.stdin!.write('release\n')
    const released = await holder.next('released')
    assert.is(released.removed, true)
    const proceeded = await Promise.all(waiters.map((w) => w.next('proceeded')))
    for (const p of proceeded) assert.is(p.held, false, 'waiters go on without taking the lock')
    const codes = await Promise.all([holder, ...waiters].map((w) => w.exited))
    assert.equal(codes, [0, ...waiters.map(() => 0)])
    return proceeded.map((p) => (p.at as number) - (released.at as number))
  } finally {
    for (const w of [holder, ...waiters]) if (w.child.exitCode === null) w.child.kill('SIGKILL')
  }
}

const xproc = suite<{ redis: RedisServer; memcached: MemcachedServer }>('locks: across processes')

xproc.before(async (ctx) => {
  ;[ctx.redis, ctx.memcached] = await Promise.all([startRedis(), startMemcached()])
})
xproc.after(async (ctx) => {
  await Promise.all([ctx.redis.stop(), ctx.memcached.stop()])
})

xproc('redis: 4 waiter processes go on after the release, woken by pub/sub within 100 ms', async ({ redis }) => {
  const latencies = await crossProcess('redis', redis.url, 'xr', 4)
  console.log(`    redis cross-process wake-up latencies (ms): ${latencies.join(', ')}`)
  for (const latency of latencies)
    assert.ok(latency >= 0 && latency < 100, `a waiter went on ${latency} ms after the release`)
})

xproc('memcached: 4 waiter processes go on after the release, within the polling bound', async ({ memcached }) => {
  const latencies = await crossProcess('memcached', memcached.server, 'xm', 4)
  console.log(`    memcached cross-process wake-up latencies (ms): ${latencies.join(', ')}`)
  for (const latency of latencies)
    assert.ok(latency >= 0 && latency < 150, `a waiter went on ${latency} ms after the release`)
})

xproc.run()
pubsub.run()

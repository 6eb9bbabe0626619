// cachedStampede and @CachedStampede: one run of the function for a crowd of
// concurrent calls, within a process (coalescing, then the lock) and across
// worker processes on a shared Redis and a shared Memcached (the lock).
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import { Cache, CachedStampede, cachedStampede, MemoryCache, type Middleware } from '../lib/index.js'
import { MemcachedCache } from '../lib/memcached.js'
import { RedisCache } from '../lib/redis.js'
import { rejection } from './support/fixtures/backends.js'
import { runCrowd } from './support/fixtures/workers.js'
import { type MemcachedServer, type RedisServer, startMemcached, startRedis } from './support/servers.js'

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** A cache that counts the commands that reach it, by name, and the lock attempts that reach its backend. */
function countingCache(): { cache: MemoryCache; count: Map<string, number> } {
  const count = new Map<string, number>()
  const counter: Middleware = async (ctx, next) => {
    count.set(ctx.command, (count.get(ctx.command) ?? 0) + 1)
    await next()
  }
  const cache = new MemoryCache({ plugins: [counter] })
  const { backend } = cache
  const add = backend.add.bind(backend)
  backend.add = (key, value, ttl) => {
    if (key.endsWith('-lock')) count.set('lock', (count.get('lock') ?? 0) + 1)
    return add(key, value, ttl)
  }
  return { cache, count }
}

const inProcess = suite('cachedStampede: in one process')

inProcess(
  '20 concurrent calls with equal arguments: one getOrSet each, one lock attempt, one call; all get its result',
  async () => {
    const { cache, count } = countingCache()
    let calls = 0
    const load = cachedStampede(
      async function load(id: string, opts: { deep: boolean }) {
        calls++
        await sleep(50)
        return { id, deep: opts.deep }
      },
      { cache, lease: 5, ttl: 60 },
    )
    const results = await Promise.all(Array.from({ length: 20 }, () => load('42', { deep: true })))
    assert.is(calls, 1)
    assert.is(count.get('lock'), 1, 'one lock attempt: the calls share one flight')
    assert.is(count.get('getOrSet'), 20, 'each call is a getOrSet of the cache')
    for (const result of results) assert.equal(result, { id: '42', deep: true })
    assert.is(load.cache, cache)

    await load('42', { deep: true })
    assert.is(calls, 1, 'a later call is a hit')
    assert.is(count.get('lock'), 1, 'and takes no lock')
    await Promise.all([load('42', { deep: false }), load('43', { deep: true })])
    assert.is(calls, 3, 'other arguments are other keys')
    const keys = [...((await cache.raw('keys')) as Iterable<string>)]
    assert.equal(
      keys.filter((k) => k.endsWith('-lock')),
      [],
      'every lock was released',
    )
    assert.is(keys.length, 3)
  },
)

inProcess('two wrappers of one function share no coalescing, yet the lock keeps it to one call', async () => {
  const cache = new MemoryCache()
  let calls = 0
  async function report(): Promise<string> {
    calls++
    await sleep(100)
    return 'done'
  }
  const a = cachedStampede(report, { cache })
  const b = cachedStampede(report, { cache })
  const results = await Promise.all([a(), b(), a(), b()])
  assert.equal(results, ['done', 'done', 'done', 'done'])
  assert.is(calls, 1)
})

inProcess('a call that throws rejects every coalesced caller, and the next call runs again', async () => {
  const cache = new MemoryCache()
  let calls = 0
  const boom = new Error('boom')
  const flaky = cachedStampede(
    async function flaky(): Promise<number> {
      calls++
      await sleep(20)
      if (calls === 1) throw boom
      return 7
    },
    { cache },
  )
  const errors = await Promise.all([0, 1, 2].map(() => rejection(flaky())))
  for (const error of errors) assert.is(error, boom)
  assert.is(calls, 1)
  assert.is(await flaky(), 7)
  assert.is(calls, 2)
})

inProcess('options: cacheRead false calls again; bad options throw when wrapping', async () => {
  const cache = new MemoryCache()
  let calls = 0
  const f = cachedStampede(
    async function f() {
      return ++calls
    },
    { cache },
  )
  assert.is(await f(), 1)
  assert.is(await f(), 1)
  assert.is(await f.options({ cacheRead: false })(), 2)
  assert.throws(() => cachedStampede(async () => 1, { cache, lease: 0 }), RangeError)
  assert.throws(() => cachedStampede(async () => 1, { cache, lease: 'soon' as never }), RangeError)
  // A negative lease is told what a lease must be, not that 0 means none (0 is refused too).
  assert.throws(
    () => cachedStampede(async () => 1, { cache, lease: -1 }),
    (error: Error) =>
      /lease must be a number of seconds above 0/.test(error.message) && !/0 or null/.test(error.message),
  )
  assert.throws(() => cachedStampede(async () => 1, { cache, leese: 1 } as never), /unknown option "leese"/)
  assert.throws(() => cachedStampede(async () => 1, {} as never), /cache option is required/)
})

inProcess('@CachedStampede: concurrent calls of a decorated method run it once', async () => {
  const cache = new MemoryCache()
  let calls = 0
  class Reports {
    @CachedStampede({ cache, lease: 5 })
    async build(name: string): Promise<string> {
      calls++
      await sleep(50)
      return `report ${name}`
    }
  }
  const reports = new Reports()
  const results = await Promise.all(Array.from({ length: 10 }, () => reports.build('q1')))
  assert.is(calls, 1)
  for (const result of results) assert.is(result, 'report q1')
  const stored = [...((await cache.raw('keys')) as Iterable<string>)]
  assert.equal(
    stored.map((key) => key.replace(/#[0-9a-f]{8}(?=\()/, '')),
    ['Reports.build("q1")'],
  )
  assert.is(await cache.get(stored[0]!), 'report q1')
})

inProcess('a cache that cannot lock still answers: the function is called', async () => {
  const broken: Middleware = async (ctx, next) => {
    if (ctx.command === 'add' || ctx.command === 'get') throw new Error('down')
    await next()
  }
  const cache = new Cache({ plugins: [broken] })
  let calls = 0
  const f = cachedStampede(
    async function f() {
      return ++calls
    },
    { cache },
  )
  assert.is(await f(), 1)
})

inProcess.run()

// ---------------------------------------------------------------------------
const xproc = suite<{ redis: RedisServer; memcached: MemcachedServer }>('cachedStampede: across processes')

xproc.before(async (ctx) => {
  ;[ctx.redis, ctx.memcached] = await Promise.all([startRedis(), startMemcached()])
})
xproc.after(async (ctx) => {
  await Promise.all([ctx.redis.stop(), ctx.memcached.stop()])
})

/** 4 worker processes, 5 concurrent calls each, started together; answers how often the function ran. */
async function crowd(kind: string, where: string, namespace: string, open: () => Cache): Promise<number> {
  const results = await runCrowd([kind, where, 'stampede', namespace, '5'], 4)
  for (const { values } of results) assert.equal(values, Array(5).fill('report x'))
  await using cache = open()
  return Number(await cache.get('runs'))
}

xproc('redis: 4 processes × 5 concurrent calls run the function once in total', async ({ redis }) => {
  const runs = await crowd(
    'redis',
    redis.url,
    'st-redis',
    () => new RedisCache({ url: redis.url, namespace: 'st-redis' }),
  )
  assert.is(runs, 1)
})

xproc('memcached: 4 processes × 5 concurrent calls run the function once in total', async ({ memcached }) => {
  const runs = await crowd(
    'memcached',
    memcached.server,
    'st-mc',
    () => new MemcachedCache({ servers: [memcached.server], namespace: 'st-mc' }),
  )
  assert.is(runs, 1)
})

xproc.run()

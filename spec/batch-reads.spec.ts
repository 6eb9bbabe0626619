// Batched reads (`batch: true`) on real servers started by the harness: the gets of one tick reach Redis as one
// MGET (one per hash slot on a Cluster, a plain GET for a lone key) and each memcached connection in one write, while
// values, misses, bytes, errors, timeouts and plugins behave as for single gets.
import { execFile } from 'node:child_process'
import * as net from 'node:net'
import { promisify } from 'node:util'
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import {
  BackendError,
  BaseCache,
  type Context,
  HitMissRatioPlugin,
  InvalidKeyError,
  JsonSerializer,
  MsgPackSerializer,
  TimeoutError,
} from '../lib/index.js'
import { MemcachedBackend, MemcachedCache } from '../lib/memcached.js'
import { RedisBackend, RedisCache } from '../lib/redis.js'
import { registerConformance } from '../lib/testing/index.js'
import { childEnv } from './support/children.js'
import { rejection, watchUnhandled } from './support/fixtures/backends.js'
import {
  type MemcachedServer,
  type RedisCluster,
  type RedisServer,
  redisCommand,
  startMemcached,
  startRedis,
  startRedisCluster,
} from './support/servers.js'

/** How many times each command ran on `port` since the last reset: `{ get: 2, mget: 1 }`. */
async function commandCounts(port: number): Promise<Record<string, number>> {
  const stats = String(await redisCommand(port, 'INFO', 'commandstats'))
  const counts: Record<string, number> = {}
  for (const [, name, calls] of stats.matchAll(/cmdstat_([a-z|]+):calls=(\d+)/g)) counts[name!] = Number(calls)
  return counts
}

async function resetStats(port: number): Promise<void> {
  await redisCommand(port, 'CONFIG', 'RESETSTAT')
}

/** A middleware that records what each get's plugins see: the key asked for and the result. */
function recorder(seen: Array<[unknown, unknown]>) {
  return async (ctx: Context, next: () => Promise<void>): Promise<void> => {
    await next()
    if (ctx.command === 'get') seen.push([ctx.args.key, ctx.result])
  }
}

/** Keeps the process alive while a test waits on timers that do not (the deadline's). */
async function alive<T>(work: () => Promise<T>): Promise<T> {
  const timer = setInterval(() => {}, 1000)
  try {
    return await work()
  } finally {
    clearInterval(timer)
  }
}

// ---------------------------------------------------------------------------
const redis = suite<{ server: RedisServer }>('batched reads: redis')

redis.before(async (ctx) => {
  ctx.server = await startRedis()
})
redis.after(async ({ server }) => {
  await server.stop()
})

redis('the gets of one tick go as one MGET, each answered with its own value or miss', async ({ server }) => {
  await using cache = new RedisCache({ port: server.port, namespace: 'b', batch: true })
  await cache.multiSet([
    ['a', 1],
    ['b', 'two'],
    ['c', { three: 3 }],
  ])
  await resetStats(server.port)
  const gets = [cache.get('a'), cache.get('b'), cache.get('c'), cache.get('missing'), cache.get('gone', { default: 0 })]
  assert.equal(await Promise.all(gets), [1, 'two', { three: 3 }, undefined, 0])
  const counts = await commandCounts(server.port)
  assert.is(counts.mget, 1, 'one MGET')
  assert.is(counts.get, undefined, 'no GET')

  // Gets issued in a loop, and through asynchronous middleware, land in one batch too.
  const seen: Array<[unknown, unknown]> = []
  await using traced = new RedisCache({ port: server.port, namespace: 'b', batch: true, plugins: [recorder(seen)] })
  await resetStats(server.port)
  const keys = ['a', 'b', 'c', 'x', 'y']
  const values = await Promise.all(keys.map((key) => traced.get(key)))
  assert.equal(values, [1, 'two', { three: 3 }, undefined, undefined])
  assert.equal((await commandCounts(server.port)).mget, 1)
  assert.equal(
    seen.sort(([a], [b]) => String(a).localeCompare(String(b))),
    keys.map((key, i) => [key, values[i]]).sort(([a], [b]) => String(a).localeCompare(String(b))),
    'the plugins see each get with its own key and result',
  )
})

redis('a lone get sends a plain GET; gets of two ticks send two requests', async ({ server }) => {
  await using cache = new RedisCache({ port: server.port, namespace: 'lone', batch: true })
  await cache.set('k', 'v')
  await resetStats(server.port)
  assert.is(await cache.get('k'), 'v')
  let counts = await commandCounts(server.port)
  assert.is(counts.get, 1)
  assert.is(counts.mget, undefined)
  await resetStats(server.port)
  const first = [cache.get('k'), cache.get('m')]
  await new Promise((resolve) => setImmediate(resolve))
  const second = [cache.get('n'), cache.get('o')]
  assert.equal(await Promise.all([...first, ...second]), ['v', undefined, undefined, undefined])
  counts = await commandCounts(server.port)
  assert.is(counts.mget, 2)
})

redis('a long reply is answered in halves, the next gets of the first half sent in between', async ({ server }) => {
  const { createClient } = await import('@redis/client')
  const client = createClient({ socket: { port: server.port, host: '127.0.0.1' } })
  client.on('error', () => {})
  await client.connect()
  const log: string[] = []
  const send = client.sendCommand.bind(client)
  client.sendCommand = ((args: string[], options?: object) => {
    log.push(`${args[0]} ${args.length - 1}`)
    return send(args, options)
  }) as typeof client.sendCommand
  try {
    await using cache = new RedisCache({ client, namespace: 'halves', batch: true })
    const n = 100
    await cache.multiSet(Array.from({ length: n }, (_, i) => [`k${i}`, i] as const))
    log.length = 0
    const answers = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const first = await cache.get(`k${i}`)
        log.push(`answered ${i}`)
        return [first, await cache.get(`k${i}`)] // its read is over: read again
      }),
    )
    assert.equal(
      answers,
      Array.from({ length: n }, (_, i) => [i, i]),
      'each get its own value, in both halves',
    )
    const answered = (from: number, to: number): string[] =>
      Array.from({ length: to - from }, (_, i) => `answered ${from + i}`)
    assert.equal(
      log,
      ['MGET 100', ...answered(0, 50), 'MGET 50', ...answered(50, 100), 'MGET 50'],
      'the second half answered once the gets of the first are sent; replies of 50 answered at once',
    )
  } finally {
    await client.close()
  }
})

/**
 * Issues, in one tick and from inside a microtask (where a write's own continuation would run before the tick's
 * end), gets of `key` followed by a write of it: every get must answer the value from before the write.
 */
async function getsThenWrite(
  cache: { get(key: string): Promise<unknown>; set(key: string, value: unknown): Promise<unknown> },
  key: string,
): Promise<unknown[]> {
  await cache.set(key, 'before')
  await null
  const gets = [cache.get(key), cache.get(key), cache.get(`${key}:other`)]
  const write = cache.set(key, 'after')
  const answers = await Promise.all(gets)
  await write
  assert.is(await cache.get(key), 'after')
  return answers.slice(0, 2)
}

redis('a write issued after gets in the same tick does not overtake them', async ({ server }) => {
  await using cache = new RedisCache({ port: server.port, namespace: 'order', batch: true })
  for (let round = 0; round < 20; round++) {
    assert.equal(await getsThenWrite(cache, `k${round}`), ['before', 'before'], `round ${round}`)
  }
  const backend = new RedisBackend({ port: server.port, batch: true })
  try {
    // Each kind of write sends the waiting gets first.
    const writes: Array<[string, () => Promise<unknown>]> = [
      ['add', () => backend.add('o:add', 'x', 0)],
      ['multiSet', () => backend.multiSet([['o:multiSet', 'x']], 0)],
      ['delete', () => backend.delete('o:delete')],
      ['deleteIf', () => backend.deleteIf('o:deleteIf', 'before')],
      ['increment', () => backend.increment('o:increment', 1)],
      ['expire', () => backend.expire('o:expire', 0.001)],
      ['raw', () => backend.raw('set', ['o:raw', 'x'])],
    ]
    for (const [name, write] of writes) {
      const key = `o:${name}`
      await backend.set(key, name === 'increment' ? '1' : 'before', 0)
      await null
      const read = backend.get(key)
      const done = write()
      assert.is(await read, name === 'increment' ? '1' : 'before', name)
      await done
    }
  } finally {
    await backend.close()
  }
})

redis('without batch, the gets of one tick are one GET each', async ({ server }) => {
  await using cache = new RedisCache({ port: server.port, namespace: 'unbatched' })
  await resetStats(server.port)
  await Promise.all(['a', 'b', 'c'].map((key) => cache.get(key)))
  const counts = await commandCounts(server.port)
  assert.is(counts.get, 3)
  assert.is(counts.mget, undefined)
})

redis('bytes and text read in one tick are two MGETs, each reply decoded for its own kind', async ({ server }) => {
  const backend = new RedisBackend({ port: server.port, batch: true })
  const text = new BaseCache({ backend, serializer: new JsonSerializer(), namespace: 'mixed' })
  const bytes = new BaseCache({ backend, serializer: new MsgPackSerializer(), namespace: 'mixed-bin' })
  try {
    const blob = Uint8Array.from([0, 255, 0xc3, 0x28, 10, 13])
    await text.multiSet([
      ['t1', 'é'],
      ['t2', [1]],
    ])
    await bytes.multiSet([
      ['b1', blob],
      ['b2', { d: new Date(0) }],
    ])
    await resetStats(server.port)
    const got = await Promise.all([text.get('t1'), bytes.get('b1'), text.get('t2'), bytes.get('b2'), bytes.get('b3')])
    assert.is(got[0], 'é')
    assert.equal([...(got[1] as Uint8Array)], [...blob])
    assert.equal(got[2], [1])
    assert.equal(got[3], { d: new Date(0) })
    assert.is(got[4], undefined)
    assert.is((await commandCounts(server.port)).mget, 2)
  } finally {
    await backend.close()
  }
})

redis('?batch=true in a URL turns it on; anything but true or false is refused', async ({ server }) => {
  await using cache = RedisCache.fromUrl(`redis://127.0.0.1:${server.port}?batch=true&namespace=url`)
  await resetStats(server.port)
  assert.equal(await Promise.all([cache.get('a'), cache.get('b')]), [undefined, undefined])
  assert.is((await commandCounts(server.port)).mget, 1)
  assert.throws(() => RedisCache.fromUrl(`redis://127.0.0.1:${server.port}?batch=yes`), /batch.*true or false/)
  assert.throws(() => new RedisCache({ batch: 'yes' as unknown as boolean }), /batch must be true or false/)
})

redis('an MGET the server refuses fails every get of the batch with a BackendError', async ({ server }) => {
  await redisCommand(server.port, 'ACL', 'SETUSER', 'nomget', 'on', '>pw', '~*', '+@all', '-mget')
  await using cache = new RedisCache({ port: server.port, username: 'nomget', password: 'pw', batch: true })
  await cache.set('k', 'v')
  const unhandled = watchUnhandled()
  try {
    const errors = await Promise.all([rejection(cache.get('k')), rejection(cache.get('l')), rejection(cache.get('m'))])
    for (const error of errors) {
      assert.instance(error, BackendError)
      assert.match((error as Error).message, /\[oniocache\] \[redis 127\.0\.0\.1:\d+\] .*NOPERM/)
    }
    assert.is(await cache.get('k'), 'v', 'a lone get is a GET, which the user may run')
    unhandled.check()
  } finally {
    unhandled.stop()
  }
})

redis('a stopped server fails every get of the batch at once with a BackendError', async () => {
  const server = await startRedis()
  await using cache = new RedisCache({ port: server.port, batch: true, timeout: 5 })
  await cache.set('k', 'v')
  await server.kill('SIGKILL')
  const started = performance.now()
  const errors = await Promise.all([rejection(cache.get('k')), rejection(cache.get('l'))])
  for (const error of errors) assert.instance(error, BackendError)
  assert.ok(performance.now() - started < 2000, 'not after the timeout')
  await server.stop()
})

/** Gets of one batch on a paused server: one with a short timeout fails alone; the others answer once it resumes. */
async function ownTimeouts(
  cache: {
    set(key: string, value: unknown): Promise<unknown>
    get(key: string, o: { timeout: number }): Promise<unknown>
  },
  server: { pause(): Promise<void>; resume(): Promise<void>; readonly paused: boolean },
): Promise<void> {
  await cache.set('k', 'v')
  await server.pause()
  try {
    const impatient = rejection(cache.get('k', { timeout: 0.05 }))
    const patient = cache.get('k', { timeout: 5 })
    const other = cache.get('other', { timeout: 5 })
    assert.instance(await alive(() => impatient), TimeoutError)
    await server.resume()
    assert.equal(await Promise.all([patient, other]), ['v', undefined])
  } finally {
    if (server.paused) await server.resume()
  }
}

redis('each get of a batch keeps its own timeout', async ({ server }) => {
  await using cache = new RedisCache({ port: server.port, namespace: 'slow', batch: true })
  await ownTimeouts(cache, server)
})

redis('plugins count batched gets as they count single ones', async ({ server }) => {
  const ratio = new HitMissRatioPlugin()
  await using cache = new RedisCache({ port: server.port, namespace: 'ratio', batch: true, plugins: [ratio] })
  await cache.set('hit', 1)
  await Promise.all([cache.get('hit'), cache.get('miss'), cache.get('hit'), cache.get('miss2')])
  assert.equal(cache.hitMissRatio, { hits: 2, total: 4, hitRatio: 0.5 })
})

// ---------------------------------------------------------------------------
const cluster = suite<{ cluster: RedisCluster }>('batched reads: redis cluster')

cluster.before(async (ctx) => {
  ctx.cluster = await startRedisCluster({ masters: 3 })
})
cluster.after(async ({ cluster: c }) => {
  await c.stop()
})

cluster('on a Cluster, the gets of one tick are one request per hash slot', async ({ cluster: c }) => {
  await using cache = new RedisCache({ cluster: c.rootNodes, batch: true })
  const keys = ['{a}1', '{a}2', '{a}3', '{b}1', '{b}2', '{c}1']
  await Promise.all(keys.map((key, i) => cache.set(key, i)))
  for (const node of c.nodes) await resetStats(node.port)
  assert.equal(await Promise.all([...keys, '{a}missing'].map((key) => cache.get(key))), [0, 1, 2, 3, 4, 5, undefined])
  let mgets = 0
  let gets = 0
  for (const node of c.nodes) {
    const counts = await commandCounts(node.port)
    mgets += counts.mget ?? 0
    gets += counts.get ?? 0
  }
  assert.is(mgets, 2, 'one MGET for the slot of {a} and one for that of {b}')
  assert.is(gets, 1, 'a plain GET for the lone key of {c}')

  // A long reply for one slot among others, answered in halves: each get still has its own value.
  const many = Array.from({ length: 150 }, (_, i) => (i % 3 === 0 ? `{b}m${i}` : `{a}m${i}`))
  await Promise.all(many.map((key, i) => cache.set(key, i)))
  assert.equal(
    await Promise.all(many.map((key) => cache.get(key))),
    many.map((_, i) => i),
  )
})

// ---------------------------------------------------------------------------
const memcached = suite<{ server: MemcachedServer; other: MemcachedServer }>('batched reads: memcached')

memcached.before(async (ctx) => {
  ctx.server = await startMemcached()
  ctx.other = await startMemcached()
})
memcached.after(async ({ server, other }) => {
  await server.stop()
  await other.stop()
})

/** The socket writes `work` makes (to any socket), and what it resolved to. */
async function countWrites<T>(work: () => Promise<T>): Promise<{ writes: number; result: T }> {
  const write = net.Socket.prototype.write
  let writes = 0
  net.Socket.prototype.write = function (this: net.Socket, ...args: Parameters<net.Socket['write']>) {
    writes++
    return write.apply(this, args)
  } as net.Socket['write']
  try {
    const result = await work()
    return { writes, result }
  } finally {
    net.Socket.prototype.write = write
  }
}

memcached('a write issued after gets in the same tick does not overtake them', async ({ server, other }) => {
  await using cache = new MemcachedCache({ servers: [server.server, other.server], namespace: 'order', batch: true })
  for (let round = 0; round < 20; round++) {
    assert.equal(await getsThenWrite(cache, `k${round}`), ['before', 'before'], `round ${round}`)
  }
})

memcached('the gets of one tick reach each connection of a server in one write', async ({ server, other }) => {
  await using cache = new MemcachedCache({
    servers: [server.server, other.server],
    namespace: 'b',
    batch: true,
    connectionsPerServer: 1,
  })
  const keys = Array.from({ length: 20 }, (_, i) => `k${i}`)
  await cache.multiSet(keys.map((key, i) => [key, i] as const))
  await cache.get('k0') // both servers' connections are open: none is opened during the count
  await cache.get('k1')
  const { writes, result } = await countWrites(() => Promise.all([...keys, 'missing'].map((key) => cache.get(key))))
  assert.equal(result, [...keys.map((_, i) => i), undefined])
  assert.is(writes, 2, 'one write per server')

  // With two connections a server, each key keeps the connection its other commands use: at most one write each.
  await using two = new MemcachedCache({ servers: [server.server, other.server], namespace: 'b', batch: true })
  await Promise.all(keys.map((key) => two.get(key)))
  const spread = await countWrites(() => Promise.all(keys.map((key) => two.get(key))))
  assert.equal(
    spread.result,
    keys.map((_, i) => i),
  )
  assert.ok(spread.writes >= 2 && spread.writes <= 4, `${spread.writes} writes for 2 servers × 2 connections`)
})

memcached('bytes and text in one batch, misses, and a bad key that fails alone', async ({ server }) => {
  const backend = new MemcachedBackend({ servers: [server.server], batch: true })
  const text = new BaseCache({ backend, serializer: new JsonSerializer(), namespace: 'mix' })
  const bytes = new BaseCache({ backend, serializer: new MsgPackSerializer(), namespace: 'mix' })
  try {
    await text.set('t', 'é')
    await bytes.set('b', { d: new Date(0), n: [1, 2] })
    const got = await Promise.all([
      text.get('t'),
      bytes.get('b'),
      text.get('missing'),
      rejection(text.get('bad\nkey')),
      bytes.get('b'),
    ])
    assert.equal(got.slice(0, 3), ['é', { d: new Date(0), n: [1, 2] }, undefined])
    assert.instance(got[3], InvalidKeyError)
    assert.equal(got[4], { d: new Date(0), n: [1, 2] })
  } finally {
    await backend.close()
  }
})

memcached('a stopped server fails every get of the batch with a BackendError', async () => {
  const server = await startMemcached()
  await using cache = new MemcachedCache({ servers: [server.server], batch: true, timeout: 5 })
  await cache.set('k', 'v')
  await server.kill('SIGKILL')
  const unhandled = watchUnhandled()
  try {
    const errors = await Promise.all([rejection(cache.get('k')), rejection(cache.get('l')), rejection(cache.get('m'))])
    for (const error of errors) {
      assert.instance(error, BackendError)
      assert.match((error as Error).message, /\[oniocache\] \[memcached 127\.0\.0\.1:\d+\]/)
    }
    unhandled.check()
  } finally {
    unhandled.stop()
    await server.stop()
  }
})

memcached('each get of a batch keeps its own timeout', async ({ server }) => {
  await using cache = new MemcachedCache({ servers: [server.server], namespace: 'slow', batch: true })
  await ownTimeouts(cache, server)
})

memcached('plugins see batched gets as single ones', async ({ server }) => {
  const seen: Array<[unknown, unknown]> = []
  const ratio = new HitMissRatioPlugin()
  await using cache = new MemcachedCache({
    servers: [server.server],
    namespace: 'plug',
    batch: true,
    plugins: [ratio, recorder(seen)],
  })
  await cache.set('hit', 1)
  await Promise.all([cache.get('hit'), cache.get('miss')])
  assert.equal(cache.hitMissRatio, { hits: 1, total: 2, hitRatio: 0.5 })
  assert.equal(
    seen.sort(([a], [b]) => String(a).localeCompare(String(b))),
    [
      ['hit', 1],
      ['miss', undefined],
    ],
  )
  assert.throws(() => new MemcachedCache({ batch: 1 as unknown as boolean }), /batch must be true or false/)
})

// ---------------------------------------------------------------------------
const closing = suite('batched reads: close')

closing('gets issued right before close() are answered, and nothing stays open after it', async () => {
  const redisServer = await startRedis()
  const memcachedServer = await startMemcached()
  try {
    const fixture = new URL('./support/fixtures/batch-close.ts', import.meta.url).pathname
    // A connection reopened after close() would keep the child alive until it is killed.
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', fixture], {
      env: childEnv({ REDIS_PORT: String(redisServer.port), MEMCACHED: memcachedServer.server }),
      timeout: 15_000,
    })
    assert.equal(JSON.parse(stdout), ['r', null, null, 'm', null])
  } finally {
    await redisServer.stop()
    await memcachedServer.stop()
  }
})

// ---------------------------------------------------------------------------
// Every command behaves as without batch: the conformance suite, on servers of its own.
let conformanceRedis: Promise<RedisServer> | undefined
let conformanceMemcached: Promise<MemcachedServer> | undefined

const redisConformance = suite('batched reads: conformance, Redis')
registerConformance(
  redisConformance,
  async ({ namespace, serializer, ttl }) =>
    new RedisCache({ port: (await (conformanceRedis ??= startRedis())).port, namespace, serializer, ttl, batch: true }),
  { capabilities: { clearAll: true } },
)

const memcachedConformance = suite('batched reads: conformance, Memcached')
registerConformance(
  memcachedConformance,
  async ({ namespace, serializer, ttl }) =>
    new MemcachedCache({
      servers: [(await (conformanceMemcached ??= startMemcached())).server],
      namespace,
      serializer,
      ttl,
      batch: true,
    }),
  { capabilities: { clearNamespace: false, clearAll: true } },
)

const cleanup = suite('batched reads: conformance servers stop')
cleanup('the servers of the conformance suites are stopped', async () => {
  const started = await Promise.all([conformanceRedis, conformanceMemcached])
  for (const server of started) await server?.stop()
  assert.ok(
    started.every((server) => server !== undefined),
    'both suites ran against a server',
  )
})

redis.run()
cluster.run()
memcached.run()
closing.run()
redisConformance.run()
memcachedConformance.run()
cleanup.run()

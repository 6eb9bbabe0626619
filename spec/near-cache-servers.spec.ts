// NearCachePlugin on real servers and real processes: a reader process keeps copies while this process (or
// redis-cli, or expiry) changes the keys. Redis tells the reader itself (server-assisted invalidation); Memcached
// needs a RedisBus. Propagation is measured from the writer's promise to the reader's first read of the new value;
// a stale read is a read that began 20 ms or more after a newer write had resolved and still saw an older value.
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { performance } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { promisify } from 'node:util'
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import { type ErrorMessage, NearCachePlugin } from '../lib/index.js'
import { MemcachedCache } from '../lib/memcached.js'
import { RedisBus, RedisCache } from '../lib/redis.js'
import { childEnv } from './support/children.js'
import { rejection, sleep } from './support/fixtures/backends.js'
import { startWorker, type Worker } from './support/fixtures/workers.js'
import { type MemcachedServer, type RedisServer, redisCommand, startMemcached, startRedis } from './support/servers.js'

const BOUND_MS = 20
const WORKER = 'spec/support/fixtures/near-worker.ts'
const at = (): number => performance.timeOrigin + performance.now()

interface Context {
  redis: RedisServer
  memcached: MemcachedServer
}
const test = suite<Context>('near cache on servers')

test.before(async (context) => {
  ;[context.redis, context.memcached] = await Promise.all([startRedis(), startMemcached()])
})
test.after(async ({ redis, memcached }) => {
  await Promise.all([redis?.stop(), memcached?.stop()])
})

function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * p) - 1)]!
}
const p99 = (samples: number[]): number => percentile(samples, 0.99)
const figures = (samples: number[]): string =>
  `p50 ${percentile(samples, 0.5).toFixed(2)} ms, p99 ${p99(samples).toFixed(2)} ms, ` +
  `max ${Math.max(...samples).toFixed(2)} ms`

/** Starts a reader process and waits until it keeps copies. */
async function reader(kind: 'redis' | 'memcached', context: Context, mode: string, keys: string[]): Promise<Worker> {
  const worker = startWorker([kind, context.redis.url, context.memcached.server, mode, keys.join(',')], WORKER)
  await worker.next('live')
  return worker
}

async function finish(worker: Worker): Promise<Record<string, unknown>> {
  worker.child.stdin!.write('stop\n')
  const results = await worker.next('results')
  assert.is(await worker.exited, 0)
  return results
}

/**
 * Writes `count` new values of one key through `write` and waits, after each, for the reader to see it: answers
 * the delays from each write's resolution to the reader's first read of its value.
 */
async function propagation(
  worker: Worker,
  key: string,
  count: number,
  write: (value: number) => Promise<unknown>,
): Promise<number[]> {
  const delays: number[] = []
  for (let i = 1; i <= count; i++) {
    await write(i)
    const written = at()
    const seen = await worker.take((l) => l.event === 'seen' && l.key === key && l.value === i, `value ${i}`)
    delays.push((seen.at as number) - written)
  }
  return delays
}

/** redis-cli reading commands from its stdin, one reply per line. */
function redisCli(port: number): { send(line: string): Promise<string>; close(): void; child: ChildProcess } {
  const child = spawn('redis-cli', ['-h', '127.0.0.1', '-p', String(port)], { stdio: ['pipe', 'pipe', 'inherit'] })
  const waiting: Array<(line: string) => void> = []
  createInterface({ input: child.stdout! }).on('line', (line) => waiting.shift()?.(line))
  return {
    child,
    send: (line) =>
      new Promise((resolve) => {
        waiting.push(resolve)
        child.stdin!.write(`${line}\n`)
      }),
    close: () => child.stdin!.end(),
  }
}

test('Redis: another process sees writes through oniocache within 20 ms p99 over 1,000 writes', async (context) => {
  const writer = new RedisCache({ url: context.redis.url, namespace: 'near' })
  await writer.set('p1', 0)
  const worker = await reader('redis', context, 'watch', ['p1'])
  try {
    const delays = await propagation(worker, 'p1', 1000, (i) => writer.set('p1', i))
    const results = await finish(worker)
    const stats = results.stats as { hits: number; invalidations: number }
    console.log(`  oniocache writes: ${figures(delays)}`)
    assert.ok(p99(delays) <= BOUND_MS, `p99 ${p99(delays)} ms`)
    // The reader answered from its copy between writes, and each write dropped it.
    assert.ok(stats.hits > 1000, `hits ${stats.hits}`)
    assert.ok(stats.invalidations >= 1000, `invalidations ${stats.invalidations}`)
  } finally {
    worker.child.kill()
    await writer.close()
  }
})

test('Redis: writes from redis-cli are seen within 20 ms p99 over 1,000 writes', async (context) => {
  const cli = redisCli(context.redis.port)
  await cli.send('SET near:p2 0')
  const worker = await reader('redis', context, 'watch', ['p2'])
  try {
    // The JSON serializer reads the number that redis-cli wrote as text.
    const delays = await propagation(worker, 'p2', 1000, async (i) => {
      const reply = await cli.send(`SET near:p2 ${i}`)
      if (reply !== 'OK') throw new Error(`redis-cli answered ${reply}`)
    })
    await finish(worker)
    console.log(`  redis-cli writes: ${figures(delays)}`)
    assert.ok(p99(delays) <= BOUND_MS, `p99 ${p99(delays)} ms`)
  } finally {
    worker.child.kill()
    cli.close()
  }
})

test('Redis: a key that expires is dropped from the copy within 250 ms of its expiry', async (context) => {
  const keys = Array.from({ length: 20 }, (_, i) => `e${i}`)
  const worker = await (async () => {
    await redisCommand(context.redis.port, 'SET', 'near:e0', '1')
    return reader('redis', context, 'watch', keys)
  })()
  try {
    const delays: number[] = []
    for (const key of keys) {
      await redisCommand(context.redis.port, 'SET', `near:${key}`, '7', 'PX', '100')
      const expires = at() + 100
      await worker.take((l) => l.event === 'seen' && l.key === key && l.value === 7, `${key} read`)
      const gone = await worker.take((l) => l.event === 'seen' && l.key === key && l.value === null, `${key} gone`)
      delays.push((gone.at as number) - expires)
    }
    await finish(worker)
    console.log(`  expiry: longest ${Math.max(...delays).toFixed(1)} ms after the expiry`)
    assert.ok(Math.max(...delays) <= 250, `longest ${Math.max(...delays)} ms`)
  } finally {
    worker.child.kill()
  }
})

/**
 * Writes new versions of hot keys in this process for `rounds` writes, in bursts with quiet spells between them
 * (a stale copy left behind by a burst is then read, not overwritten at once), while a reader reads them, and
 * counts the reader's stale reads. `during` runs once, halfway.
 */
async function race(
  worker: Worker,
  keys: string[],
  rounds: number,
  write: (key: string, value: number) => Promise<unknown>,
  during?: () => Promise<void>,
): Promise<{ stale: number; stalled: number; reads: number; stats: { hits: number }; errors: string[] }> {
  const written: Array<Array<[number, number]>> = keys.map(() => []) // per key: [version, resolved at]
  let round = 0
  const writers = [0, 1].map(async () => {
    while (round < rounds) {
      const n = ++round
      const k = n % keys.length
      if (n === rounds >> 1 && during !== undefined) await during()
      await write(keys[k]!, n)
      written[k]!.push([n, at()])
      if (n % 100 === 0) await sleep(BOUND_MS + 10)
    }
  })
  await Promise.all(writers)
  await sleep(BOUND_MS * 2)
  const results = await finish(worker)
  const log = results.log as Array<[number, number, number, number]>
  let stale = 0
  let stalled = 0
  for (const [k, version, began, previous] of log) {
    // The newest version whose write had resolved BOUND_MS before the read began.
    let newest = 0
    let deadline = 0
    for (const [v, resolved] of written[k]!) {
      if (resolved + BOUND_MS <= began && v > newest) {
        newest = v
        deadline = resolved + BOUND_MS
      }
    }
    if (version >= newest) continue
    // A reader that did not run at all between the deadline and this read (descheduled on a busy machine) had no
    // turn to hear the invalidation waiting on its socket: counted apart, and bounded below.
    if (previous < deadline) stalled++
    else stale++
  }
  return {
    stale,
    stalled,
    reads: results.reads as number,
    stats: results.stats as { hits: number },
    errors: results.errors as string[],
  }
}

type Raced = Awaited<ReturnType<typeof race>>

/** A race's figures, printed; no stale read, few stalled ones, and a copy that answered most reads. */
function raceHeld(label: string, { stale, stalled, reads, stats }: Raced): void {
  console.log(`  ${label}: ${reads} reads, ${stats.hits} from the copy, ${stale} stale (${stalled} stalled)`)
  assert.is(stale, 0)
  assert.ok(stalled <= 10, `stalled ${stalled}`)
  assert.ok(reads > 1000 && stats.hits > 100, `reads ${reads}, hits ${stats.hits}`)
}

test('Redis: 10,000 writes racing a reader of the same hot keys: no stale read', async (context) => {
  const keys = ['h0', 'h1', 'h2', 'h3']
  const writer = new RedisCache({ url: context.redis.url, namespace: 'near' })
  await writer.multiSet(keys.map((key) => [key, 0]))
  const worker = await reader('redis', context, 'race', keys)
  try {
    raceHeld('race (Redis)', await race(worker, keys, 10_000, (key, value) => writer.set(key, value)))
  } finally {
    worker.child.kill()
    await writer.close()
  }
})

test('Redis: CLIENT KILL of the invalidation connection amid writes: reported, no stale read', async (context) => {
  const keys = ['k0', 'k1', 'k2', 'k3']
  const writer = new RedisCache({ url: context.redis.url, namespace: 'near' })
  await writer.multiSet(keys.map((key) => [key, 0]))
  const worker = await reader('redis', context, 'race', keys)
  let killed = 0
  const kill = async (): Promise<void> => {
    const list = String(await redisCommand(context.redis.port, 'CLIENT', 'LIST'))
    for (const line of list.split('\n')) {
      if (!line.includes('name=oniocache-invalidations')) continue
      const id = /(?:^|\s)id=(\d+)/.exec(line)![1]!
      killed += Number(await redisCommand(context.redis.port, 'CLIENT', 'KILL', 'ID', id))
    }
  }
  try {
    const { stale, stalled, reads, stats, errors } = await race(
      worker,
      keys,
      10_000,
      (key, value) => writer.set(key, value),
      kill,
    )
    console.log(
      `  CLIENT KILL: ${reads} reads, ${stats.hits} from the copy, ${stale} stale (${stalled} stalled); ` +
        `reported: ${errors[0]}`,
    )
    assert.is(killed, 1)
    assert.is(stale, 0)
    assert.ok(stalled <= 10, `stalled ${stalled}`)
    assert.ok(
      errors.some((e) => e.startsWith('nearCache:')),
      `reports: ${errors.join('; ')}`,
    )
    // The copy was used again after the stream came back.
    assert.ok(stats.hits > 100, `hits ${stats.hits}`)
  } finally {
    worker.child.kill()
    await writer.close()
  }
})

test('Memcached with a RedisBus: writes seen within 20 ms p99 over 1,000, no stale read in 10,000', async (context) => {
  const bus = new RedisBus({ url: context.redis.url })
  const near = new NearCachePlugin({ bus })
  const writer = new MemcachedCache({ servers: [context.memcached.server], namespace: 'near', plugins: [near] })
  await writer.set('m0', 0)
  let worker = await reader('memcached', context, 'watch', ['m0'])
  try {
    const delays = await propagation(worker, 'm0', 1000, (i) => writer.set('m0', i))
    await finish(worker)
    console.log(`  Memcached + RedisBus: ${figures(delays)}`)
    assert.ok(p99(delays) <= BOUND_MS, `p99 ${p99(delays)} ms`)

    const keys = ['r0', 'r1', 'r2', 'r3']
    await writer.multiSet(keys.map((key) => [key, 0]))
    worker = await reader('memcached', context, 'race', keys)
    raceHeld('race (Memcached + RedisBus)', await race(worker, keys, 10_000, (key, value) => writer.set(key, value)))
  } finally {
    worker.child.kill()
    await writer.close()
    await bus.close()
  }
})

test('Redis in process: other clients, FLUSHDB and eviction drop copies; tags too', async (context) => {
  const near = new NearCachePlugin()
  const cache = new RedisCache({ url: context.redis.url, namespace: 'inproc', plugins: [near] })
  const other = new RedisCache({ url: context.redis.url, namespace: 'inproc' })
  const keep = async (key: string): Promise<unknown> => {
    for (let i = 0; i < 200; i++) {
      await cache.get(key)
      const before = near.stats.hits
      const again = await cache.get(key)
      if (near.stats.hits > before) return again
      await sleep(2)
    }
    throw new Error(`${key} was never kept`)
  }
  const changed = async (key: string, value: unknown): Promise<void> => {
    for (let i = 0; i < 200 && (await cache.get(key)) !== value; i++) await sleep(2)
    assert.equal(await cache.get(key), value)
  }
  try {
    await other.set('a', 1)
    assert.is(await keep('a'), 1)
    await other.set('a', 2)
    await changed('a', 2)
    assert.is(await keep('a'), 2)
    await redisCommand(context.redis.port, 'FLUSHDB')
    await changed('a', undefined)
    // Tagged: invalidating the tag elsewhere drops the entry, whose own key never changed.
    await other.set('t', 'v', { tags: ['group'] })
    assert.is(await keep('t'), 'v')
    await other.invalidateTags(['group'])
    await changed('t', undefined)
    // A key outside the cache's namespace is never kept: the stream covers the namespace only.
    await other.set('x', 1, { namespace: 'elsewhere' })
    await cache.get('x', { namespace: 'elsewhere' })
    const before = near.stats.hits
    await cache.get('x', { namespace: 'elsewhere' })
    assert.is(near.stats.hits, before)
  } finally {
    await cache.close()
    await other.close()
  }
})

test('Redis: eviction under maxmemory drops the copy', async () => {
  const redis = await startRedis({ args: ['--maxmemory', '2mb', '--maxmemory-policy', 'allkeys-random'] })
  const near = new NearCachePlugin()
  const cache = new RedisCache({ url: redis.url, plugins: [near] })
  const other = new RedisCache({ url: redis.url })
  try {
    await other.set('victim', 'v')
    for (let i = 0; i < 100 && near.stats.size === 0; i++) {
      await cache.get('victim')
      await sleep(2)
    }
    assert.is(near.stats.size, 1)
    // Fill past maxmemory until the victim is evicted, then wait for the copy to go.
    const big = 'x'.repeat(10_000)
    for (let i = 0; (await other.exists('victim')) && i < 2000; i++) await other.set(`filler${i}`, big)
    assert.is(await other.exists('victim'), false)
    for (let i = 0; i < 100 && near.stats.size > 0; i++) await sleep(2)
    assert.is(near.stats.size, 0)
    assert.is(await cache.get('victim'), undefined)
  } finally {
    await cache.close()
    await other.close()
    await redis.stop()
  }
})

test('a Redis Cluster is refused with an error that names the way out', async () => {
  const cache = new RedisCache({ cluster: ['127.0.0.1:1'], plugins: [new NearCachePlugin()] })
  const error = (await rejection(cache.get('a'))) as Error
  assert.instance(error, TypeError)
  assert.match(error.message, /Cluster.*RedisBus/s)
  await cache.close()
})

test('a stream that cannot start is reported, and the cache works without the copy', async (context) => {
  const seen: ErrorMessage[] = []
  const listener = (message: unknown): void => {
    seen.push(message as ErrorMessage)
  }
  subscribe('oniocache:error', listener)
  const down = await startRedis()
  await down.stop()
  const bus = new RedisBus({ url: down.url })
  const near = new NearCachePlugin({ bus })
  const cache = new MemcachedCache({ servers: [context.memcached.server], namespace: 'nobus', plugins: [near] })
  try {
    await cache.set('a', 1)
    assert.is(await cache.get('a'), 1)
    assert.is(await cache.get('a'), 1)
    assert.is(near.stats.size, 0)
    for (let i = 0; i < 100 && !seen.some((m) => m.command === 'nearCache'); i++) await sleep(5)
    assert.ok(seen.some((m) => m.command === 'nearCache'))
  } finally {
    unsubscribe('oniocache:error', listener)
    await cache.close()
    await bus.close()
  }
})

test('a process whose bus points at a Redis that is down exits by itself once closed', async (context) => {
  const down = await startRedis()
  await down.stop()
  // Three at once: closing while the bus's first connection is still being made is a matter of timing.
  const runs = await Promise.all(
    [0, 1, 2].map(() =>
      promisify(execFile)(
        process.execPath,
        ['--import', 'tsx', 'spec/support/fixtures/bus-exit.ts', down.url, context.memcached.server],
        { cwd: new URL('..', import.meta.url).pathname, env: childEnv(), timeout: 15_000 },
      ),
    ),
  )
  for (const { stdout } of runs) assert.is(stdout, 'closed\n')
})

test('examples/near-cache.ts runs two processes and shows the copy dropped by the change', async (context) => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'examples/near-cache.ts'], {
    cwd: new URL('..', import.meta.url).pathname,
    env: childEnv({ REDIS_URL: context.redis.url, FORCE_COLOR: '0' }),
    timeout: 20_000,
  })
  assert.match(stdout, /child: {2}read again: \{"theme":"light"\} from the copy in this process/)
  assert.match(stdout, /child: {2}after the change: \{"theme":"dark"\} from Redis/)
  assert.ok(/stats \{ hits: 1, misses: 3, invalidations: 1, size: 1 \}/.test(stdout), stdout)
})

test.run()

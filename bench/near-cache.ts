// NearCachePlugin's hit path, measured in one run:
//
// `await cache.get(key)` on a `RedisCache` with `plugins: [new NearCachePlugin({ maxSize: 10_000, ttl: 60 })]`,
// answered from the plugin's local copy (no round trip), against `await map.get(key)` on a plain Map with the same
// keys (the floor: target ≥ 0.5×) and bentocache 1.6's L1 hit (`await bento.get({ key })` on a tiered store: memory
// L1 + Redis L2 + Redis bus, as its docs set one up; target ≥ 20×). KEYS hot keys of 100-byte strings, cycled, on a
// private redis-server this bench starts; measured as bench/support/interleaved.ts says (5 processes × 11
// interleaved rounds). Before measuring, each process checks that the copy holds every key and that bentocache
// answers every key from L1; after, that every measured near-cache get was a hit of the copy.
//
// `--smoke` runs every case once, briefly, in this process, with the same checks.
import { fileURLToPath } from 'node:url'
import { BentoCache, bentostore } from 'bentocache'
import { memoryDriver } from 'bentocache/drivers/memory'
import { redisBusDriver, redisDriver } from 'bentocache/drivers/redis'
import { NearCachePlugin } from '../lib/index.js'
import { RedisCache } from '../lib/redis.js'
import { startRedis } from '../spec/support/servers.js'
import {
  getOp,
  inProcesses,
  type Method,
  measureInterleaved,
  type Op,
  type Rates,
  ratesTable,
  targetRow,
} from './support/interleaved.js'

const KEYS = 1_000
const VALUE = 'x'.repeat(100)
/** How long the invalidation stream gets to become live after the first command, before the copy is warmed. */
const LIVE_MS = 50
const ENV = 'ONIOCACHE_BENCH_NEAR_PORT'
const smoke = process.argv.includes('--smoke')
const keys = Array.from({ length: KEYS }, (_, i) => `k${i}`)
const METHOD: Method = { keys, rounds: smoke ? 1 : 11, roundMs: 250, processes: smoke ? 1 : 5, smoke, smokeOps: 2_000 }

const NEAR = 'RedisCache + NearCachePlugin get-hit'
const MAP = 'Map get (awaited)'
const BENTO = 'bentocache get L1-hit (memory L1 + redis L2 + bus)'

const TARGETS = [
  { name: NEAR, base: MAP, min: 0.5, what: 'near-cache hit vs awaited Map.get' },
  { name: NEAR, base: BENTO, min: 20, what: 'near-cache hit vs bentocache L1 hit' },
]

function redisPort(): number {
  const value = process.env[ENV]
  if (value === undefined) throw new Error(`${ENV} is not set (run the file without --child)`)
  return Number(value)
}

/** A RedisCache whose NearCachePlugin holds every key, or an Error saying why not. */
async function nearCache(port: number): Promise<{ cache: RedisCache; plugin: NearCachePlugin }> {
  const plugin = new NearCachePlugin({ maxSize: 10_000, ttl: 60 })
  // A namespace, as services use: with the library's key builders the copy is keyed by the caller's key.
  const cache = new RedisCache({ host: '127.0.0.1', port, namespace: 'bench-near', plugins: [plugin] })
  // The first command attaches the plugin and starts its invalidation stream; the copy fills only once it is live.
  for (const key of keys) await cache.set(key, VALUE)
  await new Promise((resolve) => setTimeout(resolve, LIVE_MS))
  for (const key of keys) {
    const value = await cache.get(key)
    if (value !== VALUE) throw new Error(`near cache: ${key} read back from Redis as ${JSON.stringify(value)}`)
  }
  const { stats } = plugin
  if (stats.size !== KEYS) {
    await cache.close()
    throw new Error(
      `near cache: the copy holds ${stats.size} of ${KEYS} keys after one get of each, ${LIVE_MS} ms after the ` +
        `first command (stats ${JSON.stringify(stats)}): its invalidation stream was not live, or it dropped copies`,
    )
  }
  return { cache, plugin }
}

/** A tiered BentoCache (memory L1, Redis L2, Redis bus) with every key in L1, checked by its `cache:hit` events. */
async function bentoCache(port: number): Promise<BentoCache<{ tiered: ReturnType<typeof bentostore> }>> {
  const connection = { host: '127.0.0.1', port }
  const bento = new BentoCache({
    default: 'tiered',
    ttl: '1h',
    stores: {
      tiered: bentostore()
        .useL1Layer(memoryDriver({ maxSize: '100mb', maxItems: 10_000 }))
        .useL2Layer(redisDriver({ connection }))
        .useBus(redisBusDriver({ connection })),
    },
  })
  for (const key of keys) await bento.set({ key, value: VALUE })
  let l1 = 0
  const onHit = (event: { layer: 'l1' | 'l2' }): void => {
    if (event.layer === 'l1') l1++
  }
  bento.on('cache:hit', onHit)
  for (const key of keys) {
    const value = await bento.get<string>({ key })
    if (value !== VALUE) throw new Error(`bentocache: ${key} read back as ${JSON.stringify(value)}`)
  }
  bento.off('cache:hit', onHit)
  if (l1 !== KEYS) {
    await bento.disconnectAll()
    throw new Error(`bentocache: ${l1} of ${KEYS} gets were L1 hits after warming`)
  }
  return bento
}

async function measure(): Promise<Rates> {
  const port = redisPort()
  const { cache, plugin } = await nearCache(port)
  const bento = await bentoCache(port).catch(async (error: unknown) => {
    await cache.close()
    throw error
  })
  try {
    const map = new Map<string, string>(keys.map((key) => [key, VALUE]))
    const cases: Record<string, Op> = {
      [NEAR]: getOp(cache),
      // `map.get` answers no promise: the measuring loop awaits the plain value, as `await map.get(key)` does.
      [MAP]: getOp(map as unknown as { get(key: string): Promise<unknown> }),
      [BENTO]: (key) => bento.get<string>({ key }),
    }
    for (const [name, op] of Object.entries(cases)) {
      const value = await op('k1')
      if (value !== VALUE) throw new Error(`${name}: read back ${JSON.stringify(value)}`)
    }
    const before = plugin.stats
    const rates = await measureInterleaved(METHOD, cases)
    const after = plugin.stats
    if (after.misses !== before.misses || after.invalidations !== before.invalidations || after.size !== KEYS) {
      throw new Error(
        `near cache: not every measured get was a hit of the copy (stats before ${JSON.stringify(before)}, ` +
          `after ${JSON.stringify(after)})`,
      )
    }
    return rates
  } finally {
    await cache.close()
    await bento.disconnectAll()
  }
}

if (process.argv.includes('--child')) {
  process.stdout.write(JSON.stringify(await measure()))
} else {
  const redis = await startRedis()
  process.env[ENV] = String(redis.port) // the children inherit it
  let result: Awaited<ReturnType<typeof inProcesses>>
  try {
    result = await inProcesses(METHOD, fileURLToPath(import.meta.url), measure)
  } finally {
    await redis.stop()
  }
  const { processes, how } = result
  console.log('## NearCachePlugin: hits of the local copy in front of Redis\n')
  console.log(`${how}; ${KEYS} hot keys of 100-byte strings, cycled\n`)
  for (const line of ratesTable(processes)) console.log(line)
  console.log('\n| target | ratio per process | median | verdict |')
  console.log('| --- | --- | ---: | --- |')
  for (const target of TARGETS) {
    console.log(targetRow(processes, target.what, target.name, target.base, target.min, 2))
  }
}

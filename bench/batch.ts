// Batched reads (`batch: true`) on one private redis-server and one private memcached (`-t 1`), both started by
// the test harness; get (hit) of 100-byte values (Redis: the JSON of a 98-char string, which the caches parse and
// the raw client returns as text; Memcached: 100-char strings, stored raw by memjs and as JSON by the caches).
//
// 1. 1000 gets in flight: `RedisCache({ batch: true })` against the raw @redis/client `GET` (`createClient` with
//    its per-command timer off, as in bench/redis.ts): target ≥ 1.5×; `MemcachedCache({ batch: true })` against
//    memjs 1.3 (default options): target ≥ 3×. The caches without batch are measured beside them, for reference.
// 2. One get in flight: each batched cache against the same cache without batch: target ≥ 0.95×.
//
// Method: every case of a backend runs in each of PROCESSES fresh processes; in each, all cases are warmed up,
// then ROUNDS rounds visit them in a rotated order. With 1000 in flight, a ratio is the median of the per-round
// ratios of two cases run back to back (paired, as in bench/backend-runner.ts). With one in flight the two caches
// take turns op by op, each one's rate being its ops over the time of its own ops: a loopback round trip swings
// by 2× from one second to the next on the 2-core VM, which only op-by-op turns cancel. The verdict is the median
// over processes. `npm run bench` runs it; `--smoke` runs every case briefly in this process (figures mean nothing).
import { execFileSync } from 'node:child_process'
import { loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { createClient } from '@redis/client'
import memjs from 'memjs'
import { MemcachedCache } from '../lib/memcached.js'
import { RedisCache } from '../lib/redis.js'
import { serverVersions, startMemcached, startRedis } from '../spec/support/servers.js'
import { fmt, median, packageVersion } from './backend-runner.js'
import { IN_FLIGHT_FLAGS, inFlightFlagsText } from './support/in-flight-flags.js'

const smoke = process.argv.includes('--smoke')
const IN_FLIGHT = 1000
const KEYS = smoke ? 1000 : 10_000
/** Five: one process's rates move together (see backend-runner.ts, PROCESSES). */
const PROCESSES = smoke ? 1 : 5
const ROUNDS = smoke ? 1 : 7
/** Ops per round with 1000 in flight (per case), and per cache with one in flight. */
const IN_FLIGHT_OPS = smoke ? 2 * IN_FLIGHT : 60_000
const SEQUENTIAL_OPS = smoke ? 50 : 1_500
const STRING = 'x'.repeat(98)
const JSON_VALUE = JSON.stringify(STRING)
const VALUE = 'x'.repeat(100)
const REDIS_ENV = 'ONIOCACHE_BENCH_REDIS_PORT'
const MEMCACHED_ENV = 'ONIOCACHE_BENCH_MEMCACHED'

type Op = (key: string) => Promise<unknown>
interface Case {
  /** Key prefix: each client reads the keys it wrote. */
  prefix: string
  get: Op
  set(key: string): Promise<unknown>
  expected: unknown
  close(): Promise<unknown>
}
/** The rates (ops/s) of every round, by case; `sequential` holds each pair's rates as `a|b` → `[rateA, rateB][]`. */
interface Rates {
  inFlight: Record<string, number[]>
  sequential: Record<string, Array<[number, number]>>
}

const TARGETS = {
  inFlight: [
    { backend: 'Redis', name: 'RedisCache batch', base: '@redis/client', min: 1.5 },
    { backend: 'Memcached', name: 'MemcachedCache batch', base: 'memjs', min: 3 },
  ],
  sequential: [
    { backend: 'Redis', name: 'RedisCache batch', base: 'RedisCache', min: 0.95 },
    { backend: 'Memcached', name: 'MemcachedCache batch', base: 'MemcachedCache', min: 0.95 },
  ],
} as const

function env(name: string): string {
  const value = process.env[name]
  if (value === undefined) throw new Error(`${name} is not set (run the file without --child)`)
  return value
}

/** The cases of each backend, connected; the first of each is the baseline of its 1000-in-flight shape. */
async function cases(): Promise<Record<'Redis' | 'Memcached', Record<string, Case>>> {
  const port = Number(env(REDIS_ENV))
  const raw = createClient({ socket: { host: '127.0.0.1', port }, commandOptions: { timeout: 0 } })
  await raw.connect()
  const redisCache = (batch: boolean): Case => {
    const cache = new RedisCache({ port, batch })
    return {
      prefix: 'bench:onio:',
      get: (key) => cache.get(key),
      set: (key) => cache.set(key, STRING),
      expected: STRING,
      close: () => cache.close(),
    }
  }
  const server = env(MEMCACHED_ENV)
  const memc = memjs.Client.create(server)
  const memcachedCache = (batch: boolean): Case => {
    const cache = new MemcachedCache({ servers: [server], batch })
    return {
      prefix: 'bench:onio:',
      get: (key) => cache.get(key),
      set: (key) => cache.set(key, VALUE),
      expected: VALUE,
      close: () => cache.close(),
    }
  }
  return {
    Redis: {
      '@redis/client': {
        prefix: 'bench:raw:',
        get: (key) => raw.get(key),
        set: (key) => raw.set(key, JSON_VALUE),
        expected: JSON_VALUE,
        close: () => raw.close(),
      },
      RedisCache: redisCache(false),
      'RedisCache batch': redisCache(true),
    },
    Memcached: {
      memjs: {
        prefix: 'bench:memjs:',
        get: async (key) => (await memc.get(key)).value?.toString(),
        set: (key) => memc.set(key, VALUE),
        expected: VALUE,
        close: async () => memc.close(),
      },
      MemcachedCache: memcachedCache(false),
      'MemcachedCache batch': memcachedCache(true),
    },
  }
}

type Loop = (op: Op, keys: readonly string[], ops: number) => Promise<void>
const AsyncFunction = (async () => {}).constructor as new (...source: string[]) => Loop

/** A 1000-in-flight loop of its own for each case (one shared loop would see every case's call sites). */
function inFlightLoop(): Loop {
  return new AsyncFunction(
    'op',
    'keys',
    'ops',
    `let next = 0
    const worker = async () => {
      while (next < ops) {
        const i = next++
        await op(keys[i % keys.length])
      }
    }
    const all = []
    for (let w = 0; w < ${IN_FLIGHT}; w++) all.push(worker())
    await Promise.all(all)`,
  )
}

/** `(key) => get(key)` compiled anew, so that no two cases share a call site. */
function opOf(c: Case): Op {
  return new Function('c', 'return (key) => c.get(key)')(c) as Op
}

async function inFlightRate(loop: Loop, op: Op, keys: readonly string[]): Promise<number> {
  const started = performance.now()
  await loop(op, keys, IN_FLIGHT_OPS)
  return IN_FLIGHT_OPS / ((performance.now() - started) / 1000)
}

/** Two caches taking turns op by op (who goes first alternating); each one's rate over the time of its own ops. */
async function sequentialRates(a: Op, b: Op, keys: readonly string[]): Promise<[number, number]> {
  const spent = [0, 0]
  const ops = [a, b]
  for (let i = 0; i < SEQUENTIAL_OPS; i++) {
    for (let j = 0; j < 2; j++) {
      const c = (i + j) & 1
      const started = performance.now()
      await ops[c]!(keys[i % keys.length]!)
      spent[c]! += performance.now() - started
    }
  }
  return [SEQUENTIAL_OPS / (spent[0]! / 1000), SEQUENTIAL_OPS / (spent[1]! / 1000)]
}

/** Writes each case's keys and checks that they read back. */
async function fill(c: Case, keys: readonly string[], name: string): Promise<void> {
  const loop = inFlightLoop()
  await loop((key) => c.set(key), keys, keys.length)
  let wrong = 0
  await loop(
    async (key) => {
      if ((await c.get(key)) !== c.expected) wrong++
    },
    keys,
    keys.length,
  )
  if (wrong > 0) throw new Error(`${name}: ${wrong} of ${keys.length} keys did not read back what was written`)
}

/** One process's rounds: every case warmed up, then ROUNDS rounds in rotated order. */
async function measure(): Promise<Rates> {
  const rates: Rates = { inFlight: {}, sequential: {} }
  const all = await cases()
  try {
    for (const [backend, byName] of Object.entries(all)) {
      const names = Object.keys(byName)
      const keysOf = new Map<string, string[]>()
      for (const name of names) {
        const c = byName[name]!
        const keys = Array.from({ length: KEYS }, (_, i) => `${c.prefix}${i}`)
        keysOf.set(name, keys)
        await fill(c, keys, name)
      }
      const loops = new Map(names.map((name) => [name, inFlightLoop()]))
      const ops = new Map(names.map((name) => [name, opOf(byName[name]!)]))
      const pair = TARGETS.sequential.find((t) => t.backend === backend)!
      const sequentialKey = `${pair.base}|${pair.name}`
      const base = ops.get(pair.base)!
      const batched = ops.get(pair.name)!
      const pairKeys = keysOf.get(pair.base)!
      for (const name of names) rates.inFlight[name] = []
      rates.sequential[sequentialKey] = []
      for (let round = smoke ? 0 : -1; round < ROUNDS; round++) {
        for (let i = 0; i < names.length; i++) {
          const name = names[(i + Math.max(round, 0)) % names.length]!
          const rate = await inFlightRate(loops.get(name)!, ops.get(name)!, keysOf.get(name)!)
          if (round >= 0) rates.inFlight[name]!.push(rate)
        }
        const turns = await sequentialRates(base, batched, pairKeys)
        if (round >= 0) rates.sequential[sequentialKey]!.push(turns)
      }
    }
  } finally {
    for (const byName of Object.values(all)) for (const c of Object.values(byName)) await c.close()
  }
  return rates
}

/** The paired ratio of one process: the median of the per-round ratios. */
function paired(rates: readonly number[], base: readonly number[]): number {
  return median(rates.map((rate, i) => rate / base[i]!))
}

if (process.argv.includes('--child')) {
  process.stdout.write(JSON.stringify(await measure()))
} else {
  const startedAt = performance.now()
  const loadBefore = loadavg()[0]!.toFixed(2)
  const versions = await serverVersions()
  const redis = await startRedis()
  const memcached = await startMemcached()
  const processes: Rates[] = []
  try {
    process.env[REDIS_ENV] = String(redis.port)
    process.env[MEMCACHED_ENV] = memcached.server
    for (let p = 0; p < PROCESSES; p++) {
      processes.push(
        smoke
          ? await measure()
          : JSON.parse(
              execFileSync(
                process.execPath,
                [...IN_FLIGHT_FLAGS, '--import', 'tsx', fileURLToPath(import.meta.url), '--child'],
                {
                  encoding: 'utf8',
                  env: process.env,
                },
              ),
            ),
      )
    }
  } finally {
    await redis.stop()
    await memcached.stop()
  }
  console.log('\n## Batched reads: RedisCache and MemcachedCache with batch: true\n')
  console.log(
    `node ${process.version}, redis-server ${versions.redis}, memcached ${versions.memcached} (-t 1), ` +
      `@redis/client ${packageVersion('@redis/client')}, memjs ${packageVersion('memjs')}; ${KEYS} keys; ` +
      (smoke
        ? '(smoke: checks that every case runs; the figures and PASS/FAIL mean nothing); '
        : `${PROCESSES} processes × (warm-up + ${ROUNDS} rounds): ${IN_FLIGHT_OPS} ops per case per round with ` +
          `${IN_FLIGHT} in flight, ${SEQUENTIAL_OPS} ops per cache per round with one in flight (op by op); ` +
          `${inFlightFlagsText()}; `) +
      `load average ${loadBefore} before, ${loadavg()[0]!.toFixed(2)} after; ` +
      `${((performance.now() - startedAt) / 1000).toFixed(0)} s\n`,
  )
  console.log('| shape | case | median ops/s per process |')
  console.log('| --- | --- | --- |')
  for (const name of Object.keys(processes[0]!.inFlight)) {
    const perProcess = processes.map((rates) => fmt(median(rates.inFlight[name]!))).join(', ')
    console.log(`| get (hit), ${IN_FLIGHT} in flight | ${name} | ${perProcess} |`)
  }
  for (const [pair, _] of Object.entries(processes[0]!.sequential)) {
    const names = pair.split('|')
    for (const [i, name] of names.entries()) {
      const perProcess = processes
        .map((rates) => fmt(median(rates.sequential[pair]!.map((turns) => turns[i]!))))
        .join(', ')
      console.log(`| get (hit), one in flight | ${name} | ${perProcess} |`)
    }
  }
  console.log('\n| target | paired ratio per process | median | verdict |')
  console.log('| --- | --- | ---: | --- |')
  const lines: string[] = []
  const verdict = (what: string, ratios: number[], min: number): void => {
    const m = median(ratios)
    const ok = m >= min ? 'PASS' : 'FAIL'
    console.log(
      `| ${what} ≥ ${min}× | ${ratios.map((r) => `${r.toFixed(3)}×`).join(', ')} | ${m.toFixed(3)}× | **${ok}** |`,
    )
    lines.push(`${ok} ${what}: ${m.toFixed(3)}× (target ≥ ${min}×)${smoke ? ' (smoke: means nothing)' : ''}`)
  }
  for (const t of TARGETS.inFlight) {
    const ratios = processes.map((rates) => paired(rates.inFlight[t.name]!, rates.inFlight[t.base]!))
    verdict(`${t.backend}, ${IN_FLIGHT} in flight: ${t.name} vs ${t.base}`, ratios, t.min)
  }
  for (const t of TARGETS.sequential) {
    const ratios = processes.map((rates) => {
      const turns = rates.sequential[`${t.base}|${t.name}`]!
      return median(turns.map(([base, batched]) => batched / base))
    })
    verdict(`${t.backend}, one in flight: ${t.name} vs ${t.base}`, ratios, t.min)
  }
  console.log('')
  for (const line of lines) console.log(line)
}

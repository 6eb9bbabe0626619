// MemoryCache against lru-cache 11 (and a plain Map), measured in one run:
//
// 1. `await cache.get(k)` hits on a `MemoryCache({ maxSize, ttl: 3600 })` (no plugins) ≥ 0.9× `await lru.get(k)` hits
//    on `new LRUCache({ max: maxSize, ttl: 3_600_000 })`, at 10k entries (maxSize 20,000) and at 1M entries (maxSize
//    2,000,000);
// 2. `await cache.set(k, v)` overwriting one of the 10k keys ≥ 0.9× `await lru.set(k, v)`;
// 3. get hits on a MemoryCache with `plugins: [new TimingPlugin(), new HitMissRatioPlugin()]` ≥ 0.35× `await
//    map.get(k)` on a plain Map of the same 10k keys.
//
// Two groups of processes, each measured as bench/support/interleaved.ts says (every case of the group in every
// process, rounds interleaved, a ratio per process, the median of those):
//  - 10k (SMALL_PROCESSES processes): the cases of targets 1 (10k), 2 and 3, one 100-byte string as every value, the
//    10k keys cycled in insertion order;
//  - 1M (BIG_PROCESSES processes, fewer: each holds two 1M-entry caches, a few hundred MB, and a round is at least
//    one pass over the 1M keys): both caches filled with the same 1M keys and distinct 100-byte flat strings, built
//    once per process and read by every round; the keys are read in one fixed pseudo-random order over all 1M of
//    them (the same for both caches), so that the lookups walk memory the CPU caches do not hold.
// Every cache is checked before measuring (every key reads back its value) and after (its size unchanged; with
// HitMissRatioPlugin, every measured get a hit). The full run should take about 2½ minutes (an estimate from the
// rates in bench/RESULTS.md).
//
// `--smoke` runs every case once, briefly, in this process (20k entries in place of 1M), with the same checks.
import { fileURLToPath } from 'node:url'
import { LRUCache } from 'lru-cache'
import { HitMissRatioPlugin, MemoryCache, TimingPlugin } from '../lib/index.js'
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

const smoke = process.argv.includes('--smoke')
const SMALL = 10_000
const BIG = smoke ? 20_000 : 1_000_000
const VALUE_BYTES = 100
const VALUE = 'x'.repeat(VALUE_BYTES)
const TTL_SECONDS = 3600
/**
 * Nine: a process's ratios stay close within it but spread between processes (0.33–0.38× for the two-plugin
 * case, 0.90–1.00× for get @ 10k over the runs of 2026-12-04), and the median of more of them is steadier.
 */
const SMALL_PROCESSES = 9
const BIG_PROCESSES = 3
/** Which group a child process measures: set by the parent, inherited by the children. */
const ENV = 'ONIOCACHE_BENCH_LRU_GROUP'

const ours = (group: string): string => `MemoryCache get-hit @ ${group}`
const theirs = (group: string): string => `lru-cache get-hit @ ${group}`
const OURS_SET = 'MemoryCache set (overwrite) @ 10k'
const LRU_SET = 'lru-cache set (overwrite) @ 10k'
const PLUGGED = 'MemoryCache + Timing + HitMissRatio get-hit @ 10k'
const MAP = 'Map get (awaited) @ 10k'
const BIG_LABEL = smoke ? `${BIG / 1000}k` : '1M'

/** A deterministic shuffle (Fisher–Yates driven by mulberry32 with a fixed seed): the same order in every process. */
function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items]
  let seed = 0x9e3779b9
  const random = (): number => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32
  }
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    const swap = out[i]!
    out[i] = out[j]!
    out[j] = swap
  }
  return out
}

/** n distinct flat one-byte strings of VALUE_BYTES each (not ropes, not slices), as bench/memory-1m.ts builds them. */
function distinctValues(n: number): string[] {
  const values = new Array<string>(n)
  const buf = Buffer.alloc(VALUE_BYTES, 'v')
  for (let i = 0; i < n; i++) {
    buf.write(i.toString(36).padStart(8, '0'), 0, 'latin1')
    values[i] = buf.toString('latin1')
  }
  return values
}

/** `(key) => target.set(key, value)` compiled anew per call, as `getOp` does for `get`. */
function setOp(target: { set(key: string, value: string): unknown }, value: string): Op {
  return new Function('target', 'value', 'return (key) => target.set(key, value)')(target, value) as Op
}

/** lru-cache's `get` and `set` are synchronous: the measuring loop awaits their answer, as `await lru.get(k)` does. */
const awaited = (target: object): { get(key: string): Promise<unknown> } =>
  target as { get(key: string): Promise<unknown> }

const newCache = (maxSize: number, plugged = false): MemoryCache =>
  new MemoryCache({
    maxSize,
    ttl: TTL_SECONDS,
    ...(plugged ? { plugins: [new TimingPlugin(), new HitMissRatioPlugin()] } : {}),
  })
const newLru = (max: number): LRUCache<string, string> => new LRUCache<string, string>({ max, ttl: TTL_SECONDS * 1000 })

/** Throws unless every key reads back its value from every cache, and every cache holds exactly the keys. */
async function check(
  what: string,
  keys: readonly string[],
  want: (i: number) => string,
  caches: MemoryCache[],
  lrus: Array<LRUCache<string, string>>,
): Promise<void> {
  for (const cache of caches) {
    for (let i = 0; i < keys.length; i++) {
      const value = await cache.get(keys[i]!)
      if (value !== want(i)) throw new Error(`${what}: MemoryCache read ${keys[i]} back as ${JSON.stringify(value)}`)
    }
    if (cache.backend.size !== keys.length) {
      throw new Error(`${what}: MemoryCache holds ${cache.backend.size} entries, not ${keys.length}`)
    }
  }
  for (const lru of lrus) {
    for (let i = 0; i < keys.length; i++) {
      const value = lru.get(keys[i]!)
      if (value !== want(i)) throw new Error(`${what}: lru-cache read ${keys[i]} back as ${JSON.stringify(value)}`)
    }
    if (lru.size !== keys.length) throw new Error(`${what}: lru-cache holds ${lru.size} entries, not ${keys.length}`)
  }
}

const smallKeys = Array.from({ length: SMALL }, (_, i) => `k${i}`)
const SMALL_METHOD: Method = {
  keys: smallKeys,
  rounds: smoke ? 1 : 9,
  roundMs: 200,
  processes: smoke ? 1 : SMALL_PROCESSES,
  smoke,
  smokeOps: 2_000,
}

/** Targets 1 (10k), 2 and 3, in one process. */
async function measureSmall(): Promise<Rates> {
  const maxSize = 2 * SMALL
  const cache = newCache(maxSize)
  const setCache = newCache(maxSize)
  const plugged = newCache(maxSize, true)
  const lru = newLru(maxSize)
  const setLru = newLru(maxSize)
  const map = new Map<string, string>()
  try {
    for (const key of smallKeys) {
      for (const c of [cache, setCache, plugged]) await c.set(key, VALUE)
      lru.set(key, VALUE)
      setLru.set(key, VALUE)
      map.set(key, VALUE)
    }
    const all = [cache, setCache, plugged]
    await check('10k, before', smallKeys, () => VALUE, all, [lru, setLru])
    const cases: Record<string, Op> = {
      [ours('10k')]: getOp(cache),
      [theirs('10k')]: getOp(awaited(lru)),
      [OURS_SET]: setOp(setCache, VALUE),
      [LRU_SET]: setOp(setLru, VALUE),
      [PLUGGED]: getOp(plugged),
      [MAP]: getOp(awaited(map)),
    }
    const before = plugged.hitMissRatio!
    const rates = await measureInterleaved(SMALL_METHOD, cases)
    const after = plugged.hitMissRatio!
    if (after.total === before.total || after.hits - before.hits !== after.total - before.total) {
      throw new Error(
        `10k: not every measured get of the plugged cache was a hit (before ${JSON.stringify(before)}, ` +
          `after ${JSON.stringify(after)})`,
      )
    }
    await check('10k, after', smallKeys, () => VALUE, all, [lru, setLru])
    return rates
  } finally {
    await Promise.all([cache.close(), setCache.close(), plugged.close()])
  }
}

/** The 1M group's method but its keys (the shuffled 1M, built in each child). */
const BIG_COUNTS = {
  rounds: smoke ? 1 : 5,
  roundMs: 250, // a round is at least one pass over the keys anyway: ~0.5–1 s at 1M
  processes: smoke ? 1 : BIG_PROCESSES,
  smoke,
  smokeOps: BIG,
} as const

/** Target 1 at 1M entries, in one process: both caches built once, read by every round. */
async function measureBig(): Promise<Rates> {
  const keys = Array.from({ length: BIG }, (_, i) => `k${i}`)
  const values = distinctValues(BIG)
  const maxSize = 2 * BIG
  const cache = newCache(maxSize)
  const lru = newLru(maxSize)
  try {
    for (let i = 0; i < BIG; i++) await cache.set(keys[i]!, values[i]!)
    for (let i = 0; i < BIG; i++) lru.set(keys[i]!, values[i]!)
    await check(`${BIG_LABEL}, before`, keys, (i) => values[i]!, [cache], [lru])
    const rates = await measureInterleaved(
      { ...BIG_COUNTS, keys: shuffled(keys) },
      { [ours(BIG_LABEL)]: getOp(cache), [theirs(BIG_LABEL)]: getOp(awaited(lru)) },
    )
    // No key was added or evicted (none expires within the run): every key read back before is still there.
    if (cache.backend.size !== BIG || lru.size !== BIG) {
      throw new Error(`${BIG_LABEL}, after: MemoryCache holds ${cache.backend.size}, lru-cache ${lru.size} entries`)
    }
    return rates
  } finally {
    await cache.close()
  }
}

const GROUPS = { small: measureSmall, big: measureBig } as const
type Group = keyof typeof GROUPS

if (process.argv.includes('--child')) {
  const group = process.env[ENV] as Group | undefined
  if (group === undefined || !(group in GROUPS)) throw new Error(`${ENV} is not set (run the file without --child)`)
  process.stdout.write(JSON.stringify(await GROUPS[group]()))
} else {
  const self = fileURLToPath(import.meta.url)
  const run = (group: Group, method: Method): ReturnType<typeof inProcesses> => {
    process.env[ENV] = group // the children inherit it
    return inProcesses(method, self, GROUPS[group])
  }
  const small = await run('small', SMALL_METHOD)
  const big = await run('big', { ...BIG_COUNTS, keys: [] }) // the children shuffle the keys themselves
  console.log('## MemoryCache against lru-cache 11 and a plain Map\n')
  console.log(`10k entries: ${small.how}; ${SMALL} keys of one 100-byte string, cycled in insertion order\n`)
  for (const line of ratesTable(small.processes)) console.log(line)
  console.log(
    `\n${BIG_LABEL} entries: ${big.how}; ${BIG} keys of distinct 100-byte strings, read in one fixed ` +
      'pseudo-random order (the same for both caches)\n',
  )
  for (const line of ratesTable(big.processes)) console.log(line)
  console.log('\n| target | ratio per process | median | verdict |')
  console.log('| --- | --- | ---: | --- |')
  console.log(targetRow(small.processes, 'get hit @ 10k vs lru-cache', ours('10k'), theirs('10k'), 0.9))
  console.log(targetRow(big.processes, `get hit @ ${BIG_LABEL} vs lru-cache`, ours(BIG_LABEL), theirs(BIG_LABEL), 0.9))
  console.log(targetRow(small.processes, 'set (overwrite) @ 10k vs lru-cache', OURS_SET, LRU_SET, 0.9))
  console.log(targetRow(small.processes, 'get hit + Timing + HitMissRatio vs awaited Map.get', PLUGGED, MAP, 0.35))
}

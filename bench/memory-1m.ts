// Scenario 4: 1M entries with a ttl, distinct 100-byte values. `MemoryCache` (set with
// `{ ttl: 3600 }`) against lru-cache 11 (`max: 1_000_000, ttl: 3_600_000`: sized for the
// entries it will hold, as a user would, since it preallocates for `max`), each case in a
// fresh `node --expose-gc` process. A plain `Map` (no ttl) is measured the same way, as the
// reference for how much a hash lookup itself slows down once the table outgrows the CPU caches:
//  - bytes per entry: heapUsed + external after several forced GCs, once the 1M entries are in
//    and the key/value arrays are dropped, minus the same measured at process start (before the
//    cache is constructed), divided by 1M. Also printed: the cost of the empty cache (lru-cache
//    preallocates its typed arrays for `max`) and the structure alone (keys and values excluded);
//  - insert rate: 1M awaited sets of prebuilt keys/values (lru-cache's sync `set` wrapped in an
//    async function, like the baseline of bench/hot-path.ts), one warm-up round and ROUNDS
//    measured rounds, each into a fresh cache (the previous one closed and collected); median;
//  - get-hit ops/s at 1M entries against the same at 10k entries (same key order, same op count);
//    and, to tell the size of the structure from the size of what is read, get-hit at 1M entries
//    reading only 10k of them, over and over: the first 10k inserted, then the last 10k. If the
//    newest 10k read as fast as a 10k-entry cache, the structure itself does not slow down as it
//    grows; what slows the reads is the memory they touch (CPU caches) and, for the oldest keys,
//    V8's hash chains, which put the newest entry of a bucket first.
// Values: `Buffer.toString('latin1')` of a 100-byte buffer holding the index, so every value is
// a flat (sequential) one-byte string of its own, not a rope or a slice; both caches get the same.
// Targets (PASS/FAIL): bytes/entry ≤ 1.15× lru-cache, insert ≥ 0.8× lru-cache. Get-hit at 1M against get-hit at
// 10k is printed without a target (met by no structure; bench/memory-vs-lru.ts compares get @ 1M with lru-cache).
// `--smoke` runs every case briefly (20k entries, in one process) and only prints.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { LRUCache } from 'lru-cache'
import { MemoryCache } from '../lib/index.js'

const smoke = process.argv.includes('--smoke')
const BIG = smoke ? 20_000 : 1_000_000
const SMALL = 10_000
const GET_OPS = smoke ? 20_000 : 2_000_000
const ROUNDS = smoke ? 1 : 5
/** Pairs of insert-only processes (oniocache, lru-cache) the insert verdict is taken on. */
const INSERT_PAIRS = smoke ? 1 : 4
const VALUE_BYTES = 100

interface Target {
  set(key: string, value: string): Promise<unknown>
  get(key: string): Promise<unknown>
  close(): Promise<void>
}
const targets: Record<string, () => Target> = {
  oniocache: () => {
    const cache = new MemoryCache()
    return {
      set: (key, value) => cache.set(key, value, { ttl: 3600 }),
      get: (key) => cache.get(key),
      close: () => cache.close(),
    }
  },
  'lru-cache': () => {
    const lru = new LRUCache<string, string>({ max: 1_000_000, ttl: 3_600_000 })
    return {
      set: async (key, value) => lru.set(key, value),
      get: async (key) => lru.get(key),
      close: async () => lru.clear(),
    }
  },
  Map: () => {
    const map = new Map<string, string>()
    return {
      set: async (key, value) => map.set(key, value),
      get: async (key) => map.get(key),
      close: async () => map.clear(),
    }
  },
}

interface Result {
  entries: number
  emptyBytes: number // empty cache minus start
  structurePerEntry: number // (filled - empty - keys/values), per entry
  totalPerEntry: number // (filled, arrays dropped - start), per entry
  insertOps: number[] // one rate per round, each into a fresh cache
  getOps: number[] // one rate per round
  hotGetOps: number[] // one rate per round, reading only the first SMALL keys inserted
  newestGetOps: number[] // one rate per round, reading only the last SMALL keys inserted
}

function usage(): number {
  const gc = globalThis.gc
  if (gc === undefined) {
    if (smoke) return process.memoryUsage().heapUsed + process.memoryUsage().external
    throw new Error('run with node --expose-gc')
  }
  for (let i = 0; i < 6; i++) gc()
  const { heapUsed, external } = process.memoryUsage()
  return heapUsed + external
}

function buildValues(n: number): string[] {
  const values = new Array<string>(n)
  const buf = Buffer.alloc(VALUE_BYTES, 'v')
  for (let i = 0; i < n; i++) {
    buf.write(i.toString(36).padStart(8, '0'), 0, 'latin1')
    values[i] = buf.toString('latin1') // a new flat one-byte string per call
  }
  return values
}

async function measure(name: string, entries: number, insertOnly = false): Promise<Result> {
  const start = usage()
  let target = targets[name]!()
  const empty = usage()
  let keys: string[] = Array.from({ length: entries }, (_, i) => `k${i}`)
  let values: string[] = buildValues(entries)
  const built = usage()

  // Insert rounds, each into a fresh cache (the previous one closed and collected first);
  // round -1 warms up. The last cache is the one measured below.
  const insertOps: number[] = []
  for (let round = -1; round < ROUNDS; round++) {
    if (round > -1) {
      await target.close()
      target = targets[name]!()
      usage()
    }
    const t0 = performance.now()
    for (let i = 0; i < entries; i++) await target.set(keys[i]!, values[i]!)
    if (round >= 0) insertOps.push(entries / ((performance.now() - t0) / 1000))
  }
  const filled = usage()
  if (insertOnly) {
    await target.close()
    return {
      entries,
      emptyBytes: empty - start,
      structurePerEntry: (filled - built) / entries,
      totalPerEntry: NaN,
      insertOps,
      getOps: [],
      hotGetOps: [],
      newestGetOps: [],
    }
  }

  /**
   * get-hit rates, one per round (round -1 warms up), reading keys[from], keys[from + 1]… keys[from + count - 1] over
   * and over.
   */
  const readRounds = async (from: number, count: number): Promise<number[]> => {
    const rates: number[] = []
    for (let round = -1; round < ROUNDS; round++) {
      const t = performance.now()
      for (let i = 0; i < GET_OPS; i++) {
        const key = keys[from + (i % count)]!
        if ((await target.get(key)) === undefined) throw new Error(`${name}: miss on ${key}`)
      }
      if (round >= 0) rates.push(GET_OPS / ((performance.now() - t) / 1000))
    }
    return rates
  }
  const getOps = await readRounds(0, entries)
  const hot = Math.min(SMALL, entries)
  const hotGetOps = entries > hot ? await readRounds(0, hot) : getOps
  const newestGetOps = entries > hot ? await readRounds(entries - hot, hot) : getOps

  keys = []
  values = []
  const total = usage()
  await target.close()
  return {
    entries,
    emptyBytes: empty - start,
    structurePerEntry: (filled - built) / entries,
    totalPerEntry: (total - start) / entries,
    insertOps,
    getOps,
    hotGetOps,
    newestGetOps,
  }
}

const median = (xs: number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = xs.length >> 1
  return xs.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}
const fmt = (n: number): string => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1e3).toFixed(0)}k`)
const mb = (n: number): string => `${(n / 2 ** 20).toFixed(1)} MiB`
const range = (xs: number[]): string => `${fmt(median(xs))} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})`
const verdict = (ok: boolean): string => (ok ? 'PASS' : 'FAIL')

const only = process.argv.find((a) => a.startsWith('--case='))?.slice('--case='.length)
if (only !== undefined) {
  const [name, entries, what] = only.split('@') as [string, string, string | undefined]
  process.stdout.write(JSON.stringify(await measure(name, Number(entries), what === 'insert')))
} else {
  const self = fileURLToPath(import.meta.url)
  // Smoke: in this process (no fresh process per case), to stay within a few seconds.
  const run = (name: string, entries: number, insertOnly = false): Promise<Result> | Result => {
    if (smoke) return measure(name, entries, insertOnly)
    const out = execFileSync(
      process.execPath,
      [
        '--expose-gc',
        '--import',
        'tsx',
        self,
        `--case=${name}@${entries}${insertOnly ? '@insert' : ''}`,
        ...(smoke ? ['--smoke'] : []),
      ],
      { encoding: 'utf8', maxBuffer: 1 << 20 },
    )
    return JSON.parse(out) as Result
  }
  const onio = await run('oniocache', BIG)
  const lru = await run('lru-cache', BIG)
  const onioSmall = await run('oniocache', SMALL)
  const lruSmall = await run('lru-cache', SMALL)
  const map = await run('Map', BIG)
  const mapSmall = await run('Map', SMALL)
  // The insert rate swings with the machine's load from one process to the next, so its verdict
  // is taken on pairs of insert-only processes run back to back, in ABBA order (oniocache,
  // lru-cache, lru-cache, oniocache, …): the median of the pairs' ratios.
  const pairs: Array<[Result, Result]> = []
  for (let pair = 0; pair < INSERT_PAIRS; pair++) {
    if (pair % 2 === 0) {
      const o = await run('oniocache', BIG, true)
      pairs.push([o, await run('lru-cache', BIG, true)])
    } else {
      const l = await run('lru-cache', BIG, true)
      pairs.push([await run('oniocache', BIG, true), l])
    }
  }

  console.log(
    `node ${process.version}, lru-cache ${lruVersion()}, ${BIG} entries (ttl 1 h) of distinct ${VALUE_BYTES}-byte ` +
      `flat strings, ${smoke ? 'all cases in this process' : 'each case in a fresh process'}`,
  )
  console.log(
    '| cache | bytes/entry (total) | bytes/entry (structure only) | empty cache | insert ops/s | get-hit ops/s @ ' +
      fmt(BIG) +
      ' | get-hit ops/s @ 10k | get-hit @ ' +
      fmt(BIG) +
      ', its first 10k read | get-hit @ ' +
      fmt(BIG) +
      ', its last 10k read |',
  )
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
  for (const [name, big, small] of [
    ['oniocache', onio, onioSmall],
    ['lru-cache', lru, lruSmall],
    ['Map (no ttl, reference)', map, mapSmall],
  ] as const) {
    console.log(
      `| ${name} | ${big.totalPerEntry.toFixed(1)} | ${big.structurePerEntry.toFixed(1)} | ${mb(big.emptyBytes)} | ` +
        `${range(big.insertOps)} | ` +
        `${range(big.getOps)} | ${range(small.getOps)} | ${range(big.hotGetOps)} | ${range(big.newestGetOps)} |`,
    )
  }
  const memRatio = onio.totalPerEntry / lru.totalPerEntry
  const pairRatios = pairs.map(([o, l]) => median(o.insertOps) / median(l.insertOps))
  const insertRatio = median(pairRatios)
  const growth = median(onio.getOps) / median(onioSmall.getOps)
  const lruGrowth = median(lru.getOps) / median(lruSmall.getOps)
  const mapGrowth = median(map.getOps) / median(mapSmall.getOps)
  const hotGrowth = median(onio.hotGetOps) / median(onioSmall.getOps)
  const newestGrowth = median(onio.newestGetOps) / median(onioSmall.getOps)
  const mapHotGrowth = median(map.hotGetOps) / median(mapSmall.getOps)
  const mapNewestGrowth = median(map.newestGetOps) / median(mapSmall.getOps)
  const note = smoke ? ' (smoke: not the 1M figures)' : ''
  console.log(
    `${verdict(memRatio <= 1.15)} bytes/entry: ${memRatio.toFixed(2)}× lru-cache (target ≤ 1.15×); structure only: ` +
      `${(onio.structurePerEntry / lru.structurePerEntry).toFixed(2)}×${note}`,
  )
  console.log(
    `${verdict(insertRatio >= 0.8)} insert rate: ${insertRatio.toFixed(2)}× lru-cache (target ≥ 0.8×): median of ` +
      `${pairs.length} back-to-back process pairs ` +
      `(${pairRatios.map((r) => r.toFixed(2)).join(', ')}; oniocache ` +
      `${pairs.map(([o]) => fmt(median(o.insertOps))).join(', ')}, ` +
      `lru-cache ${pairs.map(([, l]) => fmt(median(l.insertOps))).join(', ')}); the table's processes alone: ` +
      `${(median(onio.insertOps) / median(lru.insertOps)).toFixed(2)}×${note}`,
  )
  console.log(
    `  get-hit @ ${fmt(BIG)} / @ 10k: ${growth.toFixed(2)}× (no target: no structure here holds its 10k rate at ` +
      `${fmt(BIG)} entries — lru-cache: ${lruGrowth.toFixed(2)}×, a plain Map: ${mapGrowth.toFixed(2)}×; ` +
      `bench/memory-vs-lru.ts compares get @ 1M with lru-cache instead)${note}`,
  )
  console.log(
    `  diagnosis: reading only 10k of the ${fmt(BIG)} entries, oniocache runs at ${newestGrowth.toFixed(2)}× its ` +
      `rate @ 10k entries for the newest 10k ` +
      `(a plain Map: ${mapNewestGrowth.toFixed(2)}×) and ${hotGrowth.toFixed(2)}× for the oldest 10k (a plain Map: ` +
      `${mapHotGrowth.toFixed(2)}×).`,
  )
}

function lruVersion(): string {
  const url = new URL('../node_modules/lru-cache/package.json', import.meta.url)
  return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version
}

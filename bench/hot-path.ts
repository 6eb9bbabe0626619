// The memory hot path (benchmark issue, scenarios 1–3), measured in one run:
//
// 1. get-hit / get-miss / set on 10k keys with 100-byte strings: `new MemoryCache()` and the
//    peers (lru-cache, keyv, cache-manager, cacheable, bentocache) against the baseline,
//    `await map.get()` in an async function.
// 2. get-hit with TimingPlugin + HitMissRatioPlugin.
// 3. chain overhead: get-hit with 0, 1, 3, 5, 10 no-op middlewares (`cache.use`), against
//    koa-compose alone (the same no-op middlewares + a final step doing `map.get`, called per
//    op); the slopes of ns/op against N are compared. Both chains at every N run in the same
//    process, rounds interleaved, in CHAIN_PROCESSES processes (see measureChains and the verdict).
//
// Every case of scenarios 1–2 runs in a fresh process: a warm-up round that also sizes the rounds (about
// ROUND_MS each), then ROUNDS measured rounds. The baseline runs twice, first and last, and
// ratios are taken to the median of its rounds from both runs. Prints markdown: median ops/s,
// spread (min–max of the rounds), ratio, PASS/FAIL against the issue's targets.
// `--smoke` runs every case in this process, one short round each, with read-back checks only.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { BentoCache, bentostore } from 'bentocache'
import { memoryDriver } from 'bentocache/drivers/memory'
import { createCache } from 'cache-manager'
import { Cacheable } from 'cacheable'
import { Keyv } from 'keyv'
import compose from 'koa-compose'
import { LRUCache } from 'lru-cache'
import { HitMissRatioPlugin, MemoryCache, type Middleware, TimingPlugin } from '../lib/index.js'

const KEYS = 10_000
const VALUE = 'x'.repeat(100)
const smoke = process.argv.includes('--smoke')
const ROUNDS = smoke ? 1 : 7
const ROUND_MS = 300
const SMOKE_OPS = 2_000
const CHAIN_SIZES = [0, 1, 3, 5, 10] as const
/** Processes scenario 3 runs in (each measures every chain); its verdict is the median of their slope ratios. */
const CHAIN_PROCESSES = smoke ? 1 : 3

const hitKeys = Array.from({ length: KEYS }, (_, i) => `k${i}`)
const missKeys = Array.from({ length: KEYS }, (_, i) => `m${i}`)

type Op = (key: string) => Promise<unknown>
/** A cache under test, with the calls its users make. */
interface Store {
  get(key: string): Promise<unknown>
  set(key: string, value: string): Promise<unknown>
}
interface Case {
  op: Op
  keys: string[]
  /** Checked after the rounds (set cases read a key back). */
  after?: () => Promise<void>
}

const noop: Middleware = async (_ctx, next) => {
  await next()
}

const stores: Record<string, () => Store> = {
  MemoryCache: () => new MemoryCache(),
  'lru-cache': () => {
    const lru = new LRUCache<string, string>({ max: 20_000 })
    return {
      get: async (key) => lru.get(key),
      set: async (key, value) => lru.set(key, value),
    }
  },
  keyv: () => new Keyv<string>(),
  'cache-manager': () => createCache(),
  cacheable: () => new Cacheable(),
  bentocache: () => {
    const bento = new BentoCache({
      default: 'memory',
      ttl: null, // no expiry, like the others; maxItems: its default is 1000, below our 10k keys
      stores: { memory: bentostore().useL1Layer(memoryDriver({ maxSize: '100mb', maxItems: 20_000 })) },
    })
    return {
      get: (key) => bento.get<string>({ key }),
      set: (key, value) => bento.set({ key, value }),
    }
  },
}

async function filled<S extends Store>(store: S): Promise<S> {
  for (const key of hitKeys) await store.set(key, VALUE)
  await expect(store.get('k1'), VALUE, 'pre-filled key reads back')
  return store
}

async function expect(got: Promise<unknown>, want: unknown, what: string): Promise<void> {
  const value = await got
  if (value !== want && !(want === undefined && value === null)) {
    throw new Error(`${what}: got ${JSON.stringify(value)}, want ${JSON.stringify(want)}`)
  }
}

const cases: Record<string, () => Promise<Case>> = {
  baseline: async () => {
    const map = new Map<string, string>(hitKeys.map((k) => [k, VALUE]))
    return { op: async (key) => map.get(key), keys: hitKeys }
  },
}
for (const [lib, create] of Object.entries(stores)) {
  cases[`${lib} get-hit`] = async () => {
    const store = await filled(create())
    return { op: (key) => store.get(key), keys: hitKeys }
  }
  cases[`${lib} get-miss`] = async () => {
    const store = await filled(create())
    await expect(store.get('m1'), undefined, 'missing key')
    return { op: (key) => store.get(key), keys: missKeys }
  }
  cases[`${lib} set`] = async () => {
    const store = create()
    return {
      op: (key) => store.set(key, VALUE),
      keys: hitKeys,
      after: () => expect(store.get('k1'), VALUE, 'set key reads back'),
    }
  }
}
cases['MemoryCache get-hit + Timing + HitMissRatio'] = async () => {
  const cache = await filled(new MemoryCache({ plugins: [new TimingPlugin(), new HitMissRatioPlugin()] }))
  return { op: (key) => cache.get(key), keys: hitKeys }
}
for (const n of CHAIN_SIZES) {
  cases[`chain ${n}: MemoryCache`] = async () => {
    const cache = await filled(new MemoryCache())
    for (let i = 0; i < n; i++) cache.use(noop)
    if (cache.plugins.length !== n) throw new Error(`expected ${n} middlewares`)
    return { op: (key) => cache.get(key), keys: hitKeys }
  }
  cases[`chain ${n}: koa-compose`] = async () => {
    const map = new Map<string, string>(hitKeys.map((k) => [k, VALUE]))
    interface Ctx {
      key: string
      result: string | undefined
    }
    const layers: Array<compose.Middleware<Ctx>> = Array.from(
      { length: n },
      () => async (_ctx: Ctx, next: () => Promise<unknown>) => {
        await next()
      },
    )
    layers.push(async (ctx) => {
      ctx.result = map.get(ctx.key)
    })
    const fn = compose(layers)
    const op: Op = async (key) => {
      const ctx: Ctx = { key, result: undefined }
      await fn(ctx)
      return ctx.result
    }
    await expect(op('k1'), VALUE, 'koa-compose chain')
    return { op, keys: hitKeys }
  }
}

async function run(op: Op, keys: string[], ops: number): Promise<number> {
  const started = performance.now()
  for (let i = 0; i < ops; i++) await op(keys[i % KEYS]!)
  return ops / ((performance.now() - started) / 1000)
}

/** A case set up and warmed up: its op and how many ops make a round of about ROUND_MS. */
interface Warm extends Case {
  perRound: number
}

async function warmUp(name: string): Promise<Warm> {
  const c = await cases[name]!().catch((error: unknown) => {
    throw new Error(`${name}: ${String(error)}`)
  })
  if (smoke) return { ...c, perRound: SMOKE_OPS }
  // Warm-up: at least ROUND_MS and 3 × 10k ops; sizes the measured rounds.
  let ops = KEYS
  let warm = 0
  for (let spent = 0; spent < 2 * ROUND_MS || warm < 3 * KEYS; ) {
    const started = performance.now()
    await run(c.op, c.keys, ops)
    spent += performance.now() - started
    warm += ops
    ops *= 2
  }
  const rate = await run(c.op, c.keys, KEYS * 4)
  return { ...c, perRound: Math.max(KEYS, Math.round((rate * ROUND_MS) / 1000)) }
}

async function measure(name: string): Promise<number[]> {
  const c = await warmUp(name)
  const rates: number[] = []
  for (let round = 0; round < ROUNDS; round++) rates.push(await run(c.op, c.keys, c.perRound))
  await c.after?.()
  return rates
}

/**
 * Scenario 3, in one process: our chain and koa-compose's at every N, warmed up, then
 * ROUNDS rounds each visiting all ten cases (in a rotated order), so every case meets the
 * same machine at the same time and each process yields both slopes.
 */
async function measureChains(): Promise<Record<string, number[]>> {
  const names = CHAIN_SIZES.flatMap((n) => [`chain ${n}: MemoryCache`, `chain ${n}: koa-compose`])
  const warm = new Map<string, Warm>()
  for (const name of names) warm.set(name, await warmUp(name))
  const rates: Record<string, number[]> = Object.fromEntries(names.map((name) => [name, []]))
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < names.length; i++) {
      const name = names[(i + round * 3) % names.length]!
      const c = warm.get(name)!
      rates[name]!.push(await run(c.op, c.keys, c.perRound))
    }
  }
  return rates
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
const fmt = (n: number): string => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1e3).toFixed(0)}k`)
const pass = (ok: boolean): string => (ok ? '**PASS**' : '**FAIL**')

/** Least-squares slope and intercept of ys against xs. */
function fit(xs: readonly number[], ys: readonly number[]): { slope: number; intercept: number } {
  const n = xs.length
  const mx = xs.reduce((a, b) => a + b, 0) / n
  const my = ys.reduce((a, b) => a + b, 0) / n
  let sxy = 0
  let sxx = 0
  for (let i = 0; i < n; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my)
    sxx += (xs[i]! - mx) ** 2
  }
  const slope = sxy / sxx
  return { slope, intercept: my - slope * mx }
}

const only = process.argv.find((a) => a.startsWith('--case='))?.slice('--case='.length)
if (only !== undefined) {
  process.stdout.write(JSON.stringify(await measure(only)))
  process.exit(0) // some peers keep timers alive
} else if (process.argv.includes('--chains')) {
  process.stdout.write(JSON.stringify(await measureChains()))
  process.exit(0)
} else {
  const self = fileURLToPath(import.meta.url)
  // Two passes, the second in reverse order, each case in a fresh process per pass: drift of the
  // machine's speed over the run (and a process that drew an unlucky JIT or GC) weighs on every
  // case alike. A case's figures are the rounds of both of its processes. The baseline runs at
  // both ends of each pass; 'baseline (first)' holds the first half of its runs, 'baseline (last)' the second.
  // Scenario 3 runs in CHAIN_PROCESSES processes of its own, each holding every chain (see measureChains).
  const names = [...Object.keys(cases).filter((name) => !name.startsWith('chain ')), 'baseline']
  const passes = smoke ? [names] : [names, [...names].reverse()]
  const results = new Map<string, number[]>()
  const add = (label: string, rates: number[]): void =>
    void results.set(label, [...(results.get(label) ?? []), ...rates])
  const startedAt = performance.now()
  const loadBefore = loadavg()[0]!.toFixed(2)
  let baselineRuns = 0
  for (const order of passes) {
    for (const name of order) {
      const label = name !== 'baseline' ? name : baselineRuns++ < passes.length ? 'baseline (first)' : 'baseline (last)'
      const rates = smoke
        ? await measure(name)
        : (JSON.parse(
            execFileSync(process.execPath, ['--import', 'tsx', self, `--case=${name}`], { encoding: 'utf8' }),
          ) as number[])
      add(label, rates)
    }
  }
  /** Per process, each case's rates (scenario 3). */
  const chainRuns: Array<Record<string, number[]>> = []
  for (let i = 0; i < CHAIN_PROCESSES; i++) {
    const rates = smoke
      ? await measureChains()
      : (JSON.parse(
          execFileSync(process.execPath, ['--import', 'tsx', self, '--chains'], { encoding: 'utf8' }),
        ) as Record<string, number[]>)
    chainRuns.push(rates)
    for (const [label, r] of Object.entries(rates)) add(label, r)
  }
  const wall = ((performance.now() - startedAt) / 1000).toFixed(1)
  const load = `1-min load average ${loadBefore} before, ${loadavg()[0]!.toFixed(2)} after`
  const rates = (label: string): number[] => results.get(label)!
  const baseRates = [...rates('baseline (first)'), ...rates('baseline (last)')]
  const base = median(baseRates)
  const ratio = (label: string): number => median(rates(label)) / base
  const row = (label: string, shown = label): string => {
    const r = rates(label)
    return (
      `| ${shown} | ${fmt(median(r))} | ${fmt(Math.min(...r))}–${fmt(Math.max(...r))} | ` +
      `${ratio(label).toFixed(2)}× |`
    )
  }
  const version = (pkg: string): string =>
    (
      JSON.parse(readFileSync(new URL(`../node_modules/${pkg}/package.json`, import.meta.url), 'utf8')) as {
        version: string
      }
    ).version
  const peers = ['lru-cache', 'keyv', 'cache-manager', 'cacheable', 'bentocache'] as const

  const out: string[] = []
  const how = smoke
    ? `SMOKE: one cold round of ${SMOKE_OPS} ops per case, in one process ` +
      '(checks that every case runs; the figures and PASS/FAIL mean nothing)'
    : 'each case in a fresh process per pass, two passes (the second in reverse order), ' +
      `warm-up then ${ROUNDS} rounds of ~${ROUND_MS} ms per process`
  out.push(
    `node ${process.version}; ${how}; ${wall} s; ${load}`,
    `peers: ${peers.map((p) => `${p} ${version(p)}`).join(', ')}, koa-compose ${version('koa-compose')}`,
    `baseline \`await map.get()\`: median of both baseline processes' rounds = ${fmt(base)} ops/s`,
    '',
    '### Scenario 1: memory, 10k keys, 100-byte strings',
    '',
    '| case | median ops/s | spread | ratio to baseline |',
    '| --- | ---: | ---: | ---: |',
    row('baseline (first)', 'baseline: await map.get() (first)'),
    row('baseline (last)', 'baseline: await map.get() (last)'),
  )
  for (const lib of ['MemoryCache', ...peers]) {
    for (const what of ['get-hit', 'get-miss', 'set']) out.push(row(`${lib} ${what}`))
  }
  const hit = ratio('MemoryCache get-hit')
  const set = ratio('MemoryCache set')
  const plugged = ratio('MemoryCache get-hit + Timing + HitMissRatio')
  out.push(
    '',
    `- MemoryCache get-hit ≥ 0.4× baseline: ${hit.toFixed(2)}× ${pass(hit >= 0.4)}`,
    `- MemoryCache set ≥ 0.3× baseline: ${set.toFixed(2)}× ${pass(set >= 0.3)}`,
    '',
    '### Scenario 2: get-hit with TimingPlugin + HitMissRatioPlugin',
    '',
    '| case | median ops/s | spread | ratio to baseline |',
    '| --- | ---: | ---: | ---: |',
    row('MemoryCache get-hit + Timing + HitMissRatio'),
    '',
    `- get-hit with both plugins ≥ 0.2× baseline: ${plugged.toFixed(2)}× ${pass(plugged >= 0.2)}`,
    '',
    '### Scenario 3: chain overhead (no-op middlewares, get-hit)',
    '',
    '| N | MemoryCache ops/s (spread) | MemoryCache ns/op | koa-compose ops/s (spread) | koa-compose ns/op |',
    '| ---: | ---: | ---: | ---: | ---: |',
  )
  const nsPerOp = (label: string): number => 1e9 / median(rates(label))
  const spread = (label: string): string =>
    `${fmt(median(rates(label)))} (${fmt(Math.min(...rates(label)))}–${fmt(Math.max(...rates(label)))})`
  for (const n of CHAIN_SIZES) {
    const ours = `chain ${n}: MemoryCache`
    const koa = `chain ${n}: koa-compose`
    out.push(`| ${n} | ${spread(ours)} | ${nsPerOp(ours).toFixed(0)} | ${spread(koa)} | ${nsPerOp(koa).toFixed(0)} |`)
  }
  // The verdict: the cost each added middleware adds, i.e. the slope of ns/op against N once
  // there is a chain (N = 1, 3, 5, 10), taken per process (both chains measured side by side)
  // and the median of the processes' ratios. N = 0 is left out of it because MemoryCache has no
  // chain at all then (its N = 0 is a synchronous call), while koa-compose's N = 0 still runs
  // compose and an async function: the 0 -> 1 step is the one-off cost of having a chain (the
  // caller's promise, the timeout watch, timing `took` for the middleware), shown apart, with
  // the fit over all five N.
  const some = CHAIN_SIZES.filter((n) => n > 0)
  const slopeOf = (sizes: readonly number[], ns: (n: number) => number): number => fit(sizes, sizes.map(ns)).slope
  const perProcess = chainRuns.map((r) => {
    const ns = (label: string): number => 1e9 / median(r[label]!)
    const ours = slopeOf(some, (n) => ns(`chain ${n}: MemoryCache`))
    const koa = slopeOf(some, (n) => ns(`chain ${n}: koa-compose`))
    const oursAll = slopeOf(CHAIN_SIZES, (n) => ns(`chain ${n}: MemoryCache`))
    const koaAll = slopeOf(CHAIN_SIZES, (n) => ns(`chain ${n}: koa-compose`))
    return { ours, koa, ratio: ours / koa, ratioAll: oursAll / koaAll, ok: ours > 0 && koa > 0 }
  })
  const slopeRatio = median(perProcess.map((p) => p.ratio))
  const oursFit = fit(
    CHAIN_SIZES,
    CHAIN_SIZES.map((n) => nsPerOp(`chain ${n}: MemoryCache`)),
  )
  const koaFit = fit(
    CHAIN_SIZES,
    CHAIN_SIZES.map((n) => nsPerOp(`chain ${n}: koa-compose`)),
  )
  const oursFit1 = fit(
    some,
    some.map((n) => nsPerOp(`chain ${n}: MemoryCache`)),
  )
  const koaFit1 = fit(
    some,
    some.map((n) => nsPerOp(`chain ${n}: koa-compose`)),
  )
  const step = (who: string): string => (nsPerOp(`chain 1: ${who}`) - nsPerOp(`chain 0: ${who}`)).toFixed(0)
  out.push(
    '',
    `Each of ${chainRuns.length} process(es) measured both chains at every N, rounds interleaved; the table pools ` +
      `their rounds.`,
    `Per process, ns per added middleware (fit over N = 1, 3, 5, 10), MemoryCache / koa-compose: ` +
      perProcess.map((p) => `${p.ours.toFixed(1)} / ${p.koa.toFixed(1)} (${p.ratio.toFixed(2)}×)`).join('; ') +
      `. Over N = 0…10 the ratios are ${perProcess.map((p) => `${p.ratioAll.toFixed(2)}×`).join(', ')}.`,
    `Pooled least-squares fit over N = 1, 3, 5, 10: MemoryCache ${oursFit1.slope.toFixed(1)} ns, koa-compose ` +
      `${koaFit1.slope.toFixed(1)} ns per middleware (${(oursFit1.slope / koaFit1.slope).toFixed(2)}×); ` +
      `over N = 0…10: MemoryCache ${oursFit.slope.toFixed(1)} ns (intercept ${oursFit.intercept.toFixed(0)} ns), ` +
      `koa-compose ${koaFit.slope.toFixed(1)} ns (intercept ${koaFit.intercept.toFixed(0)} ns), ` +
      `${(oursFit.slope / koaFit.slope).toFixed(2)}×.`,
    `Step from 0 to 1 middleware (the one-off cost of having a chain): MemoryCache +${step('MemoryCache')} ns, ` +
      `koa-compose +${step('koa-compose')} ns.`,
    '',
    `- added cost per middleware ≤ 1.2× koa-compose's: ${slopeRatio.toFixed(2)}× (median of the processes) ` +
      `${pass(perProcess.every((p) => p.ok) && slopeRatio <= 1.2)}`,
  )
  console.log(out.join('\n'))
}

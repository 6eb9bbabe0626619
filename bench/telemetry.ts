// What observability costs on the memory hot path (get-hit on 10k keys, 100-byte strings):
//
// 1. The diagnostics channel with no subscriber: `new MemoryCache()` of this build against the
//    same build with the channel compiled out (run() never checks for subscribers), each a copy
//    of lib/ loaded in the same process and used by that one cache. Target ≥ 0.97×.
// 2. OtelPlugin with the API's default no-op providers (no SDK registered) against no plugin.
//    Target ≥ 0.5×.
// 3. PrometheusPlugin on its own prom-client Registry against no plugin. Target ≥ 0.4×.
//
// Every case runs in PROCESSES fresh processes; in each, all cases are warmed up, then ROUNDS
// rounds visit every case in a rotated order, so each ratio compares cases that met the machine
// at the same time. A ratio is the median over processes of the ratio of median rounds.
// `--smoke` runs each case once, briefly, in this process, with read-back checks only.
import { execFileSync } from 'node:child_process'
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Registry } from 'prom-client'
import { MemoryCache } from '../lib/index.js'
import { OtelPlugin } from '../lib/otel.js'
import { PrometheusPlugin } from '../lib/prometheus.js'

const KEYS = 10_000
const VALUE = 'x'.repeat(100)
const smoke = process.argv.includes('--smoke')
const ROUNDS = smoke ? 1 : 11
const ROUND_MS = 250
const SMOKE_OPS = 2_000
const PROCESSES = smoke ? 1 : 5
const keys = Array.from({ length: KEYS }, (_, i) => `k${i}`)

interface Getter {
  get(key: string): Promise<unknown>
  set(key: string, value: string): Promise<unknown>
}

/**
 * A copy of lib/ under .tmp/ in the project (so its imports resolve as lib's do), its own
 * module graph: with `compiledOut`, `run()` never looks for subscribers — the build with the
 * channel compiled out. Both sides of target 1 are such copies, each used by one cache only:
 * lib's own `run()` also serves the plugin cases, which a lone copy would not see.
 */
async function copyOfLib(dir: string, compiledOut: boolean): Promise<new () => Getter> {
  const root = fileURLToPath(new URL('..', import.meta.url))
  cpSync(join(root, 'lib'), join(dir, 'lib'), { recursive: true })
  const run = join(dir, 'lib/core/run.ts')
  const source = readFileSync(run, 'utf8')
  const check = '  if (!tracing && traced()) return tracedRun(ctx, chain)\n'
  if (source.split(check).length !== 2) throw new Error(`lib/core/run.ts: the subscriber check was not found once`)
  if (compiledOut) writeFileSync(run, source.replace(check, ''))
  const copy = (await import(pathToFileURL(join(dir, 'lib/index.ts')).href)) as { MemoryCache: new () => Getter }
  return copy.MemoryCache
}

async function filled<G extends Getter>(cache: G): Promise<G> {
  for (const key of keys) await cache.set(key, VALUE)
  const value = await cache.get('k1')
  if (value !== VALUE) throw new Error(`pre-filled key read back as ${JSON.stringify(value)}`)
  return cache
}

const WITH_CHANNEL = 'MemoryCache get-hit (a copy of lib/)'
const COMPILED_OUT = 'MemoryCache get-hit, channel compiled out (a copy of lib/)'
const PLAIN = 'MemoryCache get-hit'

async function cases(scratch: string): Promise<Record<string, Getter>> {
  const WithChannel = await copyOfLib(join(scratch, 'with'), false)
  const CompiledOut = await copyOfLib(join(scratch, 'without'), true)
  return {
    [WITH_CHANNEL]: await filled(new WithChannel()),
    [COMPILED_OUT]: await filled(new CompiledOut()),
    [PLAIN]: await filled(new MemoryCache()),
    'MemoryCache get-hit + OtelPlugin (no-op providers)': await filled(
      new MemoryCache({ plugins: [new OtelPlugin()] }),
    ),
    'MemoryCache get-hit + PrometheusPlugin': await filled(
      new MemoryCache({ plugins: [new PrometheusPlugin({ registry: new Registry() })] }),
    ),
  }
}

type Loop = (cache: Getter, keys: string[], ops: number) => Promise<void>
const AsyncFunction = (async () => {}).constructor as new (...source: string[]) => Loop
/**
 * The measured loop of one case, a function of its own: a loop shared by every case would see
 * four cache classes at its `cache.get` call and slow each case by how V8 happened to handle that.
 */
function loopOf(): Loop {
  return new AsyncFunction('cache', 'keys', 'ops', `for (let i = 0; i < ops; i++) await cache.get(keys[i % ${KEYS}])`)
}
const loops = new Map<Getter, Loop>()

async function run(cache: Getter, ops: number): Promise<number> {
  let loop = loops.get(cache)
  if (loop === undefined) loops.set(cache, (loop = loopOf()))
  const started = performance.now()
  await loop(cache, keys, ops)
  return ops / ((performance.now() - started) / 1000)
}

/** Warms a case up (at least 2 rounds' time and 3 × 10k ops) and answers how many ops make a round. */
async function warmUp(cache: Getter): Promise<number> {
  if (smoke) return SMOKE_OPS
  let ops = KEYS
  let warm = 0
  for (let spent = 0; spent < 2 * ROUND_MS || warm < 3 * KEYS; ) {
    const started = performance.now()
    await run(cache, ops)
    spent += performance.now() - started
    warm += ops
    ops *= 2
  }
  const rate = await run(cache, KEYS * 4)
  return Math.max(KEYS, Math.round((rate * ROUND_MS) / 1000))
}

async function measure(): Promise<Record<string, number[]>> {
  const scratch = join(fileURLToPath(new URL('..', import.meta.url)), '.tmp', `bench-telemetry-${process.pid}`)
  mkdirSync(scratch, { recursive: true })
  try {
    const all = await cases(scratch)
    const names = Object.keys(all)
    const perRound = new Map<string, number>()
    for (const name of names) perRound.set(name, await warmUp(all[name]!))
    const rates: Record<string, number[]> = Object.fromEntries(names.map((name) => [name, []]))
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < names.length; i++) {
        const name = names[(i + round) % names.length]!
        rates[name]!.push(await run(all[name]!, perRound.get(name)!))
      }
    }
    return rates
  } finally {
    rmSync(scratch, { recursive: true, force: true })
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
const fmt = (n: number): string => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1e3).toFixed(0)}k`)
const pass = (ok: boolean): string => (ok ? '**PASS**' : '**FAIL**')

const TARGETS: { name: string; base: string; min: number; what: string }[] = [
  {
    name: WITH_CHANNEL,
    base: COMPILED_OUT,
    min: 0.97,
    what: 'no subscriber vs channel compiled out',
  },
  {
    name: 'MemoryCache get-hit + OtelPlugin (no-op providers)',
    base: PLAIN,
    min: 0.5,
    what: 'OtelPlugin vs no plugin',
  },
  {
    name: 'MemoryCache get-hit + PrometheusPlugin',
    base: PLAIN,
    min: 0.4,
    what: 'PrometheusPlugin vs no plugin',
  },
]

if (process.argv.includes('--child')) {
  process.stdout.write(JSON.stringify(await measure()))
} else {
  const startedAt = performance.now()
  const loadBefore = loadavg()[0]!.toFixed(2)
  const self = fileURLToPath(import.meta.url)
  const processes: Record<string, number[]>[] = []
  for (let p = 0; p < PROCESSES; p++) {
    processes.push(
      smoke
        ? await measure()
        : JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', self, '--child'], { encoding: 'utf8' })),
    )
  }
  console.log(`## Telemetry on the memory hot path\n`)
  console.log(
    smoke
      ? '(smoke: checks that every case runs; the figures and PASS/FAIL mean nothing)\n'
      : `${PROCESSES} processes × ${ROUNDS} interleaved rounds of ~${ROUND_MS} ms per case; ` +
          `load average ${loadBefore} before, ${loadavg()[0]!.toFixed(2)} after; ` +
          `${((performance.now() - startedAt) / 1000).toFixed(0)} s\n`,
  )
  console.log('| case | median ops/s per process |')
  console.log('| --- | --- |')
  for (const name of Object.keys(processes[0]!)) {
    console.log(`| ${name} | ${processes.map((rates) => fmt(median(rates[name]!))).join(', ')} |`)
  }
  console.log('\n| target | ratio per process | median | verdict |')
  console.log('| --- | --- | ---: | --- |')
  for (const target of TARGETS) {
    const ratios = processes.map((rates) => median(rates[target.name]!) / median(rates[target.base]!))
    const verdict = median(ratios)
    console.log(
      `| ${target.what} ≥ ${target.min}× | ${ratios.map((r) => `${r.toFixed(3)}×`).join(', ')} | ` +
        `${verdict.toFixed(3)}× | ${pass(verdict >= target.min)} |`,
    )
  }
}

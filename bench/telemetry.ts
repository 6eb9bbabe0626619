// What observability costs on the memory hot path (get-hit on 10k keys, 100-byte strings):
//
// 1. The diagnostics channel with no subscriber: `new MemoryCache()` of this build against the
//    same build with the channel compiled out (run() never checks for subscribers), each a copy
//    of lib/ loaded in the same process and used by that one cache. Target ≥ 0.97×.
// 2. OtelPlugin with the API's default no-op providers (no SDK registered) against no plugin.
//    Target ≥ 0.5×.
// 3. PrometheusPlugin on its own prom-client Registry against no plugin. Target ≥ 0.4×.
//
// Measured as bench/support/interleaved.ts says: 5 processes × 11 interleaved rounds.
// `--smoke` runs each case once, briefly, in this process, with read-back checks only.
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Registry } from 'prom-client'
import { MemoryCache } from '../lib/index.js'
import { OtelPlugin } from '../lib/otel.js'
import { PrometheusPlugin } from '../lib/prometheus.js'
import {
  getOp,
  inProcesses,
  type Method,
  measureInterleaved,
  type Rates,
  ratesTable,
  targetRow,
} from './support/interleaved.js'

const KEYS = 10_000
const VALUE = 'x'.repeat(100)
const smoke = process.argv.includes('--smoke')
const keys = Array.from({ length: KEYS }, (_, i) => `k${i}`)
const METHOD: Method = { keys, rounds: smoke ? 1 : 11, roundMs: 250, processes: smoke ? 1 : 5, smoke, smokeOps: 2_000 }

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

async function measure(): Promise<Rates> {
  const scratch = join(fileURLToPath(new URL('..', import.meta.url)), '.tmp', `bench-telemetry-${process.pid}`)
  mkdirSync(scratch, { recursive: true })
  try {
    const all = await cases(scratch)
    const ops = Object.fromEntries(Object.entries(all).map(([name, cache]) => [name, getOp(cache)]))
    return await measureInterleaved(METHOD, ops)
  } finally {
    rmSync(scratch, { recursive: true, force: true })
  }
}

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
  const { processes, how } = await inProcesses(METHOD, fileURLToPath(import.meta.url), measure)
  console.log(`## Telemetry on the memory hot path\n`)
  console.log(`${how}\n`)
  for (const line of ratesTable(processes)) console.log(line)
  console.log('\n| target | ratio per process | median | verdict |')
  console.log('| --- | --- | ---: | --- |')
  for (const target of TARGETS) {
    console.log(targetRow(processes, target.what, target.name, target.base, target.min))
  }
}

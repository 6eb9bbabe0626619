// The memory hot path against its baseline, `await map.get()` in an async
// function, each case in a fresh process, with warm-up and several rounds.
// Prints median ops/s, the spread (min–max) and the ratio to the baseline of
// this run. `npm run bench:hot` runs it; `--smoke` runs every case briefly.
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { HitMissRatioPlugin, MemoryCache, TimingPlugin } from '../lib/index.js'

const KEYS = 10_000
const VALUE = 'x'.repeat(100)
const smoke = process.argv.includes('--smoke')
const ROUNDS = smoke ? 2 : 7
const OPS = smoke ? 20_000 : 2_000_000

type Op = (key: string) => Promise<unknown>
const cases: Record<string, () => Promise<Op>> = {
  'baseline: await map.get()': async () => {
    const map = new Map<string, string>()
    for (let i = 0; i < KEYS; i++) map.set(`k${i}`, VALUE)
    return async (key) => map.get(key)
  },
  'MemoryCache get-hit': async () => {
    const cache = await filled(new MemoryCache())
    return (key) => cache.get(key)
  },
  'MemoryCache get-miss': async () => {
    const cache = new MemoryCache()
    return (key) => cache.get(key)
  },
  'MemoryCache set': async () => {
    const cache = new MemoryCache()
    return (key) => cache.set(key, VALUE)
  },
  'MemoryCache get-hit + Timing + HitMissRatio': async () => {
    const cache = await filled(new MemoryCache({ plugins: [new TimingPlugin(), new HitMissRatioPlugin()] }))
    return (key) => cache.get(key)
  },
}

async function filled(cache: MemoryCache): Promise<MemoryCache> {
  for (let i = 0; i < KEYS; i++) await cache.set(`k${i}`, VALUE)
  return cache
}

async function measure(name: string): Promise<number[]> {
  const op = await cases[name]!()
  const keys = Array.from({ length: KEYS }, (_, i) => `k${i}`)
  const rates: number[] = []
  for (let round = -1; round < ROUNDS; round++) {
    const started = performance.now()
    for (let i = 0; i < OPS; i++) await op(keys[i % KEYS]!)
    const rate = OPS / ((performance.now() - started) / 1000)
    if (round >= 0) rates.push(rate) // round -1 is the warm-up
  }
  return rates
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
const fmt = (n: number): string => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1e3).toFixed(0)}k`)

const only = process.argv.find((a) => a.startsWith('--case='))?.slice('--case='.length)
if (only !== undefined) {
  process.stdout.write(JSON.stringify(await measure(only)))
} else {
  const self = fileURLToPath(import.meta.url)
  const results = Object.keys(cases).map((name) => {
    const out = execFileSync(process.execPath, ['--import', 'tsx', self, `--case=${name}`, ...(smoke ? ['--smoke'] : [])], { encoding: 'utf8' })
    return { name, rates: JSON.parse(out) as number[] }
  })
  const base = median(results[0]!.rates)
  console.log(`node ${process.version}, ${ROUNDS} rounds of ${OPS} ops per case, each case in a fresh process`)
  console.log('| case | median ops/s | spread | ratio to baseline |\n| --- | ---: | ---: | ---: |')
  for (const { name, rates } of results) {
    console.log(`| ${name} | ${fmt(median(rates))} | ${fmt(Math.min(...rates))}–${fmt(Math.max(...rates))} | ${(median(rates) / base).toFixed(2)}× |`)
  }
}

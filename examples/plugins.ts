// The seed example: a custom plugin next to HitMissRatioPlugin and TimingPlugin on the
// built-in memory backend, told step by step. Run it with `npm run demo`.
import assert from 'node:assert/strict'
import { BasePlugin, Cache, type Context, HitMissRatioPlugin, TimingPlugin } from '../lib/index.js'

/** Seconds, as the plugins measure them, in the unit that reads best. */
function duration(seconds: number): string {
  if (seconds < 1e-3) return `${(seconds * 1e6).toFixed(1)} µs`
  if (seconds < 1) return `${(seconds * 1e3).toFixed(2)} ms`
  return `${seconds.toFixed(2)} s`
}

class MyCustomPlugin extends BasePlugin {
  override preSet(ctx: Context): void {
    console.log(`   I'm the preSet hook being called with key ${ctx.args.key}`)
  }

  override postSet(ctx: Context): void {
    console.log(
      `   I'm the postSet hook: key ${ctx.args.key}, result ${String(ctx.result)}, took ${duration(ctx.took)}`,
    )
  }
}

const cache = new Cache({
  plugins: [new HitMissRatioPlugin(), new TimingPlugin(), new MyCustomPlugin()],
  namespace: 'main',
})

async function run(): Promise<void> {
  console.log(
    'A memory cache (namespace "main") with three plugins: HitMissRatioPlugin, TimingPlugin, MyCustomPlugin.\n',
  )

  console.log('1. Store four keys, a to d. MyCustomPlugin prints around every set:')
  for (const [key, value] of [
    ['a', '1'],
    ['b', '2'],
    ['c', '3'],
    ['d', '4'],
  ] as const) {
    await cache.set(key, value)
  }

  const possibleKeys = ['a', 'b', 'c', 'd', 'e', 'f']
  const reads = 1000
  console.log(`\n2. Read ${reads} keys picked at random among a to f (e and f were never stored).`)
  for (let i = 0; i < reads; i++) {
    await cache.get(possibleKeys[Math.floor(Math.random() * possibleKeys.length)]!)
  }

  const ratio = cache.hitMissRatio!
  const profiling = cache.profiling!
  assert.equal(ratio.total, reads)
  assert.ok(ratio.hitRatio > 0.5, `hit ratio ${ratio.hitRatio} should be above 0.5 (about 4 reads in 6 hit)`)
  for (const command of ['get', 'set'] as const) {
    assert.ok(profiling[`${command}_min`]! > 0 && profiling[`${command}_max`]! >= profiling[`${command}_min`]!)
  }

  console.log('\n3. HitMissRatioPlugin counted the reads:')
  const percent = (ratio.hitRatio * 100).toFixed(1)
  console.log(`   hits: ${ratio.hits} of ${ratio.total} reads, hit ratio ${percent} % (expected about 66.7 %)`)

  console.log('\n4. TimingPlugin timed every command:')
  const row = (cells: string[]) =>
    `   ${cells[0]!.padEnd(8)}${cells
      .slice(1)
      .map((c, i) => c.padStart(i === 0 ? 6 : 12))
      .join('')}`
  console.log(row(['command', 'calls', 'average', 'min', 'max']))
  for (const command of ['set', 'get'] as const) {
    const time = (stat: 'avg' | 'min' | 'max') => duration(profiling[`${command}_${stat}`]!)
    console.log(row([command, String(profiling[`${command}_total`]), time('avg'), time('min'), time('max')]))
  }
  console.log("   (set's times include MyCustomPlugin's printing: TimingPlugin is the outer layer of the two.)")
}

try {
  await run()
} finally {
  await cache.clear()
  await cache.close()
}

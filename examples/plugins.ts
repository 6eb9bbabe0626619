// The seed example: a custom plugin next to HitMissRatioPlugin and TimingPlugin
// on the built-in memory backend. Run it with `npm run demo`.
import assert from 'node:assert/strict'
import { BasePlugin, Cache, type Context, HitMissRatioPlugin, TimingPlugin } from '../lib/index.js'

class MyCustomPlugin extends BasePlugin {
  override preSet(ctx: Context): void {
    console.log(`I'm the preSet hook being called with key ${ctx.args.key}`)
  }

  override postSet(ctx: Context): void {
    console.log(
      `I'm the postSet hook being called with key ${ctx.args.key}, result ${String(ctx.result)}, took ${ctx.took}s`,
    )
  }
}

const cache = new Cache({
  plugins: [new HitMissRatioPlugin(), new TimingPlugin(), new MyCustomPlugin()],
  namespace: 'main',
})

async function run(): Promise<void> {
  await cache.set('a', '1')
  await cache.set('b', '2')
  await cache.set('c', '3')
  await cache.set('d', '4')

  const possibleKeys = ['a', 'b', 'c', 'd', 'e', 'f']
  for (let i = 0; i < 1000; i++) {
    await cache.get(possibleKeys[Math.floor(Math.random() * possibleKeys.length)]!)
  }

  const ratio = cache.hitMissRatio!
  const profiling = cache.profiling!
  assert.ok(ratio.hitRatio > 0.5, `hit ratio ${ratio.hitRatio} should be above 0.5`)
  assert.equal(ratio.total, 1000)
  assert.ok(profiling.get_min > 0)
  assert.ok(profiling.set_min > 0)
  assert.ok(profiling.get_max > 0)
  assert.ok(profiling.set_max > 0)

  console.log(ratio)
  console.log(profiling)
}

try {
  await run()
} finally {
  await cache.clear()
  await cache.close()
}

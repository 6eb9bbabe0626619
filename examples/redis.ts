// RedisCache on a Redis server: `REDIS_URL=redis://127.0.0.1:6379/0 npx tsx examples/redis.ts`
// (npm test starts private servers itself; this example uses the one you name).
import { HitMissRatioPlugin, TimingPlugin } from '../lib/index.js'
import { RedisCache } from '../lib/redis.js'

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379/0'

await using cache = new RedisCache({
  url,
  namespace: 'example',
  ttl: 60, // seconds
  timeout: 1, // seconds: every command is bounded
  plugins: [new HitMissRatioPlugin(), new TimingPlugin()],
})

await cache.set('user:42', { name: 'Ada', langs: ['en', 'fr'] })
console.log(await cache.get('user:42')) // { name: 'Ada', langs: [ 'en', 'fr' ] }
console.log(await cache.raw('GET', cache.buildKey('user:42'))) // the plain JSON string Redis holds

await cache.multiSet(
  [
    ['a', 1],
    ['b', 2],
  ],
  { ttl: 10 },
)
console.log(await cache.multiGet(['a', 'b', 'c'])) // [ 1, 2, undefined ]
console.log(await cache.increment('visits')) // 1, 2, 3… across runs, within the ttl
await cache.clear() // only keys under 'example:'

console.log(cache.hitMissRatio, cache.profiling)

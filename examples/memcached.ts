// MemcachedCache on memcached servers:
// `MEMCACHED_SERVERS=127.0.0.1:11211,127.0.0.1:11212 npx tsx examples/memcached.ts`
// (npm test starts private servers itself; this example uses the ones you name).
import { MemcachedCache } from '../lib/memcached.js'

const servers = (process.env.MEMCACHED_SERVERS ?? '127.0.0.1:11211').split(',')

await using cache = new MemcachedCache({
  servers, // keys are spread over them by consistent hashing
  namespace: 'example',
  ttl: 60, // seconds; above 30 days oniocache sends an absolute time, as memcached requires
  timeout: 1, // seconds
})

await cache.set('user:42', { name: 'Ada', langs: ['en', 'fr'] })
console.log(await cache.get('user:42')) // { name: 'Ada', langs: [ 'en', 'fr' ] }

await cache.multiSet(
  [
    ['a', 1],
    ['b', 2],
  ],
  { ttl: 10 },
)
console.log(await cache.multiGet(['a', 'b', 'c'])) // [ 1, 2, undefined ]
console.log(await cache.increment('visits')) // 1, 2, 3… across runs, within the ttl

try {
  await cache.clear() // a namespaced cache: memcached cannot list its keys
} catch (error) {
  console.log((error as Error).message)
}
await cache.delete('user:42')

/** `oniocache/redis`: the Redis backend and its cache. */
import './config.js' // registers Cache.fromUrl, so RedisCache.fromUrl works from this entry too
export { RedisBackend, RedisCache, parseRedisUrl } from './backends/redis.js'
export type { RedisBackendOptions, RedisCacheOptions, RedisMessageListener } from './backends/redis.js'

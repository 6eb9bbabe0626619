/** `oniocache/redis`: the Redis backend and its cache. */
export { RedisBackend, RedisCache, parseRedisUrl } from './backends/redis.js'
export type { RedisBackendOptions, RedisCacheOptions } from './backends/redis.js'

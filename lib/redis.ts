/**
 * `oniocache/redis`: the Redis backend and its cache, on the official client `@redis/client` (an optional peer
 * dependency, loaded on the first command), single node or Cluster.
 * @module
 */
export { RedisBackend, type RedisMessageListener } from './backends/redis/backend.js'
export { RedisBus, type RedisBusOptions } from './backends/redis/bus.js'
export type { RedisBackendOptions } from './backends/redis/options.js'
export { parseRedisUrl, type RedisLocation, type RedisUrl } from './backends/redis/url.js'
export { RedisCache, type RedisCacheOptions } from './caches/redis.js'

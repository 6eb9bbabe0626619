import { RedisBackend } from '../backends/redis/backend.js'
import type { RedisBackendOptions } from '../backends/redis/options.js'
import { Cache, type CacheOptions } from './cache.js'
import { KINDS, kindOptions } from './kinds.js'

export interface RedisCacheOptions extends Omit<CacheOptions, 'backend'>, RedisBackendOptions {}

/**
 * aiocache's RedisCache: the Redis backend with `JsonSerializer`. Constructing it
 * does not connect; the first command does. A `url` says what `Cache.fromUrl`
 * would read in it, its query's `namespace`, `ttl` and `timeout` included
 * (options given beside it win).
 *
 * ```ts
 * await using cache = new RedisCache({ url: 'redis://127.0.0.1:6379/0', namespace: 'app', ttl: 60 })
 * ```
 */
export class RedisCache extends Cache {
  declare readonly backend: RedisBackend
  constructor(options: RedisCacheOptions = {}) {
    const [redis, rest] = kindOptions(KINDS.redis, options, 'RedisCache')
    super({ serializer: KINDS.redis.serializer(), ...rest, backend: new RedisBackend(redis) })
  }
}

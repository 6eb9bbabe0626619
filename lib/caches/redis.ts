import { RedisBackend } from '../backends/redis/backend.js'
import type { RedisBackendOptions } from '../backends/redis/options.js'
import { Cache, type CacheOptions } from './cache.js'
import { KINDS, kindOptions } from './kinds.js'

/** The options of `new RedisCache(…)`: every cache's and the Redis backend's (`url`, `host`, `port`, …). */
export interface RedisCacheOptions extends Omit<CacheOptions, 'backend'>, RedisBackendOptions {}

/**
 * aiocache's RedisCache: the Redis backend with `JsonSerializer`. Constructing it
 * does not connect; the first command does. A `url` says what `Cache.fromUrl`
 * would read in it, its query's `namespace`, `ttl` and `timeout` included
 * (options given beside it win).
 *
 * While the server is known to be down, commands reject with `BackendError` at once
 * rather than wait out their timeout; the client reconnects in the background.
 *
 * @example
 * ```ts
 * import { RedisCache } from 'oniocache/redis'
 *
 * await using cache = new RedisCache({ url: 'redis://127.0.0.1:6379/0', namespace: 'app', ttl: 60 })
 * await cache.set('greeting', { text: 'hello' })
 * console.log(await cache.get('greeting')) // { text: 'hello' }, stored as the JSON string {"text":"hello"}
 * ```
 */
export class RedisCache extends Cache {
  declare readonly backend: RedisBackend
  /**
   * Checks the options (the url included) without connecting or loading the Redis client.
   * @throws {TypeError} for an unknown option, a malformed url, or a `client` or `cluster` of the wrong kind;
   *   messages never repeat the url.
   * @throws {RangeError} for a duration (`ttl`, `timeout`, `connectTimeout`) that is not one.
   */
  constructor(options: RedisCacheOptions = {}) {
    const [redis, rest] = kindOptions(KINDS.redis, options, 'RedisCache')
    super({ serializer: KINDS.redis.serializer(), ...rest, backend: new RedisBackend(redis) })
  }
}

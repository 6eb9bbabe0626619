import { MemcachedBackend } from '../backends/memcached/backend.js'
import type { MemcachedBackendOptions } from '../backends/memcached/options.js'
import { Cache, type CacheOptions } from './cache.js'
import { KINDS, kindOptions } from './kinds.js'

/** The options of `new MemcachedCache(…)`: every cache's and the Memcached backend's (`servers`, …). */
export interface MemcachedCacheOptions extends Omit<CacheOptions, 'backend'>, MemcachedBackendOptions {}

/**
 * aiocache's MemcachedCache: the Memcached backend with `JsonSerializer`.
 * Constructing it does not connect; the first command does.
 *
 * Keys are limited as memcached limits them: spaces become `_`, and a key longer than 250 bytes (namespace
 * included) or with control characters rejects with `InvalidKeyError` before any I/O. A fractional ttl is
 * rounded up to whole seconds. Memcached cannot list keys: `clear` empties every server (`flush_all`) for the
 * namespace `''` and rejects with `BackendError` for any other.
 *
 * @example
 * ```ts
 * import { MemcachedCache } from 'oniocache/memcached'
 *
 * const cache = new MemcachedCache({ servers: ['127.0.0.1:11211'], namespace: 'app' })
 * await cache.set('greeting', 'hello', { ttl: 10 })
 * console.log(await cache.get('greeting')) // hello
 * await cache.close()
 * ```
 */
export class MemcachedCache extends Cache {
  declare readonly backend: MemcachedBackend
  /**
   * Checks the options without connecting or loading the protocol client.
   * @throws {TypeError} for an unknown option, or one of the wrong kind (such as a server that is not
   *   `'host:port'`).
   * @throws {RangeError} for a duration (`ttl`, `timeout`, `connectTimeout`) that is not one.
   */
  constructor(options: MemcachedCacheOptions = {}) {
    const [memcached, rest] = kindOptions(KINDS.memcached, options, 'MemcachedCache')
    super({ serializer: KINDS.memcached.serializer(), ...rest, backend: new MemcachedBackend(memcached) })
  }
}

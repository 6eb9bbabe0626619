import { MemcachedBackend } from '../backends/memcached/backend.js'
import { MEMCACHED_OPTIONS, type MemcachedBackendOptions } from '../backends/memcached/options.js'
import { CACHE_OPTIONS } from '../core/cache.js'
import { JsonSerializer } from '../serializers.js'
import { splitOptions } from '../util/options.js'
import { Cache, type CacheOptions } from './cache.js'

export interface MemcachedCacheOptions extends Omit<CacheOptions, 'backend'>, MemcachedBackendOptions {}

/**
 * aiocache's MemcachedCache: the Memcached backend with `JsonSerializer`.
 * Constructing it does not connect; the first command does.
 */
export class MemcachedCache extends Cache {
  declare readonly backend: MemcachedBackend
  constructor(options: MemcachedCacheOptions = {}) {
    const [memcached, rest] = splitOptions<MemcachedBackendOptions, Omit<CacheOptions, 'backend'>>(
      options,
      MEMCACHED_OPTIONS,
      ['serializer', ...CACHE_OPTIONS],
      'MemcachedCache',
    )
    super({ serializer: new JsonSerializer(), ...rest, backend: new MemcachedBackend(memcached) })
  }
}

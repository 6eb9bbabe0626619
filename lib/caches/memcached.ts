import { MemcachedBackend } from '../backends/memcached/backend.js'
import type { MemcachedBackendOptions } from '../backends/memcached/options.js'
import { Cache, type CacheOptions } from './cache.js'
import { KINDS, kindOptions } from './kinds.js'

export interface MemcachedCacheOptions extends Omit<CacheOptions, 'backend'>, MemcachedBackendOptions {}

/**
 * aiocache's MemcachedCache: the Memcached backend with `JsonSerializer`.
 * Constructing it does not connect; the first command does.
 */
export class MemcachedCache extends Cache {
  declare readonly backend: MemcachedBackend
  constructor(options: MemcachedCacheOptions = {}) {
    const [memcached, rest] = kindOptions(KINDS.memcached, options, 'MemcachedCache')
    super({ serializer: KINDS.memcached.serializer(), ...rest, backend: new MemcachedBackend(memcached) })
  }
}

import { MEMORY_OPTIONS, MemoryBackend, type MemoryBackendOptions } from '../backends/memory/backend.js'
import { CACHE_OPTIONS } from '../core/cache.js'
import { NullSerializer } from '../serializers.js'
import { splitOptions } from '../util/options.js'
import { Cache, type CacheOptions } from './cache.js'

export interface MemoryCacheOptions extends Omit<CacheOptions, 'backend'>, MemoryBackendOptions {}

/**
 * The memory cache as aiocache's `SimpleMemoryCache`: the memory backend with
 * `NullSerializer` (values are kept as they are, not copied).
 */
export class MemoryCache extends Cache {
  declare readonly backend: MemoryBackend
  constructor(options: MemoryCacheOptions = {}) {
    const [memory, rest] = splitOptions<MemoryBackendOptions, Omit<CacheOptions, 'backend'>>(
      options,
      MEMORY_OPTIONS,
      ['serializer', ...CACHE_OPTIONS],
      'MemoryCache',
    )
    super({ serializer: new NullSerializer(), ...rest, backend: new MemoryBackend(memory) })
  }
}

/** aiocache's name for `MemoryCache`. */
export const SimpleMemoryCache = MemoryCache
export type SimpleMemoryCache = MemoryCache

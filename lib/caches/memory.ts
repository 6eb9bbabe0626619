import { MemoryBackend, type MemoryBackendOptions } from '../backends/memory/backend.js'
import { Cache, type CacheOptions } from './cache.js'
import { KINDS, kindOptions } from './kinds.js'

export interface MemoryCacheOptions extends Omit<CacheOptions, 'backend'>, MemoryBackendOptions {}

/**
 * The memory cache as aiocache's `SimpleMemoryCache`: the memory backend with
 * `NullSerializer` (values are kept as they are, not copied).
 */
export class MemoryCache extends Cache {
  declare readonly backend: MemoryBackend
  constructor(options: MemoryCacheOptions = {}) {
    const [memory, rest] = kindOptions(KINDS.memory, options, 'MemoryCache')
    super({ serializer: KINDS.memory.serializer(), ...rest, backend: new MemoryBackend(memory) })
  }
}

/** aiocache's name for `MemoryCache`. */
export const SimpleMemoryCache = MemoryCache
export type SimpleMemoryCache = MemoryCache

import { MemoryBackend, type MemoryBackendOptions } from '../backends/memory/backend.js'
import { Cache, type CacheOptions } from './cache.js'
import { KINDS, kindOptions } from './kinds.js'

/** The options of `new MemoryCache(…)`: every cache's and the memory backend's (`maxSize`, `clock`, …). */
export interface MemoryCacheOptions extends Omit<CacheOptions, 'backend'>, MemoryBackendOptions {}

/**
 * The memory cache as aiocache's `SimpleMemoryCache`: the memory backend with
 * `NullSerializer` (values are kept as they are, not copied).
 *
 * @example
 * ```ts
 * import { MemoryCache } from 'oniocache'
 *
 * const cache = new MemoryCache({ maxSize: 10_000, ttl: '5m', namespace: 'users' })
 * const ada = { name: 'Ada' }
 * await cache.set('1', ada)
 * console.log((await cache.get('1')) === ada) // true: the object itself, not a copy
 * console.log(await cache.increment('visits'), await cache.increment('visits', 2)) // 1 3
 * await cache.close()
 * ```
 */
export class MemoryCache extends Cache {
  declare readonly backend: MemoryBackend
  /**
   * Checks the options and builds the backend; does no I/O.
   * @throws {TypeError} for an unknown option, or one of the wrong kind (such as a `maxSize` that is not a
   *   positive integer).
   * @throws {RangeError} for a duration (`ttl`, `timeout`, `sweepInterval`) that is not one.
   */
  constructor(options: MemoryCacheOptions = {}) {
    const [memory, rest] = kindOptions(KINDS.memory, options, 'MemoryCache')
    super({ serializer: KINDS.memory.serializer(), ...rest, backend: new MemoryBackend(memory) })
  }
}

/** aiocache's name for `MemoryCache`. */
export const SimpleMemoryCache = MemoryCache
/** aiocache's name for `MemoryCache`. */
export type SimpleMemoryCache = MemoryCache

/**
 * aiocache's OptimisticLock: `acquire` reads the stored value, `cas` writes only if
 * it is still the stored one. Both go through the cache's chain as commands
 * (`get` with a `loads` that keeps the stored form, `set` with a `casToken`).
 */
import type { BaseCache as Cache } from '../core/cache.js'
import type { SetOptions } from '../core/options.js'
import { describe } from '../util/describe.js'
import { OptimisticLockError } from '../util/errors.js'

const stored = (value: unknown): unknown => value

/**
 * aiocache's optimistic lock: `acquire` reads the stored value, `cas` writes
 * only if that value is still the stored one (a missing key never conflicts).
 *
 * @example
 * ```ts
 * import { MemoryCache, OptimisticLock, OptimisticLockError } from 'oniocache'
 *
 * const cache = new MemoryCache()
 * await cache.set('counter', 1)
 * const lock = await OptimisticLock.acquire(cache, 'counter')
 * await cache.set('counter', 5) // someone else writes in between
 * try {
 *   await lock.cas(2)
 * } catch (error) {
 *   console.log(error instanceof OptimisticLockError) // true: read again and retry
 * }
 * ```
 */
export class OptimisticLock {
  /** The cache the key lives in. */
  readonly cache: Cache
  /** The key, as given to `acquire` (the cache's namespace applies). */
  readonly key: string
  #token: unknown

  private constructor(cache: Cache, key: string, token: unknown) {
    this.cache = cache
    this.key = key
    this.#token = token
  }

  /**
   * Reads the stored value of `key` (as stored, serialized) as the token `cas` compares against.
   * @throws {TypeError} when `key` is not a string.
   * @throws {TimeoutError} when the read takes longer than the cache's timeout.
   * @throws {BackendError} when the backend fails.
   */
  static async acquire(cache: Cache, key: string): Promise<OptimisticLock> {
    if (typeof key !== 'string')
      throw new TypeError(`[oniocache] OptimisticLock: key must be a string; got ${describe(key)}`)
    const token = await cache.get(key, { loads: stored })
    return new OptimisticLock(cache, key, token)
  }

  /**
   * Writes `value` if the stored value is still the one read at acquire (or the
   * key was missing then); rejects with `OptimisticLockError` otherwise.
   *
   * @param options - `ttl` of the write. Default: the cache's.
   * @throws {OptimisticLockError} when the stored value changed since `acquire`.
   * @throws {SerializationError} when the value cannot be encoded, and whatever else `cache.set` rejects with
   *   (`TimeoutError`, `BackendError`, …).
   */
  async cas(value: unknown, options: { ttl?: SetOptions['ttl'] } = {}): Promise<true> {
    const token = this.#token
    const written = await this.cache.set(
      this.key,
      value,
      token === undefined ? { ttl: options.ttl } : { ttl: options.ttl, casToken: token },
    )
    if (!written) {
      throw new OptimisticLockError(
        `[oniocache] the value of ${JSON.stringify(this.key)} changed since OptimisticLock.acquire: read it again ` +
          `and retry`,
      )
    }
    return true
  }

  /** Nothing to release: `await using` works for symmetry with `RedLock`. */
  async [Symbol.asyncDispose](): Promise<void> {}
}

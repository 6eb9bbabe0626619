/**
 * aiocache's RedLock: it keeps a dog-pile of callers from all computing the same
 * thing. The first holds `<key>-lock`, the others wait for it and then go on (to
 * find what the holder stored). Every backend call it makes is bounded by the
 * cache's timeout, as a command is: through the chain (`add`, `exists`) or, for
 * what is not a command (compare-and-delete, pub/sub), by `bounded`.
 */
import { randomUUID } from 'node:crypto'
import type { BaseCache as Cache } from '../core/cache.js'
import { type Bound, releaseLock, waitForRelease } from '../core/lock.js'
import { bounded } from '../core/run.js'
import { describe } from '../util/describe.js'
import { type Duration, toLease } from '../util/duration.js'
import { KeyExistsError } from '../util/errors.js'

/** The options of {@link RedLock.acquire} and {@link RedLock.run}. */
export interface RedLockOptions {
  /**
   * How long the lock may be held, in **seconds** (or `'500ms'`, `'10s'`…): the
   * lock key expires then, so a holder that dies does not block anyone for
   * longer. Waiters also stop waiting after it. Default `2`; must be above 0.
   */
  lease?: Duration
}

/**
 * A dog-pile lock with aiocache's semantics. The first caller stores a random
 * token under `buildKey(key + '-lock')` for at most `lease` seconds and holds the
 * lock. **The others do not take the lock after it**: they wait until the holder
 * releases it or the lease runs out, then go on without holding it — typically to
 * read the value the holder has just stored. Use it around "read → miss →
 * compute → write", not for mutual exclusion.
 *
 * Waiting works across processes: on Redis a release is published on a pub/sub
 * channel (polling every 200–400 ms covers a lost message); on Memcached and other
 * backends waiters poll with a backoff from 5 to 50 ms; in one process a
 * release wakes its waiters at once. Release removes the lock only while this
 * holder still owns it (compare-and-delete), so a holder whose lease ran out
 * never removes a lock someone else took since.
 *
 * The backend must have `deleteIf` (memory, Redis and Memcached do). Every backend call the lock makes is bounded
 * by the cache's timeout.
 *
 * @example
 * ```ts
 * import { MemoryCache, RedLock } from 'oniocache'
 *
 * const cache = new MemoryCache()
 * const value = await RedLock.run(cache, 'report', { lease: 5 }, async () => {
 *   const cached = await cache.get<string>('report')
 *   if (cached !== undefined) return cached
 *   const fresh = 'the report'
 *   await cache.set('report', fresh)
 *   return fresh
 * })
 *
 * {
 *   await using lock = await RedLock.acquire(cache, 'report', { lease: 5 })
 *   console.log(value, lock.held) // the report true: released at the end of the block
 * }
 * ```
 */
export class RedLock {
  /** The cache the lock lives in. */
  readonly cache: Cache
  /** The key the lock is for (the lock key is `key + '-lock'`). */
  readonly key: string
  /** The lease in seconds. */
  readonly lease: number
  #token: string | undefined

  private constructor(cache: Cache, key: string, lease: number, token: string | undefined) {
    this.cache = cache
    this.key = key
    this.lease = lease
    this.#token = token
  }

  /**
   * Takes the lock, or waits until its holder releases it or its lease runs out.
   * Either way it resolves to a `RedLock`; `held` tells which happened.
   *
   * @param cache - The cache that holds the lock key `key + '-lock'` (its namespace and key builder apply).
   * @param key - What the lock is for.
   * @param options - `lease`: seconds the lock may be held. Default `2`.
   * @throws {TypeError} when `key` is not a string, `options` is not an object, or the backend has no `deleteIf`.
   * @throws {RangeError} for a `lease` that is 0 or not a valid duration.
   * @throws {TimeoutError} when taking the lock takes longer than the cache's timeout.
   * @throws {BackendError} when taking the lock fails. (A failed check while waiting counts as "still held": the
   *   lease still ends the wait.)
   */
  static async acquire(cache: Cache, key: string, options: RedLockOptions = {}): Promise<RedLock> {
    const lease = leaseOf(options)
    if (typeof key !== 'string') throw new TypeError(`[oniocache] RedLock: key must be a string; got ${describe(key)}`)
    if (typeof cache?.backend?.deleteIf !== 'function') {
      throw new TypeError(
        `[oniocache] RedLock needs a cache whose backend has deleteIf (compare-and-delete); ` +
          `${cache?.backend?.name ?? 'this backend'} has none`,
      )
    }
    const token = randomUUID()
    try {
      await cache.add(key + '-lock', token, { ttl: lease })
      return new RedLock(cache, key, lease, token)
    } catch (error) {
      if (!(error instanceof KeyExistsError)) throw error
    }
    const lockKey = key + '-lock'
    await waitForRelease(
      cache.backend,
      cache.buildKey(lockKey),
      lease,
      () => cache.exists(lockKey),
      boundBy(cache, 'RedLock wait'),
    )
    return new RedLock(cache, key, lease, undefined)
  }

  /**
   * Runs `fn` under the lock (or after waiting for its holder) and resolves to
   * what it returns; the lock is released however `fn` ends.
   *
   * @throws {TypeError} when `fn` is not a function, and as {@link RedLock.acquire} throws.
   * @throws {Error} what `fn` throws.
   * @throws {TimeoutError} when taking or releasing the lock takes longer than the cache's timeout.
   * @throws {BackendError} when taking or releasing the lock fails.
   */
  static async run<T>(cache: Cache, key: string, options: RedLockOptions, fn: () => T | PromiseLike<T>): Promise<T> {
    if (typeof fn !== 'function')
      throw new TypeError(`[oniocache] RedLock.run: the last argument must be a function; got ${typeof fn}`)
    await using _lock = await RedLock.acquire(cache, key, options)
    return await fn()
  }

  /** Whether this caller took the lock (rather than waited for another holder) and has not released it. */
  get held(): boolean {
    return this.#token !== undefined
  }

  /**
   * Removes the lock if this caller still owns it and wakes the waiters; answers
   * whether it removed it. A second release, a waiter's release, or one after
   * the lease ran out (and maybe someone else took the lock) removes nothing.
   *
   * @throws {TimeoutError} when the compare-and-delete takes longer than the cache's timeout.
   * @throws {BackendError} when the compare-and-delete fails. (A failed announcement to other processes is
   *   ignored: they also poll.)
   */
  async release(): Promise<boolean> {
    const token = this.#token
    if (token === undefined) return false
    this.#token = undefined
    const { cache } = this
    const built = cache.buildKey(this.key + '-lock')
    return releaseLock(cache.backend, built, cache.serializer.dumps(token), boundBy(cache, 'RedLock release'))
  }

  /** Releases the lock, so that `await using lock = await RedLock.acquire(…)` releases it at the end of the block. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.release()
  }
}

function leaseOf(options: RedLockOptions): number {
  if (options === null || typeof options !== 'object')
    throw new TypeError(`[oniocache] RedLock: options must be an object ({ lease })`)
  return toLease(options.lease === undefined ? 2 : options.lease, 'RedLock: lease')
}

/** Bounds a call of the store by the cache's timeout, as a command is. */
function boundBy(cache: Cache, what: string): Bound {
  const seconds = cache.timeout ?? 0
  return (call) => bounded(what, seconds, call)
}

/**
 * aiocache's RedLock: it keeps a dog-pile of callers from all computing the same
 * thing. The first holds `<key>-lock`, the others wait for it and then go on (to
 * find what the holder stored). Every backend call it makes is bounded by the
 * cache's timeout, as a command is: through the chain (`add`, `exists`) or, for
 * what is not a command (compare-and-delete, pub/sub), by `bounded`.
 */
import { randomUUID } from 'node:crypto'
import type { Backend } from '../core/backend.js'
import type { BaseCache as Cache } from '../core/cache.js'
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

/** Whether a backend can wake waiters in other processes at once (Redis can); the others are polled. */
const hasSignals = (backend: Backend): backend is Backend & Required<Pick<Backend, 'subscribe' | 'publish'>> =>
  typeof backend.subscribe === 'function' && typeof backend.publish === 'function'

/** Poll intervals (ms) while waiting: with pub/sub the poll is only a fallback for a lost message. */
const POLL = { signals: { first: 50, max: 200 }, plain: { first: 10, max: 100 } } as const

/**
 * Waiters of this process, by store and built lock key: a release here wakes them
 * at once. A store is a synchronous (memory) backend itself, or the `name` of a
 * backend that does I/O, which names its server: two caches on one server share
 * their waiters. A wake-up is only a hint, as waiters check the key again.
 */
const local = new Map<Backend | string, Map<string, Set<() => void>>>()
const storeOf = (backend: Backend): Backend | string => (backend.synchronous === true ? backend : backend.name)

function listen(backend: Backend, key: string, wake: () => void): () => void {
  const store = storeOf(backend)
  let keys = local.get(store)
  if (keys === undefined) local.set(store, (keys = new Map()))
  let wakers = keys.get(key)
  if (wakers === undefined) keys.set(key, (wakers = new Set()))
  wakers.add(wake)
  return () => {
    wakers.delete(wake)
    if (wakers.size === 0 && keys.get(key) === wakers) keys.delete(key)
    if (keys.size === 0 && local.get(store) === keys) local.delete(store)
  }
}

function wakeLocal(backend: Backend, key: string): void {
  const wakers = local.get(storeOf(backend))?.get(key)
  if (wakers !== undefined) for (const wake of [...wakers]) wake()
}

/** The pub/sub channel a lock's release is announced on. */
export function lockChannel(builtLockKey: string): string {
  return `oniocache:lock-released:${builtLockKey}`
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
 * channel (polling every 50–200 ms covers a lost message); on Memcached and other
 * backends waiters poll with a backoff from 10 to 100 ms; in one process a
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
    await waitForRelease(cache, key + '-lock', lease)
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
    const backend = cache.backend
    const seconds = cache.timeout ?? 0
    const removed = await bounded('RedLock release', seconds, () =>
      backend.deleteIf!(built, cache.serializer.dumps(token)),
    )
    if (!removed) return false
    wakeLocal(backend, built)
    // Waiters elsewhere also poll: a release whose announcement fails is still a release.
    if (hasSignals(backend)) {
      await bounded('RedLock release', seconds, () => backend.publish(lockChannel(built), 'released')).catch(
        () => undefined,
      )
    }
    return true
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

/**
 * Waits until the lock key is gone or `lease` seconds have passed. On Redis it
 * subscribes BEFORE checking the key, so a release between the check and the
 * wait is not missed; polling covers a lost message and other backends.
 */
async function waitForRelease(cache: Cache, lockKey: string, lease: number): Promise<void> {
  const backend = cache.backend
  const built = cache.buildKey(lockKey)
  const deadline = Date.now() + lease * 1000
  let wake: () => void = () => {}
  let woken = false
  const onWake = (): void => {
    woken = true
    wake()
  }
  const unlisten = listen(backend, built, onWake)
  let unsubscribe: (() => Promise<void>) | undefined
  let poll: { readonly first: number; readonly max: number } = POLL.plain
  try {
    if (hasSignals(backend)) {
      try {
        const subscribing = backend.subscribe(lockChannel(built), onWake)
        // A subscription that answers after its timeout is undone when it does.
        subscribing.then(undefined, () => undefined)
        unsubscribe = await bounded('RedLock wait', cache.timeout ?? 0, () => subscribing).catch((error: unknown) => {
          void subscribing.then(
            (off) => off(),
            () => undefined,
          )
          throw error
        })
        poll = POLL.signals
      } catch {
        // No subscription (the server is down or refuses it): polling alone still ends the wait.
      }
    }
    let interval: number = poll.first
    for (;;) {
      woken = false
      // A check that fails counts as "still held": the lease still bounds the wait.
      if (!(await cache.exists(lockKey).catch(() => true))) return
      const left = deadline - Date.now()
      if (left <= 0) return
      if (!woken) {
        let timer: NodeJS.Timeout | undefined
        await new Promise<void>((resolve) => {
          wake = resolve
          timer = setTimeout(resolve, Math.min(interval, left))
        })
        clearTimeout(timer)
        wake = () => {}
      }
      interval = Math.min(interval * 2, poll.max)
    }
  } finally {
    unlisten()
    // Not awaited: the waiter goes on at once; the unsubscribe function never rejects.
    void unsubscribe?.()
  }
}

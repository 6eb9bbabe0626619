/**
 * aiocache's two locks. `RedLock` keeps a dog-pile of callers from all computing
 * the same thing: the first holds `<key>-lock`, the others wait for it and then go
 * on (to find what the holder stored). `OptimisticLock` writes only if the value
 * read at acquire is still the stored one.
 */
import { randomUUID } from 'node:crypto'
import type { Backend } from './backends/backend.js'
import type { Cache, SetOptions } from './cache.js'
import { toSeconds, type Duration } from './duration.js'
import { KeyExistsError, OptimisticLockError } from './errors.js'

export interface RedLockOptions {
  /**
   * How long the lock may be held, in **seconds** (or `'500ms'`, `'10s'`…): the
   * lock key expires then, so a holder that dies does not block anyone for
   * longer. Waiters also stop waiting after it. Default `2`; must be above 0.
   */
  lease?: Duration
}

/**
 * What a backend offers to wake waiters in other processes at once (Redis does).
 * Backends without it are polled.
 */
interface Signals {
  subscribe(channel: string, listener: (message: string) => void): Promise<() => Promise<void>>
  publish(channel: string, message: string): Promise<unknown>
}

const hasSignals = (backend: Backend): backend is Backend & Signals =>
  typeof (backend as Partial<Signals>).subscribe === 'function' && typeof (backend as Partial<Signals>).publish === 'function'

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
 * ```ts
 * await using lock = await RedLock.acquire(cache, 'report', { lease: 5 })
 * const value = await RedLock.run(cache, 'report', { lease: 5 }, async () => compute())
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
   */
  static async acquire(cache: Cache, key: string, options: RedLockOptions = {}): Promise<RedLock> {
    const lease = leaseOf(options)
    if (typeof key !== 'string') throw new TypeError(`[oniocache] RedLock: key must be a string; got ${typeof key}`)
    if (typeof cache?.backend?.deleteIf !== 'function') {
      throw new TypeError(`[oniocache] RedLock needs a cache whose backend has deleteIf (compare-and-delete); ${cache?.backend?.name ?? 'this backend'} has none`)
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
   */
  static async run<T>(cache: Cache, key: string, options: RedLockOptions, fn: () => T | PromiseLike<T>): Promise<T> {
    if (typeof fn !== 'function') throw new TypeError(`[oniocache] RedLock.run: the last argument must be a function; got ${typeof fn}`)
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
   */
  async release(): Promise<boolean> {
    const token = this.#token
    if (token === undefined) return false
    this.#token = undefined
    const { cache } = this
    const built = cache.buildKey(this.key + '-lock')
    const backend = cache.backend
    const removed = await backend.deleteIf!(built, cache.serializer.dumps(token))
    if (!removed) return false
    wakeLocal(backend, built)
    // Waiters elsewhere also poll: a release whose announcement fails is still a release.
    if (hasSignals(backend)) await backend.publish(lockChannel(built), 'released').catch(() => undefined)
    return true
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release()
  }
}

function leaseOf(options: RedLockOptions): number {
  if (options === null || typeof options !== 'object') throw new TypeError(`[oniocache] RedLock: options must be an object ({ lease })`)
  const lease = toSeconds(options.lease === undefined ? 2 : options.lease, 'lease')
  if (lease === 0) throw new RangeError(`[oniocache] lease must be above 0 seconds (such as 2 or '500ms'); a lock without a lease could be held forever`)
  return lease
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
        unsubscribe = await backend.subscribe(lockChannel(built), onWake)
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

/**
 * aiocache's optimistic lock: `acquire` reads the stored value, `cas` writes
 * only if that value is still the stored one (a missing key never conflicts).
 *
 * ```ts
 * await using lock = await OptimisticLock.acquire(cache, 'counter')
 * await lock.cas(next)   // OptimisticLockError if someone wrote in between
 * ```
 */
export class OptimisticLock {
  readonly cache: Cache
  readonly key: string
  #token: unknown

  private constructor(cache: Cache, key: string, token: unknown) {
    this.cache = cache
    this.key = key
    this.#token = token
  }

  /** Reads the stored value of `key` (as stored, serialized) as the token `cas` compares against. */
  static async acquire(cache: Cache, key: string): Promise<OptimisticLock> {
    if (typeof key !== 'string') throw new TypeError(`[oniocache] OptimisticLock: key must be a string; got ${typeof key}`)
    const token = await cache.backend.get(cache.buildKey(key), cache.serializer.encoding)
    return new OptimisticLock(cache, key, token)
  }

  /**
   * Writes `value` if the stored value is still the one read at acquire (or the
   * key was missing then); rejects with `OptimisticLockError` otherwise.
   */
  async cas(value: unknown, options: { ttl?: SetOptions['ttl'] } = {}): Promise<true> {
    const token = this.#token
    const written = await this.cache.set(this.key, value, token === undefined ? { ttl: options.ttl } : { ttl: options.ttl, casToken: token })
    if (!written) {
      throw new OptimisticLockError(`[oniocache] the value of ${JSON.stringify(this.key)} changed since OptimisticLock.acquire: read it again and retry`)
    }
    return true
  }

  /** Nothing to release: `await using` works for symmetry with `RedLock`. */
  async [Symbol.asyncDispose](): Promise<void> {}
}

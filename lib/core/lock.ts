/**
 * The lease lock of the store, one mechanism for `RedLock` and `getOrSet`'s
 * `lock: 'distributed'`: the holder stores a token under the lock key for at most
 * its lease; a release removes the key only while it still holds that token
 * (compare-and-delete) and wakes the waiters — at once in this process, by a
 * pub/sub message in the others where the store has pub/sub (Redis). Waiters also
 * poll the key, which covers a lost message and stores without pub/sub.
 */
import type { Backend } from './backend.js'

/** Runs one call of the store within a bound (the caller's timeout); rejects past it. */
export type Bound = <T>(call: () => T | PromiseLike<T>) => Promise<T>

/** Whether a backend can wake waiters in other processes at once (Redis can); the others are polled. */
export const hasSignals = (backend: Backend): backend is Backend & Required<Pick<Backend, 'subscribe' | 'publish'>> =>
  typeof backend.subscribe === 'function' && typeof backend.publish === 'function'

/**
 * Poll intervals (ms) while waiting. With pub/sub the poll is only a fallback for a lost message, so it stays away
 * from the moment a typical holder releases: every waiter of a crowd polling then would load the store as the
 * value lands.
 */
const POLL = { signals: { first: 200, max: 400 }, plain: { first: 5, max: 50 } } as const

/**
 * How long (ms) a waiter's subscription outlives its wait: its unsubscribe is not sent while the value is handed
 * over, and a wait on the same lock soon after (a key stampeded again when it expires) finds it still there.
 */
const LINGER = 250

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

/** The message of a plain release. */
const RELEASED = 'released'

/**
 * The start of a release message that hands the holder's value over: `getOrSet`'s holder sends the data it has
 * just written (on the connection that wrote it, so it arrives after the write), and its waiters need not read it.
 * @internal
 */
export const STORED = 'stored\n'

/** The pub/sub channel a lock's release is announced on. */
export function lockChannel(builtLockKey: string): string {
  return `oniocache:lock-released:${builtLockKey}`
}

/**
 * Removes the lock if its stored token is still `token` (serialized as stored) and
 * wakes its waiters; answers whether it removed it. A failed announcement to other
 * processes is ignored: their waiters also poll.
 */
export async function releaseLock(
  backend: Backend,
  built: string,
  token: unknown,
  bound: Bound,
  message: string = RELEASED,
): Promise<boolean> {
  const signals = hasSignals(backend)
  const deleting = bound(() => backend.deleteIf!(built, token))
  // A message that hands the value over goes right behind the compare-and-delete: its waiters take the value and
  // never look at the lock. A plain release is announced once the lock is gone: a script Redis does not hold yet is
  // sent again after its NOSCRIPT answer, by which time the message could have woken the waiters, who would then
  // find the lock still there and sleep until their next poll.
  const handing = signals && message !== RELEASED ? announce(backend, built, message, bound) : undefined
  let removed: boolean
  try {
    removed = await deleting
  } finally {
    await handing
  }
  if (!removed) return false
  if (signals && handing === undefined) await announce(backend, built, message, bound)
  const wakers = local.get(storeOf(backend))?.get(built)
  if (wakers !== undefined) for (const wake of [...wakers]) wake()
  return true
}

/** Publishes a release `message` to the waiters of other processes; a failure is ignored (they also poll). */
function announce(
  backend: Backend & Required<Pick<Backend, 'publish'>>,
  built: string,
  message: string,
  bound: Bound,
): Promise<unknown> {
  return bound(() => backend.publish(lockChannel(built), message)).catch(() => undefined)
}

/**
 * Waits until the lock key is gone, `lease` seconds have passed or `signal` is
 * aborted. With pub/sub it subscribes BEFORE checking the key, so a release
 * between the check and the wait is not missed. `held` checks the key; a check
 * that fails counts as "still held", as the lease still ends the wait. `heard` receives the pub/sub messages.
 */
export async function waitForRelease(
  backend: Backend,
  built: string,
  lease: number,
  held: () => PromiseLike<boolean>,
  bound: Bound,
  signal?: AbortSignal,
  heard?: (message: string) => void,
): Promise<void> {
  const deadline = Date.now() + lease * 1000
  let wake: () => void = () => {}
  let woken = false
  let over = false
  const onWake = (): void => {
    woken = true
    wake()
  }
  const aborted = (): boolean => signal?.aborted === true
  const unlisten = listen(backend, built, onWake)
  signal?.addEventListener('abort', onWake)
  let unsubscribe: (() => Promise<void>) | undefined
  let poll: { readonly first: number; readonly max: number } = POLL.plain
  try {
    if (hasSignals(backend)) {
      try {
        const subscribing = backend.subscribe(
          lockChannel(built),
          // A message heard while the subscription lingers after the wait is nobody's.
          (message) => {
            if (over) return
            heard?.(message)
            onWake()
          },
        )
        // A subscription that answers after its bound is undone when it does.
        subscribing.then(undefined, () => undefined)
        unsubscribe = await bound(() => subscribing).catch((error: unknown) => {
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
      if (aborted()) return
      if (!(await Promise.resolve(held()).catch(() => true))) return
      const left = deadline - Date.now()
      if (left <= 0 || aborted()) return
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
    signal?.removeEventListener('abort', onWake)
    over = true
    // Not awaited, and not sent at once (see LINGER): the waiter goes on; the unsubscribe function never rejects.
    if (unsubscribe !== undefined) setTimeout(unsubscribe, LINGER).unref()
  }
}

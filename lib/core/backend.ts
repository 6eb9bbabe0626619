/** A value or a promise of it: a synchronous backend (memory) answers directly. */
export type Awaitable<T> = T | PromiseLike<T>

/**
 * The storage the core step talks to. Keys arrive built (namespace applied) and
 * values serialized; ttls arrive as seconds, `0` meaning "never expires".
 *
 * Third-party backends implement this interface and prove it with the
 * conformance suite in `oniocache/testing`. The interface belongs to the core,
 * which calls it; backends implement it and know nothing of the core.
 */
export interface Backend {
  /** Names the backend (and server) in errors and debug lines: `'memory'`, `'redis 127.0.0.1:6379'`. */
  readonly name: string
  /**
   * `true` when every method returns its answer directly, never a promise. The
   * core then skips awaiting, which is what makes a memory hit cheap. Leave it
   * unset for anything that does I/O.
   */
  readonly synchronous?: boolean
  /**
   * The stored value, or `undefined` for a miss. `encoding` is the serializer's:
   * `'utf8'` wants strings back, `null` bytes (`Uint8Array`).
   */
  get(key: string, encoding?: 'utf8' | null): Awaitable<unknown>
  /** Stored values in key order, `undefined` for misses; `encoding` as for `get`. */
  multiGet(keys: readonly string[], encoding?: 'utf8' | null): Awaitable<readonly unknown[]>
  /**
   * Stores a value. With a `casToken` (the stored value seen earlier), writes only
   * if the stored value is still that one and answers `false` otherwise.
   */
  set(key: string, value: unknown, ttl: number, casToken?: unknown): Awaitable<boolean>
  /** Stores a value only if the key is absent; `false` when it exists. */
  add(key: string, value: unknown, ttl: number): Awaitable<boolean>
  /** Stores every pair with the same ttl. */
  multiSet(pairs: ReadonlyArray<readonly [string, unknown]>, ttl: number): Awaitable<unknown>
  /** Number of keys removed: 0 or 1. */
  delete(key: string): Awaitable<number>
  /**
   * Removes the key only if its stored value is still `expected` (a stored value
   * read earlier), atomically, and answers whether it did. Locks release with it,
   * so that only their owner can. Optional: backends without it cannot host locks.
   */
  deleteIf?(key: string, expected: unknown): Awaitable<boolean>
  exists(key: string): Awaitable<boolean>
  /**
   * Adds `delta` to an integer value (a missing key starts at 0) and answers the
   * new value. A stored value that is not an integer is a `TypeError`.
   */
  increment(key: string, delta: number): Awaitable<number>
  /** Sets a key's ttl (`0`: no expiry); `false` when the key is missing. */
  expire(key: string, ttl: number): Awaitable<boolean>
  /**
   * Removes every key starting with `prefix`; `null` empties the whole store.
   * `signal` is aborted when the command times out: a backend that walks its keys
   * in steps stops at the next one (what it deleted so far stays deleted).
   */
  clear(prefix: string | null, signal?: AbortSignal): Awaitable<unknown>
  /** Passes a command to the underlying store or client as given. */
  raw(command: string, args: readonly unknown[]): Awaitable<unknown>
  /**
   * Listens on a pub/sub channel, where the store has pub/sub (Redis): locks wake
   * their waiters in other processes with it. Resolves once subscribed, to a
   * function that removes the listener and never rejects. Optional.
   */
  subscribe?(channel: string, listener: MessageListener): Promise<() => Promise<void>>
  /** Publishes on a pub/sub channel; answers how many subscribers received it. Optional, with `subscribe`. */
  publish?(channel: string, message: string): Promise<number>
  /** Releases connections and timers; the backend must work again afterwards. */
  close(): Awaitable<unknown>
}

/** A listener of `Backend.subscribe`: the message and the channel it came on. */
export type MessageListener = (message: string, channel: string) => void

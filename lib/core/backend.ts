import type { InvalidationListener, StopListening } from './invalidation.js'

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
  /**
   * `get` without a promise: the same answer or the same error, given to `receiver` (`succeed` or `failed`, once).
   * A backend that does I/O may have it so that a command without plugins is answered in the reaction to its
   * server's reply. Optional; `get` is what the rest of the library calls.
   * @internal
   */
  getInto?(key: string, encoding: 'utf8' | null, receiver: Receiver): void
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
  /** Whether the key holds a value that has not expired. */
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
  /**
   * Tells `listener` every change of a key starting with `prefix` (`''`: every key)
   * made by anyone — any client, expiry, eviction — as the store itself announces it
   * (Redis: server-assisted client-side caching). Resolves once listening; `live()`
   * says when the stream carries every change. Optional: a near cache of a backend
   * without it needs a bus.
   */
  watchChanges?(prefix: string, listener: InvalidationListener): Promise<StopListening>
  /** Releases connections and timers; the backend must work again afterwards. */
  close(): Awaitable<unknown>
}

/**
 * Where `Backend.getInto` answers: `succeed` with the stored value (`undefined` for a miss) or `failed` with the
 * error `get` would have rejected with; exactly one of them, once. @internal
 */
export interface Receiver {
  succeed(value: unknown): void
  failed(error: unknown): void
}

/** A listener of `Backend.subscribe`: the message and the channel it came on. */
export type MessageListener = (message: string, channel: string) => void

/** What a backend's `name` says: the system (its first word) and the server(s) after it, if any. */
export interface BackendIdentity {
  /** `'memory'`, `'redis'`, `'memcached'`, or a custom backend's first word. */
  readonly system: string
  /** `'host:port'`, several joined by `,`; `undefined` when the name names no server. */
  readonly server: string | undefined
}

const identities = new WeakMap<Backend, BackendIdentity>()
const SERVERS = /^(?:cluster )?([^\s,]+:\d+(?:,[^\s,]+:\d+)*)$/

/**
 * The system and server(s) of a backend, read from its `name`
 * (`'redis 127.0.0.1:6379'`, `'redis cluster h1:7000,h2:7001'`, `'memcached h:11211'`,
 * `'memory'`): one reading for the diagnostics channel and the telemetry plugins.
 */
export function identify(backend: Backend): BackendIdentity {
  let identity = identities.get(backend)
  if (identity === undefined) {
    const name = String(backend.name)
    const space = name.indexOf(' ')
    const system = space === -1 ? name : name.slice(0, space)
    const servers = space === -1 ? null : SERVERS.exec(name.slice(space + 1))
    identity = { system, server: servers?.[1] }
    identities.set(backend, identity)
  }
  return identity
}

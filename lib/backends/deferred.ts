import type { Awaitable, Backend, MessageListener } from '../core/backend.js'
import { BackendError } from '../util/errors.js'

/** The optional methods a deferred backend offers before it has loaded the real one. */
export interface DeferredMethods {
  /** `deleteIf` (compare-and-delete), which locks need. */
  deleteIf?: boolean
  /** `subscribe` and `publish`, with which locks wake waiters in other processes. */
  pubsub?: boolean
}

/**
 * A backend whose module is loaded on its first command: what a cache built from
 * a URL or a config holds for Redis and Memcached, so that building it (and
 * importing oniocache) loads neither backend. Every call waits for the load, then
 * goes to the real backend; a load that fails rejects that call with a
 * `BackendError` and is tried again by the next one.
 * @internal
 */
export class DeferredBackend implements Backend {
  readonly name: string
  readonly #load: () => Promise<Backend>
  #loaded: Backend | undefined
  #loading: Promise<Backend> | undefined
  declare deleteIf?: (key: string, expected: unknown) => Promise<boolean>
  declare subscribe?: (channel: string, listener: MessageListener) => Promise<() => Promise<void>>
  declare publish?: (channel: string, message: string) => Promise<number>

  constructor(name: string, load: () => Promise<Backend>, methods: DeferredMethods = {}) {
    this.name = name
    this.#load = load
    if (methods.deleteIf === true) {
      this.deleteIf = (key, expected) => this.#call((b) => b.deleteIf!(key, expected))
    }
    if (methods.pubsub === true) {
      this.subscribe = (channel, listener) => this.#call((b) => b.subscribe!(channel, listener))
      this.publish = (channel, message) => this.#call((b) => b.publish!(channel, message))
    }
  }

  /** The real backend, loading it if need be. */
  get backend(): Promise<Backend> {
    return this.#loaded !== undefined ? Promise.resolve(this.#loaded) : this.#ready()
  }

  get(key: string, encoding?: 'utf8' | null): Promise<unknown> {
    return this.#call((b) => b.get(key, encoding))
  }
  multiGet(keys: readonly string[], encoding?: 'utf8' | null): Promise<readonly unknown[]> {
    return this.#call((b) => b.multiGet(keys, encoding))
  }
  set(key: string, value: unknown, ttl: number, casToken?: unknown): Promise<boolean> {
    return this.#call((b) => b.set(key, value, ttl, casToken))
  }
  add(key: string, value: unknown, ttl: number): Promise<boolean> {
    return this.#call((b) => b.add(key, value, ttl))
  }
  multiSet(pairs: ReadonlyArray<readonly [string, unknown]>, ttl: number): Promise<unknown> {
    return this.#call((b) => b.multiSet(pairs, ttl))
  }
  delete(key: string): Promise<number> {
    return this.#call((b) => b.delete(key))
  }
  exists(key: string): Promise<boolean> {
    return this.#call((b) => b.exists(key))
  }
  increment(key: string, delta: number): Promise<number> {
    return this.#call((b) => b.increment(key, delta))
  }
  expire(key: string, ttl: number): Promise<boolean> {
    return this.#call((b) => b.expire(key, ttl))
  }
  clear(prefix: string | null, signal?: AbortSignal): Promise<unknown> {
    return this.#call((b) => b.clear(prefix, signal))
  }
  raw(command: string, args: readonly unknown[]): Promise<unknown> {
    return this.#call((b) => b.raw(command, args))
  }

  /** Closes the real backend if it was ever loaded. */
  async close(): Promise<void> {
    const loaded = this.#loaded ?? (await this.#loading?.catch(() => undefined))
    await loaded?.close()
  }

  #call<T>(call: (backend: Backend) => Awaitable<T>): Promise<T> {
    const loaded = this.#loaded
    if (loaded !== undefined) return Promise.resolve(call(loaded))
    return this.#ready().then(call)
  }

  #ready(): Promise<Backend> {
    this.#loading ??= this.#load().then(
      (backend) => {
        this.#loaded = backend
        return backend
      },
      (error: unknown) => {
        this.#loading = undefined
        throw new BackendError(
          this.name,
          `could not load the backend: ${error instanceof Error ? error.message : String(error)}`,
          {
            cause: error,
          },
        )
      },
    )
    return this.#loading
  }
}

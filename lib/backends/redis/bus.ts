/**
 * RedisBus: invalidations told over Redis pub/sub, for a near cache in front of a
 * store that cannot tell them itself (Memcached, or a memory cache per process).
 */
import { randomUUID } from 'node:crypto'
import type {
  InvalidationBus,
  InvalidationChange,
  InvalidationListener,
  StopListening,
} from '../../core/invalidation.js'
import { debug } from '../../util/debug.js'
import { describe } from '../../util/describe.js'
import { RedisBackend } from './backend.js'
import type { RedisBackendOptions } from './options.js'

/** The options of `RedisBus`: where Redis is (as for `RedisBackend`), and the channel's name. */
export interface RedisBusOptions extends Omit<RedisBackendOptions, 'cluster'> {
  /** The channel's name, before the format version is added to it. Default `'oniocache:invalidate'`. */
  channel?: string
}

/** The format of the messages, carried by the channel's name: processes with another format never meet. */
const FORMAT = 'v1'
/** A failed publish is tried this many times in all, waiting 10, 40, 160 ms between tries. */
const ATTEMPTS = 4

type Change = InvalidationChange

/**
 * Redis pub/sub as a near cache's bus: each write through a cache with
 * `NearCachePlugin({ bus })` publishes the keys it changed (never values) on one
 * channel, `<channel>:v1`, and every other process drops its copies of them. A
 * process ignores its own messages (its other listeners hear them at once, in
 * process). A publish that fails is retried three times, then reported on
 * `oniocache:error`; a subscription that drops makes every listener drop its copy.
 * Only writes made through oniocache caches with the bus are told: a store changed
 * otherwise (or an entry that expires there) is bounded by the near cache's ttl.
 *
 * @example
 * ```ts
 * import { NearCachePlugin } from 'oniocache'
 * import { MemcachedCache } from 'oniocache/memcached'
 * import { RedisBus } from 'oniocache/redis'
 *
 * const bus = new RedisBus({ url: 'redis://127.0.0.1:6379' })
 * const cache = new MemcachedCache({ servers: ['127.0.0.1:11211'], plugins: [new NearCachePlugin({ bus })] })
 * ```
 */
export class RedisBus implements InvalidationBus {
  /** The channel messages go on, format version included. */
  readonly channel: string
  readonly #backend: RedisBackend
  /** Tells this process's messages from others'. */
  readonly #id = randomUUID()
  readonly #listeners = new Set<InvalidationListener>()
  #following: Promise<StopListening> | undefined
  #live = false
  readonly #timers = new Set<NodeJS.Timeout>()
  /** Bumped by `close()`: retries of publishes made before it stop (they would open the connection again). */
  #generation = 0

  /**
   * Checks the options without connecting.
   * @throws {TypeError} for an unknown option, a malformed url or a channel that is not a non-empty string.
   */
  constructor(options: RedisBusOptions = {}) {
    const { channel = 'oniocache:invalidate', ...redis } = options
    if (typeof channel !== 'string' || channel === '') {
      throw new TypeError(`[oniocache] RedisBus: channel must be a non-empty string; got ${describe(channel)}`)
    }
    if ('cluster' in redis) {
      throw new TypeError('[oniocache] RedisBus: give it one Redis node (url, or host and port), not a cluster')
    }
    this.#backend = new RedisBackend(redis)
    this.channel = `${channel}:${FORMAT}`
  }

  /**
   * Tells `listener` the changes others publish; resolves once its subscription is
   * asked for, `listener.live()` comes once it is made (and again after each loss).
   */
  async listen(listener: InvalidationListener): Promise<StopListening> {
    this.#listeners.add(listener)
    if (this.#following === undefined) {
      this.#following = this.#backend.followChannel(this.channel, this.#onMessage, {
        lost: (error) => {
          this.#live = false
          for (const one of this.#listeners) one.lost(error)
        },
        live: () => {
          this.#live = true
          for (const one of this.#listeners) one.live()
        },
      })
    } else if (this.#live) {
      queueMicrotask(() => {
        if (this.#listeners.has(listener)) listener.live()
      })
    }
    try {
      await this.#following
    } catch (error) {
      this.#listeners.delete(listener)
      throw error
    }
    return async () => {
      if (!this.#listeners.delete(listener) || this.#listeners.size !== 0) return
      await this.close()
    }
  }

  /** Tells the other listeners in this process at once, and the other processes through Redis. */
  publish(from: InvalidationListener, change: Change, failed: (error: unknown) => void): void {
    for (const listener of this.#listeners) if (listener !== from) deliver(listener, change)
    const message = JSON.stringify({ from: this.#id, ...change })
    const generation = this.#generation
    const attempt = (tried: number): void => {
      this.#backend.publish(this.channel, message).then(
        () => {},
        (error: unknown) => {
          if (generation !== this.#generation) return // closed meanwhile: no retry, nothing to report
          if (tried + 1 >= ATTEMPTS) {
            debug('[RedisBus] publish failed %d times: %s', ATTEMPTS, error instanceof Error ? error.message : error)
            failed(error)
            return
          }
          const timer = setTimeout(
            () => {
              this.#timers.delete(timer)
              if (generation === this.#generation) attempt(tried + 1)
            },
            10 * 4 ** tried,
          )
          timer.unref()
          this.#timers.add(timer)
        },
      )
    }
    attempt(0)
  }

  /** Stops listening and closes the bus's connections; it reconnects when used again. */
  async close(): Promise<void> {
    const following = this.#following
    this.#following = undefined
    this.#live = false
    this.#generation++
    for (const timer of this.#timers) clearTimeout(timer)
    this.#timers.clear()
    const stop = await following?.catch(() => undefined)
    await Promise.all([stop?.(), this.#backend.close()])
  }

  /** A message from Redis: another process's change, or (unreadable) a change of anything. */
  readonly #onMessage = (message: string): void => {
    let parsed: { from?: unknown; keys?: unknown; prefix?: unknown }
    try {
      parsed = JSON.parse(message) as typeof parsed
    } catch {
      parsed = {}
    }
    if (parsed.from === this.#id) return
    let change: Change | undefined
    if (Array.isArray(parsed.keys) && parsed.keys.every((key) => typeof key === 'string')) {
      change = { keys: parsed.keys as string[] }
    } else if (typeof parsed.prefix === 'string') change = { prefix: parsed.prefix }
    for (const listener of this.#listeners) {
      // A message that cannot be read may have been about any key.
      if (change === undefined) listener.invalidate(null)
      else deliver(listener, change)
    }
  }
}

function deliver(listener: InvalidationListener, change: Change): void {
  if ('keys' in change) listener.invalidate(change.keys)
  else listener.invalidatePrefix(change.prefix)
}

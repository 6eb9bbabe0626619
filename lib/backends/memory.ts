import { monotonic } from '../clock.js'
import { describe, toSeconds, type Duration } from '../duration.js'
import type { Backend } from './backend.js'

/** A monotonic clock in milliseconds. Tests inject one they can move by hand. */
export interface Clock {
  now(): number
}

export interface MemoryBackendOptions {
  /** Most entries kept; past it the least recently used one goes. Default: no limit. */
  maxSize?: number
  /** Where "now" comes from, in milliseconds. Default: a monotonic clock (`performance.now`). */
  clock?: Clock
  /** How often expired entries that nobody reads are reclaimed. Default `1` (second). */
  sweepInterval?: Duration
  /** Most entries one sweep looks at, so a sweep never blocks for long. Default 1000. */
  sweepBatch?: number
}

const OPTIONS = new Set(['maxSize', 'clock', 'sweepInterval', 'sweepBatch'])
const INTEGER_TEXT = /^[+-]?\d+$/

/**
 * The in-process store: a `Map` in insertion order, which doubles as the LRU list
 * when `maxSize` is set (a hit moves the key to the end; the first key is the
 * oldest). Expiry times live in a second map that only keys with a ttl enter, so
 * a key without a ttl costs one map entry, a hit costs one lookup and the clock
 * is read only for keys that can expire. No key has a timer: a single unref'd
 * sweeper walks the expiry map a bounded batch at a time, resuming where it
 * stopped, and reclaims what expired even if it is never read again.
 */
export class MemoryBackend implements Backend {
  readonly name = 'memory'
  readonly synchronous = true
  readonly #values = new Map<string, unknown>()
  readonly #expiries = new Map<string, number>()
  readonly #maxSize: number
  readonly #clock: Clock
  readonly #sweepMs: number
  readonly #sweepBatch: number
  #cursor: Iterator<[string, number]> | undefined
  #timer: NodeJS.Timeout | undefined
  #burst: NodeJS.Timeout | undefined

  constructor(options: MemoryBackendOptions = {}) {
    for (const name of Object.keys(options)) {
      if (!OPTIONS.has(name)) throw new TypeError(`[oniocache] [memory] unknown option ${JSON.stringify(name)}; known: ${[...OPTIONS].join(', ')}`)
    }
    const { maxSize, clock = monotonic, sweepInterval = 1, sweepBatch = 1000 } = options
    if (maxSize !== undefined && !(Number.isSafeInteger(maxSize) && maxSize > 0)) {
      throw new TypeError(`[oniocache] [memory] maxSize must be a positive integer (count of entries); got ${describe(maxSize)}`)
    }
    if (typeof clock?.now !== 'function') throw new TypeError('[oniocache] [memory] clock must be an object with a now() method returning milliseconds')
    if (!(Number.isSafeInteger(sweepBatch) && sweepBatch > 0)) {
      throw new TypeError(`[oniocache] [memory] sweepBatch must be a positive integer; got ${describe(sweepBatch)}`)
    }
    const sweepSeconds = toSeconds(sweepInterval, 'sweepInterval')
    if (sweepSeconds === 0) throw new RangeError('[oniocache] [memory] sweepInterval must be greater than 0')
    this.#maxSize = maxSize ?? Infinity
    this.#clock = clock
    this.#sweepMs = Math.max(1, Math.round(sweepSeconds * 1000))
    this.#sweepBatch = sweepBatch
  }

  /** Entries held, expired ones not reclaimed yet included. */
  get size(): number {
    return this.#values.size
  }

  get(key: string): unknown {
    const value = this.#values.get(key)
    if (value === undefined) return undefined
    if (this.#expiries.size !== 0 && this.#expired(key)) return undefined
    if (this.#maxSize !== Infinity) {
      this.#values.delete(key)
      this.#values.set(key, value)
    }
    return value
  }

  multiGet(keys: readonly string[]): unknown[] {
    const values = new Array<unknown>(keys.length)
    for (let i = 0; i < keys.length; i++) values[i] = this.get(keys[i]!)
    return values
  }

  set(key: string, value: unknown, ttl: number, casToken?: unknown): boolean {
    if (casToken !== undefined && this.#live(key) !== casToken) return false
    this.#store(key, value, ttl)
    return true
  }

  add(key: string, value: unknown, ttl: number): boolean {
    if (this.#live(key) !== undefined) return false
    this.#store(key, value, ttl)
    return true
  }

  multiSet(pairs: ReadonlyArray<readonly [string, unknown]>, ttl: number): true {
    for (const [key, value] of pairs) this.#store(key, value, ttl)
    return true
  }

  delete(key: string): number {
    if (this.#live(key) === undefined) return 0
    this.#values.delete(key)
    this.#expiries.delete(key)
    return 1
  }

  deleteIf(key: string, expected: unknown): boolean {
    if (this.#live(key) !== expected || expected === undefined) return false
    this.#values.delete(key)
    this.#expiries.delete(key)
    return true
  }

  exists(key: string): boolean {
    return this.#live(key) !== undefined
  }

  increment(key: string, delta: number): number {
    const current = this.#live(key)
    let base: number
    if (current === undefined) base = 0
    else if (typeof current === 'number' && Number.isSafeInteger(current)) base = current
    else if (typeof current === 'string' && INTEGER_TEXT.test(current)) base = Number(current)
    else throw new TypeError(`[oniocache] [memory] cannot increment ${JSON.stringify(key)}: its value is not an integer`)
    const next = base + delta
    // An unsafe base (a long digit string) was already rounded by Number(): refuse rather than answer a wrong count.
    if (!Number.isSafeInteger(base) || !Number.isSafeInteger(next)) throw new RangeError(`[oniocache] [memory] incrementing ${JSON.stringify(key)} would pass Number.MAX_SAFE_INTEGER`)
    // Keep the value's representation (a counter written as text stays text) and its ttl.
    const stored = typeof current === 'string' ? String(next) : next
    if (current === undefined) {
      this.#store(key, stored, 0)
    } else {
      // A write like any other: the key becomes the most recent (its ttl stays).
      if (this.#maxSize !== Infinity) this.#values.delete(key)
      this.#values.set(key, stored)
    }
    return next
  }

  expire(key: string, ttl: number): boolean {
    if (this.#live(key) === undefined) return false
    if (ttl > 0) this.#expireAt(key, ttl)
    else this.#expiries.delete(key)
    return true
  }

  clear(prefix: string | null): true {
    if (prefix === null) {
      this.#values.clear()
      this.#expiries.clear()
    } else {
      for (const key of this.#values.keys()) {
        if (key.startsWith(prefix)) {
          this.#values.delete(key)
          this.#expiries.delete(key)
        }
      }
    }
    return true
  }

  /** Runs a `Map` method on the store itself, e.g. `raw('keys')`. Bypasses ttl and LRU. */
  raw(command: string, args: readonly unknown[]): unknown {
    // Map's own members only: not Object.prototype's (toString, __proto__…), and `size` is a getter.
    const member = command === 'constructor' ? undefined : Object.getOwnPropertyDescriptor(Map.prototype, command)
    if (member?.get !== undefined) return Reflect.apply(member.get, this.#values, [])
    if (typeof member?.value !== 'function') {
      throw new TypeError(`[oniocache] [memory] raw runs a Map method (get, set, has, delete, keys, entries, size…); ${JSON.stringify(command)} is not one`)
    }
    return Reflect.apply(member.value as (...args: unknown[]) => unknown, this.#values, args)
  }

  /**
   * Reclaims expired entries, looking at no more than `limit` keys with a ttl,
   * resuming where the previous sweep stopped. Answers how many it removed.
   */
  sweep(limit: number = this.#sweepBatch): number {
    const now = this.#clock.now()
    let seen = 0
    let removed = 0
    let wrapped = false
    let cursor = this.#cursor ?? this.#expiries.entries()
    while (seen < limit) {
      const step = cursor.next()
      if (step.done === true) {
        cursor = this.#expiries.entries()
        if (wrapped || this.#expiries.size === 0) break
        wrapped = true
        continue
      }
      seen++
      const [key, at] = step.value
      if (at <= now) {
        this.#expiries.delete(key)
        this.#values.delete(key)
        removed++
      }
    }
    this.#cursor = cursor
    return removed
  }

  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    if (this.#burst !== undefined) clearTimeout(this.#burst)
    this.#timer = this.#burst = undefined
  }

  /** The value if present and not expired; reclaims it if it expired. No LRU touch. */
  #live(key: string): unknown {
    const value = this.#values.get(key)
    if (value === undefined || (this.#expiries.size !== 0 && this.#expired(key))) return undefined
    return value
  }

  #expired(key: string): boolean {
    const at = this.#expiries.get(key)
    if (at === undefined || at > this.#clock.now()) return false
    this.#values.delete(key)
    this.#expiries.delete(key)
    return true
  }

  #store(key: string, value: unknown, ttl: number): void {
    const values = this.#values
    if (this.#maxSize !== Infinity) {
      values.delete(key)
      values.set(key, value)
      while (values.size > this.#maxSize) {
        const oldest = values.keys().next().value as string
        values.delete(oldest)
        this.#expiries.delete(oldest)
      }
    } else {
      values.set(key, value)
    }
    if (ttl > 0) this.#expireAt(key, ttl)
    else if (this.#expiries.size !== 0) this.#expiries.delete(key)
  }

  #expireAt(key: string, ttl: number): void {
    this.#expiries.set(key, this.#clock.now() + ttl * 1000)
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.#autoSweep(), this.#sweepMs)
      this.#timer.unref()
    }
  }

  /**
   * One batch per tick; more batches right away while a quarter or more of a batch
   * had expired. The next batch is an unref'd 0 ms timeout, not an unref'd
   * `setImmediate`: an unref'd immediate does not stop the event loop from
   * blocking in poll, so in an idle process it would wait for the next interval.
   */
  #autoSweep(): void {
    // The interval may fire while a burst is pending: cancel it, or the two would
    // run side by side from then on and close() could stop only one of them.
    if (this.#burst !== undefined) clearTimeout(this.#burst)
    this.#burst = undefined
    const removed = this.sweep()
    if (this.#expiries.size === 0) {
      this.close()
    } else if (removed * 4 >= this.#sweepBatch) {
      this.#burst = setTimeout(() => this.#autoSweep(), 0)
      this.#burst.unref()
    }
  }
}

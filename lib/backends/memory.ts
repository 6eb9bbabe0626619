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

/** An entry with a ttl: its value and when it expires (clock milliseconds). Entries without one are stored bare. */
class Expiring {
  constructor(
    readonly value: unknown,
    readonly at: number,
  ) {}
}

/**
 * The in-process store: one `Map` in insertion order, which doubles as the LRU
 * list when `maxSize` is set (a hit moves the key to the end; the first key is
 * the oldest). A key without a ttl maps to its value itself; a key with one maps
 * to an `Expiring` record (a class no caller can reach, so no stored value is
 * mistaken for one). A hit costs one lookup, a write one insert, and the clock is
 * read only for keys that can expire. No key has a timer: a single unref'd
 * sweeper walks the map a bounded batch at a time, resuming where it stopped,
 * and reclaims what expired even if it is never read again.
 */
export class MemoryBackend implements Backend {
  readonly name = 'memory'
  readonly synchronous = true
  readonly #values = new Map<string, unknown>()
  readonly #maxSize: number
  readonly #clock: Clock
  readonly #sweepMs: number
  readonly #sweepBatch: number
  readonly #view: StoreView
  #cursor: Iterator<[string, unknown]> | undefined
  /** Since the sweep's walk last started over: whether it saw an entry with a ttl, or one was written. */
  #ttlSeen = false
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
    this.#view = new StoreView(this.#values)
  }

  /** Entries held, expired ones not reclaimed yet included. */
  get size(): number {
    return this.#values.size
  }

  get(key: string): unknown {
    const stored = this.#values.get(key)
    if (stored === undefined) return undefined
    let value: unknown = stored
    if (stored instanceof Expiring) {
      if (stored.at <= this.#clock.now()) {
        this.#values.delete(key)
        return undefined
      }
      value = stored.value
    }
    if (this.#maxSize !== Infinity) {
      this.#values.delete(key)
      this.#values.set(key, stored)
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
    return 1
  }

  deleteIf(key: string, expected: unknown): boolean {
    if (this.#live(key) !== expected || expected === undefined) return false
    this.#values.delete(key)
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
      const entry = this.#values.get(key)
      if (this.#maxSize !== Infinity) this.#values.delete(key)
      this.#values.set(key, entry instanceof Expiring ? new Expiring(stored, entry.at) : stored)
    }
    return next
  }

  expire(key: string, ttl: number): boolean {
    const value = this.#live(key)
    if (value === undefined) return false
    // Same position: a ttl change is not a use.
    this.#values.set(key, ttl > 0 ? this.#expiring(value, ttl) : value)
    return true
  }

  clear(prefix: string | null): true {
    if (prefix === null) {
      this.#values.clear()
    } else {
      for (const key of this.#values.keys()) {
        if (key.startsWith(prefix)) this.#values.delete(key)
      }
    }
    return true
  }

  /**
   * Runs a `Map` method on the store, e.g. `raw('keys')`. Bypasses ttl and LRU:
   * `get`/`values`/`entries`/`forEach` see an expired value until it is reclaimed,
   * `set` stores a value with no ttl, and methods that answer the map answer this view of it.
   */
  raw(command: string, args: readonly unknown[]): unknown {
    // Map's own members only: not Object.prototype's (toString, __proto__…), and `size` is a getter.
    const member = command === 'constructor' ? undefined : Object.getOwnPropertyDescriptor(Map.prototype, command)
    if (member?.get !== undefined) return this.#view.size
    if (typeof member?.value !== 'function') {
      throw new TypeError(`[oniocache] [memory] raw runs a Map method (get, set, has, delete, keys, entries, size…); ${JSON.stringify(command)} is not one`)
    }
    const method = (this.#view as unknown as Record<string, (...args: unknown[]) => unknown>)[command]!
    return Reflect.apply(method, this.#view, args)
  }

  /**
   * Reclaims expired entries, looking at no more than `limit` entries, resuming
   * where the previous sweep stopped. Answers how many it removed.
   */
  sweep(limit: number = this.#sweepBatch): number {
    const now = this.#clock.now()
    let seen = 0
    let removed = 0
    let wrapped = false
    let cursor = this.#cursor ?? this.#values.entries()
    while (seen < limit) {
      const step = cursor.next()
      if (step.done === true) {
        cursor = this.#values.entries()
        if (!this.#ttlSeen && this.#timer !== undefined) this.close() // a whole walk met no ttl: stop sweeping
        this.#ttlSeen = false
        if (wrapped || this.#values.size === 0) break
        wrapped = true
        continue
      }
      seen++
      const [key, stored] = step.value
      if (stored instanceof Expiring) {
        this.#ttlSeen = true
        if (stored.at <= now) {
          this.#values.delete(key)
          removed++
        }
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
    const stored = this.#values.get(key)
    if (!(stored instanceof Expiring)) return stored
    if (stored.at > this.#clock.now()) return stored.value
    this.#values.delete(key)
    return undefined
  }

  #store(key: string, value: unknown, ttl: number): void {
    const values = this.#values
    const stored = ttl > 0 ? this.#expiring(value, ttl) : value
    if (this.#maxSize !== Infinity) {
      values.delete(key)
      values.set(key, stored)
      while (values.size > this.#maxSize) values.delete(values.keys().next().value as string)
    } else {
      values.set(key, stored)
    }
  }

  #expiring(value: unknown, ttl: number): Expiring {
    this.#ttlSeen = true
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.#autoSweep(), this.#sweepMs)
      this.#timer.unref()
    }
    return new Expiring(value, this.#clock.now() + ttl * 1000)
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
    if (this.#timer !== undefined && removed * 4 >= this.#sweepBatch) {
      this.#burst = setTimeout(() => this.#autoSweep(), 0)
      this.#burst.unref()
    }
  }
}

/**
 * What `raw` runs `Map` methods on: the store as a `Map` of plain values, the
 * ttl records unwrapped (expired values included until they are reclaimed).
 */
class StoreView {
  readonly #values: Map<string, unknown>
  constructor(values: Map<string, unknown>) {
    this.#values = values
  }
  get size(): number {
    return this.#values.size
  }
  get(key: string): unknown {
    return unwrap(this.#values.get(key))
  }
  has(key: string): boolean {
    return this.#values.has(key)
  }
  set(key: string, value: unknown): this {
    this.#values.set(key, value)
    return this
  }
  delete(key: string): boolean {
    return this.#values.delete(key)
  }
  clear(): void {
    this.#values.clear()
  }
  keys(): IterableIterator<string> {
    return this.#values.keys()
  }
  *values(): IterableIterator<unknown> {
    for (const stored of this.#values.values()) yield unwrap(stored)
  }
  *entries(): IterableIterator<[string, unknown]> {
    for (const [key, stored] of this.#values) yield [key, unwrap(stored)]
  }
  forEach(callback: (value: unknown, key: string, map: StoreView) => void, thisArg?: unknown): void {
    for (const [key, stored] of this.#values) callback.call(thisArg, unwrap(stored), key, this)
  }
  [Symbol.iterator](): IterableIterator<[string, unknown]> {
    return this.entries()
  }
}

const unwrap = (stored: unknown): unknown => (stored instanceof Expiring ? stored.value : stored)

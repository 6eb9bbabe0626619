import type { Backend } from '../../core/backend.js'
import { reportError } from '../../core/channels.js'
import { type Clock, coarse } from '../../util/clock.js'
import { describe } from '../../util/describe.js'
import { type Duration, toSeconds } from '../../util/duration.js'
import { checkOptions } from '../../util/options.js'
import { FrequencySketch, hashKey } from './sketch.js'

export type { Clock } from '../../util/clock.js'

/** The eviction policy of a bounded memory store: `'lru'` or `'tinylfu'`. */
export type MemoryPolicy = 'lru' | 'tinylfu'

/** The options of the in-process memory backend. */
export interface MemoryBackendOptions {
  /** Most entries kept; past it the policy chooses which go. Default: no limit. */
  maxSize?: number
  /**
   * Most bytes kept, as `sizeOf` counts them; past it the policy chooses which entries go, and an entry larger than
   * the whole budget is not stored (the write still answers `true`; `oniocache:error` reports it). Default: no limit.
   */
  maxBytes?: number
  /**
   * What goes when the store is full (with `maxSize` or `maxBytes`). `'lru'` (default): the least recently used
   * entry. `'tinylfu'`: Window TinyLFU — a newcomer enters a small LRU window (1 % of the budget), then must win
   * against the least recently used entry of the main area, on how often each was used lately, to stay; entries
   * used again in the main area are protected (80 % of it). Skewed traffic keeps more of its hot keys, and a scan
   * of one-off keys cannot flush them out.
   */
  policy?: MemoryPolicy
  /** The bytes an entry counts for `maxBytes`: a non-negative number. Default: {@link estimateSize} of the value. */
  sizeOf?: (value: unknown, key: string) => number
  /**
   * Where "now" comes from, in milliseconds. Default: the monotonic high-resolution clock, read at most once a
   * millisecond: ttls are kept to the millisecond.
   */
  clock?: Clock
  /** How often expired entries that nobody reads are reclaimed. Default `1` (second). */
  sweepInterval?: Duration
  /** Most entries one sweep looks at, so a sweep never blocks for long. Default 1000. */
  sweepBatch?: number
}

/** The options of the memory backend (and of `MemoryCache`, besides the cache's own). @internal */
export const MEMORY_OPTIONS: ReadonlyArray<keyof MemoryBackendOptions> = [
  'maxSize',
  'maxBytes',
  'sizeOf',
  'policy',
  'clock',
  'sweepInterval',
  'sweepBatch',
]
const INTEGER_TEXT = /^[+-]?\d+$/

/** Slots the expiry column starts with; it doubles as needed. */
const FIRST_SLOTS = 64
/** Below this many slots handed out, freed slots are never compacted away. */
const COMPACT_FLOOR = 4096

// The segments of the tinylfu policy: each a recency list of its own.
const WINDOW = 0
const PROBATION = 1
const PROTECTED = 2
/** The tinylfu order of the segments, the first to be evicted first (as the raw views list them). */
const EVICTION_ORDER = [PROBATION, PROTECTED, WINDOW] as const

/**
 * The in-process store, laid out in slots: a `Map` from key to slot number, the
 * values in an array and the expiry times (clock milliseconds; `Infinity` for no
 * ttl) in a `Float64Array`, both indexed by slot. A write allocates nothing per
 * entry beyond the map's own (a slot number is a small integer, an expiry a
 * float in place), so a million entries cost the collector a million fewer
 * objects. Freed slots are reused; when most slots are free the columns are
 * compacted. With `maxSize`, the slots are also linked in recency order (two
 * `Int32Array` columns, the oldest at the head): a hit relinks its slot at the
 * tail with a few array writes, where reinserting the key would rehash the map.
 * With `policy: 'tinylfu'` the same two columns link three lists (the window, and the
 * main area's probation and protected segments, a `Uint8Array` telling which), each
 * key's hash is kept in a column when it is stored, and a frequency sketch counts uses
 * by that hash: a hit costs four counter updates more, and no string is hashed.
 * A hit costs one lookup, and the clock is read only for keys that can expire. No key
 * has a timer: a single unref'd sweeper walks the map a bounded batch at a time,
 * resuming where it stopped, and reclaims what expired even if it is never read again.
 */
export class MemoryBackend implements Backend {
  readonly name = 'memory'
  readonly synchronous = true
  readonly #index = new Map<string, number>()
  #values: unknown[] = []
  #expiries = new Float64Array(FIRST_SLOTS)
  /** With `maxSize`: each slot's key, and its neighbours in recency order (-1: none). */
  #keys: Array<string | undefined> = []
  #prev = new Int32Array(FIRST_SLOTS)
  #next = new Int32Array(FIRST_SLOTS)
  /** The least and the most recently used slots; -1 when empty. */
  #head = -1
  #tail = -1
  /** With `maxBytes`: each slot's size, and their sum. */
  #sizes = new Float64Array(FIRST_SLOTS)
  #bytes = 0
  /** With tinylfu: each slot's segment and its key's hash; each segment's ends and weight (see `#unit`). */
  #segments = new Uint8Array(FIRST_SLOTS)
  #hashes = new Int32Array(FIRST_SLOTS)
  /**
   * With tinylfu: the sketch's `epoch` + 1 when the slot's counters were last found all at 15 (0: not), so that a
   * hit on a hot key skips an increment that would change nothing.
   */
  #saturated = new Int32Array(FIRST_SLOTS)
  readonly #heads = new Int32Array(3).fill(-1)
  readonly #tails = new Int32Array(3).fill(-1)
  readonly #weights = new Float64Array(3)
  /** With tinylfu: the most the window and the protected segment weigh; the uses counted. */
  readonly #windowCap: number
  readonly #protectedCap: number
  #sketch: FrequencySketch | undefined
  /** The state of the xorshift generator behind the rare random admission (see `#admit`). */
  #random = 0x2545f491
  /** Slots freed and not reused yet. */
  #free: number[] = []
  /** Slots handed out so far: the next new slot's number. */
  #top = 0
  readonly #maxSize: number
  readonly #maxBytes: number
  readonly #sizeOf: ((value: unknown, key: string) => number) | undefined
  /** Whether entries are linked in recency order: with `maxSize` or `maxBytes`. */
  readonly #linked: boolean
  /** Whether the policy is tinylfu (then `#linked` too). */
  readonly #tiny: boolean
  readonly #clock: Clock
  readonly #sweepMs: number
  readonly #sweepBatch: number
  readonly #view: StoreView
  #cursor: Iterator<[string, number]> | undefined
  /** Since the sweep's walk last started over: whether it saw an entry with a ttl, or one was written. */
  #ttlSeen = false
  #timer: NodeJS.Timeout | undefined
  #burst: NodeJS.Timeout | undefined

  /**
   * An empty store. The sweeper's timer starts with the first entry that has a ttl, unref'd.
   * @throws {TypeError} for an unknown option, a `maxSize` or `sweepBatch` that is not a positive integer, a
   *   `clock` without `now()`, or a `policy` other than `'lru'` and `'tinylfu'` (or `'tinylfu'` without a bound).
   * @throws {RangeError} for a `sweepInterval` that is 0 or not a valid duration.
   */
  constructor(options: MemoryBackendOptions = {}) {
    checkOptions(options, MEMORY_OPTIONS, 'MemoryBackend')
    const { maxSize, maxBytes, sizeOf, policy = 'lru', clock = coarse, sweepInterval = 1, sweepBatch = 1000 } = options
    if (maxSize !== undefined && !(Number.isSafeInteger(maxSize) && maxSize > 0)) {
      throw new TypeError(
        `[oniocache] [memory] maxSize must be a positive integer (count of entries); got ${describe(maxSize)}`,
      )
    }
    if (maxBytes !== undefined && !(Number.isSafeInteger(maxBytes) && maxBytes > 0)) {
      throw new TypeError(`[oniocache] [memory] maxBytes must be a positive integer; got ${describe(maxBytes)}`)
    }
    if (sizeOf !== undefined && typeof sizeOf !== 'function') {
      throw new TypeError(
        `[oniocache] [memory] sizeOf must be a function (value, key) => bytes; got ${describe(sizeOf)}`,
      )
    }
    if (policy !== 'lru' && policy !== 'tinylfu') {
      throw new TypeError(`[oniocache] [memory] policy must be 'lru' or 'tinylfu'; got ${describe(policy)}`)
    }
    if (policy === 'tinylfu' && maxSize === undefined && maxBytes === undefined) {
      throw new TypeError(
        "[oniocache] [memory] policy 'tinylfu' chooses what a full store evicts: give maxSize or maxBytes too",
      )
    }
    if (typeof clock?.now !== 'function')
      throw new TypeError('[oniocache] [memory] clock must be an object with a now() method returning milliseconds')
    if (!(Number.isSafeInteger(sweepBatch) && sweepBatch > 0)) {
      throw new TypeError(`[oniocache] [memory] sweepBatch must be a positive integer; got ${describe(sweepBatch)}`)
    }
    const sweepSeconds = toSeconds(sweepInterval, 'sweepInterval')
    if (sweepSeconds === 0) throw new RangeError('[oniocache] [memory] sweepInterval must be greater than 0')
    this.#maxSize = maxSize ?? Infinity
    this.#maxBytes = maxBytes ?? Infinity
    this.#sizeOf = maxBytes === undefined ? undefined : (sizeOf ?? estimateSize)
    this.#linked = maxSize !== undefined || maxBytes !== undefined
    this.#tiny = policy === 'tinylfu'
    // The segments weigh what the budget counts: bytes with maxBytes, else entries.
    const budget = maxBytes ?? maxSize ?? 0
    this.#windowCap = Math.max(1, Math.floor(budget / 100))
    this.#protectedCap = Math.floor((budget - this.#windowCap) * 0.8)
    if (this.#tiny) this.#sketch = new FrequencySketch(maxSize ?? 1024)
    this.#clock = clock
    this.#sweepMs = Math.max(1, Math.round(sweepSeconds * 1000))
    this.#sweepBatch = sweepBatch
    this.#view = new StoreView({
      index: this.#index,
      order: () => this.#order(),
      value: (slot) => this.#values[slot],
      set: (key, value) => this.#store(key, value, 0),
      delete: (key) => {
        const slot = this.#index.get(key)
        if (slot === undefined) return false
        this.#drop(key, slot)
        return true
      },
      clear: () => this.clear(null),
    })
  }

  /** Entries held, expired ones not reclaimed yet included. */
  get size(): number {
    return this.#index.size
  }

  /** With `maxBytes`: the bytes held, as `sizeOf` counted them (expired entries not reclaimed yet included). */
  get bytes(): number {
    return this.#bytes
  }

  get(key: string): unknown {
    const slot = this.#index.get(key)
    if (slot === undefined) return undefined
    const at = this.#expiries[slot]!
    if (at !== Infinity && at <= this.#clock.now()) {
      this.#drop(key, slot)
      return undefined
    }
    if (this.#linked) this.#used(slot)
    return this.#values[slot]
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
    const slot = this.#liveSlot(key)
    if (slot < 0 || this.#values[slot] === undefined) return 0
    this.#drop(key, slot)
    return 1
  }

  deleteIf(key: string, expected: unknown): boolean {
    const slot = this.#liveSlot(key)
    if (slot < 0 || this.#values[slot] !== expected || expected === undefined) return false
    this.#drop(key, slot)
    return true
  }

  exists(key: string): boolean {
    return this.#live(key) !== undefined
  }

  increment(key: string, delta: number): number {
    const slot = this.#liveSlot(key)
    const current = slot < 0 ? undefined : this.#values[slot]
    let base: number
    if (current === undefined) base = 0
    else if (typeof current === 'number' && Number.isSafeInteger(current)) base = current
    else if (typeof current === 'string' && INTEGER_TEXT.test(current)) base = Number(current)
    else
      throw new TypeError(`[oniocache] [memory] cannot increment ${JSON.stringify(key)}: its value is not an integer`)
    const next = base + delta
    // An unsafe base (a long digit string) was already rounded by Number(): refuse rather than answer a wrong count.
    if (!Number.isSafeInteger(base) || !Number.isSafeInteger(next))
      throw new RangeError(
        `[oniocache] [memory] incrementing ${JSON.stringify(key)} would pass Number.MAX_SAFE_INTEGER`,
      )
    // Keep the value's representation (a counter written as text stays text) and its ttl.
    const stored = typeof current === 'string' ? String(next) : next
    if (current === undefined || this.#sizeOf !== undefined) {
      // With a byte budget the new value is weighed again, as any write's.
      this.#store(key, stored, 0, current === undefined ? undefined : this.#expiries[slot])
    } else {
      // A write like any other: the key becomes the most recent (its ttl stays).
      if (this.#linked) this.#used(slot)
      this.#values[slot] = stored
    }
    return next
  }

  expire(key: string, ttl: number): boolean {
    const slot = this.#liveSlot(key)
    if (slot < 0 || this.#values[slot] === undefined) return false
    // Same position: a ttl change is not a use.
    this.#expiries[slot] = ttl > 0 ? this.#expiry(ttl) : Infinity
    return true
  }

  clear(prefix: string | null): true {
    if (prefix === null) {
      this.#index.clear()
      this.#values = []
      this.#expiries = new Float64Array(FIRST_SLOTS)
      this.#keys = []
      this.#prev = new Int32Array(FIRST_SLOTS)
      this.#next = new Int32Array(FIRST_SLOTS)
      this.#head = this.#tail = -1
      this.#sizes = new Float64Array(FIRST_SLOTS)
      this.#bytes = 0
      this.#segments = new Uint8Array(FIRST_SLOTS)
      this.#hashes = new Int32Array(FIRST_SLOTS)
      this.#saturated = new Int32Array(FIRST_SLOTS)
      this.#heads.fill(-1)
      this.#tails.fill(-1)
      this.#weights.fill(0)
      this.#sketch?.clear()
      this.#free = []
      this.#top = 0
    } else {
      for (const [key, slot] of this.#index) {
        if (key.startsWith(prefix)) this.#drop(key, slot)
      }
    }
    return true
  }

  /**
   * Runs a `Map` method on the store, e.g. `raw('keys')`. Bypasses ttl and LRU:
   * `get`/`values`/`entries`/`forEach` see an expired value until it is reclaimed
   * (and touch nothing); `set` stores a value with no ttl as a write does (the key
   * becomes the most recent, `maxSize` holds); methods that answer the map answer this view of it.
   */
  raw(command: string, args: readonly unknown[]): unknown {
    // Map's own members only: not Object.prototype's (toString, __proto__…), and `size` is a getter.
    const member = command === 'constructor' ? undefined : Object.getOwnPropertyDescriptor(Map.prototype, command)
    if (member?.get !== undefined) return this.#view.size
    if (typeof member?.value !== 'function') {
      throw new TypeError(
        `[oniocache] [memory] raw runs a Map method (get, set, has, delete, keys, entries, size…); ` +
          `${JSON.stringify(command)} is not one`,
      )
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
    let cursor = this.#cursor ?? this.#index.entries()
    while (seen < limit) {
      const step = cursor.next()
      if (step.done === true) {
        cursor = this.#index.entries()
        if (!this.#ttlSeen && this.#timer !== undefined) this.close() // a whole walk met no ttl: stop sweeping
        this.#ttlSeen = false
        if (wrapped || this.#index.size === 0) break
        wrapped = true
        continue
      }
      seen++
      const [key, slot] = step.value
      const at = this.#expiries[slot]!
      if (at !== Infinity) {
        this.#ttlSeen = true
        if (at <= now) {
          this.#drop(key, slot)
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
    const slot = this.#liveSlot(key)
    return slot < 0 ? undefined : this.#values[slot]
  }

  /** The key's slot if present and not expired, else -1 (reclaiming it if it expired). No LRU touch. */
  #liveSlot(key: string): number {
    const slot = this.#index.get(key)
    if (slot === undefined) return -1
    const at = this.#expiries[slot]!
    if (at === Infinity || at > this.#clock.now()) return slot
    this.#drop(key, slot)
    return -1
  }

  /** Writes `key` as the most recent entry; `at` (an expiry kept as it was) overrides `ttl`. */
  #store(key: string, value: unknown, ttl: number, at?: number): void {
    const index = this.#index
    const size = this.#sizeOf === undefined ? 0 : this.#weigh(key, value)
    if (size > this.#maxBytes) {
      // Too large for the whole budget: not stored, and the old value goes (it is not the key's value any more).
      const old = index.get(key)
      if (old !== undefined) this.#drop(key, old)
      reportError(
        'set',
        '',
        new RangeError(
          `[oniocache] [memory] the value of ${describe(key)} counts ${size} bytes, more than maxBytes ` +
            `(${this.#maxBytes}): not stored`,
        ),
      )
      return
    }
    const expires = at ?? (ttl > 0 ? this.#expiry(ttl) : Infinity)
    let slot = index.get(key)
    const fresh = slot === undefined
    if (slot === undefined) {
      slot = this.#free.length > 0 ? this.#free.pop()! : this.#newSlot()
      index.set(key, slot)
      if (this.#linked) {
        this.#keys[slot] = key
        if (!this.#tiny) this.#append(slot)
      }
    } else if (this.#tiny) {
      this.#cut(slot) // relinked by #place once its size is known
    } else if (this.#linked && slot !== this.#tail) {
      this.#touch(slot)
    }
    this.#values[slot] = value
    this.#expiries[slot] = expires
    if (this.#sizeOf !== undefined) {
      this.#bytes += size - this.#sizes[slot]!
      this.#sizes[slot] = size
    }
    if (this.#tiny) this.#place(key, slot, fresh)
    else if (index.size > this.#maxSize || this.#bytes > this.#maxBytes) this.#evict()
  }

  /** What an entry counts for `maxBytes`, checked. */
  #weigh(key: string, value: unknown): number {
    const size = this.#sizeOf!(value, key)
    if (typeof size !== 'number' || !(size >= 0) || size === Infinity) {
      throw new TypeError(
        `[oniocache] [memory] sizeOf must answer a non-negative finite number; for ${describe(key)} it answered ` +
          `${describe(size)}; nothing was written`,
      )
    }
    return size
  }

  /** A slot never used before, growing the expiry column if it is full. */
  #newSlot(): number {
    const slot = this.#top++
    if (slot === this.#expiries.length) {
      this.#expiries = grow(this.#expiries, new Float64Array(slot * 2))
      if (this.#linked) {
        this.#prev = grow(this.#prev, new Int32Array(slot * 2))
        this.#next = grow(this.#next, new Int32Array(slot * 2))
      }
      if (this.#sizeOf !== undefined) this.#sizes = grow(this.#sizes, new Float64Array(slot * 2))
      if (this.#tiny) {
        this.#segments = grow(this.#segments, new Uint8Array(slot * 2))
        this.#hashes = grow(this.#hashes, new Int32Array(slot * 2))
        this.#saturated = grow(this.#saturated, new Int32Array(slot * 2))
      }
    }
    return slot
  }

  /** Links `slot` at the tail: the most recently used. */
  #append(slot: number): void {
    const tail = this.#tail
    this.#prev[slot] = tail
    this.#next[slot] = -1
    if (tail === -1) this.#head = slot
    else this.#next[tail] = slot
    this.#tail = slot
  }

  /** Takes `slot` out of the recency list. */
  #unlink(slot: number): void {
    const prev = this.#prev[slot]!
    const next = this.#next[slot]!
    if (prev === -1) this.#head = next
    else this.#next[prev] = next
    if (next === -1) this.#tail = prev
    else this.#prev[next] = prev
  }

  /** `slot` was used: it becomes the most recent. */
  #touch(slot: number): void {
    this.#unlink(slot)
    this.#append(slot)
  }

  /** A linked store's `slot` was read or rewritten in place: the policy learns it. */
  #used(slot: number): void {
    if (this.#tiny) this.#usedTiny(slot)
    else if (slot !== this.#tail) this.#touch(slot)
  }

  /** `#used` with tinylfu: the use counted, the slot moved in (or promoted from) its segment. */
  #usedTiny(slot: number): void {
    this.#count(slot)
    const segment = this.#segments[slot]!
    if (segment === PROBATION) {
      // Used again in the main area: protected from now on.
      this.#cut(slot)
      this.#linkIn(slot, PROTECTED)
      this.#demote()
    } else if (slot !== this.#tails[segment]) {
      this.#toTail(slot, segment)
    }
  }

  /** Moves `slot` (not the tail) to the tail of its own tinylfu segment: its weight stays where it is. */
  #toTail(slot: number, segment: number): void {
    const prev = this.#prev[slot]!
    const next = this.#next[slot]!
    if (prev === -1) this.#heads[segment] = next
    else this.#next[prev] = next
    this.#prev[next] = prev
    const tail = this.#tails[segment]!
    this.#prev[slot] = tail
    this.#next[slot] = -1
    this.#next[tail] = slot
    this.#tails[segment] = slot
  }

  /** A use of the key in `slot`, counted by the sketch unless its counters are all at 15 already. */
  #count(slot: number): void {
    const sketch = this.#sketch!
    const epoch = sketch.epoch + 1
    if (this.#saturated[slot] === epoch) return
    this.#saturated[slot] = sketch.increment(this.#hashes[slot]!) ? epoch : 0
  }

  /** What a slot weighs in its tinylfu segment: its size with `maxBytes`, else 1. */
  #unit(slot: number): number {
    return this.#sizeOf === undefined ? 1 : this.#sizes[slot]!
  }

  /** Links `slot` at the tail (the most recent end) of a tinylfu segment. */
  #linkIn(slot: number, segment: number): void {
    const tail = this.#tails[segment]!
    this.#segments[slot] = segment
    this.#prev[slot] = tail
    this.#next[slot] = -1
    if (tail === -1) this.#heads[segment] = slot
    else this.#next[tail] = slot
    this.#tails[segment] = slot
    this.#weights[segment] = this.#weights[segment]! + this.#unit(slot)
  }

  /** Takes `slot` out of its tinylfu segment (`#segments` still says which it was). */
  #cut(slot: number): void {
    const segment = this.#segments[slot]!
    const prev = this.#prev[slot]!
    const next = this.#next[slot]!
    if (prev === -1) this.#heads[segment] = next
    else this.#next[prev] = next
    if (next === -1) this.#tails[segment] = prev
    else this.#prev[next] = prev
    this.#weights[segment] = this.#weights[segment]! - this.#unit(slot)
  }

  /**
   * With tinylfu, after a write of `key` in `slot` (unlinked, its size set): a new key enters the window, a stored
   * one is used again; then the window's overflow moves to the main area, where it must win its place.
   */
  #place(key: string, slot: number, fresh: boolean): void {
    let sketch = this.#sketch!
    if (fresh) {
      if (this.#index.size > sketch.capacity && this.#maxSize === Infinity) {
        // Bounded by bytes only: the sketch grows with the entries (its counts start over).
        this.#sketch = sketch = new FrequencySketch(sketch.capacity * 2, sketch.epoch + 1)
      }
      this.#hashes[slot] = hashKey(key)
      this.#saturated[slot] = 0
      this.#linkIn(slot, WINDOW)
    } else {
      const segment = this.#segments[slot]!
      this.#linkIn(slot, segment === PROBATION ? PROTECTED : segment)
      if (segment === PROBATION) this.#demote()
    }
    this.#count(slot)
    this.#balance()
  }

  /** Moves the protected segment's least recently used entries to probation until it is within its share. */
  #demote(): void {
    while (this.#weights[PROTECTED]! > this.#protectedCap) {
      const slot = this.#heads[PROTECTED]!
      if (slot === -1) break
      this.#cut(slot)
      this.#linkIn(slot, PROBATION)
    }
  }

  /**
   * The tinylfu eviction: the window's overflow goes to the most recent end of probation, each one a candidate;
   * while the store is over budget the oldest candidate meets the main area's least recently used entry (the
   * victim: probation's oldest that is not a candidate, else protected's oldest) and the one used less often lately
   * goes. Slots are not compacted until it is done: candidates are held by slot number.
   */
  #balance(): void {
    let candidate = -1
    while (this.#weights[WINDOW]! > this.#windowCap) {
      const slot = this.#heads[WINDOW]!
      if (slot === -1) break
      this.#cut(slot)
      this.#linkIn(slot, PROBATION)
      if (candidate === -1) candidate = slot
    }
    let dropped = false
    while (this.#index.size > this.#maxSize || this.#bytes > this.#maxBytes) {
      dropped = true
      let victim = this.#heads[PROBATION]!
      if (victim === candidate) victim = this.#heads[PROTECTED]!
      let loser: number
      if (candidate === -1 || victim === -1) {
        // Nothing to weigh: the oldest newcomer, else the oldest of probation, protected, the window.
        loser = candidate !== -1 ? candidate : this.#oldest()
        if (loser === -1) break
      } else {
        loser = this.#admit(candidate, victim) ? victim : candidate
      }
      if (loser === candidate) candidate = this.#next[candidate]! // the next newcomer, if any (they are in a row)
      this.#remove(this.#keys[loser]!, loser)
    }
    if (dropped) this.#maybeCompact()
  }

  /** The first slot of probation, protected and the window that holds one. */
  #oldest(): number {
    for (const segment of EVICTION_ORDER) {
      if (this.#heads[segment] !== -1) return this.#heads[segment]!
    }
    return -1
  }

  /**
   * Whether the candidate may take the victim's place: if it was used more often lately. A candidate used often
   * (more than 5 uses counted) that does not win is let in once in 128 times at random anyway, so that keys made to
   * collide with a victim's counters in the sketch cannot keep every newcomer out.
   */
  #admit(candidate: number, victim: number): boolean {
    const sketch = this.#sketch!
    const wanted = sketch.frequency(this.#hashes[candidate]!)
    const held = sketch.frequency(this.#hashes[victim]!)
    if (wanted > held) return true
    if (wanted <= 5) return false
    let x = this.#random
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    this.#random = x
    return (x & 127) === 0
  }

  /**
   * The entries as `[key, slot]`: without a bound in the map's order; with `lru` from the least to the most recently
   * used; with `tinylfu` probation, protected, then the window, each from its least to its most recently used.
   */
  *#order(): IterableIterator<[string, number]> {
    if (!this.#linked) {
      yield* this.#index
      return
    }
    const heads = this.#tiny ? EVICTION_ORDER.map((segment) => this.#heads[segment]!) : [this.#head]
    for (const head of heads) {
      for (let slot = head; slot !== -1; ) {
        const next = this.#next[slot]!
        yield [this.#keys[slot]!, slot]
        slot = next
      }
    }
  }

  /** Removes the least recently used entries until the store is back within `maxSize` and `maxBytes`. */
  #evict(): void {
    while (this.#index.size > this.#maxSize || this.#bytes > this.#maxBytes) {
      const slot = this.#head
      this.#drop(this.#keys[slot]!, slot)
    }
  }

  /** Removes `key` (held in `slot`) and frees the slot; compacts the columns once most slots are free. */
  #drop(key: string, slot: number): void {
    this.#remove(key, slot)
    this.#maybeCompact()
  }

  /** Removes `key` (held in `slot`) and frees the slot; every other slot keeps its number. */
  #remove(key: string, slot: number): void {
    this.#index.delete(key)
    this.#values[slot] = undefined // let the value go now, not when the slot is reused
    if (this.#linked) {
      if (this.#tiny) this.#cut(slot)
      else this.#unlink(slot)
      this.#keys[slot] = undefined
    }
    if (this.#sizeOf !== undefined) {
      this.#bytes -= this.#sizes[slot]!
      this.#sizes[slot] = 0
    }
    this.#free.push(slot)
  }

  #maybeCompact(): void {
    if (this.#top > COMPACT_FLOOR && this.#free.length * 4 > this.#top * 3) this.#compact()
  }

  /**
   * Moves every entry to the lowest slots, in map order, into columns sized for
   * them, and forgets the free slots. Runs once three quarters of the slots are
   * free, so its cost (one pass over the entries left) is paid for by the frees before it.
   */
  #compact(): void {
    const values: unknown[] = [] // grown by push: `new Array(n)` of a large n would start out as a dictionary
    const size = Math.max(FIRST_SLOTS, this.#index.size * 2)
    const expiries = new Float64Array(size)
    const linked = this.#linked
    const weighed = this.#sizeOf !== undefined
    const keys: string[] = []
    const prev = new Int32Array(linked ? size : FIRST_SLOTS)
    const nextOf = new Int32Array(linked ? size : FIRST_SLOTS)
    const sizes = new Float64Array(weighed ? size : FIRST_SLOTS)
    const tiny = this.#tiny
    const segments = new Uint8Array(tiny ? size : FIRST_SLOTS)
    const hashes = new Int32Array(tiny ? size : FIRST_SLOTS)
    let next = 0
    // In order when linked (segment after segment with tinylfu), so that the new slots of a list are linked in
    // order: slot i after slot i - 1, unless slot i starts a segment.
    let segment = -1
    for (const [key, slot] of [...this.#order()]) {
      values.push(this.#values[slot])
      expiries[next] = this.#expiries[slot]!
      if (weighed) sizes[next] = this.#sizes[slot]!
      if (linked) {
        keys.push(key)
        const starts = tiny && this.#segments[slot] !== segment
        if (tiny) {
          if (starts) {
            if (segment !== -1) nextOf[next - 1] = -1
            segment = this.#segments[slot]!
            this.#heads[segment] = next
          }
          this.#tails[segment] = next
          segments[next] = segment
          hashes[next] = this.#hashes[slot]!
        }
        prev[next] = starts ? -1 : next - 1
        nextOf[next] = next + 1
      }
      this.#index.set(key, next++)
    }
    if (linked) {
      if (next > 0) nextOf[next - 1] = -1
      this.#head = next > 0 ? 0 : -1
      this.#tail = next - 1
      this.#keys = keys
      this.#prev = prev
      this.#next = nextOf
    }
    if (tiny) {
      // (A segment with no entry kept its -1 ends.)
      this.#segments = segments
      this.#hashes = hashes
      // Slots were renumbered: no key is known to be saturated (the next use counts again, changing nothing).
      this.#saturated = new Int32Array(size)
    }
    this.#values = values
    this.#expiries = expiries
    this.#sizes = sizes
    this.#free = []
    this.#top = next
  }

  #expiry(ttl: number): number {
    this.#ttlSeen = true
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.#autoSweep(), this.#sweepMs)
      this.#timer.unref()
    }
    return this.#clock.now() + ttl * 1000
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

/** What `StoreView` needs from the backend. */
interface Slots {
  readonly index: Map<string, number>
  /** The entries as `[key, slot]`, least recently used first when the store has a `maxSize`. */
  order(): IterableIterator<[string, number]>
  value(slot: number): unknown
  set(key: string, value: unknown): void
  delete(key: string): boolean
  clear(): void
}

/**
 * What `raw` runs `Map` methods on: the store as a `Map` of plain values
 * (expired values included until they are reclaimed).
 */
class StoreView {
  readonly #slots: Slots
  constructor(slots: Slots) {
    this.#slots = slots
  }
  get size(): number {
    return this.#slots.index.size
  }
  get(key: string): unknown {
    const slot = this.#slots.index.get(key)
    return slot === undefined ? undefined : this.#slots.value(slot)
  }
  has(key: string): boolean {
    return this.#slots.index.has(key)
  }
  set(key: string, value: unknown): this {
    this.#slots.set(key, value)
    return this
  }
  delete(key: string): boolean {
    return this.#slots.delete(key)
  }
  clear(): void {
    this.#slots.clear()
  }
  *keys(): IterableIterator<string> {
    for (const [key] of this.#slots.order()) yield key
  }
  *values(): IterableIterator<unknown> {
    for (const [, slot] of this.#slots.order()) yield this.#slots.value(slot)
  }
  *entries(): IterableIterator<[string, unknown]> {
    for (const [key, slot] of this.#slots.order()) yield [key, this.#slots.value(slot)]
  }
  forEach(callback: (value: unknown, key: string, map: StoreView) => void, thisArg?: unknown): void {
    for (const [key, slot] of this.#slots.order()) callback.call(thisArg, this.#slots.value(slot), key, this)
  }
  [Symbol.iterator](): IterableIterator<[string, unknown]> {
    return this.entries()
  }
}

/** `to` holding `from`'s contents at its start: a column grown. */
function grow<T extends Float64Array | Int32Array | Uint8Array>(from: T, to: T): T {
  to.set(from)
  return to
}

/**
 * The default `sizeOf` of a memory backend with `maxBytes`: an estimate of what a value holds, in bytes. A string
 * counts 2 bytes a character; a `Buffer`, typed array or `ArrayBuffer` its byte length; a number, boolean, `null`
 * or `undefined` 8; a bigint 8 per 64 bits; an array or plain object 16, plus 8 and what each element or
 * property (its key at 2 bytes a character) counts, walked 8 levels deep at most (deeper ones count 16 each, and an
 * object met again counts 8); a `Map` or `Set` as an array of its entries; anything else (a function, a class
 * instance's hidden state) 16.
 */
export function estimateSize(value: unknown): number {
  return sizeWithin(value, 8, new Set())
}

function sizeWithin(value: unknown, depth: number, seen: Set<object>): number {
  if (typeof value === 'string') return value.length * 2
  if (typeof value === 'bigint') return 8 * Math.max(1, Math.ceil(value.toString(16).length / 16))
  if (value === null || typeof value !== 'object') return typeof value === 'function' ? 16 : 8
  if (ArrayBuffer.isView(value)) return value.byteLength
  if (value instanceof ArrayBuffer) return value.byteLength
  if (seen.has(value)) return 8
  if (depth === 0) return 16
  seen.add(value)
  let size = 16
  if (Array.isArray(value)) {
    for (const item of value) size += 8 + sizeWithin(item, depth - 1, seen)
  } else if (value instanceof Map) {
    for (const [key, item] of value) size += 8 + sizeWithin(key, depth - 1, seen) + sizeWithin(item, depth - 1, seen)
  } else if (value instanceof Set) {
    for (const item of value) size += 8 + sizeWithin(item, depth - 1, seen)
  } else {
    for (const key of Object.keys(value)) {
      size += 8 + key.length * 2 + sizeWithin((value as Record<string, unknown>)[key], depth - 1, seen)
    }
  }
  return size
}

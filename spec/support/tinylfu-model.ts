/**
 * A plain model of the memory backend's `tinylfu` policy, for the differential property in memory-policy.spec.ts:
 * the same decisions written the obvious way — three arrays (least recently used first) instead of linked slot
 * columns, weights summed when needed, no compaction — fed the same frequency sketch.
 *
 * - A new key enters the window's most recent end; a key used again (read, or written while stored) moves to the
 *   most recent end of its segment, or from probation to protected.
 * - Protected holds at most 80 % of the main area's budget: its oldest go back to probation's most recent end.
 * - The window holds at most 1 % of the budget (at least 1): its oldest move to probation's most recent end, each a
 *   candidate. While over budget, the oldest candidate meets probation's oldest non-candidate (else protected's
 *   oldest); the one the sketch counts fewer uses for goes (a tie: the candidate), except that a candidate counted
 *   more than 5 uses wins once in 128 at random. With no candidate or no victim, the oldest candidate goes, else the
 *   oldest of probation, protected, the window.
 */
import { FrequencySketch, hashKey } from '../../lib/backends/memory/sketch.js'

type Segment = 'window' | 'probation' | 'protected'

export interface ModelOptions {
  maxSize?: number
  maxBytes?: number
  sizeOf?: (value: unknown, key: string) => number
}

export class TinyLfuModel {
  readonly values = new Map<string, unknown>()
  readonly sizes = new Map<string, number>()
  readonly lists: Record<Segment, string[]> = { window: [], probation: [], protected: [] }
  readonly #maxSize: number
  readonly #maxBytes: number
  readonly #sizeOf: ((value: unknown, key: string) => number) | undefined
  readonly #windowCap: number
  readonly #protectedCap: number
  readonly #sketch: FrequencySketch
  #random = 0x2545f491

  constructor(options: ModelOptions) {
    this.#maxSize = options.maxSize ?? Infinity
    this.#maxBytes = options.maxBytes ?? Infinity
    this.#sizeOf = options.maxBytes === undefined ? undefined : options.sizeOf
    const budget = options.maxBytes ?? options.maxSize ?? 0
    this.#windowCap = Math.max(1, Math.floor(budget / 100))
    this.#protectedCap = Math.floor((budget - this.#windowCap) * 0.8)
    this.#sketch = new FrequencySketch(options.maxSize ?? 1024)
  }

  /** The keys in the order the raw views list them: probation, protected, window, oldest first. */
  order(): string[] {
    return [...this.lists.probation, ...this.lists.protected, ...this.lists.window]
  }

  get bytes(): number {
    let sum = 0
    for (const size of this.sizes.values()) sum += size
    return sum
  }

  get(key: string): unknown {
    if (!this.values.has(key)) return undefined
    this.#use(key)
    return this.values.get(key)
  }

  set(key: string, value: unknown): void {
    const size = this.#sizeOf === undefined ? 0 : this.#sizeOf(value, key)
    if (size > this.#maxBytes) {
      this.delete(key)
      return
    }
    const segment = this.#segmentOf(key)
    this.values.set(key, value)
    if (this.#sizeOf !== undefined) this.sizes.set(key, size)
    if (segment === undefined) {
      this.lists.window.push(key)
    } else {
      this.#take(key, segment)
      this.lists[segment === 'probation' ? 'protected' : segment].push(key)
      if (segment === 'probation') this.#demote()
    }
    this.#sketch.increment(hashKey(key))
    this.#balance()
  }

  /** `increment` of a stored key: with sizes, a write; without, a use and a new value in place. */
  rewrite(key: string, value: unknown): void {
    if (this.#sizeOf !== undefined) {
      this.set(key, value)
      return
    }
    this.#use(key)
    this.values.set(key, value)
  }

  delete(key: string): boolean {
    const segment = this.#segmentOf(key)
    if (segment === undefined) return false
    this.#take(key, segment)
    this.values.delete(key)
    this.sizes.delete(key)
    return true
  }

  #use(key: string): void {
    this.#sketch.increment(hashKey(key))
    const segment = this.#segmentOf(key)!
    this.#take(key, segment)
    this.lists[segment === 'probation' ? 'protected' : segment].push(key)
    if (segment === 'probation') this.#demote()
  }

  #weight(keys: readonly string[]): number {
    let sum = 0
    for (const key of keys) sum += this.#sizeOf === undefined ? 1 : this.sizes.get(key)!
    return sum
  }

  #demote(): void {
    while (this.lists.protected.length > 0 && this.#weight(this.lists.protected) > this.#protectedCap) {
      this.lists.probation.push(this.lists.protected.shift()!)
    }
  }

  #balance(): void {
    const candidates: string[] = []
    while (this.lists.window.length > 0 && this.#weight(this.lists.window) > this.#windowCap) {
      const key = this.lists.window.shift()!
      this.lists.probation.push(key)
      candidates.push(key)
    }
    while (this.values.size > this.#maxSize || this.bytes > this.#maxBytes) {
      const candidate = candidates[0]
      let victim: string | undefined = this.lists.probation[0]
      if (victim === candidate) victim = this.lists.protected[0]
      let loser: string
      if (candidate === undefined || victim === undefined) {
        loser = candidate ?? this.lists.probation[0] ?? this.lists.protected[0] ?? this.lists.window[0]!
      } else {
        loser = this.#admit(candidate, victim) ? victim : candidate
      }
      if (loser === candidate) candidates.shift()
      this.delete(loser)
    }
  }

  #admit(candidate: string, victim: string): boolean {
    const wanted = this.#sketch.frequency(hashKey(candidate))
    const held = this.#sketch.frequency(hashKey(victim))
    if (wanted > held) return true
    if (wanted <= 5) return false
    let x = this.#random
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    this.#random = x
    return (x & 127) === 0
  }

  #segmentOf(key: string): Segment | undefined {
    for (const segment of ['window', 'probation', 'protected'] as const) {
      if (this.lists[segment].includes(key)) return segment
    }
    return undefined
  }

  #take(key: string, segment: Segment): void {
    const list = this.lists[segment]
    list.splice(list.indexOf(key), 1)
  }
}

/**
 * A plain model of the memory backend as seen through `MemoryCache`, for the
 * model-based property in properties.spec.ts, and the operations it replays.
 *
 * Recency (LRU, only observable with `maxSize`), as lib/backends/memory.ts does it:
 *
 * | command | touches recency? |
 * | --- | --- |
 * | `get` / `multiGet` hit | yes (moves the key to most recent) |
 * | `set`, `multiSet`, successful `add` / cas `set` | yes (written as most recent; may evict the oldest) |
 * | `increment` of a missing key | yes (created as most recent; may evict) |
 * | `increment` of a present key | yes (a write; the ttl is kept) |
 * | `exists`, `expire`, `delete`, failed `add`, failed cas `set` | no |
 *
 * Expired entries are reclaimed lazily: only when a command reads that key (or a
 * sweep runs, which the property keeps out of the way). Until then they still
 * occupy a slot of `maxSize`, so they count for eviction, as `size` documents.
 */

/** `undefined`: the command's option left out. `null`: given as null (no ttl). Seconds. */
export type Ttl = number | null | undefined
/** `undefined`: the cache's own namespace (`''`). */
export type Ns = 'a' | 'b' | undefined

export type Op =
  | { kind: 'add'; key: string; ns: Ns; value: unknown; ttl: Ttl }
  | { kind: 'get'; key: string; ns: Ns }
  | { kind: 'multiGet'; keys: string[]; ns: Ns }
  | { kind: 'set'; key: string; ns: Ns; value: unknown; ttl: Ttl; cas: unknown }
  | { kind: 'multiSet'; pairs: Array<[string, unknown]>; ns: Ns; ttl: Ttl }
  | { kind: 'delete'; key: string; ns: Ns }
  | { kind: 'exists'; key: string; ns: Ns }
  | { kind: 'increment'; key: string; ns: Ns; delta: number }
  | { kind: 'expire'; key: string; ns: Ns; ttl: number | null }
  | { kind: 'clear'; ns: Ns | '' }
  | { kind: 'advance'; ms: number }

/** An answer: a value, or the name of the error class the command rejected with. */
export type Answer = { value: unknown } | { error: string }

interface Entry {
  value: unknown
  /** Clock time (ms) at which the entry is gone; `undefined`: never. */
  expiresAt: number | undefined
}

const INTEGER_TEXT = /^[+-]?[0-9]+$/
const MAX = BigInt(Number.MAX_SAFE_INTEGER)

export function builtKey(key: string, ns: Ns | ''): string {
  return ns === undefined || ns === '' ? key : `${ns}:${key}`
}

export class MemoryModel {
  /** Physical entries in recency order, oldest first (expired ones not reclaimed yet included). */
  readonly entries = new Map<string, Entry>()
  now: number

  constructor(
    readonly maxSize: number | undefined,
    readonly cacheTtl: number | undefined,
    start: number,
  ) {
    this.now = start
  }

  apply(op: Op): Answer {
    switch (op.kind) {
      case 'get':
        return { value: this.#get(builtKey(op.key, op.ns)) }
      case 'multiGet':
        return { value: op.keys.map((key) => this.#get(builtKey(key, op.ns))) }
      case 'set': {
        const key = builtKey(op.key, op.ns)
        if (op.cas !== undefined && this.#live(key)?.value !== op.cas) return { value: false }
        this.#store(key, op.value, this.#ttl(op.ttl))
        return { value: true }
      }
      case 'add': {
        const key = builtKey(op.key, op.ns)
        if (this.#live(key) !== undefined) return { error: 'KeyExistsError' }
        this.#store(key, op.value, this.#ttl(op.ttl))
        return { value: true }
      }
      case 'multiSet': {
        const ttl = this.#ttl(op.ttl)
        for (const [key, value] of op.pairs) this.#store(builtKey(key, op.ns), value, ttl)
        return { value: true }
      }
      case 'delete': {
        const key = builtKey(op.key, op.ns)
        if (this.#live(key) === undefined) return { value: 0 }
        this.entries.delete(key)
        return { value: 1 }
      }
      case 'exists':
        return { value: this.#live(builtKey(op.key, op.ns)) !== undefined }
      case 'increment':
        return this.#increment(builtKey(op.key, op.ns), op.delta)
      case 'expire': {
        const entry = this.#live(builtKey(op.key, op.ns))
        if (entry === undefined) return { value: false }
        const ttl = op.ttl ?? 0
        entry.expiresAt = ttl > 0 ? this.now + ttl * 1000 : undefined
        return { value: true }
      }
      case 'clear': {
        if (op.ns === undefined || op.ns === '') this.entries.clear()
        else for (const key of [...this.entries.keys()]) if (key.startsWith(`${op.ns}:`)) this.entries.delete(key)
        return { value: true }
      }
      case 'advance':
        this.now += op.ms
        return { value: undefined }
    }
  }

  /** The live entry; an expired one is reclaimed (as the backend does when it reads a key). */
  #live(key: string): Entry | undefined {
    const entry = this.entries.get(key)
    if (entry === undefined) return undefined
    if (entry.expiresAt !== undefined && entry.expiresAt <= this.now) {
      this.entries.delete(key)
      return undefined
    }
    return entry
  }

  #get(key: string): unknown {
    const entry = this.#live(key)
    if (entry === undefined) return undefined
    this.entries.delete(key)
    this.entries.set(key, entry)
    return entry.value
  }

  #ttl(ttl: Ttl): number {
    return ttl === undefined ? (this.cacheTtl ?? 0) : (ttl ?? 0)
  }

  #store(key: string, value: unknown, ttl: number): void {
    this.entries.delete(key)
    this.entries.set(key, { value, expiresAt: ttl > 0 ? this.now + ttl * 1000 : undefined })
    if (this.maxSize === undefined) return
    while (this.entries.size > this.maxSize) this.entries.delete(this.entries.keys().next().value!)
  }

  #increment(key: string, delta: number): Answer {
    if (!Number.isSafeInteger(delta)) return { error: 'TypeError' }
    const entry = this.#live(key)
    let base: bigint
    if (entry === undefined) base = 0n
    else if (typeof entry.value === 'number' && Number.isSafeInteger(entry.value)) base = BigInt(entry.value)
    else if (typeof entry.value === 'string' && INTEGER_TEXT.test(entry.value)) base = BigInt(entry.value)
    else return { error: 'TypeError' }
    const next = base + BigInt(delta)
    if (base > MAX || base < -MAX || next > MAX || next < -MAX) return { error: 'RangeError' }
    const answer = Number(next)
    if (entry === undefined) this.#store(key, answer, 0)
    else {
      // A write: the key becomes the most recent, and its ttl stays (see the table above).
      entry.value = typeof entry.value === 'string' ? String(answer) : answer
      this.entries.delete(key)
      this.entries.set(key, entry)
    }
    return { value: answer }
  }
}

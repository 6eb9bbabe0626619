// Request traces for eviction-policy benchmarks and tests, made deterministically from a seed, and the hit count of
// Belady's clairvoyant optimum on them: the ceiling no online policy can pass on the same trace and size.
//
// - `mulberry32(seed)`: a seeded PRNG answering floats in [0, 1).
// - `zipfTrace(options)`: Zipf-distributed requests over `keys` key ids; popularity shuffled over the ids.
// - `scanTrace(options)`: the same Zipf traffic with long scans of one-off key ids (≥ `keys`) spliced in.
// - `nextUses(trace)`: where each request's key is requested next.
// - `beladyHits(trace, maxSize)`: the hits of the optimum.
//
// A trace is an `Int32Array` of key ids, one a request; callers name the keys (`k${id}`, say).

/** A seeded PRNG (mulberry32): the same floats in [0, 1) for the same seed, in any process. */
export function mulberry32(seed: number): () => number {
  let state = seed | 0
  return () => {
    state = (state + 0x6d2b79f5) | 0
    let t = Math.imul(state ^ (state >>> 15), 1 | state)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32
  }
}

export interface ZipfOptions {
  /** Requests in the trace. */
  readonly requests: number
  /** Distinct key ids, 0 to `keys - 1`. */
  readonly keys: number
  /** The exponent s: the key of popularity rank r (from 1) is requested in proportion to 1 / r^s. Default 0.99. */
  readonly skew?: number
  readonly seed: number
}

/**
 * `requests` requests drawn independently from Zipf(`skew`) over `keys` ids, by inverse-CDF sampling (a cumulative
 * table and a binary search). Which id has which rank is a seeded shuffle, so popularity does not follow id order.
 * The shuffle is drawn first: traces of the same keys, skew and seed are prefixes of one another.
 */
export function zipfTrace({ requests, keys, skew = 0.99, seed }: ZipfOptions): Int32Array {
  const random = mulberry32(seed)
  const idOfRank = new Int32Array(keys)
  for (let i = 0; i < keys; i++) idOfRank[i] = i
  for (let i = keys - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    const swap = idOfRank[i]!
    idOfRank[i] = idOfRank[j]!
    idOfRank[j] = swap
  }
  const cumulative = new Float64Array(keys)
  let total = 0
  for (let r = 0; r < keys; r++) cumulative[r] = total += 1 / (r + 1) ** skew
  const trace = new Int32Array(requests)
  for (let i = 0; i < requests; i++) {
    const u = random() * total
    let lo = 0
    let hi = keys - 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (cumulative[mid]! > u) hi = mid
      else lo = mid + 1
    }
    trace[i] = idOfRank[lo]!
  }
  return trace
}

export interface ScanOptions extends ZipfOptions {
  /** Zipf requests between the starts of two scans (a scan follows each run of this many). */
  readonly every: number
  /** The shortest and the longest scan, in requests; each scan's length is drawn uniformly between them. */
  readonly shortest: number
  readonly longest: number
}

/**
 * `requests` requests: runs of `every` Zipf requests, each followed by a scan, a run of ids requested once in
 * ascending order and never again (`keys`, `keys + 1`, … across the whole trace), cut off at `requests`. No scan
 * request can hit in any cache, so the hits on this trace are hits on its Zipf requests, which are, in order, a
 * prefix of `zipfTrace` with the same `keys`, `skew` and `seed`. Scan lengths come from a PRNG of their own.
 */
export function scanTrace(options: ScanOptions): Int32Array {
  const { requests, keys, every, shortest, longest, seed } = options
  if (!(every > 0 && shortest > 0 && longest >= shortest)) throw new RangeError('scanTrace: bad every/shortest/longest')
  const zipf = zipfTrace(options)
  const lengths = mulberry32(seed ^ 0x5ca45ca4)
  const trace = new Int32Array(requests)
  let z = 0
  let nextScanId = keys
  for (let i = 0; i < requests; ) {
    for (let run = 0; run < every && i < requests; run++) trace[i++] = zipf[z++]!
    const length = shortest + Math.floor(lengths() * (longest - shortest + 1))
    for (let s = 0; s < length && i < requests; s++) trace[i++] = nextScanId++
  }
  return trace
}

/** One more than the largest id in `trace`: the length of an array indexed by its ids. */
export function idSpan(trace: Int32Array): number {
  let max = -1
  for (let i = 0; i < trace.length; i++) if (trace[i]! > max) max = trace[i]!
  return max + 1
}

/**
 * For each request, the index of the next request of the same key, or `trace.length` if there is none: one backward
 * pass.
 */
export function nextUses(trace: Int32Array): Int32Array {
  const n = trace.length
  const seen = new Int32Array(idSpan(trace)).fill(n)
  const next = new Int32Array(n)
  for (let i = n - 1; i >= 0; i--) {
    const id = trace[i]!
    next[i] = seen[id]!
    seen[id] = i
  }
  return next
}

/**
 * The hits of Belady's MIN on `trace` with room for `maxSize` keys: a miss with the cache full evicts, of the cached
 * keys and the requested one, the one whose next request is furthest away (so the requested key may be left out).
 * Counting the requested key among the candidates makes it the optimum also for policies that may decline to admit a
 * key, as TinyLFU does: no policy, online or not, scores more hits on the same trace and size. The cached keys are a
 * binary max-heap of next uses, indexed (each key's heap position kept), so a hit updates its key in place: O(log
 * maxSize) a request.
 */
export function beladyHits(trace: Int32Array, maxSize: number): number {
  const next = nextUses(trace)
  const span = idSpan(trace)
  const at = new Int32Array(span).fill(-1) // each key's position in the heap; -1: not cached
  const due = new Int32Array(span) // each cached key's next use
  const heap = new Int32Array(maxSize) // key ids, the furthest next use at the root
  let size = 0
  let hits = 0
  const place = (slot: number, id: number): void => {
    heap[slot] = id
    at[id] = slot
  }
  const up = (slot: number): void => {
    const id = heap[slot]!
    const key = due[id]!
    while (slot > 0) {
      const parent = (slot - 1) >> 1
      if (due[heap[parent]!]! >= key) break
      place(slot, heap[parent]!)
      slot = parent
    }
    place(slot, id)
  }
  const down = (slot: number): void => {
    const id = heap[slot]!
    const key = due[id]!
    for (;;) {
      let child = 2 * slot + 1
      if (child >= size) break
      if (child + 1 < size && due[heap[child + 1]!]! > due[heap[child]!]!) child++
      if (due[heap[child]!]! <= key) break
      place(slot, heap[child]!)
      slot = child
    }
    place(slot, id)
  }
  for (let i = 0; i < trace.length; i++) {
    const id = trace[i]!
    const slot = at[id]!
    if (slot >= 0) {
      hits++
      due[id] = next[i]! // was i, the smallest in the heap: it can only move up
      up(slot)
    } else if (size < maxSize) {
      due[id] = next[i]!
      place(size, id)
      up(size++)
    } else if (due[heap[0]!]! > next[i]!) {
      at[heap[0]!] = -1
      due[id] = next[i]!
      place(0, id)
      down(0)
    }
  }
  return hits
}

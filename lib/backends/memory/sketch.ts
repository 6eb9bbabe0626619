/**
 * The frequency sketch of the `tinylfu` policy: a count-min sketch of 4-bit counters that estimates how often each
 * key was used lately. Every use adds one to four counters picked by the key's hash; the estimate is the least of
 * the four (collisions only ever inflate a count). A table word holds eight counters; they stop at 15, and once
 * twenty times as many uses as the capacity were counted, every counter is halved: old popularity fades, so a key
 * that was hot yesterday does not keep a place that today's hot keys need.
 */

/** Halving a word's eight 4-bit counters at once: shifted right, the bit each took from its neighbour cleared. */
const HALVE_MASK = 0x77777777
/**
 * Uses counted between two halvings, per key of capacity. Caffeine counts 10; on a Zipf(0.99) trace of 1M requests
 * over 100k keys, 20 kept 0.2–0.4 points more hits at 1,000 and 10,000 entries (a longer memory tells keys used about
 * once per period apart better).
 */
const SAMPLE_FACTOR = 20

/** @internal */
export class FrequencySketch {
  #table: Uint32Array
  #mask: number
  /** Uses counted since the last halving. */
  #additions = 0
  #sampleSize: number
  /**
   * Grows by one at every halving and clearing: a key whose counters were all at 15 stays so until it changes, so a
   * caller that noted it may skip its increments (they would change nothing) meanwhile.
   */
  epoch: number

  /**
   * A sketch sized for about `capacity` keys: 16 counters a key (rounded up to a power of two), 64 bytes at least,
   * 32 MB at most.
   */
  constructor(capacity: number, epoch = 0) {
    this.epoch = epoch
    const words = 2 * ceilingPowerOfTwo(Math.max(8, Math.min(capacity, 1 << 22)))
    this.#table = new Uint32Array(words)
    this.#mask = words - 1
    this.#sampleSize = SAMPLE_FACTOR * Math.max(8, capacity)
  }

  /** The keys the sketch was sized for. */
  get capacity(): number {
    return this.#sampleSize / SAMPLE_FACTOR
  }

  // The four counters of a hash are at `first + i × second` (i = 0…3): `first` the hash, `second` its halves swapped
  // (made odd); a counter's word is the low bits, its place in the word the top three. No mixing is left for a hit:
  // `hashKey` mixed the bits when the key was stored.

  /** The estimated uses of the key whose hash (from `hashKey`) is `hash`, 0 to 15. */
  frequency(hash: number): number {
    const table = this.#table
    const mask = this.#mask
    const second = (hash << 16) | (hash >>> 16) | 1
    let spot = hash
    let least = 15
    for (let i = 0; i < 4; i++) {
      const count = (table[spot & mask]! >>> ((spot >>> 29) << 2)) & 15
      if (count < least) least = count
      spot = (spot + second) | 0
    }
    return least
  }

  /**
   * One more use of the key whose hash (from `hashKey`) is `hash`. Answers whether its four counters are all at 15
   * now (and no halving came): more uses change nothing until `epoch` changes.
   */
  increment(hash: number): boolean {
    const table = this.#table
    const mask = this.#mask
    const second = (hash << 16) | (hash >>> 16) | 1
    let spot = hash
    let added = false
    let full = true
    for (let i = 0; i < 4; i++) {
      const word = spot & mask
      const shift = (spot >>> 29) << 2
      const value = table[word]!
      const count = (value >>> shift) & 15
      if (count !== 15) {
        table[word] = value + (1 << shift)
        added = true
        if (count !== 14) full = false
      }
      spot = (spot + second) | 0
    }
    if (added && ++this.#additions >= this.#sampleSize) {
      this.#halve()
      return false
    }
    return full
  }

  /** Forgets every count. */
  clear(): void {
    this.#table.fill(0)
    this.#additions = 0
    this.epoch++
  }

  /** Every counter halved: the aging step. */
  #halve(): void {
    const table = this.#table
    for (let i = 0; i < table.length; i++) table[i] = (table[i]! >>> 1) & HALVE_MASK
    this.#additions >>>= 1
    this.epoch++
  }
}

/**
 * The key's 32-bit hash, computed once when the key is stored: FNV-1a over its UTF-16 code units, its bits then
 * spread by murmur3's finalizer (FNV alone leaves keys that differ in their last character close). @internal
 */
export function hashKey(key: string): number {
  let x = 0x811c9dc5
  for (let i = 0; i < key.length; i++) x = Math.imul(x ^ key.charCodeAt(i), 0x01000193)
  x ^= x >>> 16
  x = Math.imul(x, 0x85ebca6b)
  x ^= x >>> 13
  x = Math.imul(x, 0xc2b2ae35)
  return x ^ (x >>> 16)
}

function ceilingPowerOfTwo(n: number): number {
  return 2 ** Math.ceil(Math.log2(n))
}

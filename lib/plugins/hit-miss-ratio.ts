import type { HitMissRatio } from '../core/cache.js'
import { type Context, hitsOf } from '../core/context.js'
import { BasePlugin } from './base.js'

export type { HitMissRatio } from '../core/cache.js'

/**
 * Counts `get` and `multiGet` lookups; `multiGet` counts every key. Read the counts as `plugin.hitMissRatio` or
 * `cache.hitMissRatio`. A lookup answered by a middleware without the store counts as a hit when it answered a
 * value.
 *
 * @example
 * ```ts
 * import { HitMissRatioPlugin, MemoryCache } from 'oniocache'
 *
 * const cache = new MemoryCache({ plugins: [new HitMissRatioPlugin()] })
 * await cache.set('a', 1)
 * await cache.get('a')
 * await cache.multiGet(['a', 'b', 'c'])
 * console.log(cache.hitMissRatio) // { hits: 2, total: 4, hitRatio: 0.5 }
 * ```
 */
export class HitMissRatioPlugin extends BasePlugin {
  /** The counts need no timing: `next()` is not timed. */
  override readonly timesNext = false
  #hits = 0
  #total = 0

  /** Counts one lookup, and one hit if the key was found. */
  override postGet(ctx: Context): void {
    this.#total++
    const hits = hitsOf(ctx)
    // A middleware that answered by itself found what it answered.
    if (hits !== undefined ? hits > 0 : ctx.result !== undefined) this.#hits++
  }

  /** Counts one lookup per key asked for, and one hit per key found. */
  /** A `getOrSet` answered from a fresh entry is a hit; a stale or computed answer is a miss. */
  override postGetOrSet(ctx: Context): void {
    this.#total++
    const hits = hitsOf(ctx)
    if (hits !== undefined ? hits > 0 : ctx.state.outcome === 'fresh') this.#hits++
  }

  override postMultiGet(ctx: Context): void {
    const values = ctx.result as readonly unknown[]
    this.#total += values.length
    const hits = hitsOf(ctx)
    if (hits !== undefined) {
      this.#hits += hits
    } else {
      for (const value of values) if (value !== undefined) this.#hits++
    }
  }

  /** A snapshot of the counts. */
  get hitMissRatio(): HitMissRatio {
    return { hits: this.#hits, total: this.#total, hitRatio: this.#total === 0 ? 0 : this.#hits / this.#total }
  }

  /** Forgets every count. */
  reset(): void {
    this.#hits = 0
    this.#total = 0
  }
}

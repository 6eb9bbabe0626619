import type { HitMissRatio } from '../core/cache.js'
import { type Context, hitsOf } from '../core/context.js'
import { BasePlugin } from './base.js'

export type { HitMissRatio } from '../core/cache.js'

/** Counts `get` and `multiGet` lookups; `multiGet` counts every key. */
export class HitMissRatioPlugin extends BasePlugin {
  /** The counts need no timing: `next()` is not timed. */
  override readonly timesNext = false
  #hits = 0
  #total = 0

  override postGet(ctx: Context): void {
    this.#total++
    const hits = hitsOf(ctx)
    // A middleware that answered by itself found what it answered.
    if (hits !== undefined ? hits > 0 : ctx.result !== undefined) this.#hits++
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

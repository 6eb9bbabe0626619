import type { Context } from '../context.js'
import { BasePlugin } from './base.js'

export interface HitMissRatio {
  hits: number
  total: number
  /** `hits / total`, 0 before any lookup. */
  hitRatio: number
}

/** Counts `get` and `multiGet` lookups; `multiGet` counts every key. */
export class HitMissRatioPlugin extends BasePlugin {
  /** The counts need no timing: `next()` is not timed. */
  override readonly timesNext = false
  #hits = 0
  #total = 0

  override postGet(ctx: Context): void {
    this.#total++
    if (ctx.hits !== undefined ? ctx.hits > 0 : ctx.result !== undefined) this.#hits++
  }

  override postMultiGet(ctx: Context): void {
    const values = ctx.result as readonly unknown[]
    this.#total += values.length
    if (ctx.hits !== undefined) {
      this.#hits += ctx.hits
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
    this.#hits = this.#total = 0
  }
}

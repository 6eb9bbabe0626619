import type { Profiling } from '../core/cache.js'
import type { Context } from '../core/context.js'
import type { CommandName } from '../core/options.js'
import { BasePlugin } from './base.js'

export type { Profiling } from '../core/cache.js'

interface Figures {
  count: number
  sum: number
  min: number
  max: number
}

/** Keeps, per command, the count and the average, min and max time in seconds. */
export class TimingPlugin extends BasePlugin {
  readonly #figures = new Map<CommandName, Figures>()

  override post(ctx: Context): void {
    const took = ctx.took
    const figures = this.#figures.get(ctx.command)
    if (figures === undefined) {
      this.#figures.set(ctx.command, { count: 1, sum: took, min: took, max: took })
      return
    }
    figures.count++
    figures.sum += took
    if (took < figures.min) figures.min = took
    if (took > figures.max) figures.max = took
  }

  /** A snapshot of the figures; only commands seen so far have keys. */
  get profiling(): Profiling {
    const out: Partial<Profiling> = {}
    for (const [command, f] of this.#figures) {
      out[`${command}_total`] = f.count
      out[`${command}_avg`] = f.sum / f.count
      out[`${command}_min`] = f.min
      out[`${command}_max`] = f.max
    }
    return out as Profiling
  }

  /** Forgets every figure. */
  reset(): void {
    this.#figures.clear()
  }
}

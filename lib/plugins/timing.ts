import type { CommandName, Context } from '../context.js'
import { BasePlugin } from './base.js'

/**
 * Flat figures per command, in seconds, with aiocache's keys: `get_total` (how
 * many calls), `get_avg`, `get_min`, `get_max`, `set_total`, `multiGet_avg`, …
 */
export type Profiling = Record<`${CommandName}_${'total' | 'avg' | 'min' | 'max'}`, number>

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

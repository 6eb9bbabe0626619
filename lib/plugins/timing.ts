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

/**
 * Keeps, per command, the count and the average, min and max time in seconds, measured around the plugin's own
 * `next()` with a monotonic high-resolution clock. Read them as `plugin.profiling` or `cache.profiling`, with
 * aiocache's flat keys (`get_total`, `get_avg`, `get_min`, `get_max`, `multiGet_avg`, …). Failed commands are not
 * counted.
 *
 * @example
 * ```ts
 * import { MemoryCache, TimingPlugin } from 'oniocache'
 *
 * const timing = new TimingPlugin()
 * const cache = new MemoryCache({ plugins: [timing] })
 * await cache.set('a', 1)
 * for (let i = 0; i < 3; i++) await cache.get('a')
 * const { get_total, get_avg, get_max } = timing.profiling
 * console.log(get_total, get_avg <= get_max) // 3 true
 * ```
 */
export class TimingPlugin extends BasePlugin {
  readonly #figures = new Map<CommandName, Figures>()

  /** Adds `ctx.took` to the figures of `ctx.command`. */
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

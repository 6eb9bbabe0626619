import type { Profiling } from '../core/cache.js'
import { type Bind, LAYER_FOR } from '../core/compose.js'
import type { Context } from '../core/context.js'
import { COMMANDS, type CommandName } from '../core/options.js'
import { BasePlugin, hasOnlyHooksOf } from './base.js'

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
  /** Every command's figures, from the start: a command's are found by a property read, as fast as it gets. */
  readonly #figures = zeroes()
  /** Whether this plugin's layer is the one written out below (no hooks of a subclass's or an instance's own). */
  #written: boolean | undefined

  /** Adds `ctx.took` to the figures of `ctx.command`. */
  override post(ctx: Context): void {
    add(this.#figures[ctx.command], ctx.took)
  }

  /**
   * The layer `post` makes, written out: it times `next()` into `ctx.took` and adds it to the command's figures, with
   * no hook to call. A subclass or an instance with hooks of its own gets the layer its hooks make. @internal
   */
  override [LAYER_FOR](command: CommandName): Bind | null | undefined {
    this.#written ??= this.timesNext && hasOnlyHooksOf(this, TimingPlugin.prototype)
    if (!this.#written) return super[LAYER_FOR](command)
    const figures = this.#figures[command]
    const { clock } = this
    return (next) => (ctx) => {
      const started = clock.now()
      const inner = next(ctx)
      if (inner === undefined) {
        add(figures, (ctx.took = (clock.now() - started) / 1000))
        return
      }
      return inner.then(() => {
        add(figures, (ctx.took = (clock.now() - started) / 1000))
      })
    }
  }

  /** A snapshot of the figures; only commands seen so far have keys. */
  get profiling(): Profiling {
    const out: Partial<Profiling> = {}
    for (const command of COMMANDS) {
      const f = this.#figures[command]
      if (f.count === 0) continue
      out[`${command}_total`] = f.count
      out[`${command}_avg`] = f.sum / f.count
      out[`${command}_min`] = f.min
      out[`${command}_max`] = f.max
    }
    return out as Profiling
  }

  /** Forgets every figure. */
  reset(): void {
    for (const command of COMMANDS) this.#figures[command].count = 0
  }
}

/** Adds one command's `took` to its figures. */
function add(figures: Figures, took: number): void {
  if (figures.count++ === 0) {
    figures.sum = figures.min = figures.max = took
    return
  }
  figures.sum += took
  if (took < figures.min) figures.min = took
  if (took > figures.max) figures.max = took
}

/** Figures of nothing yet, for every command. */
function zeroes(): Record<CommandName, Figures> {
  const figures = {} as Record<CommandName, Figures>
  for (const command of COMMANDS) figures[command] = { count: 0, sum: 0, min: 0, max: 0 }
  return figures
}

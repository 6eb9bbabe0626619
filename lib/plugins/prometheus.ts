import { type Metric, type Registry, type RegistryContentType, register } from 'prom-client'
import { SYNC_NEXT, type SyncNext } from '../core/compose.js'
import type { Context, Next, Plugin } from '../core/context.js'
import type { CommandName } from '../core/options.js'
import { now } from '../util/clock.js'
import { describe } from '../util/describe.js'
import { checkOptions } from '../util/options.js'
import { found, lookedUp, whenSettled } from './measure.js'

/** The options of {@link PrometheusPlugin}. */
export interface PrometheusPluginOptions {
  /** The registry of the metrics (Prometheus or OpenMetrics text). Default: prom-client's global `register`. */
  registry?: Registry<RegistryContentType>
  /** Starts every metric's name. Default `'oniocache_'`; `''` for none. */
  prefix?: string
}

const OPTIONS = ['registry', 'prefix'] as const

/** Bucket bounds of the duration histogram, in seconds: from a memory hit (about 0.1 ms) to a timeout (5 s). */
const DURATION_BUCKETS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
]

/** A metric name, or the start of one: what Prometheus accepts. */
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/

/** The series of one command, found once: counting a command then costs a few additions. */
interface CommandSeries {
  readonly ok: CounterSeries
  readonly failed: CounterSeries
  readonly errors: CounterSeries
  readonly duration: HistogramSeries
}

/**
 * Prometheus metrics for every command of a cache, in a `prom-client` registry:
 *
 * - `oniocache_commands_total{command, outcome}`: commands that ended, `outcome`
 *   being `ok` or `error`;
 * - `oniocache_command_duration_seconds{command}`: a histogram of how long they
 *   took, with buckets from 0.1 ms to 5 s;
 * - `oniocache_lookups_total{result}`: one per key that `get` or `multiGet` looked
 *   up, `result` being `hit` or `miss` (a failed read counts nothing); both series
 *   are there, at 0, from the start;
 * - `oniocache_errors_total{command}`: commands that failed, timeouts included (a
 *   command that times out is counted, and timed, at its timeout).
 *
 * A command's series appear with its first run, its `error` ones at 0 until it fails.
 *
 * The metrics are registered once per registry and prefix: plugins of several caches
 * given the same registry share them and add up, so the hit ratio of all the caches
 * of a process is
 * `sum(rate(oniocache_lookups_total{result="hit"}[5m])) / sum(rate(oniocache_lookups_total[5m]))`.
 * They are counted in plain numbers and read by the registry when it is scraped
 * (`registry.metrics()`), so a command pays a few additions rather than a prom-client
 * call per metric; `registry.resetMetrics()` sets them back to 0.
 *
 * Place it first in `plugins` to count everything the cache answers; a plugin placed
 * before it that answers a command alone (a near cache) hides that command from it.
 *
 * @example
 * ```ts
 * import { MemoryCache } from 'oniocache'
 * import { PrometheusPlugin } from 'oniocache/prometheus'
 * import { Registry } from 'prom-client'
 *
 * const registry = new Registry()
 * const cache = new MemoryCache({ plugins: [new PrometheusPlugin({ registry })] })
 * await cache.set('a', 1)
 * await cache.get('a')
 * await cache.get('b')
 * console.log(await registry.getSingleMetricAsString('oniocache_lookups_total'))
 * // … oniocache_lookups_total{result="hit"} 1
 * // … oniocache_lookups_total{result="miss"} 1
 * await cache.close()
 * ```
 */
export class PrometheusPlugin implements Plugin {
  readonly #commands: CounterFamily
  readonly #duration: HistogramFamily
  readonly #errors: CounterFamily
  readonly #hits: CounterSeries
  readonly #misses: CounterSeries
  readonly #series: Partial<Record<CommandName, CommandSeries>> = {}

  /**
   * Registers the four metrics in the registry, or takes them from it when another `PrometheusPlugin` registered
   * them there already.
   * @throws {TypeError} for an unknown option, a registry that is not a prom-client `Registry`, a prefix that
   * cannot start a metric name, or a registry that holds a metric of one of the names that no `PrometheusPlugin`
   * registered.
   */
  constructor(options: PrometheusPluginOptions = {}) {
    checkOptions(options, OPTIONS, 'PrometheusPlugin')
    const { registry = register, prefix = 'oniocache_' } = options
    if (
      registry === null ||
      typeof registry !== 'object' ||
      typeof registry.getSingleMetric !== 'function' ||
      typeof registry.registerMetric !== 'function'
    ) {
      throw new TypeError(
        `[oniocache] PrometheusPlugin: registry must be a prom-client Registry; got ${describe(registry)}`,
      )
    }
    if (typeof prefix !== 'string' || (prefix !== '' && !METRIC_NAME.test(prefix))) {
      throw new TypeError(
        `[oniocache] PrometheusPlugin: prefix must be '' or start a metric name (letters, digits, _ and :, not ` +
          `starting with a digit); got ${describe(prefix)}`,
      )
    }
    this.#commands = family(
      registry,
      new CounterFamily(`${prefix}commands_total`, 'Cache commands that ended, by command and outcome (ok or error).', [
        'command',
        'outcome',
      ]),
    )
    this.#duration = family(
      registry,
      new HistogramFamily(
        `${prefix}command_duration_seconds`,
        'How long cache commands took, in seconds, by command.',
        ['command'],
        DURATION_BUCKETS,
      ),
    )
    const lookups = family(
      registry,
      new CounterFamily(`${prefix}lookups_total`, 'Keys looked up by get and multiGet, by result (hit or miss).', [
        'result',
      ]),
    )
    this.#errors = family(
      registry,
      new CounterFamily(`${prefix}errors_total`, 'Cache commands that failed (timeouts included), by command.', [
        'command',
      ]),
    )
    this.#hits = lookups.series(['hit'])
    this.#misses = lookups.series(['miss'])
  }

  /** Counts and times the command once it ends. */
  middleware(ctx: Context, next: Next): Promise<void> | void {
    const started = now()
    let inner: void | Promise<void>
    try {
      inner = (next as SyncNext)(ctx)
    } catch (error) {
      this.#end(ctx, started, true)
      throw error
    }
    if (inner === undefined) {
      this.#end(ctx, started, false)
      return
    }
    return whenSettled(ctx, inner, (failed) => this.#end(ctx, started, failed))
  }

  #end(ctx: Context, started: number, failed: boolean): void {
    const series = (this.#series[ctx.command] ??= this.#seriesOf(ctx.command))
    series.duration.observe((now() - started) / 1000)
    if (failed) {
      series.failed.value++
      series.errors.value++
      return
    }
    series.ok.value++
    const total = lookedUp(ctx)
    if (total === 0) return
    const hits = found(ctx)
    this.#hits.value += hits
    this.#misses.value += total - hits
  }

  #seriesOf(command: CommandName): CommandSeries {
    return {
      ok: this.#commands.series([command, 'ok']),
      failed: this.#commands.series([command, 'error']),
      errors: this.#errors.series([command]),
      duration: this.#duration.series([command]),
    }
  }
}

// The middleware takes a next() that may finish synchronously (see core/compose.ts).
Object.defineProperty(PrometheusPlugin.prototype.middleware, SYNC_NEXT, { value: true })

/**
 * The family already registered under `wanted`'s name, when a `PrometheusPlugin`
 * registered it with the same type and labels (another cache's plugin: they share
 * it), else `wanted`, registered now.
 */
function family<F extends Family<unknown>>(registry: Registry<RegistryContentType>, wanted: F): F {
  const existing = registry.getSingleMetric(wanted.name) as unknown
  if (existing === undefined) {
    // The registry reads a metric through get() and reset(), which a family answers as prom-client's own do.
    registry.registerMetric(wanted as unknown as Metric)
    return wanted
  }
  if (
    !(existing instanceof Family) ||
    existing.type !== wanted.type ||
    existing.labelNames.join(',') !== wanted.labelNames.join(',')
  ) {
    throw new TypeError(
      `[oniocache] PrometheusPlugin: the registry already holds a metric named ${wanted.name}, not registered by a ` +
        'PrometheusPlugin; give the plugin another prefix, or another registry',
    )
  }
  return existing as F
}

/** A label set's values, in the order of the family's label names. */
type LabelValues = readonly string[]

/** A series of a counter: a number that only grows (until the registry resets it). */
interface CounterSeries {
  readonly labels: Readonly<Record<string, string>>
  value: number
}

/** A series of a histogram, its buckets counted apart (the last one past the last bound). */
class HistogramSeries {
  readonly labels: Readonly<Record<string, string>>
  readonly bounds: readonly number[]
  readonly counts: number[]
  sum = 0
  count = 0

  constructor(labels: Readonly<Record<string, string>>, bounds: readonly number[]) {
    this.labels = labels
    this.bounds = bounds
    this.counts = new Array<number>(bounds.length + 1).fill(0)
  }

  observe(value: number): void {
    const { bounds } = this
    let i = 0
    while (i < bounds.length && value > bounds[i]!) i++
    this.counts[i]!++
    this.sum += value
    this.count++
  }
}

/** A value as prom-client's registry reads it from a metric's `get()`. */
interface MetricValue {
  value: number
  labels: Record<string, string | number>
  metricName?: string
}

/**
 * One metric of the registry (a name, its help and type, its series by label
 * values), shaped as prom-client's registry reads metrics: `name`, `help`, `type`,
 * `aggregator`, `get()` and `reset()`.
 */
abstract class Family<S> {
  abstract readonly type: 'counter' | 'histogram'
  /** How a cluster's registries add this metric up: every series of it is a sum. */
  readonly aggregator = 'sum'
  /** Written by prom-client's registry for OpenMetrics output, which names counters without `_total`. */
  name: string
  readonly help: string
  readonly labelNames: readonly string[]
  protected readonly all = new Map<string, S>()

  constructor(name: string, help: string, labelNames: readonly string[]) {
    this.name = name
    this.help = help
    this.labelNames = labelNames
  }

  /** The series of these label values, made on first use. */
  series(values: LabelValues): S {
    const key = values.join('\u0000')
    let series = this.all.get(key)
    if (series === undefined) {
      const labels: Record<string, string> = {}
      this.labelNames.forEach((name, i) => {
        labels[name] = values[i]!
      })
      series = this.create(Object.freeze(labels))
      this.all.set(key, series)
    }
    return series
  }

  protected abstract create(labels: Readonly<Record<string, string>>): S

  /** Every series as prom-client's registry formats them. */
  abstract values(): MetricValue[]

  /** What the registry reads when it is scraped. */
  async get(): Promise<{ name: string; help: string; type: string; values: MetricValue[]; aggregator: string }> {
    return { name: this.name, help: this.help, type: this.type, values: this.values(), aggregator: this.aggregator }
  }

  /** Sets every series back to 0 (`registry.resetMetrics()`); the plugins keep counting into them. */
  abstract reset(): void
}

class CounterFamily extends Family<CounterSeries> {
  readonly type = 'counter'

  protected create(labels: Readonly<Record<string, string>>): CounterSeries {
    return { labels, value: 0 }
  }

  values(): MetricValue[] {
    return Array.from(this.all.values(), ({ labels, value }) => ({ value, labels: { ...labels } }))
  }

  reset(): void {
    for (const series of this.all.values()) series.value = 0
  }
}

class HistogramFamily extends Family<HistogramSeries> {
  readonly type = 'histogram'
  readonly #bounds: readonly number[]

  constructor(name: string, help: string, labelNames: readonly string[], bounds: readonly number[]) {
    super(name, help, labelNames)
    this.#bounds = bounds
  }

  protected create(labels: Readonly<Record<string, string>>): HistogramSeries {
    return new HistogramSeries(labels, this.#bounds)
  }

  values(): MetricValue[] {
    const values: MetricValue[] = []
    const bucket = `${this.name}_bucket`
    for (const { labels, bounds, counts, sum, count } of this.all.values()) {
      let below = 0
      bounds.forEach((le, i) => {
        below += counts[i]!
        values.push({ value: below, labels: { le, ...labels }, metricName: bucket })
      })
      values.push({ value: count, labels: { le: '+Inf', ...labels }, metricName: bucket })
      values.push({ value: sum, labels: { ...labels }, metricName: `${this.name}_sum` })
      values.push({ value: count, labels: { ...labels }, metricName: `${this.name}_count` })
    }
    return values
  }

  reset(): void {
    for (const series of this.all.values()) {
      series.counts.fill(0)
      series.sum = 0
      series.count = 0
    }
  }
}

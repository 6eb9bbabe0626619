import { createRequire } from 'node:module'
import {
  type Attributes,
  type Counter,
  context,
  createNoopMeter,
  type Histogram,
  INVALID_SPAN_CONTEXT,
  type MeterProvider,
  metrics,
  type Span,
  SpanKind,
  type SpanOptions,
  SpanStatusCode,
  type Tracer,
  type TracerProvider,
  trace,
} from '@opentelemetry/api'
import { type Backend, identify } from '../core/backend.js'
import { SYNC_NEXT, type SyncNext } from '../core/compose.js'
import { CommandContext, type Context, keysOf, type Next, type Plugin } from '../core/context.js'
import type { CommandName } from '../core/options.js'
import { now } from '../util/clock.js'
import { describe } from '../util/describe.js'
import { checkOptions } from '../util/options.js'
import { found, lookedUp, whenSettled } from './measure.js'

/** The options of {@link OtelPlugin}. */
export interface OtelPluginOptions {
  /** Where spans go. Default: the global tracer provider (`trace` of `@opentelemetry/api`). */
  tracerProvider?: TracerProvider
  /**
   * Where metrics go. Default: the global meter provider (`metrics` of `@opentelemetry/api`), read when the plugin
   * is built: register the SDK's meter provider first.
   */
  meterProvider?: MeterProvider
  /**
   * Whether spans carry the keys of each command (attribute `oniocache.keys`, the keys as the backend sees them).
   * Keys may hold personal data, so the default is `false`.
   */
  recordKeys?: boolean
}

const OPTIONS = ['tracerProvider', 'meterProvider', 'recordKeys'] as const

// Two levels above this file, in lib/plugins/ as in dist/plugins/, sits the package's own manifest.
const { version: VERSION } = createRequire(import.meta.url)('../../package.json') as { version: string }

/** The bucket boundaries the semantic conventions advise for `db.client.operation.duration`, in seconds. */
const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10]

/** Past this many namespaces per backend, the attributes of a new one are built per command rather than kept. */
const KEPT_NAMESPACES = 256

/** What every command with the same backend, namespace and name records, built once. */
interface Shape {
  /**
   * `startSpan`'s options for the no-op tracer (the API's without an SDK): the kind and the attributes known before
   * the command runs, one object for every span. A real tracer gets a copy per span, as its sampler may add to it.
   */
  readonly noopStart: SpanOptions
  /** The attributes of the duration histogram for a command that succeeded (the span's starting ones). */
  readonly attributes: Attributes
  /** The attributes of the lookups counter for keys found; `undefined` for commands other than reads. */
  readonly hit: Attributes | undefined
  /** The same for keys not found. */
  readonly miss: Attributes | undefined
}

/** The shapes of one backend and namespace, by command. */
type Shapes = Partial<Record<CommandName, Shape>>

/**
 * OpenTelemetry tracing and metrics for every command of a cache, following the
 * semantic conventions for database clients.
 *
 * Each command is one span of kind `CLIENT`, named after the command (`get`,
 * `multiGet`, `set`, …), a child of the span active when the command was called;
 * the layers after the plugin run in the span's context, so spans they start nest
 * under it. Attributes:
 *
 * - `db.system.name`: `redis`, `memcached`, `oniocache.memory`, or a custom
 *   backend's system (the first word of its `name`);
 * - `db.operation.name`: the command;
 * - `db.namespace`: the command's namespace (the call's, else the cache's), left
 *   out when it is `''`;
 * - `server.address` and `server.port`: for a backend on one server;
 * - `db.operation.batch.size`: for `multiGet` and `multiSet` of two keys or more;
 * - `cache.hit`: for `get`, whether the key was found; for `multiGet`, `true` only
 *   if every key was found (so a partial hit is `false`); left out for a command
 *   that failed and for a `multiGet` of no keys;
 * - `oniocache.keys`: the keys as the backend sees them (for `clear`, its prefix
 *   followed by `*`), only with `recordKeys: true` (never for `raw` and `close`);
 * - `error.type`: the error's `name` (`TimeoutError`, `BackendError`, …), for a
 *   failed command, whose span also has status `ERROR` with the error's message and
 *   the error recorded as an exception event.
 *
 * A command that times out ends its span at the timeout, with `TimeoutError`.
 *
 * Metrics: the histogram `db.client.operation.duration` (seconds; attributes
 * `db.system.name`, `db.operation.name`, `db.namespace`, `server.address`,
 * `server.port`, and `error.type` for failures) and the counter `oniocache.lookups`,
 * one per key that `get` or `multiGet` looked up (attributes `cache.hit`,
 * `db.system.name`, `db.operation.name`; a failed read counts nothing).
 *
 * Place it first in `plugins` to measure everything the cache does, other plugins
 * included; a plugin placed before it that answers a command alone (a near cache)
 * hides that command from it.
 *
 * @example
 * ```ts
 * import { trace } from '@opentelemetry/api'
 * import { MemoryCache } from 'oniocache'
 * import { OtelPlugin } from 'oniocache/otel'
 *
 * // With an OpenTelemetry SDK registered first (its tracer and meter providers set as the global ones):
 * const cache = new MemoryCache({ namespace: 'users', plugins: [new OtelPlugin()] })
 * await trace.getTracer('app').startActiveSpan('load user', async (span) => {
 *   await cache.set('42', { name: 'Ada' }) // span "set", a child of "load user"
 *   await cache.get('42') // span "get" with cache.hit = true
 *   span.end()
 * })
 * await cache.close()
 * ```
 */
export class OtelPlugin implements Plugin {
  readonly #tracer: Tracer
  readonly #duration: Histogram
  readonly #lookups: Counter
  /**
   * Whether the last span came from the no-op tracer (no SDK registered yet, or none at all): the next one most
   * probably does too, and may share its options with every other.
   */
  #noop = true
  /** Whether the meter records anything: with the API's no-op meter the clock is not even read. */
  readonly #metered: boolean
  readonly #recordKeys: boolean
  readonly #shapes = new WeakMap<Backend, Map<string, Shapes>>()
  #lastBackend: Backend | undefined = undefined
  #lastNamespace = ''
  #lastShapes: Shapes | undefined = undefined

  /**
   * Gets a tracer and a meter named `oniocache` (with the package's version) from the providers.
   * @throws {TypeError} for an unknown option, a provider without `getTracer`/`getMeter`, or a `recordKeys` that
   * is not a boolean.
   */
  constructor(options: OtelPluginOptions = {}) {
    checkOptions(options, OPTIONS, 'OtelPlugin')
    const { tracerProvider = trace, meterProvider = metrics, recordKeys = false } = options
    if (typeof tracerProvider?.getTracer !== 'function') {
      throw new TypeError(
        '[oniocache] OtelPlugin: tracerProvider must be an OpenTelemetry TracerProvider; got ' +
          describe(tracerProvider),
      )
    }
    if (typeof meterProvider?.getMeter !== 'function') {
      throw new TypeError(
        `[oniocache] OtelPlugin: meterProvider must be an OpenTelemetry MeterProvider; got ${describe(meterProvider)}`,
      )
    }
    if (typeof recordKeys !== 'boolean') {
      throw new TypeError(`[oniocache] OtelPlugin: recordKeys must be a boolean; got ${describe(recordKeys)}`)
    }
    this.#tracer = tracerProvider.getTracer('oniocache', VERSION)
    const meter = meterProvider.getMeter('oniocache', VERSION)
    this.#metered = meter !== createNoopMeter()
    this.#duration = meter.createHistogram('db.client.operation.duration', {
      description: 'Duration of database client operations.',
      unit: 's',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    })
    this.#lookups = meter.createCounter('oniocache.lookups', {
      description: 'Keys looked up by get and multiGet, by whether they were found (attribute cache.hit).',
      unit: '{lookup}',
    })
    this.#recordKeys = recordKeys
  }

  /** Runs the command inside its span and records its duration and lookups once it ends. */
  middleware(ctx: Context, next: Next): Promise<void> | void {
    const shape = this.#shapeOf(ctx)
    const span = this.#tracer.startSpan(
      ctx.command,
      this.#noop ? shape.noopStart : { kind: SpanKind.CLIENT, attributes: { ...shape.attributes } },
    )
    // The no-op tracer's span carries no trace: the layers below run in the caller's context. A span that is
    // sampled out still becomes the active one, so that parent-based sampling drops what starts below it too.
    const traced = span.isRecording() || span.spanContext() !== INVALID_SPAN_CONTEXT
    this.#noop = !traced
    const started = this.#metered ? now() : 0
    let inner: void | Promise<void>
    try {
      inner = traced
        ? context.with(trace.setSpan(context.active(), span), next as SyncNext, undefined, ctx)
        : (next as SyncNext)(ctx)
    } catch (error) {
      this.#end(ctx, span, shape, started, true, error)
      throw error
    }
    if (inner === undefined) {
      this.#end(ctx, span, shape, started, false, undefined)
      return
    }
    return whenSettled(ctx, inner, (failed, error) => this.#end(ctx, span, shape, started, failed, error))
  }

  /** Ends the span and records the metrics of a command that ended, `failed` with `error` or not. */
  #end(ctx: Context, span: Span, shape: Shape, started: number, failed: boolean, error: unknown): void {
    const recording = span.isRecording()
    if (failed) {
      const type = errorType(error)
      if (this.#metered) this.#duration.record((now() - started) / 1000, { ...shape.attributes, 'error.type': type })
      if (recording) {
        span.setAttribute('error.type', type)
        span.recordException(error instanceof Error ? error : String(error))
        span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) })
      }
    } else {
      if (this.#metered) this.#duration.record((now() - started) / 1000, shape.attributes)
      if (shape.hit !== undefined && (this.#metered || recording)) {
        const total = lookedUp(ctx)
        const hits = found(ctx)
        if (this.#metered) {
          if (hits > 0) this.#lookups.add(hits, shape.hit)
          if (total > hits) this.#lookups.add(total - hits, shape.miss)
        }
        if (recording && total > 0) span.setAttribute('cache.hit', hits === total)
      }
    }
    if (recording) {
      const batch = ctx.command === 'multiGet' || ctx.command === 'multiSet'
      if (batch || (this.#recordKeys && ctx.command !== 'raw' && ctx.command !== 'close')) {
        const keys = builtKeys(ctx)
        // The conventions count a batch from two operations on: one key is no batch.
        if (batch && keys.length > 1) span.setAttribute('db.operation.batch.size', keys.length)
        if (this.#recordKeys) span.setAttribute('oniocache.keys', keys)
      }
    }
    span.end()
  }

  /** The shape of this command on this backend and namespace: kept, unless the backend has seen too many namespaces. */
  #shapeOf(ctx: Context): Shape {
    const { cache, command } = ctx
    const given = ctx.args.namespace
    const namespace = typeof given === 'string' ? given : cache.namespace
    const { backend } = cache
    // Most commands run where the last one did: a plugin usually serves one cache and one namespace.
    let shapes = this.#lastBackend === backend && this.#lastNamespace === namespace ? this.#lastShapes : undefined
    if (shapes === undefined) {
      let byNamespace = this.#shapes.get(backend)
      if (byNamespace === undefined) {
        byNamespace = new Map()
        this.#shapes.set(backend, byNamespace)
      }
      shapes = byNamespace.get(namespace)
      if (shapes === undefined) {
        if (byNamespace.size >= KEPT_NAMESPACES) return shapeOf(backend, namespace, command)
        shapes = {}
        byNamespace.set(namespace, shapes)
      }
      this.#lastBackend = backend
      this.#lastNamespace = namespace
      this.#lastShapes = shapes
    }
    return (shapes[command] ??= shapeOf(backend, namespace, command))
  }
}

// The middleware takes a next() that may finish synchronously (see core/compose.ts).
Object.defineProperty(OtelPlugin.prototype.middleware, SYNC_NEXT, { value: true })

/** What a command records on a backend and namespace, before it runs. */
function shapeOf(backend: Backend, namespace: string, command: CommandName): Shape {
  const { system, server } = identify(backend)
  const dbSystem = system === 'memory' ? 'oniocache.memory' : system
  const attributes: Attributes = { 'db.system.name': dbSystem, 'db.operation.name': command }
  if (namespace !== '') attributes['db.namespace'] = namespace
  // Several servers (a Memcached pool, a Redis cluster) have no one address to name.
  if (server !== undefined && !server.includes(',')) {
    const colon = server.lastIndexOf(':')
    attributes['server.address'] = server.slice(0, colon).replace(/^\[(.*)\]$/, '$1')
    attributes['server.port'] = Number(server.slice(colon + 1))
  }
  Object.freeze(attributes)
  const reads = command === 'get' || command === 'getOrSet' || command === 'multiGet'
  const lookup = (hit: boolean): Attributes =>
    Object.freeze({ 'cache.hit': hit, 'db.system.name': dbSystem, 'db.operation.name': command })
  return {
    noopStart: { kind: SpanKind.CLIENT, attributes: { ...attributes } },
    attributes,
    hit: reads ? lookup(true) : undefined,
    miss: reads ? lookup(false) : undefined,
  }
}

/** `error.type`: the error's name (its class's, for oniocache's errors); `_OTHER` for a thrown non-error. */
function errorType(error: unknown): string {
  if (error instanceof Error) return error.name || error.constructor.name
  return '_OTHER'
}

/** The keys a command built (as the backend sees them), else those its arguments build; none for bad arguments. */
function builtKeys(ctx: Context): string[] {
  const built = ctx instanceof CommandContext ? keysOf(ctx) : undefined
  if (built !== undefined) return Array.isArray(built) ? built : [built]
  try {
    const { key, keys, pairs, namespace } = ctx.args
    if (typeof key === 'string') return [ctx.cache.buildKey(key, namespace)]
    // A generator's keys cannot be read twice: only collections are read again here.
    if (Array.isArray(keys) || keys instanceof Set) return Array.from(keys, (k) => ctx.cache.buildKey(k, namespace))
    if (Array.isArray(pairs) || pairs instanceof Map) {
      return Array.from(pairs, ([k]) => ctx.cache.buildKey(k as string, namespace))
    }
  } catch {
    // Bad arguments: the command's own error says what was wrong.
  }
  return []
}

// OtelPlugin with the real OpenTelemetry SDKs (sdk-trace-base with an in-memory exporter,
// sdk-metrics with a reader collected by hand, AsyncLocalStorage for the active context) on
// memory, Redis and Memcached: spans, their attributes and parents, errors, and the metrics.
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { type Attributes, context, metrics, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { type DataPoint, type Histogram, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics'
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  type Sampler,
  SamplingDecision,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  BackendError,
  Cache,
  type Context,
  KeyExistsError,
  MemoryBackend,
  MemoryCache,
  type Next,
  TimeoutError,
} from '../lib/index.js'
import { MemcachedCache } from '../lib/memcached.js'
import { OtelPlugin, type OtelPluginOptions } from '../lib/otel.js'
import { RedisCache } from '../lib/redis.js'
import { rejection } from './support/fixtures/backends.js'
import { type MemcachedServer, type RedisServer, startMemcached, startRedis } from './support/servers.js'

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string })
  .version
const BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10]

/** A reader the spec collects from when it wants (cumulative: every point since the provider started). */
class Reader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

/** A sampler that drops the spans of one name and records every other. */
class DropNamed implements Sampler {
  constructor(readonly dropped: string) {}
  shouldSample(_context: unknown, _traceId: string, name: string) {
    return { decision: name === this.dropped ? SamplingDecision.NOT_RECORD : SamplingDecision.RECORD_AND_SAMPLED }
  }
  toString(): string {
    return `DropNamed(${this.dropped})`
  }
}

interface Point {
  attributes: Attributes
  count: number
}

/** A tracer provider and a meter provider of the SDKs, an OtelPlugin on them, and readers of what they got. */
function telemetry(options: Omit<OtelPluginOptions, 'tracerProvider' | 'meterProvider'> = {}, sampler?: Sampler) {
  const exporter = new InMemorySpanExporter()
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(exporter)],
    ...(sampler === undefined ? {} : { sampler }),
  })
  const reader = new Reader()
  const meterProvider = new MeterProvider({ readers: [reader] })
  const plugin = new OtelPlugin({ tracerProvider, meterProvider, ...options })
  const tracer = tracerProvider.getTracer('spec')
  return {
    plugin,
    tracer,
    /** Finished spans, the spec's own (named in capitals) left out. */
    spans: (): ReadableSpan[] => exporter.getFinishedSpans().filter((span) => !/^[A-Z]/.test(span.name)),
    all: (): ReadableSpan[] => exporter.getFinishedSpans(),
    /** The duration histogram's points: attributes and count, sorted by their attributes. */
    async durations(): Promise<Point[]> {
      const points = (await metric('db.client.operation.duration')) as DataPoint<Histogram>[]
      for (const point of points) assert.equal(point.value.buckets.boundaries, BUCKETS, 'the advised buckets')
      return sorted(points.map((p) => ({ attributes: p.attributes, count: p.value.count })))
    },
    /** The lookups counter's points: attributes and value, sorted. */
    async lookups(): Promise<Point[]> {
      const points = (await metric('oniocache.lookups')) as DataPoint<number>[]
      return sorted(points.map((p) => ({ attributes: p.attributes, count: p.value })))
    },
    async close(): Promise<void> {
      await tracerProvider.shutdown()
      await meterProvider.shutdown()
    },
  }

  async function metric(name: string): Promise<DataPoint<unknown>[]> {
    const { resourceMetrics, errors } = await reader.collect()
    assert.equal(errors, [])
    const scopes = resourceMetrics.scopeMetrics.filter((scope) => scope.scope.name === 'oniocache')
    for (const scope of scopes) assert.is(scope.scope.version, VERSION)
    const found = scopes.flatMap((scope) => scope.metrics).filter((m) => m.descriptor.name === name)
    if (found.length === 0) return []
    assert.is(found.length, 1)
    const descriptor = found[0]!.descriptor
    assert.is(descriptor.unit, name === 'oniocache.lookups' ? '{lookup}' : 's')
    return found[0]!.dataPoints as DataPoint<unknown>[]
  }
}

function sorted(points: Point[]): Point[] {
  const key = (p: Point) => JSON.stringify(Object.entries(p.attributes).sort())
  return points.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0))
}

/** The spec's fields of a span: name, kind, attributes, and whether its parent is `parent`. */
function shape(span: ReadableSpan, parent?: Span | ReadableSpan) {
  const parentId = parent === undefined ? undefined : parent.spanContext().spanId
  return {
    name: span.name,
    kind: span.kind,
    attributes: span.attributes,
    parented: span.parentSpanContext?.spanId === parentId,
    status: span.status.code,
  }
}

const ok = (name: string, attributes: Attributes) => ({
  name,
  kind: SpanKind.CLIENT,
  attributes,
  parented: true,
  status: SpanStatusCode.UNSET,
})

const MEMORY = { 'db.system.name': 'oniocache.memory' }

let redis: RedisServer
let memcached: MemcachedServer
const manager = new AsyncLocalStorageContextManager()

test.before(async () => {
  context.setGlobalContextManager(manager.enable())
  ;[redis, memcached] = await Promise.all([startRedis(), startMemcached()])
})

test.after(async () => {
  context.disable()
  await Promise.all([redis.stop(), memcached.stop()])
})

test('memory: one CLIENT span per command, named after it, under the caller’s span, with its attributes', async () => {
  const t = telemetry()
  const cache = new MemoryCache({ namespace: 'shop', plugins: [t.plugin] })
  let request: Span | undefined
  await t.tracer.startActiveSpan('REQUEST', async (span) => {
    request = span
    await cache.set('a', 1)
    await cache.get('a')
    await cache.get('b', { namespace: 'other' })
    await cache.multiSet([
      ['c', 3],
      ['d', 4],
    ])
    await cache.multiGet(['a', 'c', 'd'])
    await cache.multiGet(['a', 'x'])
    await cache.multiGet(['a'])
    await cache.delete('a')
    await cache.get('z', { namespace: '' })
    span.end()
  })
  const spans = t.spans()
  const ns = { ...MEMORY, 'db.namespace': 'shop' }
  assert.equal(
    spans.map((span) => shape(span, request)),
    [
      ok('set', { ...ns, 'db.operation.name': 'set' }),
      ok('get', { ...ns, 'db.operation.name': 'get', 'cache.hit': true }),
      ok('get', { ...MEMORY, 'db.namespace': 'other', 'db.operation.name': 'get', 'cache.hit': false }),
      ok('multiSet', { ...ns, 'db.operation.name': 'multiSet', 'db.operation.batch.size': 2 }),
      ok('multiGet', { ...ns, 'db.operation.name': 'multiGet', 'cache.hit': true, 'db.operation.batch.size': 3 }),
      ok('multiGet', { ...ns, 'db.operation.name': 'multiGet', 'cache.hit': false, 'db.operation.batch.size': 2 }),
      // One key is no batch.
      ok('multiGet', { ...ns, 'db.operation.name': 'multiGet', 'cache.hit': true }),
      ok('delete', { ...ns, 'db.operation.name': 'delete' }),
      // The namespace '' is no namespace.
      ok('get', { ...MEMORY, 'db.operation.name': 'get', 'cache.hit': false }),
    ],
  )
  for (const span of spans) {
    assert.is(span.instrumentationScope.name, 'oniocache')
    assert.is(span.instrumentationScope.version, VERSION)
    assert.is(span.spanContext().traceId, request!.spanContext().traceId)
    assert.not.ok('oniocache.keys' in span.attributes, 'keys are recorded only with recordKeys: true')
  }

  const op = (name: string, namespace = 'shop') =>
    namespace === ''
      ? { ...MEMORY, 'db.operation.name': name }
      : { ...ns, 'db.namespace': namespace, 'db.operation.name': name }
  assert.equal(
    await t.durations(),
    sorted([
      { attributes: op('set'), count: 1 },
      { attributes: op('get'), count: 1 },
      { attributes: op('get', 'other'), count: 1 },
      { attributes: op('get', ''), count: 1 },
      { attributes: op('multiSet'), count: 1 },
      { attributes: op('multiGet'), count: 3 },
      { attributes: op('delete'), count: 1 },
    ]),
  )
  const lookup = (name: string, hit: boolean) => ({ ...MEMORY, 'db.operation.name': name, 'cache.hit': hit })
  assert.equal(
    await t.lookups(),
    sorted([
      { attributes: lookup('get', true), count: 1 },
      { attributes: lookup('get', false), count: 2 },
      { attributes: lookup('multiGet', true), count: 5 },
      { attributes: lookup('multiGet', false), count: 1 },
    ]),
  )
  await cache.close()
  await t.close()
})

test('the layers after the plugin run in the command span’s context, synchronous or not', async () => {
  const t = telemetry()
  // A middleware after the plugin that starts a span before and after an await.
  const inner = async (ctx: Context, next: Next) => {
    t.tracer.startSpan(`INNER ${ctx.command} before`).end()
    await sleep(1)
    t.tracer.startSpan(`INNER ${ctx.command} after`).end()
    await next()
  }
  const cache = new MemoryCache({ plugins: [t.plugin, inner] })
  await t.tracer.startActiveSpan('REQUEST', async (request) => {
    await cache.set('k', 'v')
    await cache.get('k')
    request.end()
  })
  const all = t.all()
  const byName = (name: string) => all.find((span) => span.name === name)!
  const request = byName('REQUEST')
  for (const command of ['set', 'get']) {
    const span = byName(command)
    assert.is(span.parentSpanContext?.spanId, request.spanContext().spanId)
    for (const when of ['before', 'after']) {
      assert.is(byName(`INNER ${command} ${when}`).parentSpanContext?.spanId, span.spanContext().spanId, when)
    }
  }
  assert.is(byName('get').attributes['cache.hit'], true)
  // Outside any span, a command's span is a root.
  await cache.get('k')
  assert.is(t.spans().at(-1)!.parentSpanContext, undefined)
  await cache.close()
  await t.close()
})

test('recordKeys: true records the keys as the backend sees them, on every command that has keys', async () => {
  const t = telemetry({ recordKeys: true })
  const cache = new MemoryCache({ namespace: 'app', plugins: [t.plugin] })
  await cache.set('a', 1)
  await cache.get('a', { namespace: 'x' })
  await cache.multiGet(new Set(['a', 'b']))
  await cache.multiSet(new Map([['c', 3]]))
  await cache.clear()
  await rejection(cache.get(42 as unknown as string))
  await cache.close()
  assert.equal(
    t.spans().map((span) => [span.name, span.attributes['oniocache.keys']]),
    [
      ['set', ['app:a']],
      ['get', ['x:a']],
      ['multiGet', ['app:a', 'app:b']],
      ['multiSet', ['app:c']],
      ['clear', ['app:*']],
      ['get', []],
      ['close', undefined],
    ],
  )
  await t.close()
})

test('a failed command: error.type, status ERROR with its message, an exception event, the histogram', async () => {
  const t = telemetry()
  const cache = new MemoryCache({ plugins: [t.plugin] })
  await cache.add('k', 1)
  const exists = await rejection(cache.add('k', 2))
  assert.instance(exists, KeyExistsError)
  const bad = await rejection(cache.get(42 as unknown as string))
  assert.instance(bad, TypeError)
  // A middleware after the plugin that throws something that is no Error.
  cache.use(() => {
    throw 'plain string'
  })
  assert.is(await rejection(cache.get('k')), 'plain string')
  await cache.close().catch(() => {})
  const failed = t.spans().filter((span) => span.status.code === SpanStatusCode.ERROR)
  assert.equal(
    failed.map((span) => [span.name, span.attributes['error.type'], span.status.message]),
    [
      ['add', 'KeyExistsError', (exists as Error).message],
      ['get', 'TypeError', (bad as Error).message],
      ['get', '_OTHER', 'plain string'],
      ['close', '_OTHER', 'plain string'],
    ],
  )
  const events = failed[0]!.events
  assert.is(events.length, 1)
  assert.is(events[0]!.name, 'exception')
  assert.is(events[0]!.attributes?.['exception.type'], 'KeyExistsError')
  assert.is(events[0]!.attributes?.['exception.message'], (exists as Error).message)
  assert.not.ok('cache.hit' in failed[1]!.attributes, 'a failed read says nothing of hits')
  const durations = await t.durations()
  const withError = durations.filter((p) => 'error.type' in p.attributes)
  assert.equal(
    withError,
    sorted([
      { attributes: { ...MEMORY, 'db.operation.name': 'add', 'error.type': 'KeyExistsError' }, count: 1 },
      { attributes: { ...MEMORY, 'db.operation.name': 'get', 'error.type': 'TypeError' }, count: 1 },
      { attributes: { ...MEMORY, 'db.operation.name': 'get', 'error.type': '_OTHER' }, count: 1 },
      { attributes: { ...MEMORY, 'db.operation.name': 'close', 'error.type': '_OTHER' }, count: 1 },
    ]),
  )
  assert.equal(await t.lookups(), [], 'failed reads count no lookups')
  await t.close()
})

test('a command that times out ends its span at the timeout, with TimeoutError', async () => {
  const t = telemetry()
  let finished = false
  // A slow middleware after the plugin that ignores the signal: it finishes long after the timeout.
  const slow = async (_ctx: Context, next: Next) => {
    await sleep(300)
    await next()
    finished = true
  }
  const cache = new MemoryCache({ plugins: [t.plugin, slow], timeout: 0.05 })
  await cache.set('k', 1, { timeout: 1 })
  finished = false
  const error = await rejection(cache.get('k'))
  assert.instance(error, TimeoutError)
  const [set, get] = t.spans()
  assert.is(set!.status.code, SpanStatusCode.UNSET)
  assert.is(get!.name, 'get')
  assert.is(get!.status.code, SpanStatusCode.ERROR)
  assert.is(get!.status.message, (error as Error).message)
  assert.is(get!.attributes['error.type'], 'TimeoutError')
  const ms = get!.duration[0] * 1000 + get!.duration[1] / 1e6
  assert.ok(ms >= 45 && ms < 250, `the span lasted ${ms} ms: it ends at the 50 ms timeout, not at 300 ms`)
  assert.not.ok(finished, 'the slow layer is still running')
  await sleep(350)
  assert.ok(finished)
  assert.is(t.spans().length, 2, 'the late end of the inner layers ends nothing twice')
  assert.is(get!.attributes['cache.hit'], undefined)
  const errors = (await t.durations()).filter((p) => p.attributes['error.type'] === 'TimeoutError')
  assert.equal(errors.length, 1)
  assert.is(errors[0]!.count, 1)
  cache.timeout = null
  await cache.close()
  await t.close()
})

test('redis: attributes with the server, hits and misses, metrics; BackendError on a stopped server', async () => {
  const t = telemetry()
  const cache = new RedisCache({ port: redis.port, namespace: 'otel', plugins: [t.plugin] })
  const server = { 'server.address': '127.0.0.1', 'server.port': redis.port }
  const base = { 'db.system.name': 'redis', 'db.namespace': 'otel', ...server }
  let request: Span | undefined
  await t.tracer.startActiveSpan('REQUEST', async (span) => {
    request = span
    await cache.set('a', 1)
    await cache.get('a')
    await cache.get('missing')
    await cache.multiGet(['a', 'missing', 'a'])
    span.end()
  })
  assert.equal(
    t.spans().map((span) => shape(span, request)),
    [
      ok('set', { ...base, 'db.operation.name': 'set' }),
      ok('get', { ...base, 'db.operation.name': 'get', 'cache.hit': true }),
      ok('get', { ...base, 'db.operation.name': 'get', 'cache.hit': false }),
      ok('multiGet', { ...base, 'db.operation.name': 'multiGet', 'cache.hit': false, 'db.operation.batch.size': 3 }),
    ],
  )
  assert.equal(
    await t.durations(),
    sorted([
      { attributes: { ...base, 'db.operation.name': 'set' }, count: 1 },
      { attributes: { ...base, 'db.operation.name': 'get' }, count: 2 },
      { attributes: { ...base, 'db.operation.name': 'multiGet' }, count: 1 },
    ]),
  )
  const lookup = (name: string, hit: boolean) => ({
    'db.system.name': 'redis',
    'db.operation.name': name,
    'cache.hit': hit,
  })
  assert.equal(
    await t.lookups(),
    sorted([
      { attributes: lookup('get', true), count: 1 },
      { attributes: lookup('get', false), count: 1 },
      { attributes: lookup('multiGet', true), count: 2 },
      { attributes: lookup('multiGet', false), count: 1 },
    ]),
  )

  // A span a middleware after the plugin starts after an I/O await nests under the command span.
  cache.use(async (_ctx, next) => {
    await next()
    t.tracer.startSpan('INNER after I/O').end()
  })
  await cache.get('a')
  const get = t.spans().at(-1)!
  assert.is(t.all().at(-2)!.name, 'INNER after I/O')
  assert.is(t.all().at(-2)!.parentSpanContext?.spanId, get.spanContext().spanId)

  await redis.kill()
  const error = await rejection(cache.get('a'))
  assert.instance(error, BackendError)
  const failed = t.spans().at(-1)!
  assert.equal(shape(failed, undefined), {
    name: 'get',
    kind: SpanKind.CLIENT,
    attributes: { ...base, 'db.operation.name': 'get', 'error.type': 'BackendError' },
    parented: true,
    status: SpanStatusCode.ERROR,
  })
  assert.is(failed.status.message, (error as Error).message)
  assert.is(failed.events[0]?.attributes?.['exception.type'], 'BackendError')
  const errors = (await t.durations()).filter((p) => 'error.type' in p.attributes)
  assert.equal(errors, [
    { attributes: { ...base, 'db.operation.name': 'get', 'error.type': 'BackendError' }, count: 1 },
  ])
  await cache.close()
  await redis.restart()
  await t.close()
})

test('memcached: attributes with the server, hits, misses, metrics; BackendError on a stopped server', async () => {
  const t = telemetry({ recordKeys: true })
  const cache = new MemcachedCache({ servers: [memcached.server], namespace: 'otel', plugins: [t.plugin] })
  const server = { 'server.address': '127.0.0.1', 'server.port': memcached.port }
  const base = { 'db.system.name': 'memcached', 'db.namespace': 'otel', ...server }
  let request: Span | undefined
  await t.tracer.startActiveSpan('REQUEST', async (span) => {
    request = span
    await cache.set('a', 1)
    await cache.get('a')
    await cache.multiGet(['a', 'a'])
    await cache.get('missing')
    span.end()
  })
  assert.equal(
    t.spans().map((span) => shape(span, request)),
    [
      ok('set', { ...base, 'db.operation.name': 'set', 'oniocache.keys': ['otel:a'] }),
      ok('get', { ...base, 'db.operation.name': 'get', 'cache.hit': true, 'oniocache.keys': ['otel:a'] }),
      ok('multiGet', {
        ...base,
        'db.operation.name': 'multiGet',
        'cache.hit': true,
        'db.operation.batch.size': 2,
        'oniocache.keys': ['otel:a', 'otel:a'],
      }),
      ok('get', { ...base, 'db.operation.name': 'get', 'cache.hit': false, 'oniocache.keys': ['otel:missing'] }),
    ],
  )
  const lookup = (name: string, hit: boolean) => ({
    'db.system.name': 'memcached',
    'db.operation.name': name,
    'cache.hit': hit,
  })
  assert.equal(
    await t.lookups(),
    sorted([
      { attributes: lookup('get', true), count: 1 },
      { attributes: lookup('get', false), count: 1 },
      { attributes: lookup('multiGet', true), count: 2 },
    ]),
  )
  await memcached.kill()
  const error = await rejection(cache.get('a'))
  assert.instance(error, BackendError)
  const failed = t.spans().at(-1)!
  assert.is(failed.attributes['error.type'], 'BackendError')
  assert.is(failed.attributes['server.port'], memcached.port)
  assert.is(failed.status.code, SpanStatusCode.ERROR)
  assert.is(failed.status.message, (error as Error).message)
  const errors = (await t.durations()).filter((p) => 'error.type' in p.attributes)
  assert.equal(errors, [
    { attributes: { ...base, 'db.operation.name': 'get', 'error.type': 'BackendError' }, count: 1 },
  ])
  await cache.close()
  await memcached.restart()
  await t.close()
})

test('several servers name no server; a custom backend names its own system and server', async () => {
  const t = telemetry()
  const pool = new MemcachedCache({ servers: [memcached.server, '127.0.0.1:1'], plugins: [t.plugin] })
  await pool.get('a').catch(() => {}) // a miss or a BackendError, whichever server the key maps to
  await pool.close()
  const elsewhere = Object.defineProperty(new MemoryBackend(), 'name', { value: 'mystore [::1]:7000' })
  const custom = new Cache({ backend: elsewhere, plugins: [t.plugin] })
  await custom.get('a')
  await custom.close()
  const [multi, , mine] = t.spans()
  assert.is(multi!.attributes['db.system.name'], 'memcached')
  assert.not.ok('server.address' in multi!.attributes)
  assert.not.ok('server.port' in multi!.attributes)
  assert.equal(mine!.attributes, {
    'db.system.name': 'mystore',
    'db.operation.name': 'get',
    'server.address': '::1',
    'server.port': 7000,
    'cache.hit': false,
  })
  await t.close()
})

test('a sampled-out span records metrics and stays the parent of what starts below it', async () => {
  const t = telemetry({}, new DropNamed('get'))
  const cache = new MemoryCache({
    plugins: [
      t.plugin,
      async (_ctx: Context, next: Next) => {
        t.tracer.startSpan('INNER').end()
        await next()
      },
    ],
  })
  await cache.set('k', 1)
  await t.tracer.startActiveSpan('REQUEST', async (request) => {
    await cache.get('k')
    request.end()
  })
  const names = t.all().map((span) => span.name)
  assert.equal(names, ['INNER', 'set', 'INNER', 'REQUEST'], 'the get span is not exported')
  const request = t.all()[3]!
  const inner = t.all()[2]!
  assert.is(inner.spanContext().traceId, request.spanContext().traceId)
  assert.is.not(inner.parentSpanContext?.spanId, request.spanContext().spanId, 'its parent is the unexported get span')
  assert.equal(
    (await t.lookups()).map((p) => [p.attributes['db.operation.name'], p.attributes['cache.hit'], p.count]),
    [['get', true, 1]],
  )
  await cache.close()
  await t.close()
})

test('without providers it uses the global ones; with the API alone the cache works as without it', async () => {
  // The API with no SDK registered: no-op tracer and meter; the cache works as without the plugin.
  const bare = new MemoryCache({ plugins: [new OtelPlugin()] })
  await bare.set('k', 1)
  assert.is(await bare.get('k'), 1)
  assert.equal(await bare.multiGet(['k', 'x']), [1, undefined])
  await bare.close()

  const exporter = new InMemorySpanExporter()
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  const reader = new Reader()
  const meterProvider = new MeterProvider({ readers: [reader] })
  assert.ok(trace.setGlobalTracerProvider(tracerProvider))
  assert.ok(metrics.setGlobalMeterProvider(meterProvider))
  try {
    const cache = new MemoryCache({ plugins: [new OtelPlugin()] })
    await cache.get('k')
    await cache.close()
    assert.equal(
      exporter.getFinishedSpans().map((span) => [span.name, span.attributes['cache.hit']]),
      [
        ['get', false],
        ['close', undefined],
      ],
    )
    const { resourceMetrics } = await reader.collect()
    const names = resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics.map((m) => m.descriptor.name))
    assert.equal(names.sort(), ['db.client.operation.duration', 'oniocache.lookups'])
  } finally {
    trace.disable()
    metrics.disable()
    await tracerProvider.shutdown()
    await meterProvider.shutdown()
  }
})

test('a middleware inside the plugin that answers alone: hits counted from its answer', async () => {
  const t = telemetry()
  const answering = (ctx: Context, _next: Next) => {
    ctx.result = ctx.command === 'get' ? (ctx.args.key === 'known' ? 'v' : undefined) : ['v', undefined, 'w']
  }
  const cache = new MemoryCache({ plugins: [t.plugin, answering] })
  await cache.get('known')
  await cache.get('unknown')
  await cache.multiGet(['a', 'b', 'c'])
  await cache.close()
  assert.equal(
    t.spans().map((span) => [span.name, span.attributes['cache.hit']]),
    [
      ['get', true],
      ['get', false],
      ['multiGet', false],
      ['close', undefined],
    ],
  )
  assert.equal(
    (await t.lookups()).map((p) => [p.attributes['db.operation.name'], p.attributes['cache.hit'], p.count]),
    [
      ['get', false, 1],
      ['multiGet', false, 1],
      ['get', true, 1],
      ['multiGet', true, 2],
    ],
  )
  await t.close()
})

test('options are checked: an unknown one, a provider that is none, a recordKeys that is no boolean', () => {
  const error = (options: unknown) => {
    try {
      new OtelPlugin(options as OtelPluginOptions)
    } catch (thrown) {
      assert.instance(thrown, TypeError)
      return (thrown as Error).message
    }
    throw new Error('no TypeError')
  }
  assert.match(error({ tracer: {} }), /OtelPlugin: unknown option "tracer"; known: tracerProvider, meterProvider/)
  assert.match(error({ tracerProvider: {} }), /tracerProvider must be an OpenTelemetry TracerProvider; got/)
  assert.match(error({ meterProvider: 1 }), /meterProvider must be an OpenTelemetry MeterProvider; got/)
  assert.match(error({ recordKeys: 'yes' }), /recordKeys must be a boolean; got/)
  assert.match(error(null), /OtelPlugin: options must be an object/)
})

test.run()

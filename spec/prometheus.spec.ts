// PrometheusPlugin with prom-client's real registry: the text a scrape answers, parsed, on
// memory, Redis and Memcached; errors and timeouts; several plugins on one registry; the
// prefix; and examples/metrics.ts run as a child process.
import { execFile } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { Counter, type OpenMetricsContentType, Registry, register } from 'prom-client'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { BackendError, type Context, MemoryCache, type Next, TimeoutError } from '../lib/index.js'
import { MemcachedCache } from '../lib/memcached.js'
import { PrometheusPlugin, type PrometheusPluginOptions } from '../lib/prometheus.js'
import { RedisCache } from '../lib/redis.js'
import { childEnv } from './support/children.js'
import { rejection } from './support/fixtures/backends.js'
import { type MemcachedServer, type RedisServer, startMemcached, startRedis } from './support/servers.js'

const root = new URL('..', import.meta.url).pathname
const BOUNDS = [
  '0.0001',
  '0.00025',
  '0.0005',
  '0.001',
  '0.0025',
  '0.005',
  '0.01',
  '0.025',
  '0.05',
  '0.1',
  '0.25',
].concat(['0.5', '1', '2.5', '5', '+Inf'])

interface Scrape {
  /** Every sample, `name{label="value",…}` (labels sorted) → value. */
  samples: Map<string, number>
  /** `# TYPE` lines: name → type. */
  types: Map<string, string>
}

/** Parses the text exposition format: every sample line, with its labels in sorted order. */
function parse(text: string): Scrape {
  const samples = new Map<string, number>()
  const types = new Map<string, string>()
  for (const line of text.split('\n')) {
    if (line === '' || line === '# EOF') continue
    const type = /^# TYPE (\S+) (\S+)$/.exec(line)
    if (type !== null) {
      types.set(type[1]!, type[2]!)
      continue
    }
    if (line.startsWith('#')) continue
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    assert.ok(sample !== null, `a sample line: ${line}`)
    const labels = [...(sample[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)].map(
      (m) => `${m[1]}="${m[2]}"`,
    )
    const key = labels.length === 0 ? sample[1]! : `${sample[1]}{${labels.sort().join(',')}}`
    assert.not.ok(samples.has(key), `one sample per series: ${key}`)
    samples.set(key, Number(sample[3]))
  }
  return { samples, types }
}

async function scrape(registry: Registry): Promise<Scrape> {
  return parse(await registry.metrics())
}

/** The samples of one metric whose name starts with `name`, as `series → value`, sorted. */
function series(s: Scrape, name: string): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [key, value] of [...s.samples].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (key === name || key.startsWith(`${name}{`)) out[key] = value
  }
  return out
}

/** The histogram of one command: its count, and its cumulative buckets checked to be consistent. */
function histogram(s: Scrape, command: string, prefix = 'oniocache_'): { count: number; sum: number } {
  const name = `${prefix}command_duration_seconds`
  const count = s.samples.get(`${name}_count{command="${command}"}`)
  const sum = s.samples.get(`${name}_sum{command="${command}"}`)
  assert.ok(count !== undefined && sum !== undefined, `a histogram for ${command}`)
  let previous = 0
  for (const le of BOUNDS) {
    const bucket = s.samples.get(`${name}_bucket{command="${command}",le="${le}"}`)
    assert.ok(bucket !== undefined && bucket >= previous, `bucket le=${le} of ${command} is cumulative`)
    previous = bucket
  }
  assert.is(previous, count, 'the +Inf bucket is the count')
  return { count, sum }
}

/** What a workload of gets, multiGets and sets on a cache leaves in the counters, whatever the backend. */
async function workload(cache: MemoryCache | RedisCache | MemcachedCache): Promise<void> {
  await cache.set('a', 1)
  await cache.set('b', 2)
  await cache.get('a') // hit
  await cache.get('a') // hit
  await cache.get('nope') // miss
  await cache.multiGet(['a', 'b', 'c', 'd']) // 2 hits, 2 misses
  await cache.delete('b')
}

function expectWorkload(s: Scrape): void {
  assert.equal(series(s, 'oniocache_commands_total'), {
    'oniocache_commands_total{command="delete",outcome="error"}': 0,
    'oniocache_commands_total{command="delete",outcome="ok"}': 1,
    'oniocache_commands_total{command="get",outcome="error"}': 0,
    'oniocache_commands_total{command="get",outcome="ok"}': 3,
    'oniocache_commands_total{command="multiGet",outcome="error"}': 0,
    'oniocache_commands_total{command="multiGet",outcome="ok"}': 1,
    'oniocache_commands_total{command="set",outcome="error"}': 0,
    'oniocache_commands_total{command="set",outcome="ok"}': 2,
  })
  assert.equal(series(s, 'oniocache_lookups_total'), {
    'oniocache_lookups_total{result="hit"}': 4,
    'oniocache_lookups_total{result="miss"}': 3,
  })
  assert.equal(
    Object.values(series(s, 'oniocache_errors_total')).reduce((a, b) => a + b, 0),
    0,
    'no errors',
  )
  assert.is(histogram(s, 'get').count, 3)
  assert.is(histogram(s, 'set').count, 2)
  assert.is(histogram(s, 'multiGet').count, 1)
  assert.is(histogram(s, 'delete').count, 1)
  assert.equal(
    [...s.types].filter(([name]) => name.startsWith('oniocache_')),
    [
      ['oniocache_commands_total', 'counter'],
      ['oniocache_command_duration_seconds', 'histogram'],
      ['oniocache_lookups_total', 'counter'],
      ['oniocache_errors_total', 'counter'],
    ],
  )
}

let redis: RedisServer
let memcached: MemcachedServer

test.before(async () => {
  ;[redis, memcached] = await Promise.all([startRedis(), startMemcached()])
})

test.after(async () => {
  await Promise.all([redis.stop(), memcached.stop()])
})

test('memory: commands by outcome, lookups by result, a duration histogram per command', async () => {
  const registry = new Registry()
  const cache = new MemoryCache({ namespace: 'prom', plugins: [new PrometheusPlugin({ registry })] })
  const before = await scrape(registry)
  assert.equal(series(before, 'oniocache_lookups_total'), {
    'oniocache_lookups_total{result="hit"}': 0,
    'oniocache_lookups_total{result="miss"}': 0,
  })
  assert.equal(series(before, 'oniocache_commands_total'), {}, 'no command yet')
  await workload(cache)
  const s = await scrape(registry)
  expectWorkload(s)
  const { sum } = histogram(s, 'get')
  assert.ok(sum > 0 && sum < 0.1, `three memory gets took ${sum} s`)
  assert.is(s.samples.get('oniocache_command_duration_seconds_bucket{command="get",le="5"}'), 3)
  await cache.close()
})

test('redis: the same counts, and errors once the server is stopped', async () => {
  const registry = new Registry()
  const cache = new RedisCache({ port: redis.port, namespace: 'prom', plugins: [new PrometheusPlugin({ registry })] })
  await workload(cache)
  expectWorkload(await scrape(registry))
  await redis.kill()
  assert.instance(await rejection(cache.get('a')), BackendError)
  assert.instance(await rejection(cache.set('a', 1)), BackendError)
  const s = await scrape(registry)
  assert.is(s.samples.get('oniocache_commands_total{command="get",outcome="error"}'), 1)
  assert.is(s.samples.get('oniocache_commands_total{command="set",outcome="error"}'), 1)
  assert.is(s.samples.get('oniocache_errors_total{command="get"}'), 1)
  assert.is(s.samples.get('oniocache_errors_total{command="set"}'), 1)
  assert.is(histogram(s, 'get').count, 4, 'failed commands are timed too')
  assert.equal(series(s, 'oniocache_lookups_total'), {
    'oniocache_lookups_total{result="hit"}': 4,
    'oniocache_lookups_total{result="miss"}': 3,
  })
  await cache.close()
  await redis.restart()
})

test('memcached: the same counts, and errors once the server is stopped', async () => {
  const registry = new Registry()
  const cache = new MemcachedCache({
    servers: [memcached.server],
    namespace: 'prom',
    plugins: [new PrometheusPlugin({ registry })],
  })
  await workload(cache)
  expectWorkload(await scrape(registry))
  await memcached.kill()
  assert.instance(await rejection(cache.multiGet(['a', 'b'])), BackendError)
  const s = await scrape(registry)
  assert.is(s.samples.get('oniocache_commands_total{command="multiGet",outcome="error"}'), 1)
  assert.is(s.samples.get('oniocache_errors_total{command="multiGet"}'), 1)
  assert.is(s.samples.get('oniocache_lookups_total{result="miss"}'), 3, 'a failed read counts no lookup')
  await cache.close()
  await memcached.restart()
})

test('errors thrown at once, rejected later, and timeouts are counted; a timeout at its timeout', async () => {
  const registry = new Registry()
  const slow = async (ctx: Context, next: Next) => {
    if (ctx.command === 'exists') await sleep(300)
    await next()
  }
  const cache = new MemoryCache({ plugins: [new PrometheusPlugin({ registry }), slow], timeout: 0.05 })
  await cache.add('k', 1)
  await rejection(cache.add('k', 2)) // KeyExistsError
  await rejection(cache.get(1 as unknown as string)) // TypeError
  assert.instance(await rejection(cache.exists('k')), TimeoutError)
  const s = await scrape(registry)
  assert.equal(series(s, 'oniocache_errors_total'), {
    'oniocache_errors_total{command="add"}': 1,
    'oniocache_errors_total{command="exists"}': 1,
    'oniocache_errors_total{command="get"}': 1,
  })
  assert.is(s.samples.get('oniocache_commands_total{command="add",outcome="ok"}'), 1)
  assert.is(s.samples.get('oniocache_commands_total{command="add",outcome="error"}'), 1)
  assert.is(s.samples.get('oniocache_commands_total{command="exists",outcome="ok"}'), 0)
  const timedOut = histogram(s, 'exists')
  assert.is(timedOut.count, 1)
  assert.ok(timedOut.sum >= 0.045 && timedOut.sum < 0.25, `timed at its timeout: ${timedOut.sum} s`)
  assert.is(s.samples.get('oniocache_command_duration_seconds_bucket{command="exists",le="0.025"}'), 0)
  assert.is(s.samples.get('oniocache_command_duration_seconds_bucket{command="exists",le="0.25"}'), 1)
  await sleep(300)
  const later = await scrape(registry)
  assert.is(later.samples.get('oniocache_commands_total{command="exists",outcome="ok"}'), 0, 'counted once')
  assert.is(histogram(later, 'exists').count, 1)
  cache.timeout = null
  await cache.close()
})

test('plugins of several caches on one registry share the metrics and add up', async () => {
  const registry = new Registry()
  const first = new MemoryCache({ plugins: [new PrometheusPlugin({ registry })] })
  const second = new MemoryCache({ namespace: 'other', plugins: [new PrometheusPlugin({ registry })] })
  await workload(first)
  await workload(second)
  const s = await scrape(registry)
  assert.is(s.samples.get('oniocache_commands_total{command="get",outcome="ok"}'), 6)
  assert.equal(series(s, 'oniocache_lookups_total'), {
    'oniocache_lookups_total{result="hit"}': 8,
    'oniocache_lookups_total{result="miss"}': 6,
  })
  assert.is(histogram(s, 'set').count, 4)
  assert.is(registry.getMetricsAsArray().length, 4, 'registered once')
  // resetMetrics() sets them back to 0, and counting goes on.
  registry.resetMetrics()
  await first.get('a')
  const reset = await scrape(registry)
  assert.is(reset.samples.get('oniocache_commands_total{command="get",outcome="ok"}'), 1)
  assert.is(reset.samples.get('oniocache_lookups_total{result="hit"}'), 1)
  assert.is(histogram(reset, 'get').count, 1)
  assert.is(histogram(reset, 'set').count, 0)
  // A metric of one of the names that no PrometheusPlugin registered is refused.
  const taken = new Registry()
  new Counter({ name: 'oniocache_errors_total', help: 'someone else’s', registers: [taken] })
  const error = (() => {
    try {
      new PrometheusPlugin({ registry: taken })
    } catch (thrown) {
      return thrown as Error
    }
  })()
  assert.instance(error, TypeError)
  assert.match(error!.message, /already holds a metric named oniocache_errors_total.*another prefix/)
  await first.close()
  await second.close()
})

test('prefix names the metrics; the default registry is prom-client’s global one', async () => {
  const registry = new Registry()
  const cache = new MemoryCache({ plugins: [new PrometheusPlugin({ registry, prefix: 'app_cache_' })] })
  await cache.get('x')
  const s = await scrape(registry)
  assert.is(s.samples.get('app_cache_commands_total{command="get",outcome="ok"}'), 1)
  assert.is(s.samples.get('app_cache_lookups_total{result="miss"}'), 1)
  assert.is(histogram(s, 'get', 'app_cache_').count, 1)
  assert.is(s.samples.get('app_cache_errors_total{command="get"}'), 0)
  assert.not.ok([...s.samples.keys()].some((key) => key.startsWith('oniocache_')))
  await cache.close()

  const none = new Registry()
  const plain = new MemoryCache({ plugins: [new PrometheusPlugin({ registry: none, prefix: '' })] })
  await plain.get('x')
  assert.is((await scrape(none)).samples.get('commands_total{command="get",outcome="ok"}'), 1)
  await plain.close()

  const names = ['commands_total', 'command_duration_seconds', 'lookups_total', 'errors_total'].map(
    (name) => `spec_global_${name}`,
  )
  try {
    const global = new MemoryCache({ plugins: [new PrometheusPlugin({ prefix: 'spec_global_' })] })
    await global.get('x')
    await global.close()
    const text = await register.metrics()
    assert.match(text, /^spec_global_commands_total\{command="get",outcome="ok"\} 1$/m)
    assert.match(text, /^spec_global_lookups_total\{result="miss"\} 1$/m)
  } finally {
    for (const name of names) register.removeSingleMetric(name)
  }
})

test('an OpenMetrics registry names the counters with _total once', async () => {
  const registry = new Registry<OpenMetricsContentType>()
  registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE)
  const cache = new MemoryCache({ plugins: [new PrometheusPlugin({ registry })] })
  await cache.get('x')
  const text = await registry.metrics()
  assert.match(text, /^# TYPE oniocache_commands counter$/m)
  assert.match(text, /^oniocache_commands_total\{command="get",outcome="ok"\} 1$/m)
  assert.match(text, /^oniocache_lookups_total\{result="miss"\} 1$/m)
  assert.not.match(text, /_total_total/)
  assert.match(text, /# EOF\n$/)
  // A second plugin still finds the metrics registered under their names.
  new PrometheusPlugin({ registry })
  await cache.close()
})

test('options are checked: an unknown one, a registry that is none, a prefix that starts no metric name', () => {
  const error = (options: unknown) => {
    try {
      new PrometheusPlugin(options as PrometheusPluginOptions)
    } catch (thrown) {
      assert.instance(thrown, TypeError)
      return (thrown as Error).message
    }
    throw new Error('no TypeError')
  }
  assert.match(error({ registery: new Registry() }), /PrometheusPlugin: unknown option "registery"; known: registry/)
  assert.match(error({ registry: {} }), /registry must be a prom-client Registry; got/)
  assert.match(error({ registry: null }), /registry must be a prom-client Registry; got null/)
  assert.match(error({ prefix: '1x_' }), /prefix must be '' or start a metric name/)
  assert.match(error({ prefix: 'my-cache_' }), /prefix must be '' or start a metric name/)
  assert.match(error({ prefix: 7 }), /prefix must be '' or start a metric name/)
  assert.match(error('registry'), /PrometheusPlugin: options must be an object/)
})

test('examples/metrics.ts serves /metrics, scrapes it once and prints the oniocache series', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'examples/metrics.ts'], {
    cwd: root,
    env: childEnv(),
    timeout: 30_000,
  })
  assert.match(stdout, /^serving http:\/\/127\.0\.0\.1:\d+\/metrics$/m)
  assert.match(stdout, /^oniocache_commands_total\{command="get",outcome="ok"\} 6$/m)
  assert.match(stdout, /^oniocache_commands_total\{command="add",outcome="error"\} 1$/m)
  assert.match(stdout, /^oniocache_command_duration_seconds_count\{command="get"\} 6$/m)
  assert.match(stdout, /^oniocache_lookups_total\{result="hit"\} 6$/m)
  assert.match(stdout, /^oniocache_lookups_total\{result="miss"\} 3$/m)
  assert.match(stdout, /^oniocache_errors_total\{command="add"\} 1$/m)
})

test.run()

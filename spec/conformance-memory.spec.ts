import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { type Backend, Cache, MemoryBackend, MemoryCache } from '../lib/index.js'
import {
  type ConformanceFactory,
  type ConformanceOptions,
  conformance,
  conformanceTests,
} from '../lib/testing/index.js'
import { childEnv } from './support/children.js'
import { AsyncBackend, ManualClock } from './support/fixtures/backends.js'

// ---------------------------------------------------------------------------
// The memory backend passes the suite: on a hand-moved clock with every
// serializer, and on real time (the path real servers take) with the default ones.

const clock = new ManualClock()

await conformance(
  'conformance: MemoryCache, hand-moved clock, every serializer',
  ({ namespace, serializer, ttl }) => new MemoryCache({ clock, namespace, serializer, ttl }),
  {
    serializers: ['null', 'string', 'json', 'msgpack', 'v8'],
    clock,
    capabilities: {
      clearAll: true,
      async raw(cache) {
        await cache.set('k', 'v')
        assert.is(await cache.raw('has', cache.buildKey('k')), true, "raw('has', built key) runs Map#has on the store")
        assert.is(await cache.raw('size'), 1, "raw('size') reads the Map's size")
        assert.is(
          await cache.raw('get', cache.buildKey('k')),
          cache.serializer.dumps('v'),
          "raw('get', built key) answers the stored value",
        )
      },
    },
  },
)

// The factory as docs/writing-a-backend.md shows it: the suite sets the default ttl itself when a test needs one.
await conformance(
  'conformance: Cache on a MemoryBackend, real time, default serializers',
  ({ namespace, serializer }) => new Cache({ backend: new MemoryBackend(), namespace, serializer }),
  { capabilities: { clearAll: true } },
)

/** Memcached's capabilities on the memory backend: no clear by namespace (only the whole store). */
class NoNamespaceClear extends MemoryBackend {
  override clear(prefix: string | null): true {
    if (prefix !== null)
      throw new Error('[oniocache] [no-namespace-clear] cannot clear by namespace, only the whole store')
    return super.clear(null)
  }
}

await conformance(
  'conformance: a memory backend with Memcached-like capabilities (no clear by namespace, no casToken)',
  ({ namespace, serializer, ttl }) =>
    new Cache({ backend: new NoNamespaceClear({ clock }), namespace, serializer, ttl }),
  { serializers: ['json'], clock, capabilities: { clearNamespace: false, casToken: false } },
)

// ---------------------------------------------------------------------------
// The suite catches broken backends: each one below breaks one thing on top of
// the memory backend; the suite must fail the tests about that thing, and only those.

/** The names of the suite's tests that fail for this factory. */
async function failures(factory: ConformanceFactory, options: ConformanceOptions): Promise<string[]> {
  const failed: string[] = []
  for (const t of conformanceTests(factory, options)) {
    try {
      await t.run()
    } catch {
      failed.push(t.name)
    }
  }
  return failed
}

/**
 * Runs the suite on a broken backend and on a healthy one (by default the memory
 * backend) under the same options: the healthy one passes, the broken one fails
 * the `expected` tests, and only tests whose names match `area`.
 */
async function check(
  make: (clock: ManualClock) => Backend,
  options: Omit<ConformanceOptions, 'clock'>,
  expected: string[],
  area: RegExp,
  makeHealthy: (clock: ManualClock) => Backend = (clock) => new MemoryBackend({ clock }),
): Promise<void> {
  for (const healthy of [true, false]) {
    const clock = new ManualClock()
    const factory: ConformanceFactory = ({ namespace, serializer, ttl }) =>
      new Cache({ backend: healthy ? makeHealthy(clock) : make(clock), namespace, serializer, ttl })
    const failed = await failures(factory, { ...options, clock })
    if (healthy) {
      assert.equal(failed, [], 'the healthy memory backend passes under the same options')
      continue
    }
    for (const name of expected)
      assert.ok(failed.includes(name), `the suite fails ${JSON.stringify(name)}; it failed: ${JSON.stringify(failed)}`)
    for (const name of failed)
      assert.match(name, area, `only tests about the broken behaviour fail; ${JSON.stringify(name)} did too`)
  }
}

test('the suite fails a backend that ignores ttls', async () => {
  class IgnoresTtl extends MemoryBackend {
    override set(key: string, value: unknown, _ttl: number, casToken?: unknown): boolean {
      return super.set(key, value, 0, casToken)
    }
    override add(key: string, value: unknown): boolean {
      return super.add(key, value, 0)
    }
    override multiSet(pairs: ReadonlyArray<readonly [string, unknown]>): true {
      return super.multiSet(pairs, 0)
    }
  }
  await check(
    (clock) => new IgnoresTtl({ clock }),
    { serializers: ['json'] },
    [
      'ttl: a per-call ttl (2, 1.5, "1500ms") expires the key; until then it is there',
      "ttl: the cache's default ttl applies when a call gives none; ttl 0, null or a long ttl given per call " +
        'overrides it',
      'ttl: a fraction of a second (0.25, "250ms") is a ttl, not "never expires"',
      'ttl: set with a casToken writes the ttl it is given',
    ],
    /^ttl: /,
  )
})

test('the suite fails a backend whose ttl counts whole seconds, truncated', async () => {
  class Truncates extends MemoryBackend {
    override set(key: string, value: unknown, ttl: number, casToken?: unknown): boolean {
      return super.set(key, value, Math.floor(ttl), casToken)
    }
    override add(key: string, value: unknown, ttl: number): boolean {
      return super.add(key, value, Math.floor(ttl))
    }
    override multiSet(pairs: ReadonlyArray<readonly [string, unknown]>, ttl: number): true {
      return super.multiSet(pairs, Math.floor(ttl))
    }
  }
  // 1.5 becomes 1 (gone before 1.4 s) and 0.25 becomes 0, "never expires".
  await check(
    (clock) => new Truncates({ clock }),
    { serializers: ['json'] },
    [
      'ttl: a per-call ttl (2, 1.5, "1500ms") expires the key; until then it is there',
      'ttl: a fraction of a second (0.25, "250ms") is a ttl, not "never expires"',
    ],
    /^ttl: /,
  )
})

test('the suite fails a backend whose clear matches "user" against "users:…"', async () => {
  class LooseClear extends MemoryBackend {
    override clear(prefix: string | null): true {
      // Drops the separator the key builder put at the end of the prefix.
      return super.clear(prefix === null ? null : prefix.slice(0, -1))
    }
  }
  await check(
    (clock) => new LooseClear({ clock }),
    { serializers: ['json'] },
    [
      'clear({ namespace }): removes that namespace only: never "…-users" keys when clearing "…-user", never the ' +
        "cache's own",
      "clear(): with no namespace removes the cache's own namespace only",
    ],
    /^clear/,
  )
})

test('the suite fails a backend that stores bytes as UTF-8 text', async () => {
  class TextOnly extends MemoryBackend {
    static text(value: unknown): unknown {
      return value instanceof Uint8Array ? Buffer.from(value).toString('utf8') : value
    }
    static bytes(value: unknown, encoding: 'utf8' | null | undefined): unknown {
      return encoding === null && typeof value === 'string' ? Buffer.from(value, 'utf8') : value
    }
    override get(key: string, encoding?: 'utf8' | null): unknown {
      return TextOnly.bytes(super.get(key), encoding)
    }
    override multiGet(keys: readonly string[], encoding?: 'utf8' | null): unknown[] {
      return super.multiGet(keys).map((v) => TextOnly.bytes(v, encoding))
    }
    override set(key: string, value: unknown, ttl: number, casToken?: unknown): boolean {
      return super.set(key, TextOnly.text(value), ttl, TextOnly.text(casToken))
    }
    override add(key: string, value: unknown, ttl: number): boolean {
      return super.add(key, TextOnly.text(value), ttl)
    }
    override multiSet(pairs: ReadonlyArray<readonly [string, unknown]>, ttl: number): true {
      return super.multiSet(
        pairs.map(([k, v]) => [k, TextOnly.text(v)] as const),
        ttl,
      )
    }
  }
  await check(
    (clock) => new TextOnly({ clock }),
    { serializers: ['json', 'msgpack', 'v8'] },
    [
      '[msgpack] bytes round-trip exactly: 0x00, 0xff and invalid UTF-8 included',
      '[v8] bytes round-trip exactly: 0x00, 0xff and invalid UTF-8 included',
      '[v8] values round-trip through set/get, add, and multiSet/multiGet',
    ],
    /^\[(msgpack|v8)\] /,
  )
})

test('the suite fails a backend whose multiGet drops duplicate keys', async () => {
  class Dedup extends MemoryBackend {
    override multiGet(keys: readonly string[]): unknown[] {
      return super.multiGet([...new Set(keys)])
    }
  }
  await check(
    (clock) => new Dedup({ clock }),
    { serializers: ['json'] },
    ['multiGet: values in key order, undefined for misses, duplicate keys answered each time'],
    /multiGet/,
  )
})

test('the suite fails a backend whose increment is a read, then a write', async () => {
  class RacyIncrement extends AsyncBackend {
    override async increment(key: string, delta: number): Promise<number> {
      const current = await this.get(key)
      const next = (current === undefined ? 0 : Number(current)) + delta
      await new Promise((resolve) => setTimeout(resolve, 1))
      this.store.set(key, String(next), 0)
      return next
    }
  }
  await check(
    (clock) => new RacyIncrement({ clock }),
    { serializers: ['json'], concurrency: 8 },
    ['increment: 8 concurrent increments of one key each answer a different count, 1 to 8'],
    /increment/,
  )
})

test('the suite fails a backend that clears by namespace although it declares it cannot', async () => {
  await check(
    (clock) => new MemoryBackend({ clock }),
    { serializers: ['json'], capabilities: { clearNamespace: false } },
    ['clear: a backend that cannot clear by namespace rejects, and removes nothing'],
    /^clear: /,
    (clock) => new NoNamespaceClear({ clock }),
  )
})

test('conformance() checks its options: unknown names and bad values throw a TypeError at once', () => {
  const factory: ConformanceFactory = ({ namespace, serializer }) => new Cache({ namespace, serializer })
  assert.throws(() => conformanceTests(factory, { serializer: ['json'] } as never), /unknown option "serializer"/)
  assert.throws(() => conformanceTests(factory, { serializers: ['yaml'] } as never), /serializers must be/)
  assert.throws(() => conformanceTests(factory, { serializers: [] }), /serializers must be/)
  assert.throws(
    () => conformanceTests(factory, { capabilities: { clearNamespaces: false } } as never),
    /unknown option "clearNamespaces"/,
  )
  assert.throws(() => conformanceTests(factory, { clock: {} as never }), /advance/)
  assert.throws(() => conformanceTests(factory, { concurrency: 1 }), /concurrency/)
  assert.throws(() => conformanceTests('nope' as never), /factory must be a function/)
})

test('a factory that ignores the namespace, serializer or ttl it is given fails, saying so', async () => {
  const [first] = conformanceTests(() => new Cache({ namespace: 'fixed' }))
  const error = await first!.run().then(
    () => undefined,
    (e: unknown) => e,
  )
  assert.instance(error, Error)
  assert.match((error as Error).message, /asked for namespace .* but its cache has "fixed"/)
  const [second] = conformanceTests(({ namespace }) => new Cache({ namespace }))
  assert.match(String(await second!.run().catch((e: unknown) => e)), /was given a JsonSerializer but its cache uses/)
  const withTtl = conformanceTests(({ namespace, serializer }) => new Cache({ namespace, serializer, ttl: 60 }), {
    clock: new ManualClock(),
  })
  assert.match(
    String(await withTtl[0]!.run().catch((e: unknown) => e)),
    /asked for a default ttl of null but its cache has 60: .*set no default ttl of its own/,
  )
})

// ---------------------------------------------------------------------------
// Runner adapters: the suite needs no runner to load, and node:test runs it too.

const run = promisify(execFile)
const root = new URL('..', import.meta.url).pathname

test('oniocache/testing loads without uvu; its tests run as plain functions (child process)', async () => {
  const { stdout } = await run(
    process.execPath,
    ['--import', 'tsx', 'spec/support/fixtures/testing-without-runner.ts'],
    {
      cwd: root,
      env: childEnv(),
    },
  )
  const report = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
    uvuBlocked: boolean
    passed: number
    total: number
    adapter: string
  }
  assert.is(report.uvuBlocked, true, 'the child cannot import uvu')
  assert.ok(report.total > 50, `${report.total} tests`)
  assert.is(report.passed, report.total)
  assert.match(report.adapter, /uvu is not installed: install it, or declare the tests with registerConformance/)
})

test('conformanceNodeTest runs the suite under node --test (child process)', async () => {
  const { stdout } = await run(
    process.execPath,
    ['--import', 'tsx', '--test', '--test-reporter=tap', 'spec/support/fixtures/node-test-conformance.ts'],
    {
      cwd: root,
      env: childEnv(),
    },
  )
  const total = conformanceTests(() => new MemoryCache(), {
    clock: new ManualClock(),
    capabilities: { clearAll: true },
  }).length
  assert.match(stdout, new RegExp(`^# pass ${total}$`, 'm'), stdout.slice(-400))
  assert.match(stdout, /^# fail 0$/m)
})

test.run()

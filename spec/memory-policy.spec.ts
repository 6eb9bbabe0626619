// The memory backend's eviction policies: `tinylfu` against a plain model of it (and `lru` against its own model in
// memory-bytes.spec.ts and properties.spec.ts), its frequency sketch, and what the policy buys on skewed traffic.
import fc from 'fast-check'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { zipfTrace } from '../bench/support/traces.js'
import { FrequencySketch, hashKey } from '../lib/backends/memory/sketch.js'
import { estimateSize, MemoryBackend, MemoryCache, parseCacheUrl } from '../lib/index.js'
import { check } from './support/fc-config.js'
import { TinyLfuModel } from './support/tinylfu-model.js'

const keysOf = (backend: MemoryBackend): string[] => [...(backend.raw('keys', []) as Iterable<string>)]

/** The hits of a cache of `backend` read as a cache is: a get, and on a miss a set. */
function replay(backend: MemoryBackend, keys: Iterable<string>): number {
  let hits = 0
  for (const key of keys) {
    if (backend.get(key) !== undefined) hits++
    else backend.set(key, 1, 0)
  }
  return hits
}

test('options: policy is lru or tinylfu, tinylfu needs a bound, a URL can choose it', () => {
  assert.throws(() => new MemoryBackend({ maxSize: 10, policy: 'lfu' as never }), /policy must be 'lru' or 'tinylfu'/)
  assert.throws(
    () => new MemoryBackend({ policy: 'tinylfu' }),
    (error: unknown) => {
      return error instanceof TypeError && /give maxSize or maxBytes/.test(error.message)
    },
  )
  assert.not.throws(() => new MemoryBackend({ policy: 'lru' }))
  assert.equal(parseCacheUrl('memory://?maxSize=100&policy=tinylfu'), {
    cache: 'memory',
    maxSize: 100,
    policy: 'tinylfu',
  })
  assert.throws(() => MemoryCache.fromUrl('memory://?maxSize=100&policy=fifo'), /policy must be 'lru' or 'tinylfu'/)
  const cache = new MemoryCache({ maxSize: 3, policy: 'tinylfu' })
  assert.instance(cache.backend, MemoryBackend)
  assert.throws(() => new MemoryCache({ maxSize: 3, policy: 'random' as never }), TypeError)
})

test('frequency sketch: counts uses up to 15, halves them all after twenty times its capacity', () => {
  const sketch = new FrequencySketch(1024)
  const a = hashKey('a')
  const b = hashKey('b')
  assert.is(sketch.frequency(a), 0)
  for (let i = 0; i < 3; i++) sketch.increment(a)
  assert.is(sketch.frequency(a), 3)
  assert.is(sketch.frequency(b), 0)
  const answers: boolean[] = []
  for (let i = 0; i < 30; i++) answers.push(sketch.increment(a))
  assert.is(sketch.frequency(a), 15)
  // It answers whether the counters are all at 15 now: from the 12th of these uses (the 15th in all) on.
  assert.equal(answers, [...Array(11).fill(false), ...Array(19).fill(true)])
  const epoch = sketch.epoch
  // 15 uses counted so far (past 15 a use adds nothing), of the 20,480 between halvings: 20,465 more make it halve.
  for (let i = 0; i < 20_464; i++) sketch.increment(hashKey(`other ${i}`))
  assert.is(sketch.frequency(a), 15)
  assert.is(sketch.increment(hashKey('the last one')), false, 'a use that halves answers false')
  assert.is(sketch.frequency(a), 7)
  assert.is(sketch.epoch, epoch + 1, 'a halving starts a new epoch')
  sketch.clear()
  assert.is(sketch.frequency(a), 0)
  assert.is(sketch.epoch, epoch + 2)
  assert.is.not(hashKey('user:1'), hashKey('user:2'))
  assert.is(hashKey('user:1'), hashKey(`user:${1}`))
})

test('tinylfu keeps the hot keys through scans of one-off keys; lru loses them', () => {
  const hot = Array.from({ length: 50 }, (_, i) => `hot ${i}`)
  for (const policy of ['lru', 'tinylfu'] as const) {
    const backend = new MemoryBackend({ maxSize: 100, policy })
    for (let round = 0; round < 5; round++) replay(backend, hot)
    // Between two uses of a hot key, 200 keys never seen again: more than the whole store.
    let hotHits = 0
    for (let round = 0; round < 40; round++) {
      replay(
        backend,
        Array.from({ length: 200 }, (_, i) => `scan ${round} ${i}`),
      )
      hotHits += replay(backend, hot)
    }
    if (policy === 'lru') assert.is(hotHits, 0)
    else assert.is(hotHits, 40 * 50)
    assert.is(backend.size, 100)
  }
})

test('tinylfu hits more often than lru on Zipf-distributed keys', () => {
  const trace = Array.from(zipfTrace({ requests: 200_000, keys: 10_000, skew: 0.99, seed: 7 }), (id) => `key ${id}`)
  const ratios = (['lru', 'tinylfu'] as const).map((policy) => {
    const backend = new MemoryBackend({ maxSize: 100, policy })
    return replay(backend, trace) / trace.length
  })
  const [lru, tiny] = ratios as [number, number]
  assert.ok(tiny > lru + 0.05, `tinylfu ${tiny} should beat lru ${lru} by 5 points`)
})

type Op =
  | { op: 'set'; key: string; length: number }
  | { op: 'get'; key: string }
  | { op: 'delete'; key: string }
  | { op: 'increment'; key: string }

/** Runs the same steps on a tinylfu backend and the model; after each, the same answers, order and bytes. */
function agree(options: { maxSize?: number; maxBytes?: number }, ops: readonly Op[]): void {
  const backend = new MemoryBackend({ ...options, policy: 'tinylfu' })
  const model = new TinyLfuModel({ ...options, sizeOf: estimateSize })
  for (const step of ops) {
    if (step.op === 'set') {
      const value = 'v'.repeat(step.length)
      assert.is(backend.set(step.key, value, 0), true)
      model.set(step.key, value)
    } else if (step.op === 'get') {
      assert.is(backend.get(step.key), model.get(step.key))
    } else if (step.op === 'delete') {
      assert.is(backend.delete(step.key), model.delete(step.key) ? 1 : 0)
    } else {
      const current = model.values.get(step.key)
      if (current !== undefined && typeof current !== 'number') {
        assert.throws(() => backend.increment(step.key, 1), TypeError)
        continue
      }
      const next = ((current as number | undefined) ?? 0) + 1
      assert.is(backend.increment(step.key, 1), next)
      if (current === undefined) model.set(step.key, next)
      else model.rewrite(step.key, next)
    }
    assert.equal(keysOf(backend), model.order())
    if (options.maxBytes !== undefined) {
      assert.is(backend.bytes, model.bytes)
      assert.ok(backend.bytes <= options.maxBytes, `bytes ${backend.bytes} > ${options.maxBytes}`)
    }
    if (options.maxSize !== undefined) assert.ok(backend.size <= options.maxSize)
  }
  backend.close()
}

test('property: tinylfu decides as a plain model of it does, by count and by bytes', () => {
  // Keys drawn unevenly (a few hot ones), so that the sketch's counts decide admissions both ways.
  const key = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom('a', 'b', 'c') },
    { weight: 3, arbitrary: fc.integer({ min: 0, max: 12 }).map((n) => `k${n}`) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 60 }).map((n) => `k${n}`) },
  )
  const op: fc.Arbitrary<Op> = fc.oneof(
    {
      weight: 4,
      arbitrary: fc.record({ op: fc.constant('set' as const), key, length: fc.integer({ min: 0, max: 30 }) }),
    },
    { weight: 5, arbitrary: fc.record({ op: fc.constant('get' as const), key }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('delete' as const), key }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('increment' as const), key }) },
  )
  check(
    'tinylfu model',
    fc.property(
      fc.integer({ min: 1, max: 16 }),
      fc.option(fc.integer({ min: 20, max: 400 }), { nil: undefined }),
      fc.boolean(),
      fc.array(op, { minLength: 20, maxLength: 1000, size: 'max' }),
      (maxSize, maxBytes, bounded, ops) => {
        agree({ maxSize: bounded || maxBytes === undefined ? maxSize : undefined, maxBytes }, ops)
      },
    ),
    { numRuns: 300 },
  )
})

test('tinylfu: compaction keeps each segment in order, and the store keeps deciding as the model', () => {
  // Enough slots that deleting most of them compacts the columns (past 4,096 slots, three quarters free).
  const ops: Op[] = []
  for (let i = 0; i < 6000; i++) ops.push({ op: 'set', key: `k${i}`, length: 1 })
  for (let i = 0; i < 6000; i += 7) ops.push({ op: 'get', key: `k${i}` })
  for (let i = 0; i < 5200; i++) ops.push({ op: 'delete', key: `k${i}` })
  for (let i = 0; i < 3000; i++) ops.push({ op: i % 3 === 0 ? 'get' : 'set', key: `k${(i * 13) % 9000}`, length: 1 })
  agree({ maxSize: 5000 }, ops)
})

test('tinylfu: expiry, clear, and a newcomer as large as the byte budget', () => {
  let now = 0
  const backend = new MemoryBackend({ maxSize: 4, policy: 'tinylfu', clock: { now: () => now } })
  backend.set('a', 1, 1)
  backend.set('b', 2, 0)
  backend.set('c', 3, 0)
  assert.is(backend.get('b'), 2)
  now = 1500
  assert.is(backend.get('a'), undefined)
  assert.equal(keysOf(backend).sort(), ['b', 'c'])
  for (const key of ['d', 'e', 'f', 'g']) backend.set(key, key, 0)
  assert.is(backend.size, 4)
  assert.ok(keysOf(backend).includes('g'), 'the newest write is in the window')
  backend.clear(null)
  assert.equal(keysOf(backend), [])
  backend.set('x', 1, 0)
  assert.equal(keysOf(backend), ['x'])
  backend.close()

  const bytes = new MemoryBackend({ maxBytes: 100, policy: 'tinylfu' })
  bytes.set('small', 'x', 0)
  // 100 bytes, more than the window's 1 byte: straight to probation, where it must win against 'small' — used as
  // often (once), it does not; written again (used twice), it does.
  bytes.set('big', 'y'.repeat(50), 0)
  assert.equal(keysOf(bytes), ['small'])
  assert.is(bytes.bytes, 2)
  bytes.set('big', 'y'.repeat(50), 0)
  assert.equal(keysOf(bytes), ['big'])
  assert.is(bytes.bytes, 100)
  bytes.close()
})

test.run()

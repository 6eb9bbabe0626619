// The memory backend's byte budget: maxBytes and sizeOf, against a model, and the default size estimate.
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import fc from 'fast-check'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { type ErrorMessage, estimateSize, MemoryBackend, MemoryCache, parseCacheUrl } from '../lib/index.js'
import { check } from './support/fc-config.js'

/** Collects what `oniocache:error` publishes while `run` runs. */
async function reported(run: () => Promise<void> | void): Promise<ErrorMessage[]> {
  const seen: ErrorMessage[] = []
  const listener = (message: unknown): void => {
    seen.push(message as ErrorMessage)
  }
  subscribe('oniocache:error', listener)
  try {
    await run()
  } finally {
    unsubscribe('oniocache:error', listener)
  }
  return seen
}

const keysOf = (backend: MemoryBackend): string[] => [...(backend.raw('keys', []) as Iterable<string>)]

test('maxBytes: the least recently used entries go until the sum fits', () => {
  const backend = new MemoryBackend({ maxBytes: 100 })
  backend.set('a', 'x'.repeat(20), 0) // 40 bytes
  backend.set('b', 'x'.repeat(20), 0) // 80
  assert.is(backend.bytes, 80)
  backend.get('a') // a is now the most recent
  backend.set('c', 'x'.repeat(10), 0) // 100: fits exactly
  assert.equal(keysOf(backend), ['b', 'a', 'c'])
  backend.set('d', 'x', 0) // 102: b goes
  assert.equal(keysOf(backend), ['a', 'c', 'd'])
  assert.is(backend.bytes, 62)
  // A value that grows weighs again: c grows to 70 bytes, a goes.
  backend.set('c', 'x'.repeat(35), 0)
  assert.equal(keysOf(backend), ['d', 'c'])
  assert.is(backend.bytes, 72)
  backend.delete('c')
  assert.is(backend.bytes, 2)
  backend.clear(null)
  assert.is(backend.bytes, 0)
})

test('an entry larger than maxBytes is not stored, its old value goes, and it is reported', async () => {
  const cache = new MemoryCache({ maxBytes: 50 })
  await cache.set('k', 'small')
  await cache.set('other', 'x')
  const seen = await reported(async () => {
    assert.is(await cache.set('k', 'x'.repeat(26)), true) // 52 bytes: the write still answers true
  })
  assert.is(await cache.get('k'), undefined)
  assert.is(await cache.get('other'), 'x') // nothing else was evicted for it
  assert.is(seen.length, 1)
  assert.match(String((seen[0]!.error as Error).message), /counts 52 bytes, more than maxBytes \(50\): not stored/)
  await cache.close()
})

test('sizeOf counts what the caller says; a bad answer is a TypeError and writes nothing', async () => {
  const backend = new MemoryBackend({ maxBytes: 10, sizeOf: (value) => (value as { weight: number }).weight })
  backend.set('a', { weight: 4 }, 0)
  backend.set('b', { weight: 6 }, 0)
  backend.set('c', { weight: 3 }, 0)
  assert.equal(keysOf(backend), ['b', 'c'])
  assert.throws(() => backend.set('d', { weight: -1 }, 0), /sizeOf must answer a non-negative finite number/)
  assert.throws(() => backend.set('d', { weight: Number.NaN }, 0), TypeError)
  assert.throws(() => backend.set('b', { weight: '2' }, 0), TypeError)
  assert.equal(keysOf(backend), ['b', 'c'])
  assert.is(backend.bytes, 9)
  // A counter weighs again as it changes, and keeps its ttl.
  const counters = new MemoryBackend({ maxBytes: 100, sizeOf: (value) => String(value).length })
  counters.set('n', 9, 60)
  assert.is(counters.increment('n', 1), 10)
  assert.is(counters.bytes, 2)
  assert.is(counters.increment('m', 5), 5)
  assert.is(counters.bytes, 3)
  counters.close()
})

test('bad maxBytes and sizeOf options are refused; a URL can set maxBytes', () => {
  assert.throws(() => new MemoryBackend({ maxBytes: 0 }), /maxBytes must be a positive integer/)
  assert.throws(() => new MemoryBackend({ maxBytes: 1.5 }), /maxBytes must be a positive integer/)
  assert.throws(() => new MemoryBackend({ sizeOf: 3 as never }), /sizeOf must be a function/)
  assert.equal(parseCacheUrl('memory://?maxBytes=1000'), { cache: 'memory', maxBytes: 1000 })
})

test('estimateSize: strings, bytes, numbers, nested and cyclic objects', () => {
  assert.is(estimateSize('abc'), 6)
  assert.is(estimateSize(Buffer.alloc(10)), 10)
  assert.is(estimateSize(new Uint32Array(4)), 16)
  assert.is(estimateSize(new ArrayBuffer(7)), 7)
  assert.is(estimateSize(42), 8)
  assert.is(estimateSize(null), 8)
  assert.is(estimateSize(2n ** 100n), 16)
  assert.is(
    estimateSize(() => 1),
    16,
  )
  assert.is(estimateSize(['ab', 1]), 16 + (8 + 4) + (8 + 8))
  assert.is(estimateSize({ ab: 'c' }), 16 + 8 + 4 + 2)
  assert.is(estimateSize(new Map([['k', 1]])), 16 + 8 + 2 + 8)
  assert.is(estimateSize(new Set(['k'])), 16 + 8 + 2)
  const cyclic: Record<string, unknown> = { a: 1 }
  cyclic.self = cyclic
  assert.is(estimateSize(cyclic), 16 + (8 + 2 + 8) + (8 + 8 + 8))
  let deep: unknown = 'x'
  for (let i = 0; i < 20; i++) deep = [deep]
  assert.ok(estimateSize(deep) < 16 * 20)
})

// The model: entries in recency order (least recent first) with their sizes.
type Op =
  | { op: 'set'; key: string; length: number }
  | { op: 'get'; key: string }
  | { op: 'delete'; key: string }
  | { op: 'increment'; key: string }

test('property: under any writes the bytes held never pass maxBytes, and eviction follows recency', () => {
  const key = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g')
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ op: fc.constant('set' as const), key, length: fc.integer({ min: 0, max: 40 }) }),
    fc.record({ op: fc.constant('get' as const), key }),
    fc.record({ op: fc.constant('delete' as const), key }),
    fc.record({ op: fc.constant('increment' as const), key }),
  )
  check(
    'memory maxBytes',
    fc.property(
      fc.integer({ min: 10, max: 120 }),
      fc.option(fc.integer({ min: 1, max: 6 }), { nil: undefined }),
      fc.array(op, { maxLength: 60 }),
      (maxBytes, maxSize, ops) => {
        const backend = new MemoryBackend({ maxBytes, maxSize })
        const model = new Map<string, { value: unknown; size: number }>()
        const total = (): number => [...model.values()].reduce((sum, e) => sum + e.size, 0)
        const write = (k: string, value: unknown): void => {
          const size = estimateSize(value)
          model.delete(k)
          if (size > maxBytes) return
          model.set(k, { value, size })
          while (total() > maxBytes || (maxSize !== undefined && model.size > maxSize)) {
            model.delete(model.keys().next().value!)
          }
        }
        for (const step of ops) {
          if (step.op === 'set') {
            const value = 'v'.repeat(step.length)
            assert.is(backend.set(step.key, value, 0), true)
            write(step.key, value)
          } else if (step.op === 'get') {
            const entry = model.get(step.key)
            assert.is(backend.get(step.key), entry?.value)
            if (entry !== undefined) {
              model.delete(step.key)
              model.set(step.key, entry)
            }
          } else if (step.op === 'delete') {
            assert.is(backend.delete(step.key), model.delete(step.key) ? 1 : 0)
          } else {
            const entry = model.get(step.key)
            if (entry !== undefined && typeof entry.value !== 'number') {
              assert.throws(() => backend.increment(step.key, 1), TypeError)
              continue
            }
            const next = ((entry?.value as number | undefined) ?? 0) + 1
            assert.is(backend.increment(step.key, 1), next)
            write(step.key, next)
          }
          assert.ok(backend.bytes <= maxBytes, `bytes ${backend.bytes} > ${maxBytes}`)
          assert.is(backend.bytes, total())
          assert.equal(keysOf(backend), [...model.keys()])
        }
        backend.close()
      },
    ),
  )
})

test.run()

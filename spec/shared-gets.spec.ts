// Plain gets share reads: concurrent gets of one built key on a backend that does I/O send one read, each caller
// decodes its own value, a write issued in between is never hidden by a read issued before it, failures and
// timeouts reach each caller as they would alone, and a settled read is never joined. Each holds as well for a
// backend that answers a command without a promise of its own (`getInto`, as Redis and Memcached do), which a cache
// without plugins uses.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  BaseCache,
  JsonSerializer,
  MemoryBackend,
  type Middleware,
  NullSerializer,
  TimeoutError,
} from '../lib/index.js'
import { AsyncBackend, rejection, watchUnhandled } from './support/fixtures/backends.js'
import { writesOfK } from './support/writes.js'

type Into = 'later' | undefined

function setup(delayMs = 10, plugins: Middleware[] = [], into: Into = undefined) {
  const backend = new AsyncBackend({ delayMs, into })
  const cache = new BaseCache({ backend, serializer: new JsonSerializer(), plugins })
  const gets = (): number => backend.calls.filter(([method]) => method === 'get').length
  return { backend, cache, gets }
}

/** A backend whose reads fail (or hang) while `failing` (`hanging`) is set, counting them. */
class FlakyBackend extends AsyncBackend {
  failing: Error | undefined
  hanging = false
  override get(key: string): Promise<unknown> {
    const read = super.get(key)
    if (this.hanging) return new Promise(() => {})
    const error = this.failing
    return error === undefined ? read : read.then(() => Promise.reject(error))
  }
}

const passThrough: Middleware = async (_ctx, next) => {
  await next()
}

for (const [label, plugins, into] of [
  ['without plugins', [], undefined],
  ['without plugins, answered into the command', [], 'later'],
  ['through a middleware', [passThrough], undefined],
] as const) {
  test(`${label}: concurrent gets of one key send one read; each caller decodes its own value`, async () => {
    const { cache, backend, gets } = setup(10, [...plugins], into)
    await cache.set('k', { n: 1 })
    backend.calls.length = 0
    const answers = await Promise.all([cache.get('k'), cache.get('k'), cache.get('k')])
    assert.is(gets(), 1)
    assert.is(backend.intoCalls, into === undefined ? 0 : 1, 'the read went the way the backend offers')
    assert.equal(answers, [{ n: 1 }, { n: 1 }, { n: 1 }])
    assert.is.not(answers[0], answers[1], 'each caller gets an object of its own')
    // Other keys and namespaces are reads of their own.
    await Promise.all([cache.get('k'), cache.get('other'), cache.get('k', { namespace: 'ns' })])
    assert.is(gets(), 4)
  })

  test(`${label}: a get issued after the read settled sends a read of its own`, async () => {
    const { cache, backend, gets } = setup(5, [...plugins], into)
    await cache.set('k', 'old')
    backend.calls.length = 0
    assert.is(await cache.get('k'), 'old')
    await backend.store.set('k', '"changed behind the cache"', 0)
    assert.is(await cache.get('k'), 'changed behind the cache')
    assert.is(gets(), 2)
  })

  test(`${label}: a failed read fails every caller that joined it, and is not joined afterwards`, async () => {
    const backend = new FlakyBackend({ delayMs: 5, into })
    const cache = new BaseCache({ backend, serializer: new JsonSerializer(), plugins: [...plugins] })
    const unhandled = watchUnhandled()
    try {
      await cache.set('k', 1)
      backend.calls.length = 0
      const failure = new Error('the store broke')
      backend.failing = failure
      const errors = await Promise.all([rejection(cache.get('k')), rejection(cache.get('k'))])
      assert.is(errors[0], failure)
      assert.is(errors[1], failure)
      assert.is(backend.calls.filter(([method]) => method === 'get').length, 1)
      backend.failing = undefined
      assert.is(await cache.get('k'), 1, 'the next get reads afresh')
      assert.is(backend.calls.filter(([method]) => method === 'get').length, 2)
      unhandled.check()
    } finally {
      unhandled.stop()
    }
  })
}

for (const into of [undefined, 'later'] as const) {
  const suffix = into === undefined ? '' : ' (answered into the command)'
  test(`a get issued after a write never joins a read issued before it${suffix}`, async () => {
    const { cache, backend, gets } = setup(10, [], into)
    for (const write of writesOfK(cache)) {
      await cache.set('k', 'before')
      backend.calls.length = 0
      const reading = cache.get('k')
      const writing = write()
      const after = cache.get('k')
      await Promise.all([reading, writing.catch(() => undefined), after])
      assert.is(gets(), 2, String(write))
    }
    backend.calls.length = 0
    await Promise.all([cache.get('k'), cache.get('k')])
    assert.is(gets(), 1, 'without a write in between they share')
  })

  test(`a caller that times out leaves the shared read to the others${suffix}`, async () => {
    const { cache, gets } = setup(150, [], into)
    await cache.set('k', 'v')
    const impatient = rejection(cache.get('k', { timeout: 0.02 }))
    const patient = cache.get('k', { timeout: 5 })
    assert.instance(await impatient, TimeoutError)
    assert.is(await patient, 'v')
    assert.is(gets(), 1, 'one shared read')
  })

  test(`a read that never answers is shared, each caller bounded by its own timeout${suffix}`, async () => {
    const backend = new FlakyBackend({ into })
    const cache = new BaseCache({ backend, serializer: new JsonSerializer() })
    backend.hanging = true
    // The deadline's timer does not keep a process alive: this test does, while it waits.
    const alive = setInterval(() => {}, 1000)
    try {
      const first = rejection(cache.get('k', { timeout: 0.02 }))
      const second = rejection(cache.get('k', { timeout: 0.04 }))
      assert.instance(await first, TimeoutError)
      assert.instance(await second, TimeoutError)
      assert.is(backend.calls.filter(([method]) => method === 'get').length, 1)
    } finally {
      clearInterval(alive)
    }
  })

  test(`with more keys in flight than reads are kept for, each get still answers its own key${suffix}`, async () => {
    const { cache, backend, gets } = setup(5, [], into)
    const keys = Array.from({ length: 10_000 }, (_, i) => `key:${i}`)
    await cache.multiSet(keys.map((key, i) => [key, i] as const))
    backend.calls.length = 0
    const twice = [...keys, ...keys]
    assert.equal(await Promise.all(twice.map((key) => cache.get(key))), [...keys.keys(), ...keys.keys()])
    assert.ok(gets() >= keys.length && gets() < twice.length, `${gets()} reads for ${twice.length} gets`)
    backend.calls.length = 0
    await Promise.all(keys.map((key) => cache.get(key)))
    assert.is(gets(), keys.length, 'settled reads are never joined')
  })

  test(`text and bytes reads of one key are not shared${suffix}`, async () => {
    const backend = new AsyncBackend({ delayMs: 5, into })
    const text = new BaseCache({ backend, serializer: new JsonSerializer() })
    const bytes = new BaseCache({ backend, serializer: { encoding: null, dumps: (v) => v, loads: (v) => v } })
    await Promise.all([text.get('k'), bytes.get('k')])
    assert.is(backend.calls.filter(([method]) => method === 'get').length, 2)
  })
}

test('a read answered into one command is joined through a middleware, and the other way round', async () => {
  const backend = new AsyncBackend({ delayMs: 10, into: 'later' })
  const plain = new BaseCache({ backend, serializer: new JsonSerializer() })
  const layered = new BaseCache({ backend, serializer: new JsonSerializer(), plugins: [passThrough] })
  await plain.set('k', { n: 1 })
  for (const [first, second] of [
    [plain, layered],
    [layered, plain],
  ] as const) {
    backend.calls.length = 0
    const answers = await Promise.all([first.get('k'), second.get('k'), first.get('k')])
    assert.equal(answers, [{ n: 1 }, { n: 1 }, { n: 1 }])
    assert.is(backend.calls.filter(([method]) => method === 'get').length, 1, 'one read for both caches')
  }
  assert.is(backend.intoCalls, 1, 'the cache without plugins started the first read')
})

test('a read answered at once, inside the backend call, is never joined afterwards', async () => {
  const backend = new AsyncBackend({ into: 'now' })
  const cache = new BaseCache({ backend, serializer: new JsonSerializer() })
  await cache.set('k', 'v')
  backend.calls.length = 0
  assert.equal(await Promise.all([cache.get('k'), cache.get('k')]), ['v', 'v'])
  assert.is(backend.intoCalls, 2)
  await backend.store.set('k', '"changed"', 0)
  assert.is(await cache.get('k'), 'changed')
})

test('answered into the command, a tagged entry still waits for its tags: invalidated, it misses', async () => {
  const backend = new AsyncBackend({ delayMs: 2, into: 'later' })
  const cache = new BaseCache({ backend, serializer: new JsonSerializer() })
  await cache.set('p', { name: 'tea' }, { tags: ['catalog'] })
  assert.equal(await cache.get('p'), { name: 'tea' })
  await cache.invalidateTags(['catalog'])
  assert.is(await cache.get('p'), undefined)
  assert.is(await cache.get('p', { default: 'none' }), 'none')
  assert.ok(backend.intoCalls >= 3, `${backend.intoCalls} reads answered into the command`)
})

test('a synchronous backend (memory) is asked for every get', async () => {
  const backend = new MemoryBackend()
  let reads = 0
  const get = backend.get.bind(backend)
  backend.get = (key: string) => {
    reads++
    return get(key)
  }
  const cache = new BaseCache({ backend, serializer: new NullSerializer() })
  await cache.set('k', 1)
  await Promise.all([cache.get('k'), cache.get('k')])
  assert.is(reads, 2)
})

test.run()

// getOrSet's shared reads: concurrent calls for one key on a backend that does I/O send one read, and a write
// issued in between is never hidden by a read issued before it.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { BaseCache, JsonSerializer } from '../lib/index.js'
import { AsyncBackend } from './support/fixtures/backends.js'
import { writesOfK } from './support/writes.js'

function setup(delayMs = 10) {
  const backend = new AsyncBackend({ delayMs })
  const cache = new BaseCache({ backend, serializer: new JsonSerializer() })
  const gets = () => backend.calls.filter(([method]) => method === 'get').length
  return { backend, cache, gets }
}

const never = async (): Promise<never> => {
  throw new Error('the factory ran')
}

test('concurrent getOrSets of one key send one read; each caller gets its own decoded value', async () => {
  const { cache, gets } = setup()
  await cache.set('k', { n: 1 })
  const answers = await Promise.all([cache.getOrSet('k', never), cache.getOrSet('k', never)])
  assert.is(gets(), 1)
  assert.equal(answers, [{ n: 1 }, { n: 1 }])
  assert.is.not(answers[0], answers[1])
})

test('a getOrSet issued after a write never joins a read issued before it', async () => {
  const { cache, backend } = setup()
  await cache.set('k', 'old')
  for (const write of writesOfK(cache)) {
    await cache.set('k', 'before')
    backend.calls.length = 0
    const reading = cache.getOrSet('k', async () => 'computed')
    const writing = write()
    const after = cache.getOrSet('k', async () => 'computed')
    await Promise.all([reading, writing.catch(() => undefined), after])
    // The later call sent a read of its own.
    assert.ok(backend.calls.filter(([method]) => method === 'get').length >= 2, String(write))
  }
  // Without a write in between they share.
  backend.calls.length = 0
  await Promise.all([cache.getOrSet('k', never), cache.getOrSet('k', never)])
  assert.is(backend.calls.filter(([method]) => method === 'get').length, 1)
})

test.run()

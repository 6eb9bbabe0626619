import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  Cache,
  type Clock,
  KeyExistsError,
  MemoryBackend,
  MemoryCache,
  NullSerializer,
  SimpleMemoryCache,
} from '../lib/index.js'
import { coarse } from '../lib/util/clock.js'
import { childEnv } from './support/children.js'
import { gcFunction } from './support/soak.js'

/** A clock the test moves by hand; `onRead` sees every read (the sweeper reads it once per sweep). */
interface ManualClock extends Clock {
  t: number
  onRead: (() => void) | undefined
}
function manualClock(start = 1_000): ManualClock {
  return {
    t: start,
    onRead: undefined,
    now() {
      this.onRead?.()
      return this.t
    },
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Polls until `done()` holds or `ms` pass; answers whether it held. */
async function until(done: () => boolean, ms = 2_000): Promise<boolean> {
  const deadline = performance.now() + ms
  while (!done()) {
    if (performance.now() > deadline) return false
    await sleep(2)
  }
  return true
}

function keysOf(backend: MemoryBackend): string[] {
  return [...(backend.raw('keys', []) as Iterable<string>)]
}

function has(backend: MemoryBackend, key: string): boolean {
  return backend.raw('has', [key]) as boolean
}

const refTimers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length

// ---------------------------------------------------------------------------
// Basic commands on the backend itself

test('get answers the stored value itself; a missing key is undefined', () => {
  const backend = new MemoryBackend()
  const value = { a: [1, 2] }
  assert.is(backend.get('k'), undefined)
  assert.is(backend.set('k', value, 0), true)
  assert.is(backend.get('k'), value)
  assert.is(backend.get('other'), undefined)
  assert.is(backend.size, 1)
  assert.is(backend.name, 'memory')
  assert.is(backend.synchronous, true)
})

test('set overwrites; null and falsy values are values, not misses', () => {
  const backend = new MemoryBackend()
  backend.set('k', 1, 0)
  backend.set('k', 2, 0)
  assert.is(backend.get('k'), 2)
  for (const falsy of [null, 0, '', false]) {
    backend.set('f', falsy, 0)
    assert.is(backend.get('f'), falsy)
    assert.is(backend.exists('f'), true)
  }
  assert.is(backend.size, 2)
})

test('add stores only when the key is absent', () => {
  const backend = new MemoryBackend()
  assert.is(backend.add('k', 'first', 0), true)
  assert.is(backend.add('k', 'second', 0), false)
  assert.is(backend.get('k'), 'first')
})

test('add over an expired key stores the new value', () => {
  const clock = manualClock()
  const backend = new MemoryBackend({ clock })
  backend.set('k', 'old', 1)
  clock.t += 1_000
  assert.is(backend.add('k', 'new', 0), true)
  assert.is(backend.get('k'), 'new')
  clock.t += 10_000
  assert.is(backend.get('k'), 'new', 'the new value has no ttl')
})

test('multiGet answers in key order with undefined for misses; repeated keys repeat', () => {
  const backend = new MemoryBackend()
  backend.set('a', 1, 0)
  backend.set('c', 3, 0)
  assert.equal(backend.multiGet(['c', 'b', 'a', 'c']), [3, undefined, 1, 3])
  assert.equal(backend.multiGet([]), [])
})

test('multiSet stores every pair with the same ttl', () => {
  const clock = manualClock()
  const backend = new MemoryBackend({ clock })
  assert.is(
    backend.multiSet(
      [
        ['a', 1],
        ['b', 2],
      ],
      5,
    ),
    true,
  )
  assert.equal(backend.multiGet(['a', 'b']), [1, 2])
  clock.t += 4_999
  assert.equal(backend.multiGet(['a', 'b']), [1, 2])
  clock.t += 1
  assert.equal(backend.multiGet(['a', 'b']), [undefined, undefined])
})

test('delete answers 1 then 0; exists follows', () => {
  const backend = new MemoryBackend()
  backend.set('k', 'v', 0)
  assert.is(backend.exists('k'), true)
  assert.is(backend.delete('k'), 1)
  assert.is(backend.exists('k'), false)
  assert.is(backend.get('k'), undefined)
  assert.is(backend.delete('k'), 0)
  assert.is(backend.size, 0)
})

// ---------------------------------------------------------------------------
// TTL, driven by the injected clock

test('a key expires when its ttl (seconds) has passed, not before', () => {
  const clock = manualClock()
  const backend = new MemoryBackend({ clock })
  backend.set('k', 'v', 10)
  clock.t += 9_999
  assert.is(backend.get('k'), 'v')
  assert.is(backend.exists('k'), true)
  clock.t += 1
  assert.is(backend.get('k'), undefined)
  assert.is(backend.exists('k'), false)
  assert.is(backend.delete('k'), 0)
  assert.is(backend.size, 0, 'reading an expired key reclaims it')
})

test('each command sees an expired key as missing', () => {
  const clock = manualClock()
  const backend = new MemoryBackend({ clock })
  for (const key of ['get', 'exists', 'delete', 'expire', 'multiGet', 'set-cas']) backend.set(key, 'v', 1)
  clock.t += 1_000
  assert.is(backend.exists('exists'), false)
  assert.is(backend.delete('delete'), 0)
  assert.is(backend.expire('expire', 100), false)
  assert.equal(backend.multiGet(['multiGet']), [undefined])
  assert.is(backend.set('set-cas', 'w', 0, 'v'), false, 'an expired value is no longer the token')
  assert.is(backend.get('get'), undefined)
  assert.is(backend.size, 0)
})

test('a fractional ttl (0.25 s) expires after 250 ms', () => {
  const clock = manualClock()
  const backend = new MemoryBackend({ clock })
  backend.set('k', 'v', 0.25)
  clock.t += 249
  assert.is(backend.get('k'), 'v')
  clock.t += 1
  assert.is(backend.get('k'), undefined)
})

test('ttl 0 never expires', () => {
  const clock = manualClock()
  const backend = new MemoryBackend({ clock })
  backend.set('k', 'v', 0)
  clock.t += 365 * 86_400_000
  assert.is(backend.get('k'), 'v')
})

test('set without a ttl over a key with one removes the old expiry', () => {
  const clock = manualClock()
  const backend = new MemoryBackend({ clock })
  backend.set('k', 'old', 1)
  backend.set('other', 'x', 1) // keeps the expiry map non-empty
  backend.set('k', 'new', 0)
  clock.t += 5_000
  assert.is(backend.get('k'), 'new')
  assert.is(backend.get('other'), undefined)
})

test('set with a new ttl replaces the old one', () => {
  const clock = manualClock()
  const backend = new MemoryBackend({ clock })
  backend.set('k', 'v', 1)
  clock.t += 900
  backend.set('k', 'v2', 1)
  clock.t += 900
  assert.is(backend.get('k'), 'v2', 'counted from the second set')
  clock.t += 100
  assert.is(backend.get('k'), undefined)
})

test('expire sets a ttl on a key that had none', () => {
  const clock = manualClock()
  const backend = new MemoryBackend({ clock })
  backend.set('k', 'v', 0)
  assert.is(backend.expire('k', 2), true)
  clock.t += 1_999
  assert.is(backend.get('k'), 'v')
  clock.t += 1
  assert.is(backend.get('k'), undefined)
})

test('expire replaces an existing ttl, counted from now', () => {
  const clock = manualClock()
  const backend = new MemoryBackend({ clock })
  backend.set('k', 'v', 1)
  clock.t += 500
  assert.is(backend.expire('k', 10), true)
  clock.t += 9_999
  assert.is(backend.get('k'), 'v')
  clock.t += 1
  assert.is(backend.get('k'), undefined)
})

test('expire with 0 removes the ttl; the value stays', () => {
  const clock = manualClock()
  const backend = new MemoryBackend({ clock })
  backend.set('k', 'v', 1)
  assert.is(backend.expire('k', 0), true)
  clock.t += 60_000
  assert.is(backend.get('k'), 'v')
  assert.is(backend.sweep(), 0, 'nothing left to reclaim')
})

test('expire on a missing key answers false and creates nothing', () => {
  const backend = new MemoryBackend()
  assert.is(backend.expire('nope', 10), false)
  assert.is(backend.exists('nope'), false)
  assert.is(backend.size, 0)
})

// ---------------------------------------------------------------------------
// increment

test('increment on a missing key starts at 0 and stores a number without ttl', () => {
  const clock = manualClock()
  const backend = new MemoryBackend({ clock })
  assert.is(backend.increment('n', 1), 1)
  assert.is(backend.increment('m', 5), 5)
  assert.is(backend.increment('neg', -3), -3)
  assert.is(backend.get('n'), 1)
  assert.is(typeof backend.get('m'), 'number')
  clock.t += 86_400_000
  assert.is(backend.get('m'), 5)
})

test('increment adds delta to a number and answers the new value', () => {
  const backend = new MemoryBackend()
  backend.set('n', 10, 0)
  assert.is(backend.increment('n', 1), 11)
  assert.is(backend.increment('n', -20), -9)
  assert.is(backend.get('n'), -9)
})

test('increment on an integer string keeps it a string', () => {
  const backend = new MemoryBackend()
  backend.set('s', '41', 0)
  assert.is(backend.increment('s', 1), 42)
  assert.is(backend.get('s'), '42')
  backend.set('neg', '-5', 0)
  assert.is(backend.increment('neg', 2), -3)
  assert.is(backend.get('neg'), '-3')
  backend.set('plus', '+7', 0)
  assert.is(backend.increment('plus', 1), 8)
  assert.is(backend.get('plus'), '8')
})

test('increment on a value that is not an integer is a TypeError and leaves it alone', () => {
  const backend = new MemoryBackend()
  const bad: unknown[] = [1.5, 'abc', '1.5', ' 1', '1e3', '', '0x10', true, { n: 1 }, [1], NaN, Infinity, 2 ** 60]
  for (const value of bad) {
    backend.set('k', value, 0)
    assert.throws(
      () => backend.increment('k', 1),
      (e: unknown) => e instanceof TypeError && /not an integer/.test((e as Error).message),
      String(value),
    )
    assert.ok(Object.is(backend.get('k'), value), `${String(value)} was changed`)
  }
})

test('increment keeps the ttl of the key', () => {
  const clock = manualClock()
  const backend = new MemoryBackend({ clock })
  backend.set('n', 1, 10)
  clock.t += 5_000
  assert.is(backend.increment('n', 1), 2)
  clock.t += 4_999
  assert.is(backend.get('n'), 2, 'still within the original ttl')
  clock.t += 1
  assert.is(backend.get('n'), undefined, 'the original ttl still applies')
})

test('increment on an expired key starts again at 0 without ttl', () => {
  const clock = manualClock()
  const backend = new MemoryBackend({ clock })
  backend.set('n', 100, 1)
  clock.t += 1_000
  assert.is(backend.increment('n', 1), 1)
  clock.t += 60_000
  assert.is(backend.get('n'), 1)
})

test('increment past Number.MAX_SAFE_INTEGER is a RangeError and leaves the value alone', () => {
  const backend = new MemoryBackend()
  backend.set('n', Number.MAX_SAFE_INTEGER - 1, 0)
  assert.is(backend.increment('n', 1), Number.MAX_SAFE_INTEGER)
  assert.throws(
    () => backend.increment('n', 1),
    (e: unknown) => e instanceof RangeError && /MAX_SAFE_INTEGER/.test((e as Error).message),
  )
  assert.is(backend.get('n'), Number.MAX_SAFE_INTEGER)
  backend.set('low', Number.MIN_SAFE_INTEGER, 0)
  assert.throws(() => backend.increment('low', -1), RangeError)
  assert.is(backend.get('low'), Number.MIN_SAFE_INTEGER)
  backend.set('s', String(Number.MAX_SAFE_INTEGER), 0)
  assert.throws(() => backend.increment('s', 1), RangeError)
  assert.is(backend.get('s'), String(Number.MAX_SAFE_INTEGER))
})

test('increment refuses an integer string already past the safe range instead of answering a rounded number', () => {
  const backend = new MemoryBackend()
  // 9007199254740993 is not representable: Number() rounds it to ...992, so ...993 - 2 would wrongly answer ...990.
  backend.set('s', '9007199254740993', 0)
  assert.throws(() => backend.increment('s', -2), RangeError)
  assert.is(backend.get('s'), '9007199254740993')
  backend.set('t', '99999999999999999999', 0)
  assert.throws(() => backend.increment('t', -1), RangeError)
  backend.set('z', '0000000000000000000042', 0)
  assert.is(backend.increment('z', 1), 43, 'leading zeros do not make a safe integer unsafe')
})

// ---------------------------------------------------------------------------
// clear

test('clear(null) empties the whole store', () => {
  const clock = manualClock()
  const backend = new MemoryBackend({ clock })
  backend.set('a', 1, 0)
  backend.set('user:b', 2, 10)
  assert.is(backend.clear(null), true)
  assert.is(backend.size, 0)
  assert.is(backend.sweep(), 0, 'no expiry is left behind')
})

test('clear(prefix) removes exactly the keys that start with the prefix', () => {
  const clock = manualClock()
  const backend = new MemoryBackend({ clock })
  backend.set('user:1', 1, 10)
  backend.set('user:2', 2, 0)
  backend.set('users:1', 3, 10)
  backend.set('user', 4, 0)
  backend.set('x:user:1', 5, 0)
  backend.clear('user:')
  assert.equal(keysOf(backend).sort(), ['user', 'users:1', 'x:user:1'])
  // The cleared key's expiry went with it: a new value under that key has no ttl.
  backend.raw('set', ['user:1', 'raw'])
  clock.t += 20_000
  assert.is(backend.get('user:1'), 'raw')
})

test("through a cache: clearing namespace 'user' never touches 'users:…' keys", async () => {
  const cache = new MemoryCache({ namespace: 'user' })
  await cache.set('1', 'u1')
  await cache.set('2', 'u2')
  await cache.set('1', 'us1', { namespace: 'users' })
  await cache.set('plain', 'p', { namespace: '' })
  assert.is(await cache.clear(), true)
  assert.equal(keysOf(cache.backend).sort(), ['plain', 'users:1'])
  assert.is(await cache.get('1', { namespace: 'users' }), 'us1')
})

test('through a cache: clear with an explicit namespace; a cache with namespace "" empties everything', async () => {
  const cache = new MemoryCache()
  await cache.set('1', 'a', { namespace: 'users' })
  await cache.set('1', 'b', { namespace: 'user' })
  await cache.set('top', 'c')
  await cache.clear({ namespace: 'user' })
  assert.equal(keysOf(cache.backend).sort(), ['top', 'users:1'])
  await cache.clear()
  assert.is(cache.backend.size, 0)
})

// ---------------------------------------------------------------------------
// raw

test('raw runs Map methods on the store', () => {
  const backend = new MemoryBackend()
  backend.set('a', 1, 0)
  assert.is(backend.raw('get', ['a']), 1)
  assert.is(backend.raw('has', ['a']), true)
  assert.is(backend.raw('has', ['b']), false)
  assert.is((backend.raw('set', ['b', 2]) as Map<string, unknown>).get('b'), 2)
  assert.is(backend.get('b'), 2)
  assert.equal(keysOf(backend), ['a', 'b'])
  assert.equal(
    [...(backend.raw('entries', []) as Iterable<[string, unknown]>)],
    [
      ['a', 1],
      ['b', 2],
    ],
  )
  assert.equal([...(backend.raw('values', []) as Iterable<unknown>)], [1, 2])
  assert.is(backend.raw('delete', ['a']), true)
  assert.is(backend.raw('delete', ['a']), false)
  assert.is(backend.get('a'), undefined)
  assert.is(backend.raw('clear', []), undefined)
  assert.is(backend.size, 0)
  assert.is(backend.get('b'), undefined)
  backend.set('c', 3, 0)
  assert.equal([...(backend.raw('entries', []) as Iterable<[string, unknown]>)], [['c', 3]])
})

test("raw('set') is a write without a ttl: the key becomes the most recent and maxSize holds", () => {
  const clock = manualClock()
  const backend = new MemoryBackend({ clock, maxSize: 2 })
  backend.set('a', 1, 5)
  backend.set('b', 2, 0)
  backend.raw('set', ['a', 'one'])
  assert.equal(keysOf(backend), ['b', 'a'])
  backend.raw('set', ['c', 3])
  assert.equal(keysOf(backend), ['a', 'c'], 'b, the least recent, went')
  clock.t += 10_000
  assert.is(backend.get('a'), 'one', 'the ttl went with the raw write')
})

test("raw('size') answers the number of entries", () => {
  const backend = new MemoryBackend()
  backend.set('a', 1, 0)
  backend.set('b', 2, 0)
  assert.is(backend.raw('size', []), 2)
})

test('raw rejects what is not a Map method with a TypeError', () => {
  const backend = new MemoryBackend()
  backend.set('a', 1, 0)
  for (const command of [
    'nope',
    'constructor',
    'toString',
    'hasOwnProperty',
    'valueOf',
    '__proto__',
    '__defineGetter__',
    'GET',
    '',
  ]) {
    assert.throws(
      () => backend.raw(command, []),
      (e: unknown) => e instanceof TypeError && /Map method/.test((e as Error).message),
      command,
    )
  }
  assert.is(backend.get('a'), 1)
})

test('through a cache: raw answers asynchronously and rejects (not throws) a bad command', async () => {
  const cache = new MemoryCache()
  await cache.set('k', 'v')
  assert.is(await cache.raw('get', 'k'), 'v')
  assert.is(await cache.raw('has', 'k'), true)
  let promise: Promise<unknown> | undefined
  try {
    promise = cache.raw('flushall')
  } catch {
    assert.unreachable('raw threw synchronously')
  }
  try {
    await promise
    assert.unreachable('raw with a bad command resolved')
  } catch (e) {
    assert.instance(e, TypeError)
  }
})

// ---------------------------------------------------------------------------
// close

test('close can be called twice and the backend works afterwards, ttl included', () => {
  const clock = manualClock()
  const backend = new MemoryBackend({ clock, sweepInterval: '5ms' })
  backend.set('a', 1, 10)
  backend.close()
  backend.close()
  assert.is(backend.get('a'), 1)
  backend.set('b', 2, 1)
  clock.t += 1_000
  assert.is(backend.get('b'), undefined)
  assert.is(backend.get('a'), 1)
  backend.close()
})

test('through a cache: close resolves and the cache is used again afterwards', async () => {
  const clock = manualClock()
  const cache = new MemoryCache({ clock })
  await cache.set('k', 1, { ttl: 1 })
  assert.is(await cache.close(), undefined)
  assert.is(await cache.get('k'), 1)
  await cache.set('j', 2, { ttl: 5 })
  clock.t += 1_000
  assert.equal(await cache.multiGet(['k', 'j']), [undefined, 2])
  await cache[Symbol.asyncDispose]()
})

// ---------------------------------------------------------------------------
// LRU

test('maxSize evicts the least recently written key', () => {
  const backend = new MemoryBackend({ maxSize: 3 })
  backend.set('a', 1, 0)
  backend.set('b', 2, 0)
  backend.set('c', 3, 0)
  backend.set('d', 4, 0)
  assert.is(backend.size, 3)
  assert.equal(keysOf(backend), ['b', 'c', 'd'])
  assert.is(backend.get('a'), undefined)
})

test('a get refreshes recency', () => {
  const backend = new MemoryBackend({ maxSize: 3 })
  backend.set('a', 1, 0)
  backend.set('b', 2, 0)
  backend.set('c', 3, 0)
  assert.is(backend.get('a'), 1)
  backend.set('d', 4, 0)
  assert.equal(keysOf(backend).sort(), ['a', 'c', 'd'], 'b was the least recently used')
  assert.equal(backend.multiGet(['c']), [3], 'multiGet refreshes too')
  backend.set('e', 5, 0)
  assert.equal(keysOf(backend).sort(), ['c', 'd', 'e'])
})

test('setting an existing key refreshes it and does not evict', () => {
  const backend = new MemoryBackend({ maxSize: 3 })
  backend.set('a', 1, 0)
  backend.set('b', 2, 0)
  backend.set('c', 3, 0)
  backend.set('a', 10, 0)
  assert.is(backend.size, 3)
  backend.set('d', 4, 0)
  assert.equal(keysOf(backend).sort(), ['a', 'c', 'd'])
  assert.is(backend.get('a'), 10)
})

test('add, multiSet and increment of new keys evict as well', () => {
  const backend = new MemoryBackend({ maxSize: 2 })
  backend.add('a', 1, 0)
  backend.add('b', 2, 0)
  backend.add('c', 3, 0)
  assert.equal(keysOf(backend), ['b', 'c'])
  backend.multiSet(
    [
      ['d', 4],
      ['e', 5],
      ['f', 6],
    ],
    0,
  )
  assert.equal(keysOf(backend), ['e', 'f'])
  backend.increment('n', 1)
  assert.equal(keysOf(backend), ['f', 'n'])
})

test('maxSize 1 keeps only the last key', () => {
  const backend = new MemoryBackend({ maxSize: 1 })
  backend.set('a', 1, 0)
  backend.set('b', 2, 0)
  assert.equal(keysOf(backend), ['b'])
  assert.is(backend.get('b'), 2)
})

test('evicting a key also drops its ttl entry', () => {
  const clock = manualClock()
  const backend = new MemoryBackend({ clock, maxSize: 1 })
  backend.set('a', 1, 1)
  backend.set('b', 2, 0) // evicts a
  clock.t += 5_000
  assert.is(backend.sweep(), 0, 'no stale expiry of a is left to reclaim')
  backend.raw('set', ['a', 'again'])
  // A stale expiry of the evicted 'a' would now hide the new value.
  assert.is(backend.get('a'), 'again')
})

test('without maxSize a get does not reorder the store', () => {
  const backend = new MemoryBackend()
  backend.set('a', 1, 0)
  backend.set('b', 2, 0)
  backend.get('a')
  assert.equal(keysOf(backend), ['a', 'b'])
})

test('through MemoryCache: maxSize evicts by recency', async () => {
  const cache = new MemoryCache({ maxSize: 2, namespace: 'ns' })
  await cache.set('a', 1)
  await cache.set('b', 2)
  await cache.get('a')
  await cache.set('c', 3)
  assert.equal(await cache.multiGet(['a', 'b', 'c']), [1, undefined, 3])
  assert.equal(keysOf(cache.backend).sort(), ['ns:a', 'ns:c'])
})

// ---------------------------------------------------------------------------
// casToken

test('set with casToken writes only while the stored value is still the token', () => {
  const clock = manualClock()
  const backend = new MemoryBackend({ clock })
  backend.set('k', 'v1', 0)
  assert.is(backend.set('k', 'v2', 0, 'v1'), true)
  assert.is(backend.get('k'), 'v2')
  assert.is(backend.set('k', 'v3', 0, 'v1'), false, 'the token is stale')
  assert.is(backend.get('k'), 'v2')
  assert.is(backend.set('k', 'v3', 5, 'v2'), true)
  clock.t += 5_000
  assert.is(backend.get('k'), undefined, 'the ttl of a cas write applies')
})

test('set with casToken on a missing key answers false and writes nothing', () => {
  const backend = new MemoryBackend()
  assert.is(backend.set('k', 'v', 0, 'anything'), false)
  assert.is(backend.exists('k'), false)
})

test('casToken compares the stored value by identity', () => {
  const backend = new MemoryBackend()
  const seen = { n: 1 }
  backend.set('k', seen, 0)
  assert.is(backend.set('k', { n: 2 }, 0, { n: 1 }), false, 'an equal-looking object is not the stored one')
  assert.is(backend.set('k', { n: 2 }, 0, seen), true)
})

test('through a cache: set with casToken answers false when the value changed', async () => {
  const cache = new MemoryCache()
  await cache.set('k', 1)
  assert.is(await cache.set('k', 2, { casToken: 1 }), true)
  assert.is(await cache.set('k', 3, { casToken: 1 }), false)
  assert.is(await cache.get('k'), 2)
})

// ---------------------------------------------------------------------------
// Reclaiming expired entries nobody reads

test('sweep reclaims expired entries that are never read again', () => {
  const clock = manualClock()
  const backend = new MemoryBackend({ clock })
  for (let i = 0; i < 5; i++) backend.set(`short${i}`, i, 1)
  for (let i = 0; i < 3; i++) backend.set(`long${i}`, i, 100)
  backend.set('forever', 'f', 0)
  assert.is(backend.size, 9)
  assert.is(backend.sweep(), 0, 'nothing expired yet')
  assert.is(backend.size, 9)
  clock.t += 1_000
  assert.is(backend.sweep(), 5)
  assert.is(backend.size, 4)
  assert.equal(keysOf(backend).sort(), ['forever', 'long0', 'long1', 'long2'])
  clock.t += 100_000
  assert.is(backend.sweep(), 3)
  assert.equal(keysOf(backend), ['forever'])
  assert.is(backend.sweep(), 0)
})

test('sweep on an empty store reclaims nothing', () => {
  const backend = new MemoryBackend()
  assert.is(backend.sweep(), 0)
  assert.is(backend.sweep(10), 0)
})

test('sweep(limit) looks at no more than limit entries', () => {
  const clock = manualClock()
  const backend = new MemoryBackend({ clock })
  for (let i = 0; i < 10; i++) backend.set(`k${i}`, i, 1)
  clock.t += 1_000
  assert.is(backend.sweep(3), 3)
  assert.is(backend.size, 7)
  assert.is(backend.sweep(0), 0)
  assert.is(backend.size, 7)
})

test('sweep() looks at sweepBatch keys by default', () => {
  const clock = manualClock()
  const backend = new MemoryBackend({ clock, sweepBatch: 4 })
  for (let i = 0; i < 10; i++) backend.set(`k${i}`, i, 1)
  clock.t += 1_000
  assert.is(backend.sweep(), 4)
  assert.is(backend.size, 6)
})

test('sweep(limit) counts every entry it looks at, with a ttl or without', () => {
  const clock = manualClock()
  const backend = new MemoryBackend({ clock })
  for (let i = 0; i < 50; i++) backend.set(`plain${i}`, i, 0)
  backend.set('short', 's', 1)
  clock.t += 1_000
  assert.is(backend.sweep(50), 0, 'the first 50 entries have no ttl')
  assert.is(has(backend, 'short'), true)
  assert.is(backend.sweep(1), 1, 'the 51st is the expired one')
  assert.is(has(backend, 'short'), false)
  assert.is(backend.size, 50)
})

test('raw sees values, not ttl records: get, values, entries, forEach, the view set answers', () => {
  const clock = manualClock()
  const backend = new MemoryBackend({ clock })
  backend.set('t', 'with ttl', 10)
  backend.set('p', 'plain', 0)
  assert.is(backend.raw('get', ['t']), 'with ttl')
  assert.equal([...(backend.raw('values', []) as Iterable<unknown>)], ['with ttl', 'plain'])
  assert.equal(
    [...(backend.raw('entries', []) as Iterable<unknown>)],
    [
      ['t', 'with ttl'],
      ['p', 'plain'],
    ],
  )
  const seen: unknown[] = []
  backend.raw('forEach', [(value: unknown, key: string) => seen.push([key, value])])
  assert.equal(seen, [
    ['t', 'with ttl'],
    ['p', 'plain'],
  ])
  const view = backend.raw('set', ['n', 'new']) as Map<string, unknown>
  assert.is(view.get('t'), 'with ttl')
  assert.equal(
    [...view],
    [
      ['t', 'with ttl'],
      ['p', 'plain'],
      ['n', 'new'],
    ],
  )
  // raw bypasses ttl: an expired value is still there for raw until it is reclaimed.
  clock.t += 10_000
  assert.is(backend.raw('get', ['t']), 'with ttl')
  assert.is(backend.get('t'), undefined)
  assert.is(backend.raw('has', ['t']), false, 'the read reclaimed it')
  // raw set replaces a ttl'd entry with one without a ttl.
  backend.set('x', 1, 1)
  backend.raw('set', ['x', 2])
  clock.t += 5_000
  assert.is(backend.get('x'), 2)
})

test('sweep resumes where the previous sweep stopped', () => {
  const clock = manualClock()
  const backend = new MemoryBackend({ clock })
  for (let i = 0; i < 10; i++) backend.set(`k${i}`, i, 1)
  // Nothing has expired: these two sweeps only walk k0..k2, then k3..k5.
  assert.is(backend.sweep(3), 0)
  assert.is(backend.sweep(3), 0)
  clock.t += 1_000
  assert.is(backend.sweep(3), 3)
  assert.equal(keysOf(backend), ['k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k9'], 'the third sweep took k6..k8')
  assert.is(backend.sweep(3), 3, 'k9, then around to k0 and k1')
  assert.equal(keysOf(backend), ['k2', 'k3', 'k4', 'k5'])
})

test('a sweep that reaches the end goes around to the start', () => {
  const clock = manualClock()
  const backend = new MemoryBackend({ clock })
  for (let i = 0; i < 6; i++) backend.set(`k${i}`, i, 1)
  assert.is(backend.sweep(4), 0) // stops after k3
  clock.t += 1_000
  assert.is(backend.sweep(100), 6, 'k4, k5, then k0..k3')
  assert.is(backend.size, 0)
})

test('a sweep walks each key at most once around and stops', () => {
  const clock = manualClock()
  const backend = new MemoryBackend({ clock })
  for (let i = 0; i < 3; i++) backend.set(`k${i}`, i, 10)
  // With a huge limit a sweep over keys that have not expired must end.
  assert.is(backend.sweep(1_000_000), 0)
  assert.is(backend.size, 3)
})

test('keys given a ttl after the sweep passed are still reached', () => {
  const clock = manualClock()
  const backend = new MemoryBackend({ clock })
  backend.set('a', 1, 1)
  backend.set('b', 2, 1)
  assert.is(backend.sweep(2), 0)
  backend.set('c', 3, 1)
  backend.set('d', 4, 0)
  backend.expire('d', 1)
  clock.t += 1_000
  assert.is(backend.sweep(100), 4)
  assert.is(backend.size, 0)
})

test('a full cycle of bounded sweeps reclaims every expired entry', () => {
  const clock = manualClock()
  const backend = new MemoryBackend({ clock })
  const n = 100
  for (let i = 0; i < n; i++) backend.set(`k${i}`, i, i % 2 === 0 ? 1 : 100) // half expire first
  backend.sweep(7) // leave the cursor mid-way
  clock.t += 1_000
  let removed = 0
  for (let i = 0; i < Math.ceil(n / 7); i++) removed += backend.sweep(7)
  assert.is(removed, n / 2)
  assert.is(backend.size, n / 2)
  for (const key of keysOf(backend)) assert.is(Number(key.slice(1)) % 2, 1, key)
})

test('entries deleted or cleared behind the sweep are not counted', () => {
  const clock = manualClock()
  const backend = new MemoryBackend({ clock })
  for (let i = 0; i < 5; i++) backend.set(`k${i}`, i, 1)
  backend.sweep(2)
  backend.delete('k3')
  backend.clear('k4')
  clock.t += 1_000
  assert.is(backend.sweep(100), 3)
  assert.is(backend.size, 0)
})

// ---------------------------------------------------------------------------
// Slots: freed slots are reused, and the columns are compacted once most are free

test('a deleted value is let go at once, not when its slot is reused', async () => {
  const gc = gcFunction()
  const backend = new MemoryBackend()
  let value: object | undefined = { big: 'x'.repeat(1000) }
  const ref = new WeakRef(value)
  backend.set('k', value, 0)
  value = undefined
  backend.set('other', 1, 0)
  assert.is(backend.delete('k'), 1)
  await sleep(0) // WeakRef targets are kept until the current job ends
  gc()
  assert.is(ref.deref(), undefined, 'the backend no longer holds the deleted value')
  assert.is(backend.get('other'), 1)
})

test('slots survive compaction: after most keys go, every survivor keeps its value, ttl and recency', () => {
  const clock = manualClock()
  const n = 20_000
  const backend = new MemoryBackend({ clock, maxSize: n })
  for (let i = 0; i < n; i++) backend.set(`k${i}`, `v${i}`, i % 3 === 0 ? 0 : 10 + (i % 7))
  // Free nine keys in ten, by every route that frees a slot: delete, deleteIf, expiry read, sweep, clear(prefix).
  for (let i = 0; i < n; i++) {
    if (i % 10 === 0) continue
    if (i % 4 === 0) backend.delete(`k${i}`)
    else if (i % 4 === 1) backend.deleteIf(`k${i}`, `v${i}`)
    else backend.expire(`k${i}`, 0.001)
  }
  clock.t += 1
  assert.ok(backend.sweep(n) > 0)
  const survivors = Array.from({ length: n / 10 }, (_, j) => j * 10)
  assert.is(backend.size, survivors.length)
  assert.equal(
    keysOf(backend),
    survivors.map((i) => `k${i}`),
    'insertion (recency) order kept',
  )
  for (const i of survivors) assert.is(backend.raw('get', [`k${i}`]), `v${i}`)
  // New writes take slots again and do not disturb the survivors.
  for (let i = 0; i < 3_000; i++) backend.set(`new${i}`, i, 0)
  for (const i of survivors) assert.is(backend.get(`k${i}`), `v${i}`)
  for (let i = 0; i < 3_000; i++) assert.is(backend.get(`new${i}`), i)
  // Each survivor's ttl is still its own: at 10 + (i % 7) s, or none when i % 3 === 0.
  clock.t += 12_000 - 1
  for (const i of survivors) {
    const ttl = i % 3 === 0 ? Infinity : 10 + (i % 7)
    assert.is(backend.exists(`k${i}`), ttl * 1000 > 12_000 - 1 + 1, `k${i}, ttl ${ttl}`)
  }
  clock.t += 5_000
  for (const i of survivors) assert.is(backend.get(`k${i}`), i % 3 === 0 ? `v${i}` : undefined)
})

test(
  'memory is given back: a cache filled with 200k entries and emptied key by key holds no more than one cleared ' +
    'at once',
  () => {
    const gc = gcFunction()
    const held = (): number => {
      gc()
      gc()
      const { heapUsed, external } = process.memoryUsage() // the expiry column is an ArrayBuffer: external
      return heapUsed + external
    }
    const keys = Array.from({ length: 200_000 }, (_, i) => `k${i}`)
    const backend = new MemoryBackend()
    const empty = held()
    for (const key of keys) backend.set(key, 1, 60)
    const filled = held()
    for (const key of keys) backend.delete(key)
    const emptied = held()
    backend.clear(null) // starts the columns over
    const cleared = held()
    assert.ok(filled - empty > 4_000_000, `200k entries take room (${filled - empty} bytes)`)
    assert.ok(
      emptied - cleared < 300_000,
      `emptied key by key, the backend holds ${emptied - cleared} bytes more than cleared`,
    )
    backend.set('k1', 'again', 0)
    assert.is(backend.get('k1'), 'again')
    backend.close()
  },
)

test('clear() by prefix frees the slots of what it removes; clear() empties the columns', () => {
  const backend = new MemoryBackend()
  for (let i = 0; i < 10_000; i++) backend.set(i % 2 === 0 ? `a:${i}` : `b:${i}`, i, 0)
  backend.clear('a:')
  assert.is(backend.size, 5_000)
  for (let i = 1; i < 10_000; i += 2) assert.is(backend.get(`b:${i}`), i)
  for (let i = 0; i < 5_000; i++) backend.set(`c:${i}`, -i, 0)
  for (let i = 1; i < 10_000; i += 2) assert.is(backend.get(`b:${i}`), i)
  for (let i = 0; i < 5_000; i++) assert.is(backend.get(`c:${i}`), -i)
  backend.clear(null)
  assert.is(backend.size, 0)
  backend.set('x', 'y', 0)
  assert.equal([...(backend.raw('entries', []) as Iterable<unknown>)], [['x', 'y']])
})

// ---------------------------------------------------------------------------
// The automatic sweeper

test('the sweeper reclaims expired entries on its own and then stops', async () => {
  const clock = manualClock()
  const backend = new MemoryBackend({ clock, sweepInterval: '5ms' })
  for (let i = 0; i < 20; i++) backend.set(`k${i}`, i, 1)
  backend.set('keep', 'forever', 0)
  clock.t += 1_000
  assert.ok(await until(() => backend.size === 1), `expired entries were not reclaimed; size ${backend.size}`)
  assert.equal(keysOf(backend), ['keep'])
  // With no ttl left the sweeper stops: the clock is no longer read.
  await sleep(15)
  let reads = 0
  clock.onRead = () => reads++
  await sleep(40)
  assert.is(reads, 0, 'the sweeper kept running with nothing to sweep')
  backend.close()
})

test('the sweeper leaves entries that have not expired', async () => {
  const clock = manualClock()
  const backend = new MemoryBackend({ clock, sweepInterval: '5ms' })
  backend.set('a', 1, 10)
  let reads = 0
  clock.onRead = () => reads++
  assert.ok(await until(() => reads >= 2), 'the sweeper did not run')
  assert.is(backend.size, 1)
  backend.close()
})

test('the sweeper does not keep the process alive (its timer is unref’d)', () => {
  const before = refTimers()
  const backend = new MemoryBackend({ sweepInterval: '5ms' })
  backend.set('a', 1, 3_600)
  backend.set('b', 2, 1)
  assert.is(refTimers(), before, 'a referenced timer was added')
  backend.close()
})

test('a process holding keys with a ttl exits on its own', () => {
  const lib = fileURLToPath(new URL('../lib/index.ts', import.meta.url))
  const code = `import { MemoryBackend } from ${JSON.stringify(lib)}
const backend = new MemoryBackend({ sweepInterval: '20ms' })
backend.set('k', 1, 3600)
process.stdout.write('armed ' + backend.size)`
  const env = childEnv()
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    encoding: 'utf8',
    timeout: 15_000,
    env,
  })
  assert.is(child.error, undefined, String(child.error))
  assert.is(child.signal, null, 'the child had to be killed: something kept it alive')
  assert.is(child.status, 0, child.stderr)
  assert.is(child.stdout.trim(), 'armed 1')
})

test('close() stops the sweeper; a later ttl starts it again', async () => {
  const clock = manualClock()
  const backend = new MemoryBackend({ clock, sweepInterval: '5ms' })
  backend.set('a', 1, 1)
  backend.close()
  clock.t += 1_000
  let reads = 0
  clock.onRead = () => reads++
  await sleep(40)
  assert.is(reads, 0, 'the sweeper ran after close()')
  assert.is(backend.size, 1, 'nothing was reclaimed after close()')
  clock.onRead = undefined
  backend.set('b', 2, 1)
  clock.t += 1_000
  assert.ok(await until(() => backend.size === 0), `size ${backend.size}`)
  backend.close()
})

test('through a cache: close() stops the sweeper', async () => {
  const clock = manualClock()
  const cache = new MemoryCache({ clock, sweepInterval: '5ms' })
  await cache.set('a', 1, { ttl: 1 })
  await cache.close()
  clock.t += 1_000
  await sleep(30)
  assert.is(cache.backend.size, 1)
  assert.is(await cache.get('a'), undefined)
})

test('the sweeper runs more batches at once while many expired', async () => {
  const clock = manualClock()
  const backend = new MemoryBackend({ clock, sweepInterval: '100ms', sweepBatch: 10 })
  for (let i = 0; i < 100; i++) backend.set(`k${i}`, i, 1)
  clock.t += 1_000
  const sweeps: number[] = []
  clock.onRead = () => sweeps.push(performance.now())
  assert.ok(await until(() => backend.size === 0, 3_000), `size ${backend.size}`)
  assert.ok(sweeps.length >= 10, `${sweeps.length} sweeps`)
  const spread = sweeps[sweeps.length - 1]! - sweeps[0]!
  assert.ok(spread < 50, `the batches were spread over ${spread.toFixed(1)} ms, one interval apart`)
  backend.close()
})

test('burst batches run right away even when nothing else wakes the event loop', async () => {
  const clock = manualClock()
  const backend = new MemoryBackend({ clock, sweepInterval: '50ms', sweepBatch: 10 })
  for (let i = 0; i < 100; i++) backend.set(`k${i}`, i, 1)
  clock.t += 1_000
  // One plain wait, no polling: the only other timers are the sweeper's own.
  await sleep(140)
  assert.is(backend.size, 0, 'one interval (50 ms) has passed; the batches after it should not wait for the next ones')
  backend.close()
})

test('the sweeper stops bursting once a sweep finds little expired', async () => {
  const clock = manualClock()
  const backend = new MemoryBackend({ clock, sweepInterval: '100ms', sweepBatch: 10 })
  for (let i = 0; i < 10; i++) backend.set(`short${i}`, i, 1)
  for (let i = 0; i < 90; i++) backend.set(`long${i}`, i, 3_600)
  clock.t += 1_000
  const sweeps: number[] = []
  clock.onRead = () => sweeps.push(performance.now())
  assert.ok(await until(() => backend.size === 90, 3_000), `size ${backend.size}`)
  await sleep(60)
  const first = sweeps[0]!
  const soon = sweeps.filter((at) => at - first < 80).length
  // One sweep removed 10 (a burst follows); the next removed 0 (no burst until the next interval).
  assert.is(soon, 2, `${soon} sweeps within 80 ms`)
  backend.close()
})

test('close() during a burst stops every batch still scheduled', async () => {
  const clock = manualClock()
  const backend = new MemoryBackend({ clock, sweepInterval: '1ms', sweepBatch: 1 })
  const n = 2_000
  for (let i = 0; i < n; i++) backend.set(`k${i}`, i, 1)
  clock.t += 1_000
  let reads = 0
  let sizeAtClose = -1
  clock.onRead = () => {
    if (++reads === 200) {
      queueMicrotask(() => {
        backend.close()
        sizeAtClose = backend.size
      })
    }
  }
  assert.ok(await until(() => sizeAtClose !== -1, 5_000), 'the sweeper never got that far')
  await sleep(50)
  assert.is(
    backend.size,
    sizeAtClose,
    `sweeping went on after close(): ${sizeAtClose - backend.size} more entries reclaimed`,
  )
  backend.close()
})

// ---------------------------------------------------------------------------
// Options

test('unknown options are TypeErrors naming the option', () => {
  assert.throws(
    () => new MemoryBackend({ maxsize: 3 } as never),
    (e: unknown) => e instanceof TypeError && /maxsize/.test((e as Error).message),
  )
  assert.throws(
    () => new MemoryCache({ ttlSeconds: 3 } as never),
    (e: unknown) => e instanceof TypeError && /ttlSeconds/.test((e as Error).message),
  )
  assert.throws(() => new MemoryCache({ backend: new MemoryBackend() } as never), TypeError)
})

test('maxSize must be a positive integer', () => {
  for (const maxSize of [0, -1, 1.5, Number.NaN, Infinity, '3', null]) {
    assert.throws(
      () => new MemoryBackend({ maxSize } as never),
      (e: unknown) => e instanceof TypeError && /maxSize/.test((e as Error).message),
      String(maxSize),
    )
    assert.throws(() => new MemoryCache({ maxSize } as never), TypeError, String(maxSize))
  }
  assert.not.throws(() => new MemoryBackend({ maxSize: 1 }))
})

test('sweepBatch must be a positive integer', () => {
  for (const sweepBatch of [0, -5, 2.5, Number.NaN, '10']) {
    assert.throws(
      () => new MemoryBackend({ sweepBatch } as never),
      (e: unknown) => e instanceof TypeError && /sweepBatch/.test((e as Error).message),
      String(sweepBatch),
    )
  }
})

test('clock must have a now() method', () => {
  for (const clock of [null, {}, { now: 5 }, 'performance', () => 1]) {
    assert.throws(
      () => new MemoryBackend({ clock } as never),
      (e: unknown) => e instanceof TypeError && /clock/.test((e as Error).message),
      String(clock),
    )
    assert.throws(() => new MemoryCache({ clock } as never), TypeError)
  }
})

test('sweepInterval must be a duration greater than 0', () => {
  for (const sweepInterval of [0, '0ms', null, -1, 'soon', Number.NaN]) {
    assert.throws(
      () => new MemoryBackend({ sweepInterval } as never),
      (e: unknown) => e instanceof RangeError && /sweepInterval/.test((e as Error).message),
      String(sweepInterval),
    )
  }
  assert.not.throws(() => new MemoryBackend({ sweepInterval: '250ms' }).close())
  assert.not.throws(() => new MemoryBackend({ sweepInterval: 0.5 }).close())
})

// ---------------------------------------------------------------------------
// Through Cache / MemoryCache

test('new Cache() is a memory cache that keeps values as they are', async () => {
  const cache = new Cache()
  assert.instance(cache.backend, MemoryBackend)
  assert.instance(cache.serializer, NullSerializer)
  const value = { deep: { list: [1, 2, 3] } }
  assert.is(await cache.set('k', value), true)
  assert.is(await cache.get('k'), value)
  assert.is(SimpleMemoryCache, MemoryCache)
})

test('through MemoryCache: every command, with namespace and key builder applied', async () => {
  const clock = manualClock()
  const cache = new MemoryCache({ clock, namespace: 'app' })
  assert.is(await cache.add('a', 1), true)
  try {
    await cache.add('a', 2)
    assert.unreachable('add of an existing key resolved')
  } catch (e) {
    assert.instance(e, KeyExistsError)
  }
  assert.is(await cache.get('a'), 1)
  assert.is(await cache.get('missing', { default: 'dflt' }), 'dflt')
  assert.is(
    await cache.multiSet([
      ['b', 2],
      ['c', 3],
    ]),
    true,
  )
  assert.equal(await cache.multiGet(['a', 'x', 'c']), [1, undefined, 3])
  assert.is(await cache.exists('b'), true)
  assert.is(await cache.delete('b'), 1)
  assert.is(await cache.delete('b'), 0)
  assert.is(await cache.exists('b'), false)
  assert.is(await cache.increment('n'), 1)
  assert.is(await cache.increment('n', 10), 11)
  assert.equal(keysOf(cache.backend).sort(), ['app:a', 'app:c', 'app:n'])
})

test('through a cache: ttl in seconds or with a unit, and the default ttl', async () => {
  const clock = manualClock()
  const cache = new MemoryCache({ clock, ttl: 10 })
  await cache.set('default', 1)
  await cache.set('quarter', 1, { ttl: 0.25 })
  await cache.set('ms', 1, { ttl: '250ms' })
  await cache.set('none', 1, { ttl: null })
  await cache.set('zero', 1, { ttl: 0 })
  await cache.add('added', 1, { ttl: '1s' })
  await cache.multiSet([['m', 1]], { ttl: 0.5 })
  clock.t += 250
  assert.equal(await cache.multiGet(['default', 'quarter', 'ms', 'none', 'zero', 'added', 'm']), [
    1,
    undefined,
    undefined,
    1,
    1,
    1,
    1,
  ])
  clock.t += 750
  assert.equal(await cache.multiGet(['default', 'added', 'm']), [1, undefined, undefined])
  clock.t += 9_000
  assert.equal(await cache.multiGet(['default', 'none', 'zero']), [undefined, 1, 1])
})

test('through a cache: expire sets, replaces and removes (0 or null) a ttl', async () => {
  const clock = manualClock()
  const cache = new MemoryCache({ clock })
  await cache.set('a', 1)
  await cache.set('b', 2, { ttl: 1 })
  await cache.set('c', 3, { ttl: 1 })
  assert.is(await cache.expire('a', '2s'), true)
  assert.is(await cache.expire('b', null), true)
  assert.is(await cache.expire('c', 0), true)
  assert.is(await cache.expire('missing', 1), false)
  clock.t += 1_999
  assert.equal(await cache.multiGet(['a', 'b', 'c']), [1, 2, 3])
  clock.t += 1
  assert.equal(await cache.multiGet(['a', 'b', 'c']), [undefined, 2, 3])
})

test('through a cache: bad ttl, undefined values and bad increments reject, and nothing is written', async () => {
  const cache = new MemoryCache()
  await cache.set('s', 'text')
  const rejects = async (promise: Promise<unknown>, type: new (...args: never[]) => Error): Promise<void> => {
    try {
      await promise
      assert.unreachable('resolved')
    } catch (e) {
      assert.instance(e, type)
    }
  }
  await rejects(cache.set('k', 1, { ttl: -1 }), RangeError)
  await rejects(cache.set('k', undefined), TypeError)
  await rejects(cache.increment('s'), TypeError)
  await rejects(cache.increment('k', 1.5), TypeError)
  await rejects(cache.expire('s', 'later' as never), RangeError)
  assert.is(await cache.exists('k'), false)
  assert.is(await cache.get('s'), 'text')
  assert.is(cache.backend.size, 1)
})

test('through a cache: null is stored and read back as null, not as a miss', async () => {
  const cache = new MemoryCache()
  await cache.set('n', null)
  assert.is(await cache.get('n', { default: 'dflt' }), null)
  assert.is(await cache.exists('n'), true)
})

test('the default clock is read at most once a millisecond, and ttls still end on time', async () => {
  const first = coarse.now()
  // Within one synchronous run the reading stands: no clock read per hit.
  let busy = 0
  for (let i = 0; i < 100_000; i++) busy += i
  assert.ok(busy > 0)
  assert.is(coarse.now(), first)
  await new Promise((resolve) => setTimeout(resolve, 5))
  const later = coarse.now()
  assert.ok(later >= first + 4, `moved ${later - first} ms`)
  const backend = new MemoryBackend()
  backend.set('k', 'v', 0.02)
  assert.is(backend.get('k'), 'v')
  await new Promise((resolve) => setTimeout(resolve, 30))
  assert.is(backend.get('k'), undefined)
  backend.close()
})

test('maxSize: recency survives the compaction of the slots, and eviction follows it', () => {
  const backend = new MemoryBackend({ maxSize: 10_000 })
  for (let i = 0; i < 10_000; i++) backend.set(`k${i}`, i, 0)
  // Use every third key from the end backwards: they become the most recent, in that order.
  const used: string[] = []
  for (let i = 9_999; i >= 0; i -= 3) {
    backend.get(`k${i}`)
    used.push(`k${i}`)
  }
  const usedSet = new Set(used)
  const expected = [...Array.from({ length: 10_000 }, (_, i) => `k${i}`).filter((k) => !usedSet.has(k)), ...used]
  assert.equal(keysOf(backend), expected)
  // Deleting most keys compacts the slots (three quarters free past 4096 handed out).
  const kept = expected.filter((_, i) => i % 8 === 0)
  const keptSet = new Set(kept)
  for (const key of expected) if (!keptSet.has(key)) backend.delete(key)
  assert.equal(keysOf(backend), kept)
  assert.is(backend.get(kept[0]!), Number(kept[0]!.slice(1)))
  const order = [...kept.slice(1), kept[0]!]
  assert.equal(keysOf(backend), order)
  // Filling up evicts from the least recently used on.
  const room = 10_000 - order.length
  for (let i = 0; i < room + 3; i++) backend.set(`n${i}`, i, 0)
  assert.equal(keysOf(backend).slice(0, order.length - 3), order.slice(3))
  assert.is(backend.size, 10_000)
})

test.run()

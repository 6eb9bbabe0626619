// Tags: writes carry them, invalidateTags invalidates every entry written with one of
// them before the call — one write per tag, never a scan — in every process sharing
// the store; on memory with a clock moved by hand, and on real Redis and Memcached.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { type Backend, Cache, JsonSerializer, MemoryCache } from '../lib/index.js'
import { MemcachedCache } from '../lib/memcached.js'
import { RedisCache } from '../lib/redis.js'
import { ManualClock, rejection, SpyBackend, watchUnhandled } from './support/fixtures/backends.js'
import { startMemcached, startRedis } from './support/servers.js'

function memory() {
  const clock = new ManualClock()
  clock.t = Date.UTC(2026, 11, 3)
  return { clock, cache: new MemoryCache({ clock, namespace: 'shop' }) }
}

test('set, add, multiSet and getOrSet with tags; invalidateTags makes exactly those entries miss', async () => {
  const { cache, clock } = memory()
  await cache.set('p1', { name: 'tea' }, { tags: ['product:1', 'catalog'] })
  await cache.add('p2', { name: 'coffee' }, { tags: ['product:2', 'catalog'] })
  await cache.multiSet([['p3', { name: 'cocoa' }]], { tags: ['product:3'] })
  await cache.getOrSet('p4', async () => ({ name: 'mate' }), { tags: ['product:4', 'catalog'] })
  await cache.set('untagged', 1)
  assert.equal(await cache.multiGet(['p1', 'p2', 'p3', 'p4']), [
    { name: 'tea' },
    { name: 'coffee' },
    { name: 'cocoa' },
    { name: 'mate' },
  ])
  clock.advance(1)
  assert.is(await cache.invalidateTags(['product:2']), true)
  assert.is(await cache.get('p2'), undefined)
  assert.equal(await cache.get('p1'), { name: 'tea' }, 'other tags are untouched')
  clock.advance(1)
  await cache.invalidateTags(['catalog'])
  assert.equal(await cache.multiGet(['p1', 'p2', 'p3', 'p4', 'untagged']), [
    undefined,
    undefined,
    { name: 'cocoa' },
    undefined,
    1,
  ])
  // Entries written after the call are not affected.
  clock.advance(1)
  await cache.set('p1', { name: 'green tea' }, { tags: ['catalog'] })
  assert.equal(await cache.get('p1'), { name: 'green tea' })
  // getOrSet recomputes an invalidated entry.
  let loads = 0
  const load = async () => ({ name: `mate ${++loads}` })
  assert.equal(await cache.getOrSet('p4', load, { tags: ['catalog'] }), { name: 'mate 1' })
  assert.equal(await cache.getOrSet('p4', load, { tags: ['catalog'] }), { name: 'mate 1' }, 'a hit again')
  await cache.close()
})

test('an invalidated entry written with grace is stale: the fallback of a failing factory', async () => {
  const { cache, clock } = memory()
  await cache.getOrSet('rates', async () => ({ usd: 1.08 }), { ttl: 60, grace: 3600, tags: ['rates'] })
  clock.advance(1)
  await cache.invalidateTags(['rates'])
  assert.is(await cache.get('rates'), undefined, 'get reads it as a miss')
  const boom = new Error('rates service down')
  assert.equal(await cache.getOrSet('rates', () => Promise.reject(boom), { ttl: 60, grace: 3600 }), { usd: 1.08 })
  // Without grace an invalidated entry is gone: the factory's failure is the caller's.
  await cache.set('plain', 1, { tags: ['rates'] })
  clock.advance(1)
  await cache.invalidateTags(['rates'])
  assert.is(await rejection(cache.getOrSet('plain', () => Promise.reject(boom))), boom)
  await cache.close()
})

test('invalidateTags is one multiSet of one key per tag, in the namespace, and never a scan', async () => {
  const spy = new SpyBackend()
  const clock = new ManualClock()
  const onSpy = new Cache({ backend: spy as Backend, clock, namespace: 'ns' })
  for (let i = 0; i < 100; i++) await onSpy.set(`k${i}`, i, { tags: ['t'] })
  spy.calls.length = 0
  await onSpy.invalidateTags(['t', 'u'])
  assert.equal(spy.calls, [
    [
      'multiSet',
      [
        ['ns:__oniocache_tag:t', '1000'],
        ['ns:__oniocache_tag:u', '1000'],
      ],
      0,
    ],
  ])
  assert.instance(await rejection(onSpy.invalidateTags('t' as never)), TypeError)
  assert.instance(await rejection(onSpy.invalidateTags([''])), TypeError)
  assert.instance(await rejection(onSpy.set('k', 1, { tags: [1] as never })), TypeError)
  assert.instance(await rejection(onSpy.getOrSet('k', async () => 1, { tags: 'x' as never })), TypeError)
  await onSpy.close()
})

test('the tags ride in the envelope: readers of another cache on the same store see the invalidation', async () => {
  const clock = new ManualClock()
  clock.t = 1_767_225_600_000
  const writer = new MemoryCache({ clock, serializer: new JsonSerializer() })
  await writer.set('a', 1, { tags: ['x'] })
  assert.is(writer.backend.raw('get', ['a']), '\u0000oniocache:1\u0000{"e":0,"c":1767225600000,"t":["x"]}\n1')
  await writer.close()
})

test('Redis and Memcached: one cache invalidates, another (another process) reads the miss', async () => {
  const [redis, memcached] = await Promise.all([startRedis(), startMemcached()])
  const unhandled = watchUnhandled()
  const pairs = [
    [new RedisCache({ port: redis.port, namespace: 'tags' }), new RedisCache({ port: redis.port, namespace: 'tags' })],
    [
      new MemcachedCache({ servers: [memcached.server], namespace: 'tags' }),
      new MemcachedCache({ servers: [memcached.server], namespace: 'tags' }),
    ],
  ] as const
  try {
    for (const [one, other] of pairs) {
      await one.set('user:1', { name: 'Ada' }, { tags: ['user:1'] })
      await one.getOrSet('user:1:posts', async () => ['hello'], { tags: ['user:1'], ttl: 60, grace: 600 })
      await one.set('user:2', { name: 'Bob' }, { tags: ['user:2'] })
      assert.equal(await other.get('user:1'), { name: 'Ada' }, one.backend.name)
      await new Promise((resolve) => setTimeout(resolve, 2)) // a later millisecond
      await other.invalidateTags(['user:1'])
      assert.equal(await one.multiGet(['user:1', 'user:1:posts', 'user:2']), [undefined, undefined, { name: 'Bob' }])
      assert.equal(
        await one.getOrSet('user:1:posts', () => Promise.reject(new Error('down')), { ttl: 60, grace: 600 }),
        ['hello'],
        `${one.backend.name}: invalidated with grace, the stale value under failure`,
      )
      await new Promise((resolve) => setTimeout(resolve, 2))
      await one.set('user:1', { name: 'Ada L.' }, { tags: ['user:1'] })
      assert.equal(await other.get('user:1'), { name: 'Ada L.' })
    }
  } finally {
    unhandled.stop()
    for (const pair of pairs) for (const cache of pair) await cache.close()
    await Promise.all([redis.stop(), memcached.stop()])
  }
  unhandled.check()
})

test.run()

import assert from 'node:assert/strict'
import type { BaseCache as Cache } from '../core/cache.js'
import type { TtlCase } from './case.js'
import { same } from './harness.js'
import type { Settings } from './options.js'

/** More than 30 days: Memcached reads such an expiry as a Unix timestamp unless the backend converts it. */
const MONTH = 31 * 86_400

async function present(cache: Cache, keys: readonly string[], label: string): Promise<void> {
  for (const key of keys) {
    assert.equal(await cache.exists(key), true, `${label}: ${JSON.stringify(key)} exists`)
  }
  const values = await cache.multiGet(keys)
  for (const [i, key] of keys.entries()) {
    assert.ok(values[i] !== undefined, `${label}: ${JSON.stringify(key)} reads back (multiGet)`)
  }
}

async function gone(cache: Cache, keys: readonly string[], label: string): Promise<void> {
  for (const key of keys) {
    assert.equal(await cache.get(key), undefined, `${label}: ${JSON.stringify(key)} reads as a miss`)
    assert.equal(await cache.exists(key), false, `${label}: ${JSON.stringify(key)} does not exist`)
  }
}

/**
 * ttls, as time passes. Every case writes, starts its timeline, then looks at
 * two checkpoints (see `Timeline`): `early`, when every key with a ttl of 1.5 to
 * 2 s must still be there, and `late`, when all of them must be gone. On real
 * servers all these cases run side by side, so the waiting is paid once.
 * @internal
 */
export function ttlCases(settings: Settings): TtlCase[] {
  const cases: TtlCase[] = [
    {
      name: 'ttl: a per-call ttl (2, 1.5, "1500ms") expires the key; until then it is there',
      async body(h) {
        const cache = await h.cache()
        await cache.set('two', 'v', { ttl: 2 })
        await cache.set('fraction', 'v', { ttl: 1.5 })
        await cache.set('string', 'v', { ttl: '1500ms' })
        await cache.add('added', 'v', { ttl: 1.5 })
        await cache.multiSet(
          [
            ['multi1', 'v'],
            ['multi2', 'v'],
          ],
          { ttl: 1.5 },
        )
        await cache.multiSet(new Map([['map', 'v']]), { ttl: 1.5 })
        const t = h.timeline()
        const keys = ['two', 'fraction', 'string', 'added', 'multi1', 'multi2', 'map']
        await present(cache, keys, 'right after writing')
        await t.at(t.early)
        await present(cache, keys, `at ${t.early} s`)
        await t.at(t.late)
        await gone(cache, keys, `at ${t.late} s`)
        same(
          await cache.multiGet(keys),
          keys.map(() => undefined),
          `at ${t.late} s, multiGet answers undefined for every expired key`,
        )
      },
    },
    {
      name:
        "ttl: the cache's default ttl applies when a call gives none; ttl 0, null or a long ttl given per call " +
        'overrides it',
      async body(h) {
        const cache = await h.cache({ ttl: 1.5 })
        await cache.set('default', 'v')
        await cache.add('added', 'v')
        await cache.multiSet([['multi', 'v']])
        await cache.set('zero', 'v', { ttl: 0 })
        await cache.set('null', 'v', { ttl: null })
        await cache.set('long', 'v', { ttl: 100 })
        await cache.add('added-zero', 'v', { ttl: 0 })
        await cache.multiSet([['multi-zero', 'v']], { ttl: 0 })
        const expiring = ['default', 'added', 'multi']
        const staying = ['zero', 'null', 'long', 'added-zero', 'multi-zero']
        const t = h.timeline()
        await t.at(t.early)
        await present(cache, [...expiring, ...staying], `at ${t.early} s`)
        await t.at(t.late)
        await gone(cache, expiring, `at ${t.late} s, keys written with the default ttl`)
        await present(cache, staying, `at ${t.late} s, keys written with ttl 0, null or 100`)
      },
    },
    {
      name: 'ttl: without a default ttl, keys never expire',
      async body(h) {
        const cache = await h.cache()
        await cache.set('set', 'v')
        await cache.add('added', 'v')
        await cache.multiSet([['multi', 'v']])
        await cache.increment('counter')
        const t = h.timeline()
        await t.at(t.late)
        await present(cache, ['set', 'added', 'multi', 'counter'], `at ${t.late} s`)
      },
    },
    {
      name: 'ttl: a fraction of a second (0.25, "250ms") is a ttl, not "never expires"',
      async body(h) {
        const cache = await h.cache()
        await cache.set('quarter', 'v', { ttl: 0.25 })
        await cache.set('string', 'v', { ttl: '250ms' })
        await cache.set('tiny', 'v', { ttl: 0.001 })
        await cache.set('control', 'v')
        const t = h.timeline()
        // Right after writing, only a clock that does not move can promise they are there:
        // a server counting whole seconds may round 0.25 up to 1 and then drop it early.
        if (t.precise) await present(cache, ['quarter', 'string', 'tiny'], 'right after writing')
        await t.at(t.late)
        await gone(cache, ['quarter', 'string', 'tiny'], `at ${t.late} s`)
        await present(cache, ['control'], `at ${t.late} s, a key without ttl`)
      },
    },
    {
      name: `ttl: a long ttl (31 days, ${MONTH} s) counts from now; it is not a timestamp`,
      async body(h) {
        const cache = await h.cache()
        await cache.set('set', 'v', { ttl: MONTH })
        await cache.add('added', 'v', { ttl: MONTH })
        await cache.multiSet([['multi', 'v']], { ttl: MONTH })
        await cache.set('expired', 'v')
        assert.equal(await cache.expire('expired', MONTH), true, 'expire with a 31-day ttl answers true')
        const t = h.timeline()
        const keys = ['set', 'added', 'multi', 'expired']
        await present(cache, keys, 'right after writing')
        await t.at(t.late)
        await present(cache, keys, `at ${t.late} s`)
      },
    },
    {
      name: 'expire: sets a ttl on a key that had none, replaces a ttl, and 0 or null removes it',
      async body(h) {
        const cache = await h.cache()
        await cache.set('gets-ttl', 'v')
        await cache.set('ttl-removed-0', 'v', { ttl: 1.5 })
        await cache.set('ttl-removed-null', 'v', { ttl: 1.5 })
        await cache.set('ttl-lengthened', 'v', { ttl: 1.5 })
        await cache.set('ttl-shortened', 'v', { ttl: 100 })
        await cache.set('string-ttl', 'v')
        assert.equal(await cache.expire('gets-ttl', 1.5), true, 'expire(key, 1.5) answers true')
        assert.equal(await cache.expire('ttl-removed-0', 0), true, 'expire(key, 0) answers true')
        assert.equal(await cache.expire('ttl-removed-null', null), true, 'expire(key, null) answers true')
        assert.equal(await cache.expire('ttl-lengthened', 100), true, 'expire(key, 100) answers true')
        assert.equal(await cache.expire('ttl-shortened', 1.5), true, 'expire shortening a ttl answers true')
        assert.equal(await cache.expire('string-ttl', '1500ms'), true, "expire(key, '1500ms') answers true")
        const expiring = ['gets-ttl', 'ttl-shortened', 'string-ttl']
        const staying = ['ttl-removed-0', 'ttl-removed-null', 'ttl-lengthened']
        const t = h.timeline()
        await t.at(t.early)
        await present(cache, [...expiring, ...staying], `at ${t.early} s`)
        await t.at(t.late)
        await gone(cache, expiring, `at ${t.late} s, keys given a ttl of 1.5 by expire`)
        await present(cache, staying, `at ${t.late} s, keys whose ttl expire removed or lengthened`)
        assert.equal(await cache.expire('gets-ttl', 100), false, 'expire of a key that expired answers false')
        assert.equal(await cache.exists('gets-ttl'), false, 'and does not bring it back')
      },
    },
    {
      name: 'ttl: writing a key again replaces its ttl (set, multiSet); increment keeps it',
      async body(h) {
        const cache = await h.cache()
        await cache.set('set-again', 'v', { ttl: 1.5 })
        await cache.set('set-again', 'v2')
        await cache.set('multi-again', 'v', { ttl: 1.5 })
        await cache.multiSet([['multi-again', 'v2']])
        await cache.set('set-shorter', 'v', { ttl: 100 })
        await cache.set('set-shorter', 'v2', { ttl: 1.5 })
        assert.equal(await cache.increment('counter', 5), 5)
        await cache.expire('counter', 1.5)
        assert.equal(await cache.increment('counter'), 6, 'increment of a counter with a ttl')
        const t = h.timeline()
        await t.at(t.early)
        await present(cache, ['set-again', 'multi-again', 'set-shorter', 'counter'], `at ${t.early} s`)
        await t.at(t.late)
        assert.equal(await cache.get('set-again'), 'v2', `at ${t.late} s, a key set again without ttl is there`)
        assert.equal(await cache.get('multi-again'), 'v2', `at ${t.late} s, a key multiSet again without ttl is there`)
        await gone(cache, ['set-shorter'], `at ${t.late} s, a key set again with a shorter ttl`)
        await gone(cache, ['counter'], `at ${t.late} s, a counter keeps its ttl through increment`)
      },
    },
    {
      name:
        'ttl: once a key expired, every command sees it missing (get, multiGet, exists, delete, expire, add, ' +
        'increment)',
      async body(h) {
        const cache = await h.cache()
        const keys = ['get', 'multi', 'exists', 'delete', 'expire', 'add', 'increment', 'cas']
        for (const key of keys) await cache.set(key, 'old', { ttl: 1.5 })
        const token = settings.casToken
          ? await cache.backend.get(cache.buildKey('cas'), cache.serializer.encoding)
          : undefined
        const t = h.timeline()
        await t.at(t.late)
        assert.equal(await cache.get('get', { default: 'DEFAULT' }), 'DEFAULT', 'get answers the default')
        same(await cache.multiGet(['multi', 'multi']), [undefined, undefined], 'multiGet answers undefined')
        assert.equal(await cache.exists('exists'), false, 'exists answers false')
        assert.equal(await cache.delete('delete'), 0, 'delete answers 0')
        assert.equal(await cache.expire('expire', 100), false, 'expire answers false')
        assert.equal(await cache.exists('expire'), false, 'expire did not bring the key back')
        assert.equal(await cache.add('add', 'new'), true, 'add succeeds')
        assert.equal(await cache.get('add'), 'new', 'and stores its value')
        assert.equal(await cache.increment('increment', 3), 3, 'increment starts again from 0')
        if (settings.casToken) {
          assert.equal(
            await cache.set('cas', 'new', { casToken: token }),
            false,
            'set with the token read before it expired answers false',
          )
          assert.equal(await cache.exists('cas'), false, 'and writes nothing')
        }
      },
    },
  ]
  if (settings.casToken) {
    cases.push({
      name: 'ttl: set with a casToken writes the ttl it is given',
      async body(h) {
        const cache = await h.cache()
        await cache.set('k', 'v1')
        const token = await cache.backend.get(cache.buildKey('k'), cache.serializer.encoding)
        assert.equal(
          await cache.set('k', 'v2', { casToken: token, ttl: 1.5 }),
          true,
          'set with the current token answers true',
        )
        const t = h.timeline()
        await t.at(t.early)
        assert.equal(await cache.get('k'), 'v2', `at ${t.early} s, the value written with the token is there`)
        await t.at(t.late)
        await gone(cache, ['k'], `at ${t.late} s`)
      },
    })
  }
  return cases
}

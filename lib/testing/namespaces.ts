import assert from 'node:assert/strict'
import type { BaseCache as Cache } from '../core/cache.js'
import type { Case } from './case.js'
import { fail, rejects, same, show } from './harness.js'
import type { Settings } from './options.js'

/** Two keys in each namespace, so that "all gone" and "all there" both mean something. */
async function fill(cache: Cache, namespace: string): Promise<void> {
  await cache.multiSet(
    [
      ['a', `a in ${namespace}`],
      ['b', `b in ${namespace}`],
    ],
    { namespace },
  )
}

async function expectFilled(cache: Cache, namespace: string, label: string): Promise<void> {
  same(
    await cache.multiGet(['a', 'b'], { namespace }),
    [`a in ${namespace}`, `b in ${namespace}`],
    `${label}: namespace ${JSON.stringify(namespace)} keeps its keys`,
  )
}

async function expectEmpty(cache: Cache, namespace: string, label: string): Promise<void> {
  same(
    await cache.multiGet(['a', 'b'], { namespace }),
    [undefined, undefined],
    `${label}: namespace ${JSON.stringify(namespace)} has no keys left`,
  )
  assert.equal(
    await cache.exists('a', { namespace }),
    false,
    `${label}: exists agrees that namespace ${JSON.stringify(namespace)} is empty`,
  )
}

/** Keys that trip naive backends: non-ASCII, spaces, the namespace separator. */
const KEYS = [
  'ключ',
  'キー 🔑',
  'a key with spaces',
  'a:b:c',
  ':leading and trailing:',
  'ünï cödé : 🎉',
  'punctuation!@#$%^&*()[]{}<>?/\\|~`\'"',
]

/**
 * Namespaces (the same key in two namespaces is two entries, for every command),
 * `clear` by namespace, and keys with characters that need care.
 * @internal
 */
export function namespaceCases(settings: Settings): Case[] {
  const cases: Case[] = [
    {
      name: 'namespaces: the same key in two namespaces is two entries, for every command',
      async body(h) {
        const a = `${h.ns}-a`
        const b = `${h.ns}-b`
        const cache = await h.cache({ namespace: a })
        await cache.set('k', 'in a')
        await cache.set('k', 'in b', { namespace: b })
        assert.equal(await cache.get('k'), 'in a', 'get: the cache namespace')
        assert.equal(await cache.get('k', { namespace: b }), 'in b', 'get: the namespace of the call')
        same(await cache.multiGet(['k', 'nothing']), ['in a', undefined], 'multiGet: the cache namespace')
        same(
          await cache.multiGet(['k', 'nothing'], { namespace: b }),
          ['in b', undefined],
          'multiGet: the namespace of the call',
        )

        await cache.set('only-a', 'A')
        assert.equal(
          await cache.exists('only-a', { namespace: b }),
          false,
          'exists: a key of namespace a is missing in b',
        )
        assert.equal(
          await cache.add('only-a', 'B', { namespace: b }),
          true,
          'add: a key of namespace a can be added in b',
        )
        assert.equal(await cache.get('only-a'), 'A', 'add in b left a alone')

        assert.equal(await cache.increment('n', 5), 5, 'increment in a')
        assert.equal(await cache.increment('n', 1, { namespace: b }), 1, 'increment in b starts from 0')
        assert.equal(await cache.increment('n'), 6, 'increment in a went on from its own value')

        await cache.set('e', 'v')
        assert.equal(await cache.expire('e', 100, { namespace: b }), false, 'expire: the key is missing in b')
        assert.equal(await cache.expire('e', 100), true, 'expire: the key exists in a')

        assert.equal(await cache.multiSet([['m', 'M in b']], { namespace: b }), true)
        assert.equal(await cache.get('m'), undefined, 'multiSet in b wrote nothing in a')
        assert.equal(await cache.get('m', { namespace: b }), 'M in b', 'multiSet in b wrote in b')

        assert.equal(await cache.delete('k', { namespace: b }), 1, 'delete in b')
        assert.equal(await cache.get('k'), 'in a', 'delete in b left a alone')
        assert.equal(await cache.delete('k', { namespace: b }), 0, 'the key is gone from b')

        // The namespace property and the per-call option address the same keys.
        cache.namespace = b
        assert.equal(await cache.get('m'), 'M in b', 'cache.namespace = b reads what { namespace: b } wrote')
        assert.equal(await cache.get('only-a'), 'B', 'cache.namespace = b reads what add wrote in b')
        cache.namespace = a
        assert.equal(await cache.get('only-a'), 'A', 'and back in a')

        // What reaches the backend is buildKey(key, namespace).
        const { encoding } = cache.serializer
        assert.ok(
          (await cache.backend.get(cache.buildKey('only-a'), encoding)) !== undefined,
          'the backend holds buildKey(key)',
        )
        assert.ok(
          (await cache.backend.get(cache.buildKey('only-a', b), encoding)) !== undefined,
          'the backend holds buildKey(key, b)',
        )
        assert.equal(
          await cache.backend.get(cache.buildKey('m'), encoding),
          undefined,
          'the backend has no buildKey("m") in a',
        )
      },
    },
    {
      name: 'keys with unicode, spaces and ":" work with every command, and stay distinct',
      async body(h) {
        for (const namespace of [h.ns, `${h.ns} ünï:cödé`]) {
          const cache = await h.cache({ namespace })
          const where = `in namespace ${JSON.stringify(namespace)}`
          for (const [i, key] of KEYS.entries()) {
            assert.equal(await cache.set(key, `value ${i}`), true, `set ${JSON.stringify(key)} ${where}`)
            assert.equal(await cache.get(key), `value ${i}`, `get ${JSON.stringify(key)} ${where}`)
            assert.equal(await cache.exists(key), true, `exists ${JSON.stringify(key)} ${where}`)
            await rejects(() => cache.add(key, 'other'), 'KeyExistsError', `add over ${JSON.stringify(key)} ${where}`)
            assert.equal(await cache.expire(key, 100), true, `expire ${JSON.stringify(key)} ${where}`)
            assert.equal(await cache.increment(`${key} #`, 2), 2, `increment ${JSON.stringify(key + ' #')} ${where}`)
          }
          same(
            await cache.multiGet(KEYS),
            KEYS.map((_, i) => `value ${i}`),
            `multiGet of every key ${where}: each keeps its own value`,
          )
          await cache.multiSet(KEYS.map((key, i) => [key, `again ${i}`]))
          same(
            await cache.multiGet(KEYS),
            KEYS.map((_, i) => `again ${i}`),
            `multiSet then multiGet of every key ${where}`,
          )
          for (const key of KEYS) {
            assert.equal(await cache.delete(key), 1, `delete ${JSON.stringify(key)} ${where}`)
            assert.equal(await cache.get(key), undefined, `${JSON.stringify(key)} is gone ${where}`)
          }
        }
      },
    },
  ]

  if (settings.clearNamespace) {
    cases.push(
      {
        name:
          'clear({ namespace }): removes that namespace only: never "…-users" keys when clearing "…-user", ' +
          "never the cache's own",
        async body(h) {
          const cache = await h.cache()
          const [user, users, userX] = [`${h.ns}-user`, `${h.ns}-users`, `${h.ns}-user-x`]
          for (const ns of [user, users, userX, h.ns]) await fill(cache, ns)
          assert.equal(await cache.clear({ namespace: user }), true, 'clear answers true')
          await expectEmpty(cache, user, `after clear({ namespace: ${JSON.stringify(user)} })`)
          for (const ns of [users, userX, h.ns])
            await expectFilled(cache, ns, `after clear({ namespace: ${JSON.stringify(user)} })`)
        },
      },
      {
        name: "clear(): with no namespace removes the cache's own namespace only",
        async body(h) {
          const user = `${h.ns}-user`
          const cache = await h.cache({ namespace: user })
          for (const ns of [user, `${h.ns}-users`, h.ns]) await fill(cache, ns)
          assert.equal(await cache.clear(), true, 'clear answers true')
          await expectEmpty(cache, user, 'after clear()')
          for (const ns of [`${h.ns}-users`, h.ns]) await expectFilled(cache, ns, 'after clear()')
          assert.equal(await cache.set('a', 'again'), true, 'the namespace takes writes again')
          assert.equal(await cache.get('a'), 'again', 'and reads them')
        },
      },
      {
        name: 'clear({ namespace }): removes every key of a namespace, however many (more than one SCAN batch)',
        async body(h) {
          const big = `${h.ns}-big`
          const cache = await h.cache()
          const keys = Array.from({ length: 1000 }, (_, i) => `k${i}`)
          await cache.multiSet(
            keys.map((k) => [k, 'v']),
            { namespace: big },
          )
          await fill(cache, `${h.ns}-bigger`)
          await cache.clear({ namespace: big })
          const left = (await cache.multiGet(keys, { namespace: big })).filter((v) => v !== undefined).length
          if (left !== 0) fail(`clear left ${left} of 1000 keys behind`)
          await expectFilled(cache, `${h.ns}-bigger`, 'after clearing a big namespace')
        },
      },
      {
        name: 'clear({ namespace }): glob characters (* ? [ ] \\) in a namespace are literal',
        async body(h) {
          const cache = await h.cache()
          const pairs: Array<[special: string, neighbours: string[]]> = [
            [`${h.ns}-a*`, [`${h.ns}-ab`, `${h.ns}-a`]],
            [`${h.ns}-q?`, [`${h.ns}-qq`]],
            [`${h.ns}-[xy]`, [`${h.ns}-x`, `${h.ns}-y`]],
            [`${h.ns}-back\\`, [`${h.ns}-back`]],
          ]
          for (const [special, neighbours] of pairs) for (const ns of [special, ...neighbours]) await fill(cache, ns)
          for (const [special, neighbours] of pairs) {
            await cache.clear({ namespace: special })
            await expectEmpty(cache, special, `after clear({ namespace: ${JSON.stringify(special)} })`)
            for (const ns of neighbours)
              await expectFilled(cache, ns, `after clear({ namespace: ${JSON.stringify(special)} })`)
          }
        },
      },
    )
  } else {
    cases.push({
      name: 'clear: a backend that cannot clear by namespace rejects, and removes nothing',
      async body(h) {
        const cache = await h.cache()
        const other = `${h.ns}-other`
        for (const ns of [h.ns, other]) await fill(cache, ns)
        const error = await rejects(() => cache.clear({ namespace: other }), 'Error', 'clear({ namespace })')
        assert.ok(error.message.length > 0, `the rejection says why: ${show(error)}`)
        await rejects(
          () => cache.clear(),
          'Error',
          "clear() of a cache with a namespace (clearing the cache's own namespace)",
        )
        for (const ns of [h.ns, other]) await expectFilled(cache, ns, 'after the rejected clears')
      },
    })
  }

  if (settings.clearAll) {
    cases.push({
      name: "clear(): a cache whose namespace is '' empties the whole store",
      async body(h) {
        const cache = await h.cache()
        for (const ns of [h.ns, `${h.ns}-other`]) await fill(cache, ns)
        cache.namespace = ''
        await cache.set('bare', 'no namespace')
        assert.equal(await cache.clear(), true, 'clear answers true')
        assert.equal(await cache.exists('bare'), false, 'keys without a namespace are gone')
        for (const ns of [h.ns, `${h.ns}-other`]) await expectEmpty(cache, ns, "after clear() with namespace ''")
      },
    })
  }
  return cases
}

import assert from 'node:assert/strict'
import { type Case, falsyValues } from './case.js'
import { fail, rejects, same, show } from './harness.js'
import type { Settings } from './options.js'

/**
 * Every command of the SPEC's table on its own, with the main serializer: what it
 * answers (exact types: `true`, not `'OK'` or `1`), what it stores, and that it is
 * atomic where two callers could race.
 * @internal
 */
export function commandCases(settings: Settings): Case[] {
  const { main, concurrency: n } = settings
  const falsy = falsyValues(main)
  const casCase: Case = {
    name: `set: of ${n} concurrent writes with the same casToken exactly one succeeds`,
    async body(h) {
      const cache = await h.cache()
      await cache.set('k', 'start')
      const token = await cache.backend.get(cache.buildKey('k'), cache.serializer.encoding)
      const answers = await Promise.all(
        Array.from({ length: n }, (_, i) => cache.set('k', `writer ${i}`, { casToken: token })),
      )
      const winners = answers.flatMap((ok, i) => (ok === true ? [i] : []))
      assert.equal(
        winners.length,
        1,
        `exactly one of ${n} writes with the same token succeeds (atomic compare-and-set); ${winners.length} did`,
      )
      for (const answer of answers)
        if (answer !== true && answer !== false) fail(`set with a casToken answers true or false, not ${show(answer)}`)
      assert.equal(await cache.get('k'), `writer ${winners[0]}`, 'the value is the one of the write that succeeded')
    },
  }

  const deleteIfCase: Case = {
    name:
      `backend.deleteIf (when the backend has it): removes the key only while it holds the expected value; of ` +
      `${n} racers one wins`,
    async body(h) {
      const cache = await h.cache()
      const { backend } = cache
      if (backend.deleteIf === undefined) return
      const key = cache.buildKey('lock')
      await cache.set('lock', 'owner-1')
      const token = await backend.get(key, cache.serializer.encoding)
      await cache.set('lock', 'owner-2')
      assert.equal(await backend.deleteIf(key, token), false, 'a value that changed since it was read is not removed')
      assert.equal(await cache.get('lock'), 'owner-2', 'the other owner keeps the key')
      const current = await backend.get(key, cache.serializer.encoding)
      const answers = await Promise.all(Array.from({ length: n }, () => backend.deleteIf!(key, current)))
      assert.equal(answers.filter((a) => a === true).length, 1, `exactly one of ${n} compare-and-deletes succeeds`)
      assert.equal(await cache.exists('lock'), false, 'the owner removed it')
      assert.equal(await backend.deleteIf(cache.buildKey('never'), token), false, 'a missing key: false')
    },
  }

  const cases: Case[] = [
    deleteIfCase,

    // add ------------------------------------------------------------------
    {
      name: 'add: stores a missing key and answers true',
      async body(h) {
        const cache = await h.cache()
        assert.equal(await cache.add('k', 'first'), true, 'add of a missing key answers true')
        assert.equal(await cache.get('k'), 'first', 'the added value is stored')
        assert.equal(await cache.exists('k'), true, 'the added key exists')
      },
    },
    {
      name: 'add: an existing key rejects with KeyExistsError and keeps its value (stored falsy values exist too)',
      async body(h) {
        const cache = await h.cache()
        await cache.set('k', 'first')
        await rejects(() => cache.add('k', 'second'), 'KeyExistsError', 'add of an existing key')
        assert.equal(await cache.get('k'), 'first', 'a rejected add does not overwrite the value')
        for (const [i, [label, value, expected]] of falsy.entries()) {
          await cache.set(`falsy${i}`, value)
          await rejects(() => cache.add(`falsy${i}`, 'other'), 'KeyExistsError', `add over a stored ${label}`)
          same(await cache.get(`falsy${i}`), expected, `a stored ${label} survives a rejected add`)
        }
      },
    },
    {
      name: `add: of ${n} concurrent adds of one key exactly one succeeds, and its value stays`,
      async body(h) {
        const cache = await h.cache()
        const outcomes = await Promise.allSettled(Array.from({ length: n }, (_, i) => cache.add('k', `writer ${i}`)))
        const winners = outcomes.flatMap((o, i) => (o.status === 'fulfilled' ? [i] : []))
        assert.equal(winners.length, 1, `exactly one of ${n} concurrent adds succeeds; ${winners.length} did`)
        for (const o of outcomes) {
          if (o.status === 'rejected' && !(o.reason instanceof Error && o.reason.name === 'KeyExistsError'))
            fail(`a losing add rejects with KeyExistsError, not ${show(o.reason)}`)
        }
        assert.equal(await cache.get('k'), `writer ${winners[0]}`, 'the value is the one of the add that succeeded')
      },
    },

    // get ------------------------------------------------------------------
    {
      name: 'get: a missing key reads as undefined, or as the default given (which is not stored)',
      async body(h) {
        const cache = await h.cache()
        assert.equal(await cache.get('missing'), undefined, 'a missing key reads as undefined')
        assert.equal(
          await cache.get('missing', { default: 'fallback' }),
          'fallback',
          'a missing key reads as the default',
        )
        const fallback = { an: 'object' }
        assert.equal(
          await cache.get('missing', { default: fallback }),
          fallback,
          'the default is answered as given (same object)',
        )
        assert.equal(await cache.exists('missing'), false, 'reading with a default stores nothing')
        await cache.set('k', 'stored')
        assert.equal(await cache.get('k', { default: 'fallback' }), 'stored', 'a hit ignores the default')
      },
    },
    {
      name: 'get: stored falsy values are hits, never the default',
      async body(h) {
        const cache = await h.cache()
        for (const [i, [label, value, expected]] of falsy.entries()) {
          assert.equal(await cache.set(`k${i}`, value), true, `set of ${label} answers true`)
          same(await cache.get(`k${i}`, { default: 'DEFAULT' }), expected, `a stored ${label} reads back as itself`)
          same(await cache.get(`k${i}`), expected, `a stored ${label} reads back as itself without a default`)
        }
      },
    },

    // multiGet -------------------------------------------------------------
    {
      name: 'multiGet: values in key order, undefined for misses, duplicate keys answered each time',
      async body(h) {
        const cache = await h.cache()
        await cache.set('a', 'A')
        await cache.set('b', 'B')
        await cache.set('empty', '')
        same(
          await cache.multiGet(['a', 'missing', 'b', 'a', 'empty', 'missing', 'other', 'b']),
          ['A', undefined, 'B', 'A', '', undefined, undefined, 'B'],
          'multiGet answers in key order, duplicates and misses in place',
        )
        same(await cache.multiGet(['b', 'a']), ['B', 'A'], 'order follows the keys, not the store')
        same(
          await cache.multiGet(['x', 'y', 'z']),
          [undefined, undefined, undefined],
          'only misses: one undefined per key',
        )
        same(await cache.multiGet([]), [], 'no keys: an empty array')
        same(await cache.multiGet(new Set(['b', 'missing', 'a'])), ['B', undefined, 'A'], 'any iterable of keys')
      },
    },
    // set ------------------------------------------------------------------
    {
      name: 'set: answers true, stores, and overwrites',
      async body(h) {
        const cache = await h.cache()
        assert.equal(await cache.set('k', 'one'), true, 'set answers true')
        assert.equal(await cache.get('k'), 'one', 'set stores the value')
        assert.equal(await cache.set('k', 'two'), true, 'set over an existing key answers true')
        assert.equal(await cache.get('k'), 'two', 'set overwrites')
      },
    },

    ...(settings.casToken ? [casCase] : []),

    // multiSet -------------------------------------------------------------
    {
      name: 'multiSet: stores every pair of an array of pairs, a Map, Object.entries or a generator, and answers true',
      async body(h) {
        const cache = await h.cache()
        assert.equal(
          await cache.multiSet([
            ['a1', 'A1'],
            ['a2', 'A2'],
          ]),
          true,
          'an array of pairs',
        )
        assert.equal(
          await cache.multiSet(
            new Map([
              ['m1', 'M1'],
              ['m2', 'M2'],
            ]),
          ),
          true,
          'a Map',
        )
        assert.equal(await cache.multiSet(Object.entries({ o1: 'O1', o2: 'O2' })), true, 'Object.entries')
        function* pairs(): Generator<[string, string]> {
          yield ['g1', 'G1']
          yield ['g2', 'G2']
        }
        assert.equal(await cache.multiSet(pairs()), true, 'a generator')
        same(
          await cache.multiGet(['a1', 'a2', 'm1', 'm2', 'o1', 'o2', 'g1', 'g2']),
          ['A1', 'A2', 'M1', 'M2', 'O1', 'O2', 'G1', 'G2'],
          'every pair is stored',
        )
      },
    },
    {
      name: 'multiSet: overwrites existing keys; the same key twice keeps the last value',
      async body(h) {
        const cache = await h.cache()
        await cache.set('k', 'old')
        await cache.multiSet([
          ['k', 'new'],
          ['other', 'x'],
        ])
        assert.equal(await cache.get('k'), 'new', 'multiSet overwrites an existing key')
        await cache.multiSet([
          ['twice', 'first'],
          ['between', 'b'],
          ['twice', 'last'],
        ])
        assert.equal(await cache.get('twice'), 'last', 'of two pairs with the same key, the last one wins')
      },
    },
    {
      name: 'multiSet: no pairs answers true (and does not reject, as a bare MSET would)',
      async body(h) {
        const cache = await h.cache()
        assert.equal(await cache.multiSet([]), true, 'an empty array of pairs')
        assert.equal(await cache.multiSet(new Map()), true, 'an empty Map')
        assert.equal(await cache.multiSet([['after', 'works']]), true, 'a multiSet after an empty one')
        assert.equal(await cache.get('after'), 'works', 'the backend still works after empty multiSets')
      },
    },

    {
      name: 'multiSet then multiGet: 300 keys keep their order (batched or sharded backends)',
      async body(h) {
        const cache = await h.cache()
        const keys = Array.from({ length: 300 }, (_, i) => `key ${i}`)
        const stored = keys.filter((_, i) => i % 3 !== 0)
        assert.equal(await cache.multiSet(stored.map((k) => [k, `value of ${k}`])), true, 'multiSet answers true')
        // A fixed shuffle: the answer must follow the order asked, not the order stored.
        const asked = keys.map((_, i) => keys[(i * 7) % keys.length]!)
        const values = await cache.multiGet(asked)
        assert.equal(values.length, asked.length, 'one answer per key')
        asked.forEach((k, i) => {
          const expected = stored.includes(k) ? `value of ${k}` : undefined
          if (values[i] !== expected)
            fail(`multiGet answer ${i} (key ${JSON.stringify(k)}) is ${show(values[i])}, expected ${show(expected)}`)
        })
      },
    },

    // delete ---------------------------------------------------------------
    {
      name: 'delete: answers 1 for an existing key (falsy values too) and 0 for a missing one; the key is gone',
      async body(h) {
        const cache = await h.cache()
        await cache.set('k', 'v')
        await cache.set('other', 'stays')
        assert.equal(await cache.delete('k'), 1, 'deleting an existing key answers 1')
        assert.equal(await cache.get('k'), undefined, 'the deleted key reads as a miss')
        assert.equal(await cache.exists('k'), false, 'the deleted key does not exist')
        assert.equal(await cache.delete('k'), 0, 'deleting it again answers 0')
        assert.equal(await cache.delete('never-stored'), 0, 'deleting a key never stored answers 0')
        assert.equal(await cache.get('other'), 'stays', 'delete removes that key only')
        for (const [i, [label, value]] of falsy.entries()) {
          await cache.set(`falsy${i}`, value)
          assert.equal(await cache.delete(`falsy${i}`), 1, `deleting a stored ${label} answers 1`)
        }
      },
    },

    // exists ---------------------------------------------------------------
    {
      name: 'exists: true for stored keys (falsy values included), false for missing and deleted ones',
      async body(h) {
        const cache = await h.cache()
        assert.equal(await cache.exists('k'), false, 'a missing key does not exist')
        await cache.set('k', 'v')
        assert.equal(await cache.exists('k'), true, 'a stored key exists')
        await cache.delete('k')
        assert.equal(await cache.exists('k'), false, 'a deleted key does not exist')
        for (const [i, [label, value]] of falsy.entries()) {
          await cache.set(`falsy${i}`, value)
          assert.equal(await cache.exists(`falsy${i}`), true, `a stored ${label} exists`)
        }
      },
    },

    // increment ------------------------------------------------------------
    {
      name: 'increment: a missing key starts at 0 and answers delta (default 1)',
      async body(h) {
        const cache = await h.cache()
        assert.equal(await cache.increment('one'), 1, 'increment(key) of a missing key answers 1')
        assert.equal(await cache.increment('five', 5), 5, 'increment(key, 5) of a missing key answers 5')
        assert.equal(await cache.increment('minus', -3), -3, 'increment(key, -3) of a missing key answers -3')
        assert.equal(await cache.increment('zero', 0), 0, 'increment(key, 0) of a missing key answers 0')
        for (const key of ['one', 'five', 'minus'])
          assert.equal(await cache.exists(key), true, `increment created ${key}`)
      },
    },
    {
      name: 'increment: adds positive, zero and negative deltas to the counter, across zero',
      async body(h) {
        const cache = await h.cache()
        assert.equal(await cache.increment('c', 10), 10)
        assert.equal(await cache.increment('c'), 11, 'default delta 1')
        assert.equal(await cache.increment('c', 5), 16, 'delta 5')
        assert.equal(await cache.increment('c', 0), 16, 'delta 0 answers the current value')
        assert.equal(await cache.increment('c', -20), -4, 'a negative delta goes below zero')
        assert.equal(await cache.increment('c', -1), -5, 'and further down')
        assert.equal(await cache.increment('c', 7), 2, 'and back above zero')
        assert.equal(await cache.increment('other', 1), 1, 'another counter is independent')
        assert.equal(await cache.increment('c', 0), 2, 'the counter kept its value')
      },
    },
    {
      name: 'increment: a delta that is not a safe integer rejects with TypeError and writes nothing',
      async body(h) {
        const cache = await h.cache()
        await rejects(() => cache.increment('c', 1.5), 'TypeError', 'increment by 1.5')
        await rejects(() => cache.increment('c', Number.NaN), 'TypeError', 'increment by NaN')
        assert.equal(await cache.exists('c'), false, 'a rejected increment creates nothing')
      },
    },
    {
      name: `increment: ${n} concurrent increments of one key each answer a different count, 1 to ${n}`,
      async body(h) {
        const cache = await h.cache()
        const answers = await Promise.all(Array.from({ length: n }, () => cache.increment('c')))
        same(
          [...answers].sort((a, b) => a - b),
          Array.from({ length: n }, (_, i) => i + 1),
          'every increment counted once (atomic read-modify-write)',
        )
        assert.equal(await cache.increment('c', 0), n, `the counter reads ${n}`)
      },
    },

    // expire ---------------------------------------------------------------
    {
      name: 'expire: a missing key answers false and creates nothing',
      async body(h) {
        const cache = await h.cache()
        assert.equal(await cache.expire('missing', 100), false, 'expire of a missing key answers false')
        assert.equal(await cache.expire('missing', 0), false, 'expire(key, 0) of a missing key answers false')
        assert.equal(await cache.exists('missing'), false, 'expire creates nothing')
      },
    },
    {
      name: 'expire: an existing key answers true and keeps its value (ttl 0, null and strings too)',
      async body(h) {
        const cache = await h.cache()
        await cache.set('k', 'v')
        assert.equal(await cache.expire('k', 100), true, 'expire(key, 100) answers true')
        assert.equal(await cache.expire('k', '10m'), true, "expire(key, '10m') answers true")
        assert.equal(await cache.expire('k', 0), true, 'expire(key, 0) answers true')
        assert.equal(await cache.expire('k', null), true, 'expire(key, null) answers true')
        assert.equal(await cache.get('k'), 'v', 'expire keeps the value')
        await rejects(() => cache.expire('k', -1), 'RangeError', 'expire with a negative ttl')
      },
    },

    // undefined ------------------------------------------------------------
    {
      name: 'set, add, multiSet: storing undefined is a TypeError and writes nothing',
      async body(h) {
        const cache = await h.cache()
        await rejects(() => cache.set('k', undefined), 'TypeError', 'set(key, undefined)')
        assert.equal(await cache.exists('k'), false, 'a rejected set writes nothing')
        await cache.set('kept', 'old')
        await rejects(() => cache.set('kept', undefined), 'TypeError', 'set(existing key, undefined)')
        assert.equal(await cache.get('kept'), 'old', 'a rejected set keeps the old value')
        await rejects(() => cache.add('added', undefined), 'TypeError', 'add(key, undefined)')
        assert.equal(await cache.exists('added'), false, 'a rejected add writes nothing')
        await rejects(
          () =>
            cache.multiSet([
              ['first', 'fine'],
              ['second', undefined],
            ]),
          'TypeError',
          'multiSet with an undefined value',
        )
        same(
          await cache.multiGet(['first', 'second']),
          [undefined, undefined],
          'a rejected multiSet writes none of its pairs',
        )
      },
    },

    // raw ------------------------------------------------------------------
    {
      name: 'raw: an unknown command rejects, and never throws synchronously',
      async body(h) {
        const cache = await h.cache()
        await rejects(
          () => cache.raw('oniocache-conformance-no-such-command', 'arg'),
          'Error',
          'raw of an unknown command',
        )
      },
    },

    // close ----------------------------------------------------------------
    {
      name: 'close: resolves; the cache works again afterwards and still has its data',
      async body(h) {
        const cache = await h.cache()
        await cache.set('k', 'v')
        assert.equal(await cache.close(), undefined, 'close resolves to undefined')
        assert.equal(await cache.get('k'), 'v', 'after close, the cache reads again, and the data is there')
        assert.equal(await cache.set('k2', 'w'), true, 'after close, the cache writes again')
        await cache.close()
        await cache.close()
        assert.equal(await cache.get('k2'), 'w', 'closing twice in a row, then using it again, works')
        await cache[Symbol.asyncDispose]()
        assert.equal(await cache.exists('k'), true, 'Symbol.asyncDispose closes, and the cache works again')
      },
    },
    {
      name: 'close: a cache that never ran a command closes, and then works',
      async body(h) {
        const cache = await h.cache()
        await cache.close()
        assert.equal(await cache.set('k', 'v'), true, 'set after close')
        assert.equal(await cache.get('k'), 'v', 'get after close')
      },
    },
  ]

  if (settings.raw !== undefined) {
    const raw = settings.raw
    cases.push({
      name: "raw: the backend's own check",
      async body(h) {
        await raw(await h.cache())
      },
    })
  }
  return cases
}

import assert from 'node:assert/strict'
import type { Case } from './case.js'
import { fail, rejects, same, sameBytes, sameString, show } from './harness.js'
import type { SerializerName, Settings } from './options.js'

type Sample = readonly [label: string, value: unknown, expected: unknown]

const TEXTS: ReadonlyArray<readonly [string, string]> = [
  ['accented text', 'héllo wörld — ünïcödé ✓'],
  ['CJK text', '日本語のテキスト、中文'],
  ['emoji (surrogate pairs, ZWJ sequences, flags)', '🎉 👩‍👩‍👧 🇫🇷'],
  ['the empty string', ''],
  ['"0"', '0'],
  ['a single space', ' '],
  ['"null"', 'null'],
  ['"undefined"', 'undefined'],
  ['"true"', 'true'],
  ['digits', '12345'],
  ['line breaks and tabs', 'line\nbreak\r\ntab\t'],
  ['a NUL character', 'nul\u0000inside'],
  ['quotes and backslashes', `"'\\"`],
  ['JSON-looking text', '{"a":1}'],
]

/** Every byte value, then byte sequences that are not valid UTF-8. @internal */
export function binaryPayload(): Uint8Array {
  const bytes: number[] = []
  for (let b = 0; b < 256; b++) bytes.push(b)
  bytes.push(
    0xef,
    0xbb,
    0xbf, // a UTF-8 byte order mark
    0xc3,
    0x28, // invalid 2-byte sequence
    0xa0,
    0xa1, // lone continuation bytes
    0xe2,
    0x28,
    0xa1, // invalid 3-byte sequence
    0xf0,
    0x28,
    0x8c,
    0xbc, // invalid 4-byte sequence
    0xc0,
    0x80, // overlong NUL
    0xed,
    0xa0,
    0x80, // an encoded UTF-16 surrogate
    0xff,
    0xfe,
    0xfd,
    0x00,
    0x00,
    0xff,
  )
  return Uint8Array.from(bytes)
}

/**
 * About a megabyte, ASCII, so that it stays under Memcached's default 1 MiB item limit whatever the serializer adds.
 */
const LARGE_LENGTH = 1_000_000

function largeText(): string {
  return '0123456789abcdefghijklmnopqrstuvwxyz'.repeat(Math.ceil(LARGE_LENGTH / 36)).slice(0, LARGE_LENGTH)
}

function largeBytes(): Uint8Array {
  const bytes = new Uint8Array(LARGE_LENGTH)
  let x = 0x2545f491
  for (let i = 0; i < bytes.length; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    bytes[i] = x & 0xff
  }
  return bytes
}

const BYTES: ReadonlySet<SerializerName> = new Set(['null', 'msgpack', 'v8'])
const TEXT: ReadonlySet<SerializerName> = new Set(['null', 'string', 'json'])
const NULLABLE: ReadonlySet<SerializerName> = new Set(['null', 'json', 'msgpack', 'v8'])

/** What each serializer must carry through the backend unchanged (after its own conversion). */
function samples(serializer: SerializerName): Sample[] {
  const out: Sample[] = TEXTS.map(([label, text]) => [label, text, text])
  if (serializer === 'string') {
    out.push(
      ['the number 42 (read back as "42")', 42, '42'],
      ['-1.5 (read back as "-1.5")', -1.5, '-1.5'],
      ['true (read back as "true")', true, 'true'],
    )
    return out
  }
  const nested = {
    name: 'ünï',
    list: [1, 'two', null, true, { deep: [[], {}] }],
    count: -3,
    ratio: 0.25,
    nothing: null,
    'key with : colon': 'ü',
    'ключ 🎉': 'значение',
  }
  out.push(
    ['0', 0, 0],
    ['-1.5', -1.5, -1.5],
    ['Number.MAX_SAFE_INTEGER', Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
    ['1e300', 1e300, 1e300],
    ['true', true, true],
    ['false', false, false],
    ['null', null, null],
    ['an empty array', [], []],
    ['an empty object', {}, {}],
    ['a nested object', nested, nested],
    ['an array of mixed values', [nested, 'x', 1, [null]], [nested, 'x', 1, [null]]],
  )
  if (BYTES.has(serializer)) {
    const bytes = binaryPayload()
    out.push(
      ['bytes 0x00–0xff and invalid UTF-8', bytes, bytes],
      ['no bytes', new Uint8Array(0), new Uint8Array(0)],
      ['bytes inside an object', { data: bytes, n: 1 }, { data: bytes, n: 1 }],
    )
  }
  if (serializer === 'v8' || serializer === 'null') {
    const rich = {
      when: new Date(Date.UTC(2024, 1, 29, 12, 0, 0, 5)),
      map: new Map<unknown, unknown>([
        ['a', 1],
        [2, 'b'],
      ]),
      set: new Set(['x', 'y']),
      big: 2n ** 70n,
      nan: Number.NaN,
      inf: -Infinity,
      gap: undefined,
    }
    out.push(['Date, Map, Set, BigInt, NaN, -Infinity, an undefined property', rich, rich])
  }
  return out
}

/** Values the serializer refuses: each must reject with SerializationError before anything is written. */
function unencodable(serializer: SerializerName): Array<readonly [string, () => unknown]> {
  switch (serializer) {
    case 'string':
      return [['an object without toString (Object.create(null))', () => Object.create(null) as unknown]]
    case 'json': {
      const cycle: Record<string, unknown> = {}
      cycle.self = cycle
      return [
        ['a BigInt', () => 10n],
        ['a cycle', () => cycle],
        ['a symbol', () => Symbol('s')],
      ]
    }
    case 'msgpack':
    case 'v8':
      return [
        ['a symbol', () => Symbol('s')],
        ['a function', () => () => 1],
      ]
    case 'null':
      return []
  }
}

/** Three values of the serializer for compare-and-set: two writes after the first. */
function casValues(serializer: SerializerName): [unknown, unknown, unknown] {
  if (serializer === 'string') return ['one', 'two', 'three']
  if (BYTES.has(serializer)) return [{ n: 1, bytes: binaryPayload() }, { n: 2 }, { n: 3 }]
  return [{ n: 1 }, { n: 2 }, { n: 3 }]
}

/** Stored values `increment` must refuse, per serializer. */
function nonIntegers(serializer: SerializerName): Sample[] {
  switch (serializer) {
    case 'string':
      return [
        ['"abc"', 'abc', 'abc'],
        ['"1.5"', '1.5', '1.5'],
        ['the empty string', '', ''],
        ['"5 apples"', '5 apples', '5 apples'],
      ]
    case 'json':
      return [
        ['"abc"', 'abc', 'abc'],
        ['1.5', 1.5, 1.5],
        ['an object', { a: 1 }, { a: 1 }],
        ['true', true, true],
        ['null', null, null],
        ['the empty string', '', ''],
      ]
    case 'null':
      return [
        ['"abc"', 'abc', 'abc'],
        ['1.5', 1.5, 1.5],
        ['an object', { a: 1 }, { a: 1 }],
        ['true', true, true],
        ['null', null, null],
      ]
    case 'msgpack':
    case 'v8':
      return [
        ['"abc"', 'abc', 'abc'],
        ['an object', { a: 1 }, { a: 1 }],
      ]
  }
}

/** Every value test, once per serializer the backend supports. @internal */
export function valueCases(settings: Settings): Case[] {
  const cases: Case[] = []
  for (const s of settings.serializers) {
    const tag = `[${s}]`
    cases.push({
      name: `${tag} values round-trip through set/get, add, and multiSet/multiGet`,
      async body(h) {
        const cache = await h.cache({ serializer: s })
        const all = samples(s)
        for (const [i, [label, value, expected]] of all.entries()) {
          assert.equal(await cache.set(`s${i}`, value), true, `${tag} set of ${label} answers true`)
          same(await cache.get(`s${i}`), expected, `${tag} set/get of ${label}`)
          await cache.add(`a${i}`, value)
          same(await cache.get(`a${i}`), expected, `${tag} add/get of ${label}`)
        }
        await cache.multiSet(all.map(([, value], i) => [`m${i}`, value]))
        const keys = all.flatMap((_, i) => [`m${i}`, `miss${i}`])
        const values = await cache.multiGet(keys)
        all.forEach(([label, , expected], i) => {
          same(values[2 * i], expected, `${tag} multiSet/multiGet of ${label}`)
          if (values[2 * i + 1] !== undefined)
            fail(`${tag} multiGet answers undefined for a miss between hits, not ${show(values[2 * i + 1])}`)
        })
      },
    })
    cases.push({
      name: `${tag} a value of about 1 MB round-trips${BYTES.has(s) ? ' (text and bytes)' : ''}`,
      async body(h) {
        const cache = await h.cache({ serializer: s })
        const text = largeText()
        await cache.set('text', text)
        sameString(await cache.get('text'), text, `${tag} get of a ${LARGE_LENGTH}-character string`)
        const [viaMulti] = await cache.multiGet(['text'])
        sameString(viaMulti, text, `${tag} multiGet of a ${LARGE_LENGTH}-character string`)
        if (BYTES.has(s)) {
          const bytes = largeBytes()
          await cache.set('bytes', bytes)
          sameBytes(await cache.get('bytes'), bytes, `${tag} get of ${LARGE_LENGTH} bytes`)
        }
      },
    })
    if (BYTES.has(s)) {
      cases.push({
        name: `${tag} bytes round-trip exactly: 0x00, 0xff and invalid UTF-8 included`,
        async body(h) {
          const cache = await h.cache({ serializer: s })
          const bytes = binaryPayload()
          await cache.set('bytes', bytes)
          sameBytes(await cache.get('bytes'), bytes, `${tag} get`)
          await cache.multiSet([
            ['m1', bytes],
            ['m2', bytes.slice().reverse()],
          ])
          const [m1, m2] = await cache.multiGet(['m1', 'm2'])
          sameBytes(m1, bytes, `${tag} multiGet, first`)
          sameBytes(m2, bytes.slice().reverse(), `${tag} multiGet, second`)
          // The raw stored value is bytes too: the backend was asked for them (encoding null).
          if (s !== 'null') {
            const stored = await cache.backend.get(cache.buildKey('bytes'), cache.serializer.encoding)
            if (!(stored instanceof Uint8Array))
              fail(`${tag} backend.get(key, null) answers bytes (a Uint8Array), not ${show(stored)}`)
            sameBytes(
              stored,
              cache.serializer.dumps(bytes) as Uint8Array,
              `${tag} the backend stores exactly the bytes the serializer made`,
            )
          }
        },
      })
    }
    if (NULLABLE.has(s)) {
      cases.push({
        name: `${tag} null is a value: get answers null, not the default; exists is true`,
        async body(h) {
          const cache = await h.cache({ serializer: s })
          await cache.set('k', null)
          assert.equal(await cache.get('k', { default: 'DEFAULT' }), null, `${tag} get answers the stored null`)
          assert.equal(await cache.exists('k'), true, `${tag} a stored null exists`)
          same(await cache.multiGet(['k', 'missing']), [null, undefined], `${tag} multiGet tells null from a miss`)
          await rejects(() => cache.add('k', 'other'), 'KeyExistsError', `${tag} add over a stored null`)
        },
      })
    }
    if (s === 'null') {
      cases.push({
        name: `${tag} values are kept as they are: get answers the very object stored, cycles included`,
        async body(h) {
          const cache = await h.cache({ serializer: s })
          const value: Record<string, unknown> = { n: 1 }
          value.self = value
          await cache.set('k', value)
          assert.equal(await cache.get('k'), value, `${tag} the same object comes back`)
        },
      })
    }
    const refused = unencodable(s)
    if (refused.length > 0) {
      cases.push({
        name: `${tag} a value the serializer cannot encode rejects with SerializationError and writes nothing`,
        async body(h) {
          const cache = await h.cache({ serializer: s })
          for (const [label, make] of refused) {
            const what = `${tag} ${label}`
            const error = await rejects(() => cache.set('k', make()), 'SerializationError', `${what}: set`)
            assert.ok(
              error.cause !== undefined,
              `${what}: the SerializationError carries the serializer's error as cause`,
            )
            assert.equal(await cache.exists('k'), false, `${what}: a rejected set writes nothing`)
            await cache.set('kept', 'old')
            await rejects(() => cache.set('kept', make()), 'SerializationError', `${what}: set over an existing key`)
            assert.equal(await cache.get('kept'), 'old', `${what}: a rejected set keeps the old value`)
            await rejects(() => cache.add('added', make()), 'SerializationError', `${what}: add`)
            assert.equal(await cache.exists('added'), false, `${what}: a rejected add writes nothing`)
            await rejects(
              () =>
                cache.multiSet([
                  ['first', 'fine'],
                  ['second', make()],
                ]),
              'SerializationError',
              `${what}: multiSet`,
            )
            same(
              await cache.multiGet(['first', 'second']),
              [undefined, undefined],
              `${what}: a rejected multiSet writes none of its pairs`,
            )
          }
        },
      })
    }
    if (TEXT.has(s)) {
      const read = (n: number): unknown => (s === 'string' ? String(n) : n)
      cases.push({
        name: `${tag} increment's counter reads back through the serializer (get gives ${show(read(3))})`,
        async body(h) {
          const cache = await h.cache({ serializer: s })
          for (const expected of [1, 2, 3])
            assert.equal(await cache.increment('c'), expected, `${tag} increment answers the new count`)
          assert.equal(await cache.get('c'), read(3), `${tag} get of a counter made by increment`)
          await cache.set('s', 5)
          assert.equal(await cache.increment('s', 2), 7, `${tag} increment of a number stored by set`)
          assert.equal(await cache.get('s'), read(7), `${tag} get after incrementing a number stored by set`)
          same(await cache.multiGet(['c', 's']), [read(3), read(7)], `${tag} multiGet of counters`)
        },
      })
    }
    cases.push({
      name: `${tag} increment of a stored value that is not an integer rejects with TypeError and keeps the value`,
      async body(h) {
        const cache = await h.cache({ serializer: s })
        for (const [i, [label, value, expected]] of nonIntegers(s).entries()) {
          await cache.set(`k${i}`, value)
          await rejects(() => cache.increment(`k${i}`, 1), 'TypeError', `${tag} increment of ${label}`)
          same(await cache.get(`k${i}`), expected, `${tag} ${label} is unchanged after the rejected increment`)
        }
      },
    })
    if (settings.casToken) {
      cases.push({
        name: `${tag} set with casToken (the stored value read earlier) writes only while it is current`,
        async body(h) {
          const cache = await h.cache({ serializer: s })
          const [v1, v2, v3] = casValues(s)
          const token = (): Promise<unknown> =>
            Promise.resolve(cache.backend.get(cache.buildKey('k'), cache.serializer.encoding))
          await cache.set('k', v1)
          const first = await token()
          assert.ok(first !== undefined, `${tag} backend.get(buildKey(key), encoding) answers the stored value`)
          assert.equal(
            await cache.set('k', v2, { casToken: first }),
            true,
            `${tag} set with the current token answers true`,
          )
          same(await cache.get('k'), v2, `${tag} and writes`)
          assert.equal(
            await cache.set('k', v3, { casToken: first }),
            false,
            `${tag} set with a stale token answers false`,
          )
          same(await cache.get('k'), v2, `${tag} and writes nothing`)
          assert.equal(await cache.set('k', v3, { casToken: await token() }), true, `${tag} a fresh token works again`)
          same(await cache.get('k'), v3, `${tag} and writes`)
          const last = await token()
          await cache.delete('k')
          assert.equal(
            await cache.set('k', v1, { casToken: last }),
            false,
            `${tag} set with the token of a key deleted since answers false`,
          )
          assert.equal(await cache.exists('k'), false, `${tag} and does not bring the key back`)
        },
      })
    }
  }
  return cases
}

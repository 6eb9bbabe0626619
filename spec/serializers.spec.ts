import { Buffer } from 'node:buffer'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  type AnySerializer,
  Cache,
  JsonSerializer,
  MemoryBackend,
  MemoryCache,
  MsgPackSerializer,
  NullSerializer,
  SerializationError,
  StringSerializer,
  V8Serializer,
} from '../lib/index.js'
import { rejectionError as rejection } from './support/fixtures/backends.js'

/** The error `fn` throws; fails the test if it returns. */
function thrown(fn: () => unknown): Error {
  try {
    fn()
  } catch (e) {
    assert.instance(e, Error)
    return e as Error
  }
  assert.unreachable('did not throw')
  throw new Error('unreachable')
}

function roundTrip(serializer: AnySerializer, value: unknown): unknown {
  return serializer.loads(serializer.dumps(value))
}

/** A view into the middle of a larger buffer, so that byteOffset matters. */
function offsetView(bytes: Uint8Array): Uint8Array {
  const big = new Uint8Array(bytes.byteLength + 16).fill(0x7b) // '{' — garbage if the offset is ignored
  big.set(bytes, 8)
  return big.subarray(8, 8 + bytes.byteLength)
}

function cycle(): Record<string, unknown> {
  const a: Record<string, unknown> = { name: 'a' }
  a.self = a
  return a
}

const ALL: Array<[string, () => AnySerializer]> = [
  ['NullSerializer', () => new NullSerializer()],
  ['StringSerializer', () => new StringSerializer()],
  ['JsonSerializer', () => new JsonSerializer()],
  ['MsgPackSerializer', () => new MsgPackSerializer()],
  ['V8Serializer', () => new V8Serializer()],
]

// ---------------------------------------------------------------------------
// Common to all

test('loads(undefined) is undefined for every serializer', () => {
  for (const [name, make] of ALL) assert.is(make().loads(undefined), undefined, name)
})

test('encoding: strings for Null/String/Json, bytes (null) for MsgPack/V8', () => {
  assert.is(new NullSerializer().encoding, 'utf8')
  assert.is(new StringSerializer().encoding, 'utf8')
  assert.is(new JsonSerializer().encoding, 'utf8')
  assert.is(new MsgPackSerializer().encoding, null)
  assert.is(new V8Serializer().encoding, null)
})

test('dumps answers what the encoding says: a string, or bytes', () => {
  for (const [name, make] of ALL.slice(1)) {
    const serializer = make()
    const stored = serializer.dumps({ a: 1 })
    if (serializer.encoding === 'utf8') assert.type(stored, 'string', name)
    else assert.instance(stored, Uint8Array, name)
  }
})

// ---------------------------------------------------------------------------
// NullSerializer

test('NullSerializer stores the value itself', () => {
  const serializer = new NullSerializer()
  const value = { list: [1, 2], fn: () => 1 }
  assert.is(serializer.dumps(value), value)
  assert.is(serializer.loads(value), value)
})

test('NullSerializer: a memory cache hands back the very object stored', async () => {
  const cache = new MemoryCache()
  const value = new Map([['k', { deep: true }]])
  await cache.set('k', value)
  assert.is(await cache.get('k'), value)
  assert.is(cache.backend.raw('get', ['k']), value)
})

// ---------------------------------------------------------------------------
// StringSerializer

test('StringSerializer dumps String(value)', () => {
  const serializer = new StringSerializer()
  for (const value of [42, -1.5, true, null, 'text', 10n, [1, 2], { a: 1 }, new Date(0)]) {
    assert.is(serializer.dumps(value), String(value), String(value))
  }
})

test('StringSerializer reads strings back as strings, bytes as UTF-8 text', () => {
  const serializer = new StringSerializer()
  assert.is(serializer.loads('42'), '42')
  assert.is(serializer.loads(''), '')
  const text = 'héllo wörld ✓ 🎉'
  assert.is(serializer.loads(new TextEncoder().encode(text)), text)
  assert.is(serializer.loads(offsetView(new TextEncoder().encode(text))), text, 'a view into a larger buffer')
})

test('StringSerializer through a cache: numbers come back as strings', async () => {
  const cache = new MemoryCache({ serializer: new StringSerializer() })
  await cache.set('n', 42)
  assert.is(cache.backend.raw('get', ['n']), '42')
  assert.is(await cache.get('n'), '42')
})

// ---------------------------------------------------------------------------
// JsonSerializer

test('JsonSerializer round-trips plain data', () => {
  const serializer = new JsonSerializer()
  const values: unknown[] = [
    null,
    true,
    false,
    0,
    -7,
    3.25,
    1e300,
    '',
    'text',
    'quotes " and \\ and \n newline',
    'ünïcødé ✓ 🎉',
    [],
    {},
    [1, 'two', null, [3]],
    { a: 1, nested: { list: [{ x: null }], flag: false }, 'key with space': 'v' },
  ]
  for (const value of values) assert.equal(roundTrip(serializer, value), value, JSON.stringify(value))
})

test('JsonSerializer writes plain JSON text that any JSON reader understands', () => {
  const serializer = new JsonSerializer()
  const value = { a: 1, b: [true, null, 'x'], c: { d: 2.5 } }
  const text = serializer.dumps(value)
  assert.type(text, 'string')
  assert.equal(JSON.parse(text), value)
  assert.is(serializer.dumps(null), 'null')
  assert.is(serializer.dumps('x'), '"x"')
})

test('JsonSerializer reads bytes as UTF-8 JSON', () => {
  const serializer = new JsonSerializer()
  const value = { name: 'zoë', list: [1, 2] }
  const bytes = new TextEncoder().encode(JSON.stringify(value))
  assert.equal(serializer.loads(bytes), value)
  assert.equal(serializer.loads(offsetView(bytes)), value, 'a view into a larger buffer')
  assert.equal(serializer.loads(Buffer.from(JSON.stringify(value))), value)
})

test('JsonSerializer refuses what JSON cannot represent instead of storing something else', () => {
  const serializer = new JsonSerializer()
  assert.instance(
    thrown(() => serializer.dumps(cycle())),
    TypeError,
  )
  assert.instance(
    thrown(() => serializer.dumps(10n)),
    TypeError,
  )
  assert.instance(
    thrown(() => serializer.dumps({ big: 10n })),
    TypeError,
  )
  assert.instance(
    thrown(() => serializer.dumps(() => 1)),
    TypeError,
  )
  assert.instance(
    thrown(() => serializer.dumps(Symbol('s'))),
    TypeError,
  )
  assert.instance(
    thrown(() => serializer.dumps(undefined)),
    TypeError,
  )
})

test('JsonSerializer does not pollute prototypes', () => {
  const serializer = new JsonSerializer()
  const out = serializer.loads('{"__proto__": {"polluted": 1}, "a": {"__proto__": {"polluted": 2}}}') as Record<
    string,
    unknown
  >
  assert.ok(Object.hasOwn(out, '__proto__'), '__proto__ is an own property')
  assert.equal(Object.getOwnPropertyDescriptor(out, '__proto__')?.value, { polluted: 1 })
  assert.is(Object.getPrototypeOf(out), Object.prototype)
  assert.is(out.polluted, undefined)
  assert.ok(Object.hasOwn(out.a as object, '__proto__'))
  assert.is(({} as Record<string, unknown>).polluted, undefined)
  assert.is((Object.prototype as Record<string, unknown>).polluted, undefined)
})

test('JsonSerializer through a cache: a stored __proto__ payload does not pollute', async () => {
  const cache = new MemoryCache({ serializer: new JsonSerializer() })
  cache.backend.raw('set', ['evil', '{"__proto__": {"polluted": "yes"}}'])
  const out = (await cache.get('evil')) as Record<string, unknown>
  assert.ok(Object.hasOwn(out, '__proto__'))
  assert.is(({} as Record<string, unknown>).polluted, undefined)
})

test('a cache with JsonSerializer over the memory backend stores strings, and hands back copies', async () => {
  const cache = new Cache({ serializer: new JsonSerializer() })
  assert.instance(cache.backend, MemoryBackend)
  const value = { a: 1, b: [1, 2] }
  await cache.set('k', value)
  const stored = await cache.backend.raw('get', ['k'])
  assert.type(stored, 'string')
  assert.equal(JSON.parse(stored as string), value)
  assert.is(await cache.raw('get', 'k'), stored)
  const read = await cache.get('k')
  assert.equal(read, value)
  assert.is.not(read, value, 'a copy, not the stored object')
  await cache.multiSet([
    ['m', [1]],
    ['n', null],
  ])
  assert.is(await cache.backend.raw('get', ['m']), '[1]')
  assert.is(await cache.backend.raw('get', ['n']), 'null')
  assert.equal(await cache.multiGet(['m', 'n', 'missing']), [[1], null, undefined])
})

test('JsonSerializer through a cache: a counter stored as JSON can be incremented and read back', async () => {
  const cache = new MemoryCache({ serializer: new JsonSerializer() })
  await cache.set('n', 5)
  assert.is(await cache.increment('n', 2), 7)
  assert.is(await cache.get('n'), 7)
})

// ---------------------------------------------------------------------------
// MsgPackSerializer

test('MsgPackSerializer round-trips nested objects, arrays and scalars', () => {
  const serializer = new MsgPackSerializer()
  const values: unknown[] = [
    null,
    true,
    false,
    0,
    1,
    -1,
    127,
    128,
    -33,
    65_535,
    2 ** 32,
    -(2 ** 31),
    2 ** 53 - 1,
    // biome-ignore lint/suspicious/noApproximativeNumericConstant: a plain float, not π
    3.14159,
    -0.5,
    '',
    'text',
    'ünïcødé ✓ 🎉',
    'x'.repeat(70_000),
    [],
    {},
    [1, [2, [3, [4]]]],
    { a: { b: { c: { d: [1, 'two', null, { e: false }] } } }, list: Array.from({ length: 100 }, (_, i) => i) },
  ]
  for (const value of values)
    assert.equal(
      roundTrip(serializer, value),
      value,
      typeof value === 'string' ? value.slice(0, 20) : JSON.stringify(value),
    )
})

test('MsgPackSerializer round-trips binary data', () => {
  const serializer = new MsgPackSerializer()
  const bytes = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff)
  const out = roundTrip(serializer, { blob: bytes, empty: new Uint8Array(0) }) as {
    blob: Uint8Array
    empty: Uint8Array
  }
  assert.instance(out.blob, Uint8Array)
  assert.equal([...out.blob], [...bytes])
  assert.is(out.empty.byteLength, 0)
  const top = roundTrip(serializer, bytes) as Uint8Array
  assert.equal([...top], [...bytes])
})

test('MsgPackSerializer writes plain MessagePack (no msgpackr record extension)', () => {
  const serializer = new MsgPackSerializer()
  // A map of one entry (fixmap 0x81 or map16 0xde 0x0001), key fixstr "a", value fixint 1 —
  // with msgpackr records it would be a 0xd4 0x72 structure definition and a 0x40.. record id.
  const plainMap = (bytes: Uint8Array): boolean => {
    const list = [...bytes]
    const body =
      list[0] === 0x81 ? list.slice(1) : list[0] === 0xde && list[1] === 0 && list[2] === 1 ? list.slice(3) : undefined
    return body !== undefined && body.join() === [0xa1, 0x61, 0x01].join()
  }
  assert.ok(
    plainMap(serializer.dumps({ a: 1 })),
    `not a plain MessagePack map: ${[...serializer.dumps({ a: 1 })].join(' ')}`,
  )
  assert.ok(plainMap(serializer.dumps({ a: 1 })), 'the same plain map the second time (no shared structures)')
  assert.equal([...serializer.dumps([1, 'a'])], [0x92, 0x01, 0xa1, 0x61])
  assert.equal([...serializer.dumps(null)], [0xc0])
  // Another instance (another process) reads it without shared state.
  const other = new MsgPackSerializer()
  const value = { user: { id: 7, tags: ['a', 'b'] } }
  assert.equal(other.loads(serializer.dumps(value)), value)
})

test('MsgPackSerializer reads bytes kept as a latin1 string, and byte views', () => {
  const serializer = new MsgPackSerializer()
  const value = { s: 'é', n: 300, list: [1, 2] }
  const bytes = serializer.dumps(value)
  assert.equal(serializer.loads(Buffer.from(bytes).toString('latin1')), value)
  assert.equal(serializer.loads(offsetView(bytes)), value)
})

test('MsgPackSerializer refuses functions, symbols and cycles', () => {
  const serializer = new MsgPackSerializer()
  assert.instance(
    thrown(() => serializer.dumps(() => 1)),
    TypeError,
  )
  assert.instance(
    thrown(() => serializer.dumps(function named() {})),
    TypeError,
  )
  thrown(() => serializer.dumps(Symbol('s')))
  thrown(() => serializer.dumps(cycle()))
  // It still works after refusing.
  assert.equal(roundTrip(serializer, { after: [1, 'two'] }), { after: [1, 'two'] })
})

test('MsgPackSerializer values already packed are not changed by later packing', () => {
  const serializer = new MsgPackSerializer()
  const kept: Array<[number, Uint8Array]> = []
  for (let i = 0; i < 2_000; i++) {
    if (i % 7 === 3) {
      try {
        serializer.dumps({ i, pad: 'y'.repeat(i % 300), bad: Symbol('x') })
      } catch {
        // refused, as it should be
      }
    }
    kept.push([i, serializer.dumps({ i, pad: 'x'.repeat(i % 500) })])
  }
  for (const [i, bytes] of kept) assert.equal(serializer.loads(bytes), { i, pad: 'x'.repeat(i % 500) })
})

test('MsgPackSerializer does not pollute prototypes', () => {
  const serializer = new MsgPackSerializer()
  const evil = serializer.dumps(JSON.parse('{"__proto__": {"polluted": 1}, "a": 1}'))
  const out = serializer.loads(evil) as Record<string, unknown>
  assert.is(Object.getPrototypeOf(out), Object.prototype)
  assert.is(out.a, 1)
  assert.is(({} as Record<string, unknown>).polluted, undefined)
})

test('MsgPackSerializer: corrupt bytes are refused', () => {
  const serializer = new MsgPackSerializer()
  thrown(() => serializer.loads(Uint8Array.from([0x92, 0x01]))) // an array of 2 with one element
})

// ---------------------------------------------------------------------------
// V8Serializer

test('V8Serializer keeps Date, Map, Set, BigInt and typed arrays', () => {
  const serializer = new V8Serializer()
  const date = new Date('2024-02-29T12:34:56.789Z')
  const outDate = roundTrip(serializer, date)
  assert.instance(outDate, Date)
  assert.is((outDate as Date).getTime(), date.getTime())

  const map = new Map<unknown, unknown>([
    ['a', 1],
    [2, { b: [3] }],
    [{ objectKey: true }, 'v'],
  ])
  const outMap = roundTrip(serializer, map)
  assert.instance(outMap, Map)
  assert.equal([...(outMap as Map<unknown, unknown>)], [...map])

  const set = new Set([1, 'two', 3n])
  const outSet = roundTrip(serializer, set)
  assert.instance(outSet, Set)
  assert.equal([...(outSet as Set<unknown>)], [1, 'two', 3n])

  assert.is(roundTrip(serializer, 2n ** 100n), 2n ** 100n)
  assert.is(roundTrip(serializer, -5n), -5n)

  const u8 = Uint8Array.from([0, 1, 254, 255])
  const f64 = Float64Array.from([1.5, -0, Number.NaN, Infinity])
  const i32 = Int32Array.from([-(2 ** 31), 2 ** 31 - 1])
  const b64 = BigInt64Array.from([-(2n ** 63n), 2n ** 63n - 1n])
  const out = roundTrip(serializer, { u8, f64, i32, b64 }) as {
    u8: Uint8Array
    f64: Float64Array
    i32: Int32Array
    b64: BigInt64Array
  }
  assert.instance(out.u8, Uint8Array)
  assert.instance(out.f64, Float64Array)
  assert.instance(out.i32, Int32Array)
  assert.instance(out.b64, BigInt64Array)
  assert.equal([...out.u8], [...u8])
  assert.ok(Object.is(out.f64[1], -0) && Number.isNaN(out.f64[2]) && out.f64[3] === Infinity && out.f64[0] === 1.5)
  assert.equal([...out.i32], [...i32])
  assert.equal([...out.b64], [...b64])
})

test('V8Serializer keeps cycles and shared references', () => {
  const serializer = new V8Serializer()
  const shared = { n: 1 }
  const value: Record<string, unknown> = { left: shared, right: shared, list: [shared] }
  value.self = value
  const out = roundTrip(serializer, value) as Record<string, unknown>
  assert.is.not(out, value)
  assert.is(out.self, out)
  assert.is(out.left, out.right)
  assert.is((out.list as unknown[])[0], out.left)
  assert.equal(out.left, { n: 1 })
})

test('V8Serializer keeps undefined inside objects, NaN and RegExp', () => {
  const serializer = new V8Serializer()
  const out = roundTrip(serializer, { u: undefined, nan: Number.NaN, re: /a+b/gi }) as {
    u: unknown
    nan: number
    re: RegExp
  }
  assert.ok(Object.hasOwn(out, 'u'))
  assert.ok(Number.isNaN(out.nan))
  assert.instance(out.re, RegExp)
  assert.is(out.re.source, 'a+b')
  assert.is(out.re.flags, 'gi')
})

test('V8Serializer reads bytes kept as a latin1 string, and byte views', () => {
  const serializer = new V8Serializer()
  const value = new Map([['é', new Set([1n])]])
  const bytes = serializer.dumps(value)
  assert.equal([...(serializer.loads(Buffer.from(bytes).toString('latin1')) as Map<string, Set<bigint>>)], [...value])
  assert.equal([...(serializer.loads(offsetView(bytes)) as Map<string, Set<bigint>>)], [...value])
})

test('V8Serializer refuses functions and symbols; corrupt bytes are refused', () => {
  const serializer = new V8Serializer()
  thrown(() => serializer.dumps(() => 1))
  thrown(() => serializer.dumps({ nested: () => 1 }))
  thrown(() => serializer.dumps(Symbol('s')))
  thrown(() => serializer.loads(Uint8Array.from([1, 2, 3])))
})

test('V8Serializer through a cache: bytes are stored and a copy comes back', async () => {
  const cache = new MemoryCache({ serializer: new V8Serializer() })
  const value = { when: new Date(5), tags: new Set(['a']) }
  await cache.set('k', value)
  assert.instance(cache.backend.raw('get', ['k']), Uint8Array)
  const out = (await cache.get('k')) as typeof value
  assert.is.not(out, value)
  assert.instance(out.when, Date)
  assert.is(out.when.getTime(), 5)
  assert.equal([...out.tags], ['a'])
})

test('MsgPackSerializer through a cache: bytes are stored and binary comes back', async () => {
  const cache = new MemoryCache({ serializer: new MsgPackSerializer() })
  await cache.set('k', { blob: Uint8Array.from([9, 8, 7]), n: 1 })
  assert.instance(cache.backend.raw('get', ['k']), Uint8Array)
  const out = (await cache.get('k')) as { blob: Uint8Array; n: number }
  assert.equal([...out.blob], [9, 8, 7])
  assert.is(out.n, 1)
})

// ---------------------------------------------------------------------------
// Values that cannot be encoded: SerializationError, nothing written

const UNENCODABLE: Array<[string, () => AnySerializer, () => unknown]> = [
  ['JSON: a cycle', () => new JsonSerializer(), cycle],
  ['JSON: a BigInt', () => new JsonSerializer(), () => 10n],
  ['JSON: a BigInt inside an object', () => new JsonSerializer(), () => ({ n: 1n })],
  ['JSON: a function', () => new JsonSerializer(), () => () => 1],
  ['V8: a function', () => new V8Serializer(), () => () => 1],
  ['V8: a symbol', () => new V8Serializer(), () => Symbol('s')],
  ['MsgPack: a function', () => new MsgPackSerializer(), () => () => 1],
  ['MsgPack: a symbol', () => new MsgPackSerializer(), () => Symbol('s')],
  ['String: an object without a prototype', () => new StringSerializer(), () => Object.create(null) as unknown],
  [
    'String: an object whose toString throws',
    () => new StringSerializer(),
    () => ({
      toString: () => {
        throw new Error('no text')
      },
    }),
  ],
]

for (const [label, make, badValue] of UNENCODABLE) {
  test(`${label}: set rejects with SerializationError (cause: the serializer's error), writes nothing`, async () => {
    const serializer = make()
    const direct = thrown(() => serializer.dumps(badValue()))
    const cache = new MemoryCache({ serializer })
    await cache.set('existing', 'old')

    const error = await rejection(cache.set('k', badValue()))
    assert.instance(error, SerializationError)
    assert.is(error.name, 'SerializationError')
    assert.instance(error.cause, Error)
    assert.is((error.cause as Error).constructor, direct.constructor)
    assert.is((error.cause as Error).message, direct.message)
    assert.match(error.message, serializer.constructor.name)
    assert.match(error.message, '"k"')
    assert.match(error.message, 'nothing was written')
    assert.is(await cache.exists('k'), false)
    assert.is(await cache.get('k'), undefined)
    assert.is(cache.backend.size, 1)

    assert.instance(await rejection(cache.set('existing', badValue())), SerializationError)
    assert.is(await cache.get('existing'), serializer.loads(serializer.dumps('old')), 'the old value is untouched')
    assert.instance(await rejection(cache.add('k', badValue())), SerializationError)
    assert.is(await cache.exists('k'), false)
    assert.is(cache.backend.size, 1)
  })
}

test('the cause is the very error the serializer threw', async () => {
  const boom = new Error('boom')
  const cache = new MemoryCache({ serializer: new StringSerializer() })
  const error = await rejection(
    cache.set('k', {
      toString: () => {
        throw boom
      },
    }),
  )
  assert.instance(error, SerializationError)
  assert.is(error.cause, boom)
})

test('multiSet with one value that cannot be encoded writes none of the pairs', async () => {
  for (const serializer of [new JsonSerializer(), new V8Serializer(), new MsgPackSerializer()]) {
    const cache = new MemoryCache({ serializer })
    await cache.set('a', 'before')
    const pairs: Array<[string, unknown]> = [
      ['a', 'after'],
      ['b', 2],
      ['bad', () => 1],
      ['c', 3],
    ]
    const error = await rejection(cache.multiSet(pairs))
    assert.instance(error, SerializationError, serializer.constructor.name)
    assert.equal(
      await cache.multiGet(['a', 'b', 'bad', 'c']),
      ['before', undefined, undefined, undefined],
      serializer.constructor.name,
    )
    assert.is(cache.backend.size, 1)
  }
})

test('multiSet from a Map with a bad last value writes nothing', async () => {
  const cache = new MemoryCache({ serializer: new JsonSerializer() })
  const error = await rejection(
    cache.multiSet(
      new Map<string, unknown>([
        ['a', 1],
        ['b', 2],
        ['z', cycle()],
      ]),
    ),
  )
  assert.instance(error, SerializationError)
  assert.is(cache.backend.size, 0)
})

// ---------------------------------------------------------------------------
// Corrupt stored values

const CORRUPT: Array<[string, () => AnySerializer, unknown]> = [
  ['JsonSerializer', () => new JsonSerializer(), '{"not": json'],
  ['JsonSerializer (bytes)', () => new JsonSerializer(), new TextEncoder().encode('nope')],
  ['MsgPackSerializer', () => new MsgPackSerializer(), Uint8Array.from([0x92, 0x01])],
  ['V8Serializer', () => new V8Serializer(), Uint8Array.from([1, 2, 3])],
]

for (const [label, make, stored] of CORRUPT) {
  test(`${label}: a corrupt stored value makes get and multiGet reject with SerializationError`, async () => {
    const serializer = make()
    const cache = new MemoryCache({ serializer })
    cache.backend.raw('set', ['bad', stored])
    await cache.set('good', { fine: true })
    const direct = thrown(() => serializer.loads(stored as never))
    const error = await rejection(cache.get('bad'))
    assert.instance(error, SerializationError)
    assert.is((error.cause as Error).constructor, direct.constructor)
    assert.match(error.message, serializer.constructor.name)
    assert.instance(await rejection(cache.multiGet(['good', 'bad'])), SerializationError)
    assert.equal(await cache.get('good'), { fine: true }, 'other keys still read')
  })
}

// ---------------------------------------------------------------------------
// Per-call dumps / loads

/** A serializer that counts its calls, to prove an override replaced it. */
class CountingJson extends JsonSerializer {
  dumpsCalls = 0
  loadsCalls = 0
  override dumps(value: unknown): string {
    this.dumpsCalls++
    return super.dumps(value)
  }
  override loads(stored: string | Uint8Array | undefined): unknown {
    this.loadsCalls++
    return super.loads(stored)
  }
}

test('a per-call dumps replaces the serializer for that write', async () => {
  const serializer = new CountingJson()
  const cache = new MemoryCache({ serializer })
  const seen: unknown[] = []
  const dumps = (value: unknown): string => {
    seen.push(value)
    return `custom:${String(value)}`
  }
  await cache.set('s', 'x', { dumps })
  await cache.add('a', 'y', { dumps })
  await cache.multiSet(
    [
      ['m1', 1],
      ['m2', 2],
    ],
    { dumps },
  )
  assert.equal(seen, ['x', 'y', 1, 2])
  assert.is(serializer.dumpsCalls, 0)
  assert.equal(
    [
      cache.backend.raw('get', ['s']),
      cache.backend.raw('get', ['a']),
      cache.backend.raw('get', ['m1']),
      cache.backend.raw('get', ['m2']),
    ],
    ['custom:x', 'custom:y', 'custom:1', 'custom:2'],
  )
  await cache.set('plain', 'z')
  assert.is(serializer.dumpsCalls, 1, 'the next call uses the serializer again')
  assert.is(cache.backend.raw('get', ['plain']), '"z"')
})

test('a per-call loads replaces the serializer for that read, and is not called for misses', async () => {
  const serializer = new CountingJson()
  const cache = new MemoryCache({ serializer })
  cache.backend.raw('set', ['a', 'raw-a'])
  cache.backend.raw('set', ['b', 'raw-b'])
  const seen: unknown[] = []
  const loads = (stored: unknown): unknown => {
    seen.push(stored)
    return `loaded(${String(stored)})`
  }
  assert.is(await cache.get('a', { loads }), 'loaded(raw-a)')
  assert.is(await cache.get('missing', { loads, default: 'dflt' }), 'dflt')
  assert.equal(await cache.multiGet(['a', 'missing', 'b'], { loads }), ['loaded(raw-a)', undefined, 'loaded(raw-b)'])
  assert.equal(seen, ['raw-a', 'raw-a', 'raw-b'])
  assert.is(serializer.loadsCalls, 0)
})

test('a per-call dumps that throws rejects with SerializationError (cause kept) and writes nothing', async () => {
  const cache = new MemoryCache({ serializer: new JsonSerializer() })
  const boom = new RangeError('too big')
  const error = await rejection(
    cache.set('k', 1, {
      dumps: () => {
        throw boom
      },
    }),
  )
  assert.instance(error, SerializationError)
  assert.is(error.cause, boom)
  assert.is(await cache.exists('k'), false)
})

test('a per-call dumps that answers undefined rejects with SerializationError and writes nothing', async () => {
  const cache = new MemoryCache({ serializer: new JsonSerializer() })
  const error = await rejection(cache.set('k', 1, { dumps: () => undefined }))
  assert.instance(error, SerializationError)
  assert.match(error.message, 'nothing was written')
  assert.is(cache.backend.size, 0)
})

test('a per-call loads that throws rejects with SerializationError (cause kept)', async () => {
  const cache = new MemoryCache({ serializer: new JsonSerializer() })
  await cache.set('k', 1)
  const boom = new Error('cannot read')
  const error = await rejection(
    cache.get('k', {
      loads: () => {
        throw boom
      },
    }),
  )
  assert.instance(error, SerializationError)
  assert.is(error.cause, boom)
  assert.is(await cache.get('k'), 1, 'the stored value is fine with the default loads')
})

test('a serializer can be swapped on a live cache', async () => {
  const cache = new MemoryCache()
  cache.serializer = new JsonSerializer()
  await cache.set('k', { a: 1 })
  assert.is(cache.backend.raw('get', ['k']), '{"a":1}')
  cache.serializer = new StringSerializer()
  assert.is(await cache.get('k'), '{"a":1}')
})

test.run()

/**
 * Property-based tests (fast-check). Deterministic: every property runs from one
 * seed, `ONIOCACHE_FC_SEED` or a fixed default (spec/support/fc-config.ts), and
 * a failure prints it. Replay a failure with `ONIOCACHE_FC_SEED=<seed>`.
 */
import fc from 'fast-check'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { argumentsKey } from '../lib/decorators/key-encoding.js'
import {
  type AnySerializer,
  type Duration,
  JsonSerializer,
  MemoryCache,
  MsgPackSerializer,
  StringSerializer,
  toSeconds,
  V8Serializer,
} from '../lib/index.js'
import {
  hasProtoKey,
  type SameValueOptions,
  sameArguments,
  sameValue,
  withoutNegativeZero,
} from './support/deep-equal.js'
import { check, checkAsync, prng } from './support/fc-config.js'
import { argumentList, mutate, twin } from './support/key-arguments.js'
import { type Answer, builtKey, MemoryModel, type Ns, type Op } from './support/memory-model.js'

// ---------------------------------------------------------------------------
// 1. The memory backend against a model

const KEYS = ['k0', 'k1', 'k2', 'k3', 'k4', 'k5']
const NAMESPACES: Ns[] = [undefined, 'a', 'b']
const OBJ_A = Object.freeze({ a: 1 })
const OBJ_B = Object.freeze(['b'])
/** Integers, integer text (counters), things increment refuses, values near the safe-integer edge. */
const VALUES: unknown[] = [
  0,
  1,
  -5,
  41,
  1.5,
  Number.MAX_SAFE_INTEGER - 1,
  Number.MAX_SAFE_INTEGER,
  2 ** 53,
  '7',
  '+3',
  '-12',
  '007',
  '',
  'x',
  '1.5',
  '9007199254740993',
  null,
  true,
  false,
  OBJ_A,
  OBJ_B,
]
/** Seconds: option left out, null, 0, fractions, whole seconds. */
const TTLS = [undefined, null, 0, 0.001, 0.0015, 0.25, 1, 1.5, 3, 60]
const EXPIRE_TTLS = [null, 0, 0.001, 0.5, 1, 2.5, 60]
const ADVANCES = [0, 0.5, 1, 249, 250, 251, 999, 1000, 1001, 1500, 60_000]
const DELTAS = [-3, -1, 0, 1, 2, 1000, Number.MAX_SAFE_INTEGER, 0.5]

const key = fc.constantFrom(...KEYS)
const ns = fc.constantFrom(...NAMESPACES)
const value = fc.constantFrom(...VALUES)
const ttl = fc.constantFrom(...TTLS)

const op: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant('get' as const), key, ns }), weight: 4 },
  {
    arbitrary: fc.record({ kind: fc.constant('multiGet' as const), keys: fc.array(key, { maxLength: 4 }), ns }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('set' as const),
      key,
      ns,
      value,
      ttl,
      cas: fc.option(value, { nil: undefined, freq: 4 }),
    }),
    weight: 4,
  },
  { arbitrary: fc.record({ kind: fc.constant('add' as const), key, ns, value, ttl }), weight: 2 },
  {
    arbitrary: fc.record({
      kind: fc.constant('multiSet' as const),
      pairs: fc.array(fc.tuple(key, value), { maxLength: 3 }),
      ns,
      ttl,
    }),
    weight: 1,
  },
  { arbitrary: fc.record({ kind: fc.constant('delete' as const), key, ns }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('exists' as const), key, ns }), weight: 2 },
  {
    arbitrary: fc.record({ kind: fc.constant('increment' as const), key, ns, delta: fc.constantFrom(...DELTAS) }),
    weight: 2,
  },
  {
    arbitrary: fc.record({ kind: fc.constant('expire' as const), key, ns, ttl: fc.constantFrom(...EXPIRE_TTLS) }),
    weight: 2,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('clear' as const),
      ns: fc.constantFrom<Ns | ''>(undefined, '', 'a', 'b'),
    }),
    weight: 1,
  },
  { arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.constantFrom(...ADVANCES) }), weight: 3 },
)

async function answer(promise: Promise<unknown>): Promise<Answer> {
  try {
    return { value: await promise }
  } catch (error) {
    return { error: error instanceof Error ? error.name : String(error) }
  }
}

function sameAnswer(a: Answer, b: Answer): boolean {
  if ('error' in a || 'error' in b) return 'error' in a && 'error' in b && a.error === b.error
  if (Array.isArray(a.value) && Array.isArray(b.value))
    return a.value.length === b.value.length && a.value.every((v, i) => Object.is(v, (b.value as unknown[])[i]))
  return Object.is(a.value, b.value)
}

function runOp(cache: MemoryCache, clock: { t: number }, o: Op): Promise<Answer> {
  const options = (namespace: Ns): { namespace?: string } => (namespace === undefined ? {} : { namespace })
  const withTtl = (t: number | null | undefined): { ttl?: number | null } => (t === undefined ? {} : { ttl: t })
  switch (o.kind) {
    case 'get':
      return answer(cache.get(o.key, options(o.ns)))
    case 'multiGet':
      return answer(cache.multiGet(o.keys, options(o.ns)))
    case 'set':
      return answer(
        cache.set(o.key, o.value, {
          ...options(o.ns),
          ...withTtl(o.ttl),
          ...(o.cas === undefined ? {} : { casToken: o.cas }),
        }),
      )
    case 'add':
      return answer(cache.add(o.key, o.value, { ...options(o.ns), ...withTtl(o.ttl) }))
    case 'multiSet':
      return answer(cache.multiSet(o.pairs, { ...options(o.ns), ...withTtl(o.ttl) }))
    case 'delete':
      return answer(cache.delete(o.key, options(o.ns)))
    case 'exists':
      return answer(cache.exists(o.key, options(o.ns)))
    case 'increment':
      return answer(cache.increment(o.key, o.delta, options(o.ns)))
    case 'expire':
      return answer(cache.expire(o.key, o.ttl, options(o.ns)))
    case 'clear':
      return answer(cache.clear(o.ns === undefined ? {} : { namespace: o.ns }))
    case 'advance':
      clock.t += o.ms
      return Promise.resolve({ value: undefined })
  }
}

const ALL_KEYS = NAMESPACES.flatMap((n) => KEYS.map((k) => builtKey(k, n)))

const memoryProperty = fc.asyncProperty(
  fc.constantFrom(undefined, 1, 2, 3, 5),
  fc.constantFrom(undefined, 0.5, 2),
  fc.array(op, { minLength: 1, maxLength: 60 }),
  async (maxSize, cacheTtl, ops) => {
    const clock = {
      t: 1_000,
      now(): number {
        return this.t
      },
    }
    // A sweep reclaims expired entries on a real-time interval: keep it out of the way, so that
    // reclaiming happens only on reads and the run is deterministic.
    const cache = new MemoryCache({
      clock,
      ...(maxSize === undefined ? {} : { maxSize }),
      ...(cacheTtl === undefined ? {} : { ttl: cacheTtl }),
      sweepInterval: '1d',
    })
    const model = new MemoryModel(maxSize, cacheTtl, clock.t)
    try {
      for (const [i, o] of ops.entries()) {
        const expected = model.apply(o)
        const actual = await runOp(cache, clock, o)
        if (!sameAnswer(actual, expected)) {
          throw new Error(
            `op #${i} ${JSON.stringify(o)}: answered ${JSON.stringify(actual)}, the model ${JSON.stringify(expected)}`,
          )
        }
      }
      // Final contents: what is live (exists reclaims expired entries on both, without an LRU touch)…
      for (const k of ALL_KEYS) {
        const live = model.apply({ kind: 'exists', key: k, ns: undefined })
        const actual = await cache.exists(k)
        if (!sameAnswer({ value: actual }, live))
          throw new Error(`final: exists(${k}) is ${String(actual)}, the model ${JSON.stringify(live)}`)
      }
      const backend = cache.backend
      const stored = [...(backend.raw('entries', []) as Iterable<[string, unknown]>)]
      const modelled = [...model.entries].map(([k, e]): [string, unknown] => [k, e.value])
      const byKey = (a: [string, unknown], b: [string, unknown]): number => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)
      // …the same entries with the same values (in recency order when there is an LRU)…
      const [x, y] = maxSize === undefined ? [stored.sort(byKey), modelled.sort(byKey)] : [stored, modelled]
      if (x.length !== y.length || x.some(([k, v], i) => k !== y[i]![0] || !Object.is(v, y[i]![1]))) {
        throw new Error(`final contents differ: ${JSON.stringify(x)} vs the model ${JSON.stringify(y)}`)
      }
      // …and never more than maxSize of them.
      if (maxSize !== undefined && backend.size > maxSize) throw new Error(`size ${backend.size} > maxSize ${maxSize}`)
    } finally {
      await cache.close()
    }
  },
)

test('memory backend: every command, ttls, clock and LRU agree with a model', async () => {
  await checkAsync('memory model', memoryProperty, { numRuns: 3000 })
})

// ---------------------------------------------------------------------------
// 2. Serializer round trips

function roundTrips(serializer: AnySerializer, expected: (v: unknown) => unknown, options: SameValueOptions = {}) {
  return (v: unknown): boolean => {
    const back = serializer.loads(serializer.dumps(v))
    if (!sameValue(back, expected(v), options))
      throw new Error(`${serializer.constructor.name} gave back ${String(back)}`)
    return true
  }
}

async function throughCache(
  serializer: AnySerializer,
  v: unknown,
  expected: unknown,
  options: SameValueOptions = {},
): Promise<boolean> {
  const cache = new MemoryCache({ serializer })
  await cache.set('k', v)
  const back = await cache.get('k')
  return sameValue(back, expected, options)
}

/** JSON has no -0: it comes back as 0. */
const jsonExpected = withoutNegativeZero
/**
 * Values MessagePack is claimed to carry: JSON-like data (any double) and bytes. Well-formed strings only (see the note
 * below).
 */
const msgpackValue = fc.anything({
  maxDepth: 3,
  values: [
    fc.boolean(),
    fc.integer(),
    fc.double(),
    fc.string({ unit: 'grapheme' }),
    fc.constant(null),
    fc.uint8Array({ maxLength: 8 }),
  ],
  key: fc.string({ unit: 'grapheme', maxLength: 6 }),
})
/**
 * NOT A BUG IN ONIOCACHE, a msgpackr behaviour the guides do not mention: an object key
 * `"__proto__"` comes back renamed `"__proto_"` (msgpackr's guard against prototype
 * pollution), so such values do not round-trip through MsgPackSerializer. Excluded here.
 */
const msgpackCarries = (v: unknown): boolean => !hasProtoKey(v)
const v8Value = fc.anything({
  maxDepth: 3,
  withBoxedValues: true,
  withMap: true,
  withSet: true,
  withBigInt: true,
  withDate: true,
  withTypedArray: true,
  withSparseArray: true,
  withNullPrototype: true,
  withObjectString: true,
  stringUnit: 'binary',
})

test('JsonSerializer: every JSON value round-trips (-0 as 0), also through a cache', async () => {
  check('json', fc.property(fc.jsonValue({ stringUnit: 'binary' }), roundTrips(new JsonSerializer(), jsonExpected)), {
    numRuns: 1000,
  })
  await checkAsync(
    'json cache',
    fc.asyncProperty(fc.jsonValue(), (v) => throughCache(new JsonSerializer(), v, jsonExpected(v))),
    { numRuns: 100 },
  )
})

test('StringSerializer: every string round-trips, as text and as UTF-8 bytes, also through a cache', async () => {
  const s = new StringSerializer()
  check(
    'string',
    fc.property(
      fc.string({ unit: 'binary' }),
      roundTrips(s, (v) => v),
    ),
    { numRuns: 1000 },
  )
  check(
    'string bytes',
    fc.property(fc.string({ unit: 'grapheme' }), (v) => s.loads(Buffer.from(s.dumps(v), 'utf8')) === v),
    { numRuns: 200 },
  )
  await checkAsync(
    'string cache',
    fc.asyncProperty(fc.string({ unit: 'binary' }), (v) => throughCache(s, v, v)),
    { numRuns: 100 },
  )
})

test('MsgPackSerializer: JSON-like values and bytes round-trip (-0 as 0), also through a cache', async () => {
  const m = new MsgPackSerializer()
  const bytes = { bytesOnly: true }
  check('msgpack', fc.property(msgpackValue.filter(msgpackCarries), roundTrips(m, jsonExpected, bytes)), {
    numRuns: 1000,
  })
  await checkAsync(
    'msgpack cache',
    fc.asyncProperty(
      msgpackValue.filter(msgpackCarries).filter((v) => v !== undefined),
      (v) => throughCache(m, v, jsonExpected(v), bytes),
    ),
    { numRuns: 100 },
  )
})

test(
  'V8Serializer: anything (Date, Map, Set, BigInt, typed arrays, boxed, holes, -0) round-trips, also through a ' +
    'cache',
  async () => {
    const v = new V8Serializer()
    check(
      'v8',
      fc.property(
        v8Value,
        roundTrips(v, (x) => x),
      ),
      { numRuns: 1000 },
    )
    await checkAsync(
      'v8 cache',
      fc.asyncProperty(
        v8Value.filter((x) => x !== undefined),
        (x) => throughCache(v, x, x),
      ),
      { numRuns: 300 },
    )
  },
)

test(
  'JsonSerializer writes every string exactly as JSON.stringify does (its fast path for strings with nothing to ' +
    'escape)',
  () => {
    const json = new JsonSerializer()
    // Any UTF-16 code unit, lone surrogates and controls included, and mostly-plain strings.
    const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c))
    const plainish = fc.oneof(fc.constantFrom('a', 'Z', '0', ' ', '~', '\x7f', '\u2028', 'é', '😀'), codeUnit)
    check(
      'any code units',
      fc.property(fc.string({ unit: codeUnit, maxLength: 40 }), (v) => json.dumps(v) === JSON.stringify(v)),
      { numRuns: 2000 },
    )
    check(
      'mostly plain',
      fc.property(fc.string({ unit: plainish, maxLength: 120 }), (v) => json.dumps(v) === JSON.stringify(v)),
      { numRuns: 2000 },
    )
    for (const v of [
      '',
      'plain',
      'x'.repeat(98),
      'a"b',
      'a\\b',
      '\n',
      '\u0000',
      '\u001f',
      '\ud800',
      '\udfff',
      '😀',
      '\u2028\u2029',
      '\x7f',
    ]) {
      assert.is(json.dumps(v), JSON.stringify(v), JSON.stringify(v))
    }
  },
)

test('every serializer reads a plain number (a counter increment created) as that number', () => {
  check(
    'numbers',
    fc.property(fc.maxSafeInteger(), (n) => {
      return (
        new JsonSerializer().loads(n) === n &&
        new MsgPackSerializer().loads(n) === n &&
        new V8Serializer().loads(n) === n &&
        new StringSerializer().loads(n) === String(n)
      )
    }),
    { numRuns: 200 },
  )
})

// KNOWN ISSUE (reported), excluded from the MessagePack property above: MsgPackSerializer does
// not carry every JSON value. msgpackr renames an object key "__proto__" to "__proto_", and a
// string with a lone surrogate comes back with U+FFFD (MessagePack strings are UTF-8), while
// JsonSerializer keeps both. This test pins the current behaviour so that a change is noticed.
test('regression (current behaviour): MsgPackSerializer renames "__proto__" keys and replaces lone surrogates', () => {
  const m = new MsgPackSerializer()
  const back = m.loads(m.dumps(JSON.parse('{"__proto__":1,"a":2}'))) as Record<string, unknown>
  assert.equal(Object.keys(back).sort(), ['__proto_', 'a'])
  assert.is(m.loads(m.dumps('\ud800')), '\ufffd')
  const json = new JsonSerializer()
  assert.equal(Object.keys(json.loads(json.dumps(JSON.parse('{"__proto__":1}'))) as object), ['__proto__'])
})

// ---------------------------------------------------------------------------
// 3. The duration parser

const UNITS = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86_400 } as const
type Unit = keyof typeof UNITS
const unit = fc.constantFrom(...(Object.keys(UNITS) as Unit[]))
const nonNegative = fc.oneof(
  fc.double({ min: 0, noNaN: true, noDefaultInfinity: true, max: Number.MAX_VALUE }),
  fc.nat(),
  fc.constantFrom(0, -0, 0.5, 1e-7, 1e21),
)

function rangeError(run: () => unknown): boolean {
  try {
    run()
  } catch (error) {
    return error instanceof RangeError
  }
  return false
}

/**
 * An independent reading of the accepted grammar: optional whitespace, a decimal number
 * (digits with an optional fraction, or a bare fraction; no sign; an optional lowercase exponent
 * `e[+-]digits`), optional
 * whitespace, a unit, optional whitespace. Answers seconds, or undefined when not accepted.
 */
function oracle(text: string): number | undefined {
  const body = text.trim()
  let i = 0
  while (i < body.length && body[i]! >= '0' && body[i]! <= '9') i++
  const whole = i
  if (body[i] === '.') {
    i++
    const start = i
    while (i < body.length && body[i]! >= '0' && body[i]! <= '9') i++
    if (i === start) return undefined
  } else if (whole === 0) {
    return undefined
  }
  if (body[i] === 'e') {
    let j = i + 1
    if (body[j] === '+' || body[j] === '-') j++
    const start = j
    while (j < body.length && body[j]! >= '0' && body[j]! <= '9') j++
    if (j === start) return undefined
    i = j
  }
  const number = Number(body.slice(0, i))
  const rest = body.slice(i).trimStart()
  if (!(rest in UNITS)) return undefined
  const seconds = number * UNITS[rest as Unit]
  return seconds === Infinity ? undefined : seconds
}

test('toSeconds: a non-negative finite number is itself', () => {
  check(
    'numbers',
    fc.property(nonNegative, (n) => Object.is(toSeconds(n, 'ttl'), n)),
    { numRuns: 300 },
  )
})

// biome-ignore lint/suspicious/noTemplateCurlyInString: the test name shows a template
test('toSeconds: `${n}${unit}` is n times the unit, for every n (exponent notation included)', () => {
  check(
    'units',
    fc.property(nonNegative, unit, (n, u) => {
      const text = `${n}${u}`
      const expected = n * UNITS[u]
      if (expected === Infinity) return rangeError(() => toSeconds(text as Duration, 'ttl'))
      return toSeconds(text as Duration, 'ttl') === expected
    }),
    { numRuns: 300 },
  )
})

test('toSeconds: negative, NaN and infinite numbers and other types are a RangeError', () => {
  const bad = fc.oneof(
    fc.double({ max: -Number.MIN_VALUE, noNaN: true }),
    fc.constantFrom(NaN, Infinity, -Infinity, -1, -Number.MIN_VALUE),
    fc.constantFrom<unknown>(undefined, true, false, {}, [], [1], 1n, new Date(0)),
  )
  check(
    'bad numbers',
    fc.property(bad, (v) => rangeError(() => toSeconds(v, 'ttl'))),
    { numRuns: 200 },
  )
})

test(
  'toSeconds: a string is accepted exactly when it is <number><ms|s|m|h|d> (surrounding spaces allowed), else a ' +
    'RangeError',
  () => {
    const near = fc.string({
      unit: fc.constantFrom('0', '1', '5', '9', '.', '+', '-', 'e', 'E', ' ', '\t', 's', 'm', 'h', 'd', 'x', '_', ','),
      maxLength: 8,
    })
    const text = fc.oneof(
      near,
      fc.string({ unit: 'binary', maxLength: 6 }),
      fc.tuple(fc.string({ unit: fc.constantFrom('0', '7', '.'), maxLength: 4 }), unit).map(([a, b]) => a + b),
    )
    check(
      'strings',
      fc.property(text, (s) => {
        const expected = oracle(s)
        if (expected === undefined) return rangeError(() => toSeconds(s, 'ttl'))
        return toSeconds(s, 'ttl') === expected
      }),
      { numRuns: 1000 },
    )
  },
)

// A Duration string whose number is written with an exponent, as String(n) writes very small or
// large numbers: the Duration type `${number}${DurationUnit}` accepts it, and so does toSeconds.
test('exponent-notation Duration strings are accepted', () => {
  assert.is(toSeconds('1e-7s', 'ttl'), 1e-7)
  assert.is(toSeconds('1e+21s', 'ttl'), 1e21)
  assert.is(toSeconds('1e3ms', 'ttl'), 1)
  assert.ok(
    rangeError(() => toSeconds('1e999s', 'ttl')),
    'an exponent that overflows to Infinity is a RangeError',
  )
})

// ---------------------------------------------------------------------------
// 4. The decorator key encoding

test('argumentsKey: structurally equal argument lists give the same key', () => {
  check(
    'equal keys',
    fc.property(argumentList, fc.nat(), (args, seed) => {
      const other = twin(args, prng(seed)) as unknown[]
      assert.ok(sameArguments(args, other), 'the twin is equal by the rules')
      return argumentsKey('f', args) === argumentsKey('f', other)
    }),
    { numRuns: 3000 },
  )
})

test('argumentsKey: argument lists differing anywhere give different keys (and equal ones the same)', () => {
  check(
    'different keys',
    fc.property(argumentList, fc.nat(), (args, seed) => {
      const other = mutate(args, prng(seed))
      return (argumentsKey('f', args) === argumentsKey('f', other)) === sameArguments(args, other)
    }),
    { numRuns: 5000 },
  )
})

test.run()

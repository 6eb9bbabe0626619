// Sharing a store with Python aiocache 0.12: the bytes aiocache writes (fixtures taken from the
// documented behaviour of Python's json.dumps, str() and msgpack.packb, which aiocache's
// JsonSerializer, StringSerializer and MsgPackSerializer call) read back right, and what
// oniocache writes is what aiocache's loads expect (standard JSON, plain text, MessagePack).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Cache, JsonSerializer, MemoryBackend, MsgPackSerializer, plainKeys, StringSerializer } from '../lib/index.js'
import { checkKey } from '../lib/memcached.js'

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex')

test('JsonSerializer reads what json.dumps writes: spaced separators, \\u escapes, NaN and ±Infinity', () => {
  const json = new JsonSerializer()
  const fixtures: Array<[string, unknown]> = [
    // json.dumps({"name": "Zoë", "n": [1, 2.5, None, True]})
    ['{"name": "Zo\\u00eb", "n": [1, 2.5, null, true]}', { name: 'Zoë', n: [1, 2.5, null, true] }],
    // json.dumps("h\u00e9llo \U0001F600")
    ['"h\\u00e9llo \\ud83d\\ude00"', 'héllo 😀'],
    // json.dumps(float("nan")), json.dumps([float("inf"), float("-inf")])
    ['NaN', Number.NaN],
    ['[Infinity, -Infinity]', [Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]],
    // json.dumps({"x": float("nan"), "s": "NaN and Infinity stay text"})
    ['{"x": NaN, "s": "NaN and Infinity stay text"}', { x: Number.NaN, s: 'NaN and Infinity stay text' }],
    // json.dumps(1.0) and json.dumps(10**20)
    ['1.0', 1],
    ['100000000000000000000', 1e20],
  ]
  for (const [text, value] of fixtures) {
    assert.equal(json.loads(text), value, text)
    assert.equal(json.loads(Buffer.from(text)), value, `${text} as bytes`)
  }
  assert.throws(() => json.loads('[NaN, nope]'), /is not valid JSON/)
})

test('JsonSerializer writes standard JSON that json.loads reads: compact, UTF-8, no NaN tokens', () => {
  const json = new JsonSerializer()
  assert.is(json.dumps({ name: 'Zoë', n: [1, 2.5, null, true] }), '{"name":"Zoë","n":[1,2.5,null,true]}')
  assert.is(json.dumps('abc'), '"abc"')
  assert.is(
    json.dumps([Number.NaN, Number.POSITIVE_INFINITY]),
    '[null,null]',
    'standard JSON has no NaN: null, as JSON.stringify',
  )
  assert.is(json.dumps(2 ** 53 + 2), '9007199254740994')
})

test('StringSerializer: str() text reads back as that text; what oniocache writes is String(value)', () => {
  const string = new StringSerializer()
  // str(1.5), str(True), str(None), str(42): aiocache reads strings back as they are, and so does oniocache.
  for (const text of ['1.5', 'True', 'None', '42']) assert.is(string.loads(Buffer.from(text)), text)
  assert.is(string.dumps(1.5), '1.5')
  assert.is(string.dumps(true), 'true', "JavaScript's String(true), where Python writes True")
})

test('MsgPackSerializer reads msgpack.packb output (use_bin_type=True) and writes plain MessagePack', () => {
  const msgpack = new MsgPackSerializer()
  const fixtures: Array<[string, unknown]> = [
    ['81 a1 61 01', { a: 1 }], // packb({"a": 1})
    ['92 01 a1 78', [1, 'x']], // packb([1, "x"])
    ['cb 3f f8 00 00 00 00 00 00', 1.5], // packb(1.5): Python floats are doubles
    ['c3', true],
    ['c0', null],
    ['a2 c3 a9', 'é'], // packb("é")
    ['c4 02 00 ff', new Uint8Array([0, 255])], // packb(b"\x00\xff"): bin 8
    ['cd 01 00', 256], // packb(256): uint 16
    ['d0 80', -128], // packb(-128): int 8
  ]
  for (const [bytes, value] of fixtures) {
    const read = msgpack.loads(hex(bytes))
    if (value instanceof Uint8Array) assert.equal([...(read as Uint8Array)], [...value], bytes)
    else assert.equal(read, value, bytes)
  }
  // What oniocache writes for the same values, byte for byte: MessagePack that msgpack.unpackb reads
  // (msgpackr writes an object as a map 16, de 00 01, where packb writes a fixmap; both are MessagePack).
  const written: Array<[unknown, string]> = [
    [{ a: 1 }, 'de0001a16101'],
    [[1, 'x'], '9201a178'],
    [true, 'c3'],
    [null, 'c0'],
    ['é', 'a2c3a9'],
    [256, 'cd0100'],
    [-128, 'd080'],
  ]
  for (const [value, bytes] of written)
    assert.is(Buffer.from(msgpack.dumps(value)).toString('hex'), bytes, JSON.stringify(value))
  assert.is(msgpack.loads(msgpack.dumps(1.5)), 1.5)
})

test("keys: the default builder is aiocache RedisCache's (ns:key), plainKeys its other caches'", async () => {
  const store = new MemoryBackend()
  const redisLike = new Cache({ backend: store, namespace: 'users' })
  const memcachedLike = new Cache({ backend: store, namespace: 'users', keyBuilder: plainKeys })
  assert.is(redisLike.buildKey('42'), 'users:42')
  assert.is(memcachedLike.buildKey('42'), 'users42')
  assert.is(plainKeys('42', ''), '42')
  // aiocache's MemcachedCache turns spaces into _ after joining; so does oniocache's Memcached backend.
  assert.is(checkKey(memcachedLike.buildKey('a b')), 'usersa_b')
  await memcachedLike.set('k', 1)
  assert.equal([...(store.raw('keys', []) as Iterable<string>)], ['usersk'])
})

test.run()

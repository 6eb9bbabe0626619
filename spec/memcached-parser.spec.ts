// The memcached reply parser on its own: every reply form, replies split at any byte,
// and seeded fuzzing — valid streams split at random boundaries parse to the same
// replies; garbage, mutations and truncations give replies or a ProtocolError, never
// an exception or a hang. A failing fuzz case prints its seed; rerun it with
// MEMCACHED_FUZZ_SEED=<seed>.
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import {
  MAX_LINE_BYTES,
  MAX_VALUE_BYTES,
  type ParseResult,
  ProtocolError,
  type Reply,
  ReplyParser,
} from '../lib/backends/memcached/parser.js'

const bytes = (text: string): Buffer => Buffer.from(text, 'latin1')

/** Feeds `chunks` one by one; collects every reply and the error, if any. */
function parseChunks(
  chunks: readonly Uint8Array[],
  parser = new ReplyParser(),
): { replies: Reply[]; error?: ProtocolError; parser: ReplyParser } {
  const replies: Reply[] = []
  let error: ProtocolError | undefined
  for (const chunk of chunks) {
    const result: ParseResult = parser.feed(chunk)
    replies.push(...result.replies)
    if (result.error) {
      error = result.error
      break
    }
  }
  return error ? { replies, error, parser } : { replies, parser }
}

/** Plain data for deep comparison (Buffers as byte arrays). */
function plain(replies: readonly Reply[]): unknown[] {
  return replies.map((reply) =>
    'code' in reply
      ? { code: reply.code, flags: { ...reply.flags }, value: reply.value && [...reply.value] }
      : { ...reply },
  )
}

// ---------------------------------------------------------------------------
const forms = suite('memcached parser: reply forms')

forms('meta replies: the code, flags by letter (empty token when none), and the exact data block of VA', () => {
  const { replies, error } = parseChunks([
    bytes('HD c123 t-1 s5 W\r\nVA 7 f0 kfoo\r\nhel\r\nlo\r\nEN\r\nNF\r\nNS\r\nEX\r\nMN\r\nVA 0\r\n\r\n'),
  ])
  assert.is(error, undefined)
  assert.equal(plain(replies), [
    { code: 'HD', flags: { c: '123', t: '-1', s: '5', W: '' }, value: undefined },
    { code: 'VA', flags: { f: '0', k: 'foo' }, value: [...bytes('hel\r\nlo')] },
    { code: 'EN', flags: {}, value: undefined },
    { code: 'NF', flags: {}, value: undefined },
    { code: 'NS', flags: {}, value: undefined },
    { code: 'EX', flags: {}, value: undefined },
    { code: 'MN', flags: {}, value: undefined },
    { code: 'VA', flags: {}, value: [] },
  ])
})

forms('a flag token with UTF-8 bytes (the key of a `k` flag) comes back as the string it encodes', () => {
  const { replies, error } = parseChunks([Buffer.concat([bytes('HD k'), Buffer.from('clé:日本'), bytes(' c5\r\n')])])
  assert.is(error, undefined)
  assert.equal(plain(replies), [{ code: 'HD', flags: { k: 'clé:日本', c: '5' }, value: undefined }])
})

forms('error lines and the text replies the client uses are whole-line replies', () => {
  const text =
    'ERROR\r\nCLIENT_ERROR bad data chunk\r\nSERVER_ERROR object too large for cache\r\nOK\r\nVERSION ' +
    '1.6.18\r\nSTAT item_size_max 1048576\r\nEND\r\n'
  const { replies, error } = parseChunks([bytes(text)])
  assert.is(error, undefined)
  assert.equal(plain(replies), [
    { kind: 'error', line: 'ERROR' },
    { kind: 'error', line: 'CLIENT_ERROR bad data chunk' },
    { kind: 'error', line: 'SERVER_ERROR object too large for cache' },
    { kind: 'text', line: 'OK' },
    { kind: 'text', line: 'VERSION 1.6.18' },
    { kind: 'text', line: 'STAT item_size_max 1048576' },
    { kind: 'text', line: 'END' },
  ])
})

forms('a value that is a copy: it does not pin or alias the chunk it came in', () => {
  const chunk = bytes('VA 3\r\nabc\r\n')
  const [reply] = parseChunks([chunk]).replies
  chunk.fill(0)
  assert.ok(reply && 'code' in reply)
  assert.is(reply.value?.toString(), 'abc')
})

forms('fed one byte at a time, a stream parses exactly as in one chunk; `buffered` counts the unfinished reply', () => {
  const stream = bytes('VA 4 c9\r\n\r\n\r\n\r\nHD\r\nSTAT a b c\r\nEND\r\n')
  const whole = parseChunks([stream]).replies
  const parser = new ReplyParser()
  const replies: Reply[] = []
  const buffered: number[] = []
  for (const byte of stream) {
    const result = parser.feed(Uint8Array.of(byte))
    assert.is(result.error, undefined)
    replies.push(...result.replies)
    buffered.push(parser.buffered)
  }
  assert.equal(plain(replies), plain(whole))
  assert.is(parser.buffered, 0)
  assert.ok(Math.max(...buffered) > 0)
})

forms('a plain Uint8Array (not a Buffer) is accepted', () => {
  const view = new Uint8Array(new TextEncoder().encode('xxHD c1\r\n').buffer, 2)
  assert.equal(plain(parseChunks([view]).replies), [{ code: 'HD', flags: { c: '1' }, value: undefined }])
})

const garbage: [string, string | Buffer, RegExp][] = [
  ['an unknown line', 'HELLO\r\n', /unexpected reply "HELLO"/],
  ['an unknown two-letter code', 'OX c1\r\n', /unexpected reply/],
  ['a code glued to a flag', 'HDc1\r\n', /unexpected reply/],
  ['a bare \\n', 'HD\n', /bare \\n/],
  ['an empty line', '\r\n', /unexpected reply ""/],
  ['a VA without a length', 'VA\r\n', /VA reply without a valid data length/],
  ['a VA with a negative length', 'VA -1\r\n', /valid data length/],
  ['a VA longer than any item', `VA ${MAX_VALUE_BYTES + 1}\r\n`, /valid data length/],
  ['a data block not followed by \\r\\n', 'VA 2\r\nabc\r\n', /not followed by \\r\\n/],
  ['a flag that is not a letter', 'HD 1c\r\n', /malformed flag "1c"/],
  ['a control character in a line', 'HD c\x001\r\n', /unexpected reply/],
  ['a line without end longer than the limit', 'H'.repeat(MAX_LINE_BYTES + 2), /longer than 8192 bytes/],
  ['a complete line longer than the limit', `SERVER_ERROR ${'x'.repeat(MAX_LINE_BYTES)}\r\n`, /longer than 8192 bytes/],
]
for (const [what, input, message] of garbage) {
  forms(`garbage: ${what} is a ProtocolError, after the replies before it`, () => {
    const { replies, error } = parseChunks([bytes('HD\r\n'), typeof input === 'string' ? bytes(input) : input])
    assert.equal(plain(replies), [{ code: 'HD', flags: {}, value: undefined }])
    assert.instance(error, ProtocolError)
    assert.match(error?.message ?? '', message)
  })
}

forms('a failed parser stays failed: later bytes give no replies, only the same error', () => {
  const parser = new ReplyParser()
  const first = parser.feed(bytes('BOGUS\r\n'))
  const later = parser.feed(bytes('HD\r\n'))
  assert.ok(first.error)
  assert.is(later.error, first.error)
  assert.is(parser.error, first.error)
  assert.equal(later.replies, [])
  assert.is(parser.buffered, 0)
})

forms('a line within the limit is fine, however it is split', () => {
  const line = `SERVER_ERROR ${'x'.repeat(MAX_LINE_BYTES - 13)}`
  const stream = bytes(`${line}\r\n`)
  const { replies, error } = parseChunks([stream.subarray(0, 5000), stream.subarray(5000)])
  assert.is(error, undefined)
  assert.equal(plain(replies), [{ kind: 'error', line }])
})

forms.run()

// ---------------------------------------------------------------------------
// Seeded fuzzing

/** mulberry32: a tiny seeded PRNG, so that a failing case reproduces from its seed. */
function rng(seed: number): { int(n: number): number; pick<T>(items: readonly T[]): T; chance(p: number): boolean } {
  let state = seed >>> 0
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return {
    int: (n) => Math.floor(next() * n),
    pick: (items) => items[Math.floor(next() * items.length)] as (typeof items)[number],
    chance: (p) => next() < p,
  }
}
type Rng = ReturnType<typeof rng>

const BASE_SEED = process.env.MEMCACHED_FUZZ_SEED === undefined ? 20_240_601 : Number(process.env.MEMCACHED_FUZZ_SEED)
const PRINTABLE = Array.from({ length: 0x7e - 0x21 + 1 }, (_, i) => String.fromCharCode(0x21 + i))
const LETTERS = [...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ']

/** One random valid reply: its bytes and what it must parse to. */
function randomReply(r: Rng): { wire: Buffer; reply: Reply } {
  const kind = r.int(10)
  if (kind < 6) {
    const code = r.pick(['HD', 'VA', 'VA', 'VA', 'EN', 'NF', 'NS', 'EX', 'MN'])
    const flags: Record<string, string> = {}
    const tokens: string[] = []
    for (let i = r.int(5); i > 0; i--) {
      const letter = r.pick(LETTERS)
      const token = Array.from({ length: r.int(12) }, () => r.pick(PRINTABLE)).join('')
      flags[letter] = token
      tokens.push(letter + token)
    }
    if (code !== 'VA') return { wire: bytes([code, ...tokens].join(' ') + '\r\n'), reply: { code, flags } }
    // Values favour the bytes that matter: \r, \n, and lines that look like replies.
    const size = r.chance(0.05) ? 2000 + r.int(70_000) : r.int(40)
    const value = Buffer.alloc(size)
    for (let i = 0; i < size; i++) value[i] = r.chance(0.3) ? r.pick([13, 10, 32, 0, 255]) : r.int(256)
    if (size >= 4 && r.chance(0.3)) value.write('\r\nHD', r.int(size - 3), 'latin1')
    const header = bytes([code, String(size), ...tokens].join(' ') + '\r\n')
    return { wire: Buffer.concat([header, value, bytes('\r\n')]), reply: { code, flags, value } }
  }
  const line =
    kind < 8
      ? r.pick([
          'ERROR',
          'CLIENT_ERROR bad data chunk',
          'SERVER_ERROR object too large for cache',
          `SERVER_ERROR ${'é'.repeat(r.int(5))}`,
        ])
      : r.pick(['OK', 'END', 'VERSION 1.6.18', `STAT item_size_max ${r.int(1e9)}`, 'STAT evictions on'])
  return { wire: bytes(`${line}\r\n`), reply: { kind: kind < 8 ? 'error' : 'text', line } }
}

function randomStream(r: Rng): { wire: Buffer; replies: Reply[]; ends: number[] } {
  const parts: Buffer[] = []
  const replies: Reply[] = []
  const ends: number[] = []
  let length = 0
  for (let i = 1 + r.int(30); i > 0; i--) {
    const { wire, reply } = randomReply(r)
    parts.push(wire)
    replies.push(reply)
    length += wire.length
    ends.push(length)
  }
  return { wire: Buffer.concat(parts), replies, ends }
}

/** `wire` cut at random places (sometimes every byte, sometimes not at all). */
function randomSplit(r: Rng, wire: Buffer): Buffer[] {
  if (r.chance(0.05) && wire.length < 5000) return Array.from(wire, (byte) => Buffer.of(byte))
  const cuts = new Set<number>()
  for (let i = r.int(Math.min(wire.length, 40)); i > 0; i--) cuts.add(r.int(wire.length + 1))
  const sorted = [0, ...[...cuts].sort((a, b) => a - b), wire.length]
  return sorted.slice(1).map((end, i) => wire.subarray(sorted[i], end))
}

const fuzz = suite('memcached parser: seeded fuzzing')
const ROUNDS = { valid: 600, truncated: 600, mutated: 1500, garbage: 1500 }

fuzz(`${ROUNDS.valid} random valid streams split at random boundaries parse to the replies they encode`, () => {
  for (let round = 0; round < ROUNDS.valid; round++) {
    const seed = BASE_SEED + round
    const r = rng(seed)
    const { wire, replies } = randomStream(r)
    const { replies: parsed, error, parser } = parseChunks(randomSplit(r, wire))
    assert.is(error, undefined, `seed ${seed}: ${error?.message}`)
    assert.equal(plain(parsed), plain(replies), `seed ${seed}`)
    assert.is(parser.buffered, 0, `seed ${seed}`)
  }
})

fuzz(`${ROUNDS.truncated} truncated streams give exactly the replies that were complete, and wait for the rest`, () => {
  for (let round = 0; round < ROUNDS.truncated; round++) {
    const seed = BASE_SEED + 10_000 + round
    const r = rng(seed)
    const { wire, replies, ends } = randomStream(r)
    const cut = r.int(wire.length)
    const { replies: parsed, error, parser } = parseChunks(randomSplit(r, wire.subarray(0, cut)))
    const complete = ends.filter((end) => end <= cut).length
    assert.is(error, undefined, `seed ${seed}: ${error?.message}`)
    assert.equal(plain(parsed), plain(replies.slice(0, complete)), `seed ${seed}`)
    assert.is(parser.buffered, cut - (complete === 0 ? 0 : (ends[complete - 1] as number)), `seed ${seed}`)
  }
})

fuzz(
  `${ROUNDS.mutated} mutated streams: the replies before the damage are intact, then replies or a ProtocolError, ` +
    `never a throw`,
  () => {
    for (let round = 0; round < ROUNDS.mutated; round++) {
      const seed = BASE_SEED + 20_000 + round
      const r = rng(seed)
      const { wire, replies, ends } = randomStream(r)
      const damaged = Buffer.from(wire)
      const at = r.int(wire.length)
      let mutated: Buffer
      switch (r.int(4)) {
        case 0:
          damaged[at] = (damaged[at] as number) ^ (1 + r.int(255))
          mutated = damaged
          break
        case 1:
          mutated = Buffer.concat([
            damaged.subarray(0, at),
            Buffer.of(r.pick([13, 10, 32, 0, 86, r.int(256)])),
            damaged.subarray(at),
          ])
          break
        case 2:
          mutated = Buffer.concat([damaged.subarray(0, at), damaged.subarray(at + 1 + r.int(8))])
          break
        default:
          mutated = Buffer.concat([
            damaged.subarray(0, at),
            bytes(r.pick(['\r\n', 'VA 99999\r\n', 'HD\r\n', '\n', 'VA 3 x\r\n'])),
          ])
      }
      const intact = ends.filter((end) => end <= at).length
      let result: ReturnType<typeof parseChunks> | undefined
      try {
        result = parseChunks(randomSplit(r, mutated))
      } catch (error) {
        assert.unreachable(`seed ${seed}: the parser threw ${String(error)}`)
      }
      assert.ok(result, `seed ${seed}`)
      assert.equal(plain(result.replies.slice(0, intact)), plain(replies.slice(0, intact)), `seed ${seed}`)
      if (result.error) assert.instance(result.error, ProtocolError, `seed ${seed}`)
    }
  },
)

fuzz(
  `${ROUNDS.garbage} garbage streams (random bytes and reply-like tokens) end in replies or a ProtocolError, and ` +
    `nothing after the error`,
  () => {
    const tokens = [
      'HD',
      'VA',
      'EN',
      'VA 5',
      ' ',
      '\r',
      '\n',
      '\r\n',
      'c12',
      'STAT x',
      'END',
      'OK',
      'ERROR',
      '\x00',
      'VA 1000000',
      'VERSION ',
    ]
    for (let round = 0; round < ROUNDS.garbage; round++) {
      const seed = BASE_SEED + 30_000 + round
      const r = rng(seed)
      const pieces: Buffer[] = []
      for (let i = 1 + r.int(60); i > 0; i--) {
        pieces.push(
          r.chance(0.5) ? bytes(r.pick(tokens)) : Buffer.from(Array.from({ length: 1 + r.int(20) }, () => r.int(256))),
        )
      }
      if (r.chance(0.05)) pieces.push(Buffer.alloc(MAX_LINE_BYTES + 10, 0x41))
      const parser = new ReplyParser()
      let failed = false
      for (const chunk of randomSplit(r, Buffer.concat(pieces))) {
        let result: ParseResult | undefined
        try {
          result = parser.feed(chunk)
        } catch (error) {
          assert.unreachable(`seed ${seed}: the parser threw ${String(error)}`)
        }
        assert.ok(result)
        if (failed) assert.equal(result.replies, [], `seed ${seed}: replies after a ProtocolError`)
        if (result.error) {
          assert.instance(result.error, ProtocolError, `seed ${seed}`)
          failed = true
        }
      }
    }
  },
)

fuzz.run()

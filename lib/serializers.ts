import { randomUUID } from 'node:crypto'
import { deserialize as v8Deserialize, serialize as v8Serialize } from 'node:v8'
import { Packr } from 'msgpackr'
import type { Serializer } from './core/serializer.js'

export type { AnySerializer, Serializer } from './core/serializer.js'

/** Stores the value itself, untouched. For the memory backend only. */
export class NullSerializer implements Serializer<unknown> {
  /** `'utf8'`, so that a backend hands stored values back as they are. */
  readonly encoding = 'utf8' as const
  /** Answers the value itself: the store holds the caller's object, not a copy. */
  dumps(value: unknown): unknown {
    return value
  }
  /** Answers what was stored, as it is. */
  loads(stored: unknown): unknown {
    return stored
  }
}

/** `String(value)` on the way in; strings come back as strings. */
export class StringSerializer implements Serializer<string> {
  /** `'utf8'`: it stores text. */
  readonly encoding = 'utf8' as const
  /** `String(value)`: `1` is stored as `'1'`, an object as `'[object Object]'`. */
  dumps(value: unknown): string {
    return String(value)
  }
  /** The stored text; bytes are read as UTF-8, a number (a counter `increment` created) as its text. */
  loads(stored: string | Uint8Array | number | undefined): unknown {
    if (stored === undefined || typeof stored === 'string') return stored
    if (typeof stored === 'number') return String(stored)
    return Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength).toString('utf8')
  }
}

/** What JSON.stringify writes escaped in a string: quote, backslash, controls, and (lone) surrogates. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the characters JSON.stringify escapes
const JSON_ESCAPED = /["\\\u0000-\u001f\ud800-\udfff]/
/** The bare tokens Python's `json` writes for non-finite floats, which JSON has no words for. */
const NON_FINITE = /NaN|Infinity/

/**
 * Plain JSON, readable by aiocache's JsonSerializer. A value JSON cannot represent
 * (BigInt, a cycle, a bare function or symbol) is refused rather than silently
 * stored as something else; `NaN` and `±Infinity` are written `null`, as
 * `JSON.stringify` does. Reading also takes the `NaN`, `Infinity` and `-Infinity`
 * tokens Python's `json` writes (aiocache stores `float('nan')` that way).
 */
export class JsonSerializer implements Serializer<string> {
  /** `'utf8'`: it stores JSON text. */
  readonly encoding = 'utf8' as const
  /**
   * The value as JSON text.
   * @throws {TypeError} for a value JSON cannot represent: a BigInt, a cycle, a bare function, symbol or `undefined`.
   */
  dumps(value: unknown): string {
    // A string with nothing to escape is its JSON between quotes: twice as fast as
    // JSON.stringify on Node 20 for a 100-char string, the same text.
    if (typeof value === 'string' && !JSON_ESCAPED.test(value)) return '"' + value + '"'
    const text = JSON.stringify(value)
    if (text === undefined) throw new TypeError(`JSON cannot represent ${typeof value} values`)
    return text
  }
  /**
   * Parses JSON text (or UTF-8 bytes of it), Python's `NaN`, `Infinity` and `-Infinity` tokens included; a number
   * (a counter `increment` created) is answered as it is.
   * @throws {SyntaxError} for text that is not JSON.
   */
  loads(stored: string | Uint8Array | number | undefined): unknown {
    if (stored === undefined || typeof stored === 'number') return stored
    const text =
      typeof stored === 'string'
        ? stored
        : Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength).toString('utf8')
    try {
      return JSON.parse(text)
    } catch (error) {
      if (!NON_FINITE.test(text)) throw error
      try {
        return parseNonFinite(text)
      } catch {
        throw error // what is wrong is in the text as given
      }
    }
  }
}

/**
 * JSON with Python's bare `NaN`, `Infinity` and `-Infinity` tokens: each one outside
 * a string is written as a string only this call knows, which the reviver turns
 * back into the number. Anything else malformed still throws JSON.parse's error.
 */
function parseNonFinite(text: string): unknown {
  const tag = `\u0000${randomUUID()}:`
  const values: Record<string, number> = { NaN: Number.NaN, Infinity: Number.POSITIVE_INFINITY, '-Infinity': -Infinity }
  let out = ''
  let from = 0
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (c === '"') {
      // Skip the string, escapes included.
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++
      continue
    }
    const token = text.startsWith('NaN', i) ? 'NaN' : text.startsWith('Infinity', i) ? 'Infinity' : undefined
    const signed = token === undefined && text.startsWith('-Infinity', i) ? '-Infinity' : token
    if (signed === undefined) continue
    out += text.slice(from, i) + JSON.stringify(tag + signed)
    i += signed.length - 1
    from = i + 1
  }
  out += text.slice(from)
  return JSON.parse(out, (_key, value: unknown) =>
    typeof value === 'string' && value.startsWith(tag) ? values[value.slice(tag.length)] : value,
  )
}

/**
 * MessagePack through msgpackr, in plain MessagePack (no msgpackr record
 * extension), so other MessagePack readers understand it. Never feed it data an
 * attacker can write.
 */
export class MsgPackSerializer implements Serializer<Uint8Array> {
  /** `null`: it stores bytes. */
  readonly encoding = null
  readonly #packr = new Packr({ useRecords: false, mapsAsObjects: true })
  /**
   * The value as MessagePack bytes.
   * @throws {TypeError} for a bare function, which would read back as `undefined`.
   */
  dumps(value: unknown): Uint8Array {
    // msgpackr writes a bare function as its "undefined" extension: it would read back as
    // undefined, which looks like a miss. Refuse it, as JsonSerializer does.
    if (typeof value === 'function') throw new TypeError('MessagePack cannot represent function values')
    return this.#packr.pack(value)
  }
  /** Decodes MessagePack bytes (a string is read as Latin-1 bytes); a number is answered as it is. */
  loads(stored: Uint8Array | string | number | undefined): unknown {
    if (stored === undefined || typeof stored === 'number') return stored
    return this.#packr.unpack(typeof stored === 'string' ? Buffer.from(stored, 'latin1') : stored)
  }
}

/**
 * `node:v8` structured clone: keeps Date, Map, Set, BigInt, typed arrays and
 * cycles, like pickle does for aiocache. Never feed it data an attacker can write.
 */
export class V8Serializer implements Serializer<Uint8Array> {
  /** `null`: it stores bytes. */
  readonly encoding = null
  /**
   * The value as `v8.serialize` bytes.
   * @throws {Error} for what structured clone cannot copy, such as a function.
   */
  dumps(value: unknown): Uint8Array {
    return v8Serialize(value)
  }
  /** Decodes `v8.serialize` bytes (a string is read as Latin-1 bytes); a number is answered as it is. */
  loads(stored: Uint8Array | string | number | undefined): unknown {
    if (stored === undefined || typeof stored === 'number') return stored
    return v8Deserialize(typeof stored === 'string' ? Buffer.from(stored, 'latin1') : stored)
  }
}

import { randomUUID } from 'node:crypto'
import { deserialize as v8Deserialize, serialize as v8Serialize } from 'node:v8'
import { Packr } from 'msgpackr'
import type { Serializer } from './core/serializer.js'

export type { AnySerializer, Serializer } from './core/serializer.js'

/** Stores the value itself, untouched. For the memory backend only. */
export class NullSerializer implements Serializer<unknown> {
  readonly encoding = 'utf8' as const
  dumps(value: unknown): unknown {
    return value
  }
  loads(stored: unknown): unknown {
    return stored
  }
}

/** `String(value)` on the way in; strings come back as strings. */
export class StringSerializer implements Serializer<string> {
  readonly encoding = 'utf8' as const
  dumps(value: unknown): string {
    return String(value)
  }
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
  readonly encoding = 'utf8' as const
  dumps(value: unknown): string {
    // A string with nothing to escape is its JSON between quotes: twice as fast as
    // JSON.stringify on Node 20 for a 100-char string, the same text.
    if (typeof value === 'string' && !JSON_ESCAPED.test(value)) return '"' + value + '"'
    const text = JSON.stringify(value)
    if (text === undefined) throw new TypeError(`JSON cannot represent ${typeof value} values`)
    return text
  }
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
  readonly encoding = null
  readonly #packr = new Packr({ useRecords: false, mapsAsObjects: true })
  dumps(value: unknown): Uint8Array {
    // msgpackr writes a bare function as its "undefined" extension: it would read back as
    // undefined, which looks like a miss. Refuse it, as JsonSerializer does.
    if (typeof value === 'function') throw new TypeError('MessagePack cannot represent function values')
    return this.#packr.pack(value)
  }
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
  readonly encoding = null
  dumps(value: unknown): Uint8Array {
    return v8Serialize(value)
  }
  loads(stored: Uint8Array | string | number | undefined): unknown {
    if (stored === undefined || typeof stored === 'number') return stored
    return v8Deserialize(typeof stored === 'string' ? Buffer.from(stored, 'latin1') : stored)
  }
}

/**
 * Equalities for the property tests: `sameValue` for serializer round trips
 * (order-sensitive, as the serializers keep insertion order) and `sameArguments`
 * for the decorator key rules (order-insensitive where the rules say so).
 */

export interface SameValueOptions {
  /** Buffer and Uint8Array (any byte view) are equal when their bytes are. */
  bytesOnly?: boolean
}

function bytes(view: ArrayBufferView | ArrayBuffer): Buffer {
  return ArrayBuffer.isView(view) ? Buffer.from(view.buffer, view.byteOffset, view.byteLength) : Buffer.from(view)
}

function isPlain(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

const BOXES = [Number, String, Boolean, BigInt] as const

/**
 * Deep equality for values that went through a serializer: `Object.is` on
 * primitives (so NaN equals NaN, -0 differs from 0), holes differ from
 * `undefined`, Date by time, Map and Set entry by entry in order, typed arrays by
 * class and bytes, boxed primitives by class and value, plain objects by own
 * enumerable keys (a null prototype equals `Object.prototype`).
 */
export function sameValue(a: unknown, b: unknown, options: SameValueOptions = {}): boolean {
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null) return Object.is(a, b)
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) {
      if (i in a !== i in b) return false
      if (!sameValue(a[i], b[i], options)) return false
    }
    return true
  }
  if (Array.isArray(b)) return false
  if (a instanceof Date || b instanceof Date)
    return a instanceof Date && b instanceof Date && Object.is(a.getTime(), b.getTime())
  if (a instanceof Map || b instanceof Map) {
    if (!(a instanceof Map && b instanceof Map) || a.size !== b.size) return false
    const bs = [...b]
    return [...a].every(([k, v], i) => sameValue(k, bs[i]![0], options) && sameValue(v, bs[i]![1], options))
  }
  if (a instanceof Set || b instanceof Set) {
    if (!(a instanceof Set && b instanceof Set) || a.size !== b.size) return false
    const bs = [...b]
    return [...a].every((m, i) => sameValue(m, bs[i], options))
  }
  const aBinary = ArrayBuffer.isView(a) || a instanceof ArrayBuffer
  const bBinary = ArrayBuffer.isView(b) || b instanceof ArrayBuffer
  if (aBinary || bBinary) {
    if (!(aBinary && bBinary)) return false
    if (options.bytesOnly !== true && a.constructor !== b.constructor) return false
    return bytes(a).equals(bytes(b))
  }
  for (const Box of BOXES) {
    if (a instanceof Box || b instanceof Box)
      return a instanceof Box && b instanceof Box && Object.is(a.valueOf(), b.valueOf())
  }
  if (!isPlain(a) || !isPlain(b)) return false
  const aKeys = Object.keys(a)
  const bKeys = Object.keys(b)
  if (aKeys.length !== bKeys.length) return false
  const aRecord = a as Record<string, unknown>
  const bRecord = b as Record<string, unknown>
  return aKeys.every((k) => Object.hasOwn(b, k) && sameValue(aRecord[k], bRecord[k], options))
}

/** The value with every `-0` turned into `0` (what JSON and MessagePack give back). */
export function withoutNegativeZero(value: unknown): unknown {
  if (Object.is(value, -0)) return 0
  if (Array.isArray(value)) return value.map(withoutNegativeZero)
  if (typeof value === 'object' && value !== null && isPlain(value) && !ArrayBuffer.isView(value)) {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value))
      Object.defineProperty(out, k, {
        value: withoutNegativeZero(v),
        enumerable: true,
        writable: true,
        configurable: true,
      })
    return out
  }
  return value
}

/** Whether a value (deeply) holds a plain object with an own `"__proto__"` key. */
export function hasProtoKey(value: unknown): boolean {
  if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value)) return false
  if (Array.isArray(value)) return value.some(hasProtoKey)
  return Object.hasOwn(value, '__proto__') || Object.values(value).some(hasProtoKey)
}

type Kind = 'array' | 'date' | 'map' | 'set' | 'plain' | 'other'

function kindOf(value: object): Kind {
  if (Array.isArray(value)) return 'array'
  if (value instanceof Date) return 'date'
  if (value instanceof Map) return 'map'
  if (value instanceof Set) return 'set'
  return isPlain(value) ? 'plain' : 'other'
}

/** Whether every item of `as` pairs off with its own item of `bs` (equality is an equivalence, so greedy is exact). */
function sameMultiset<T>(as: readonly T[], bs: readonly T[], same: (a: T, b: T) => boolean): boolean {
  if (as.length !== bs.length) return false
  const used = new Array<boolean>(bs.length).fill(false)
  for (const a of as) {
    const i = bs.findIndex((b, j) => !used[j] && same(a, b))
    if (i < 0) return false
    used[i] = true
  }
  return true
}

/**
 * Structural equality by the documented rules of the default decorator key
 * (docs/decorators-and-locks.md, "The default key"): -0 equals 0, NaN equals NaN, a hole differs from
 * `undefined`, object key order, Map entry order and Set member order are
 * ignored, a null-prototype object is a plain object, Dates compare by time
 * (every invalid Date is the same). Covers the grammar the property generates.
 */
export function sameArgument(a: unknown, b: unknown): boolean {
  if (typeof a !== typeof b) return false
  if (typeof a === 'number') return a === b || (Number.isNaN(a) && Number.isNaN(b))
  if (typeof a !== 'object' || a === null || b === null) return a === b
  const other = b as object
  const kind = kindOf(a)
  if (kind !== kindOf(other)) return false
  switch (kind) {
    case 'array': {
      const x = a as unknown[]
      const y = other as unknown[]
      if (x.length !== y.length) return false
      for (let i = 0; i < x.length; i++) if (i in x !== i in y || !sameArgument(x[i], y[i])) return false
      return true
    }
    case 'date': {
      const x = (a as Date).getTime()
      const y = (other as Date).getTime()
      return x === y || (Number.isNaN(x) && Number.isNaN(y))
    }
    case 'map':
      return sameMultiset(
        [...(a as Map<unknown, unknown>)],
        [...(other as Map<unknown, unknown>)],
        (x, y) => sameArgument(x[0], y[0]) && sameArgument(x[1], y[1]),
      )
    case 'set':
      return sameMultiset([...(a as Set<unknown>)], [...(other as Set<unknown>)], sameArgument)
    case 'plain': {
      const x = a as Record<string, unknown>
      const y = other as Record<string, unknown>
      const keys = Object.keys(x)
      if (keys.length !== Object.keys(y).length) return false
      return keys.every((k) => Object.hasOwn(y, k) && sameArgument(x[k], y[k]))
    }
    case 'other':
      throw new TypeError('sameArgument: outside the generated grammar')
  }
}

/** `sameArgument` over two argument lists. */
export function sameArguments(a: readonly unknown[], b: readonly unknown[]): boolean {
  return sameArgument(a, b)
}

/**
 * The stable encoding of a call's arguments that default decorator keys are made
 * of: `getUser#1a2b3c4d("42")`, `UserService.find#5e6f7a8b(1,{"active":true})` (see `functionTag`). Equal argument
 * lists
 * (deep, object key order ignored) give the same text and different ones different
 * text, in every process, so a key written by one process is found by another.
 *
 * Grammar (every value is self-delimiting, so the encoding of a list is unambiguous):
 *
 * | value | encoding |
 * | --- | --- |
 * | `undefined`, `null`, `true`, `false` | the word itself |
 * | number | `String(n)`: `1`, `-1.5`, `1e+21`, `NaN`, `Infinity`; `-0` is written `0` |
 * | bigint | `12n` |
 * | string | JSON, with spaces written `\u0020`: `"a\u0020b"` |
 * | array | `[a,b]`, a hole written `~` |
 * | plain object | `{"a":1,"b":2}`, keys sorted |
 * | `Date` | `Date(1970-01-01T00:00:00.000Z)`, `Date(Invalid)` |
 * | `Map` | `Map(k=>v,…)`, entries sorted by their encoding |
 * | `Set` | `Set(a,b)`, members sorted by their encoding |
 * | typed array, `Buffer`, `DataView`, `ArrayBuffer` | `Uint8Array(0aff)`: the type name and the bytes in hex |
 * | `RegExp` | `RegExp("a.c","gi")` |
 * | boxed primitive | `Number(1)`, `String("x")`, `Boolean(true)`, `BigInt(1n)` |
 * | instance with `toJSON()` (`URL`, most value classes) | `URL("http://x/")`: the class name and the encoding of what
 * `toJSON()` answers |
 * | other class instance | `User{"id":1}`: the class name and its own enumerable properties, sorted |
 *
 * Functions, symbols (as values or as property keys), promises, `WeakMap`, `WeakSet`
 * and `WeakRef` cannot be keyed: a `TypeError` names where they are. So does a
 * cycle. An object reached twice without a cycle is simply encoded twice.
 */
import { createHash } from 'node:crypto'

/** Past this many bytes (UTF-8) a default key carries a sha256 digest of the arguments instead. @internal */
export const MAX_KEY_BYTES = 200

/** Why an argument cannot be keyed, and where: `arguments[1].onDone`. @internal */
export class UnkeyableError extends Error {
  readonly path: string
  readonly reason: string
  constructor(path: string, reason: string) {
    super(`${path} ${reason}`)
    this.path = path
    this.reason = reason
  }
}

/**
 * The default key of a call: `name(encoded arguments)`, or `name(sha256:<hex>)`
 * when that would be longer than `MAX_KEY_BYTES` bytes. Throws `UnkeyableError`.
 * @internal
 */
export function argumentsKey(name: string, args: readonly unknown[]): string {
  const encoded = encodeList(args)
  const key = `${name}(${encoded})`
  if (key.length <= MAX_KEY_BYTES && Buffer.byteLength(key) <= MAX_KEY_BYTES) return key
  return `${name}(sha256:${createHash('sha256').update(encoded).digest('hex')})`
}

/** The encoding of an argument list, without the function name: `1,"a",undefined`. @internal */
export function encodeList(args: readonly unknown[]): string {
  const ancestors = new Set<object>()
  const parts = new Array<string>(args.length)
  for (let i = 0; i < args.length; i++) parts[i] = encode(args[i], `arguments[${i}]`, ancestors)
  return parts.join(',')
}

const seen = new Map<string, number>()
const tags = new WeakMap<object, string>()

/**
 * What tells a function apart in default keys, whatever its name: `#` and a digest
 * of its source, then `~2`, `~3`… for the second, third… distinct function with the
 * same name and source made in this process (two closures of one factory). The
 * same source in the same order gives the same tags in every process, so a key
 * written by one process is found by another; the same function always gets the
 * same tag.
 * @internal
 */
export function functionTag(fn: (...args: never[]) => unknown): string {
  let tag = tags.get(fn)
  if (tag === undefined) {
    const digest = createHash('sha256').update(Function.prototype.toString.call(fn)).digest('hex').slice(0, 8)
    const base = `#${digest}`
    const n = (seen.get(`${fn.name} ${base}`) ?? 0) + 1
    seen.set(`${fn.name} ${base}`, n)
    tag = n === 1 ? base : `${base}~${n}`
    tags.set(fn, tag)
  }
  return tag
}

const SPACE = / /g

function encodeString(value: string): string {
  // No spaces: Memcached turns them into `_`, which would make "a b" and "a_b" one key.
  return JSON.stringify(value).replace(SPACE, '\\u0020')
}

function encode(value: unknown, path: string, ancestors: Set<object>): string {
  switch (typeof value) {
    case 'string':
      return encodeString(value)
    case 'number':
      return String(value) // String(-0) is '0'; NaN is 'NaN'
    case 'boolean':
      return value ? 'true' : 'false'
    case 'undefined':
      return 'undefined'
    case 'bigint':
      return `${value}n`
    case 'function':
      throw new UnkeyableError(path, 'is a function')
    case 'symbol':
      throw new UnkeyableError(path, `is a symbol (${value.toString()})`)
  }
  if (value === null) return 'null'
  const object = value as object
  if (ancestors.has(object)) throw new UnkeyableError(path, 'refers back to an object that contains it (a cycle)')
  ancestors.add(object)
  try {
    return encodeObject(object, path, ancestors)
  } finally {
    ancestors.delete(object)
  }
}

function encodeObject(value: object, path: string, ancestors: Set<object>): string {
  if (Array.isArray(value)) {
    const parts = new Array<string>(value.length)
    for (let i = 0; i < value.length; i++) parts[i] = i in value ? encode(value[i], `${path}[${i}]`, ancestors) : '~'
    return `[${parts.join(',')}]`
  }
  const proto: unknown = Object.getPrototypeOf(value)
  if (proto === Object.prototype || proto === null) return `{${properties(value, path, ancestors)}}`
  if (value instanceof Date) {
    const time = value.getTime()
    return `Date(${Number.isNaN(time) ? 'Invalid' : value.toISOString()})`
  }
  if (value instanceof Map) {
    const entries: string[] = []
    let i = 0
    for (const [k, v] of value) {
      entries.push(`${encode(k, `${path}.<key ${i}>`, ancestors)}=>${encode(v, `${path}.get(<key ${i}>)`, ancestors)}`)
      i++
    }
    return `Map(${entries.sort().join(',')})`
  }
  if (value instanceof Set) {
    const members: string[] = []
    let i = 0
    for (const member of value) members.push(encode(member, `${path}.<member ${i++}>`, ancestors))
    return `Set(${members.sort().join(',')})`
  }
  if (ArrayBuffer.isView(value)) {
    return `${className(value)}(${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex')})`
  }
  if (value instanceof ArrayBuffer || (typeof SharedArrayBuffer === 'function' && value instanceof SharedArrayBuffer)) {
    return `${className(value)}(${Buffer.from(value).toString('hex')})`
  }
  if (value instanceof RegExp) return `RegExp(${encodeString(value.source)},${encodeString(value.flags)})`
  if (value instanceof Number || value instanceof String || value instanceof Boolean || value instanceof BigInt) {
    return `${className(value)}(${encode(value.valueOf(), path, ancestors)})`
  }
  if (value instanceof Promise) throw new UnkeyableError(path, 'is a Promise: await it before the call')
  if (value instanceof WeakMap || value instanceof WeakSet || value instanceof WeakRef || value instanceof Symbol) {
    throw new UnkeyableError(path, `is a ${className(value)}, whose contents cannot be read`)
  }
  const toJSON = (value as { toJSON?: unknown }).toJSON
  if (typeof toJSON === 'function')
    return `${className(value)}(${encode(toJSON.call(value), `${path}.toJSON()`, ancestors)})`
  return `${className(value)}{${properties(value, path, ancestors)}}`
}

function properties(value: object, path: string, ancestors: Set<object>): string {
  for (const symbol of Object.getOwnPropertySymbols(value)) {
    if (Object.prototype.propertyIsEnumerable.call(value, symbol))
      throw new UnkeyableError(`${path}[${symbol.toString()}]`, 'is a symbol-keyed property')
  }
  const names = Object.keys(value).sort()
  const parts = new Array<string>(names.length)
  const record = value as Record<string, unknown>
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!
    const at = /^[A-Za-z_$][\w$]*$/.test(name) ? `${path}.${name}` : `${path}[${JSON.stringify(name)}]`
    parts[i] = `${encodeString(name)}:${encode(record[name], at, ancestors)}`
  }
  return parts.join(',')
}

function className(value: object): string {
  const ctor = (value as { constructor?: unknown }).constructor
  const name = typeof ctor === 'function' ? ctor.name : ''
  return name === '' ? 'anonymous' : name
}

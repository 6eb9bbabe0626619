/**
 * Argument values for the decorator-key properties: a grammar of what the
 * default key encodes (docs/decorators-and-locks.md, "The default key"), a structurally equal twin of a
 * value built with fresh objects in another order, and a random single mutation.
 */
import fc from 'fast-check'

const LEAF_NUMBERS = [0, -0, NaN, 1, -1, 1.5, Infinity, -Infinity, 1e21, 2 ** 53, 5e-324]
const CHARS = ['a', 'b', ' ', '~', ',', '=', '>', '"', '\\', 'u', '0', '(', ')', 'é', '\u2028']
const OBJECT_KEYS = ['a', 'b', 'c', ' ', '1', '__proto__', 'a b', '']

const leaf: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(...LEAF_NUMBERS),
  fc.double(),
  fc.integer({ min: -3, max: 3 }),
  fc.string({ unit: fc.constantFrom(...CHARS), maxLength: 4 }),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.bigInt({ min: -5n, max: 5n }),
  fc.oneof(fc.integer({ min: -2, max: 2 }), fc.constant(NaN), fc.constant(8.64e15)).map((ms) => new Date(ms)),
)

/** A value of the grammar: leaves, arrays with holes, plain objects (some null-prototype), Map, Set. */
export const argumentValue: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.sparseArray(tie('value'), { maxLength: 4 }),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(fc.constantFrom(...OBJECT_KEYS), tie('value'), { maxKeys: 3 }),
    fc.array(fc.tuple(tie('value'), tie('value')), { maxLength: 3 }).map((entries) => new Map(entries)),
    fc.array(tie('value'), { maxLength: 3 }).map((members) => new Set(members)),
  ),
})).value

export const argumentList: fc.Arbitrary<unknown[]> = fc.array(argumentValue, { maxLength: 4 })

function isPlain(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

function define(target: object, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true })
}

function pick<T>(items: readonly T[], random: () => number): T {
  return items[Math.floor(random() * items.length)]!
}

function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}

/**
 * A structurally equal copy made of fresh objects: object keys, Map entries and
 * Set members reordered, zeros given a random sign, NaN recomputed, plain
 * objects given a random prototype (Object.prototype or null).
 */
export function twin(value: unknown, random: () => number): unknown {
  if (typeof value === 'number') {
    if (value === 0) return random() < 0.5 ? -0 : 0
    if (Number.isNaN(value)) return Math.sqrt(-1)
    return value
  }
  if (typeof value !== 'object' || value === null) return value
  if (Array.isArray(value)) {
    const out = new Array<unknown>(value.length)
    for (let i = 0; i < value.length; i++) if (i in value) out[i] = twin(value[i], random)
    return out
  }
  if (value instanceof Date) return new Date(value.getTime())
  if (value instanceof Map)
    return new Map(shuffled([...value], random).map(([k, v]) => [twin(k, random), twin(v, random)]))
  if (value instanceof Set) return new Set(shuffled([...value], random).map((m) => twin(m, random)))
  if (!isPlain(value)) throw new TypeError('twin: outside the grammar')
  const out: object = random() < 0.5 ? {} : Object.create(null)
  const record = value as Record<string, unknown>
  for (const key of shuffled(Object.keys(value), random)) define(out, key, twin(record[key], random))
  return out
}

/** Number of nodes (values) in a value, itself included. */
function countNodes(value: unknown): number {
  if (typeof value !== 'object' || value === null || value instanceof Date) return 1
  if (Array.isArray(value)) {
    let n = 1
    for (let i = 0; i < value.length; i++) if (i in value) n += countNodes(value[i])
    return n
  }
  if (value instanceof Map) return 1 + [...value].reduce((n, [k, v]) => n + countNodes(k) + countNodes(v), 0)
  if (value instanceof Set) return 1 + [...value].reduce((n, m) => n + countNodes(m), 0)
  return 1 + Object.values(value).reduce((n: number, v) => n + countNodes(v), 0)
}

/**
 * A change of one node: most of them make the value structurally different, a few may not (the property decides by the
 * rules).
 */
function mutateNode(value: unknown, random: () => number): unknown {
  const replacements: unknown[] = [
    0,
    1,
    NaN,
    '',
    'x',
    ' ',
    '~',
    true,
    null,
    undefined,
    0n,
    1n,
    new Date(0),
    [],
    {},
    new Map(),
    new Set(),
    [undefined],
  ]
  if (random() < 0.3) return pick(replacements, random)
  switch (typeof value) {
    case 'number':
      return pick(
        [value + 1, -value, String(value), Number.isNaN(value) ? 0 : NaN, value === 0 ? 5e-324 : value / 2],
        random,
      )
    case 'string':
      return pick(
        [value + 'a', value.slice(1), value + ' ', value.replace(/ /g, '_'), value === '' ? 'undefined' : `${value}n`],
        random,
      )
    case 'boolean':
      return !value
    case 'bigint':
      return pick([value + 1n, Number(value), String(value)], random)
    case 'undefined':
      return pick([null, 'undefined', [undefined]], random)
  }
  if (value === null) return pick([undefined, 'null', 0], random)
  if (Array.isArray(value)) {
    const out = new Array<unknown>(value.length)
    for (let i = 0; i < value.length; i++) if (i in value) out[i] = value[i]
    const i = Math.floor(random() * Math.max(1, value.length))
    const choice = Math.floor(random() * 5)
    if (choice === 0) out.push(undefined)
    else if (choice === 1)
      out.length = out.length + 1 // a trailing hole
    else if (choice === 2 && value.length > 0) out.pop()
    else if (choice === 3 && value.length > 0)
      delete out[i] // an element becomes a hole (or stays one)
    else if (value.length > 0)
      out[i] = i in value ? [value[i]] : undefined // hole becomes undefined, element gets wrapped
    else out.push(null)
    return out
  }
  if (value instanceof Date) {
    const t = value.getTime()
    const valid = new Date(Number.isNaN(t) ? 0 : t)
    return pick([new Date(valid.getTime() + 1), new Date(NaN), t, valid.toISOString()], random)
  }
  if (value instanceof Map) {
    const entries = [...value]
    const choice = Math.floor(random() * 3)
    if (choice === 0) entries.push([pick(replacements, random), pick(replacements, random)])
    else if (choice === 1 && entries.length > 0) entries.splice(Math.floor(random() * entries.length), 1)
    else if (entries.length > 0) entries[0] = [entries[0]![1], entries[0]![0]]
    else entries.push([1, 1])
    return new Map(entries)
  }
  if (value instanceof Set) {
    const members = [...value]
    if (members.length > 0 && random() < 0.5) members.splice(Math.floor(random() * members.length), 1)
    else members.push(pick(replacements, random))
    return new Set(members)
  }
  const keys = Object.keys(value as object)
  const record = value as Record<string, unknown>
  const out: object = Object.getPrototypeOf(value) === null ? Object.create(null) : {}
  const choice = Math.floor(random() * 3)
  const victim = keys.length > 0 ? pick(keys, random) : undefined
  for (const key of keys) {
    if (key !== victim || choice === 2) define(out, key, record[key])
    else if (choice === 1) define(out, `${key}_`, record[key]) // renamed
  }
  if (choice === 2 || victim === undefined) define(out, pick(OBJECT_KEYS, random) + 'z', undefined) // added
  return out
}

/** A copy of the value (sharing untouched leaves) with node number `target` (pre-order) mutated. */
function mutateAt(value: unknown, target: { left: number }, random: () => number): unknown {
  if (target.left-- === 0) return mutateNode(value, random)
  if (typeof value !== 'object' || value === null || value instanceof Date) return value
  if (Array.isArray(value)) {
    const out = new Array<unknown>(value.length)
    for (let i = 0; i < value.length; i++) if (i in value) out[i] = mutateAt(value[i], target, random)
    return out
  }
  if (value instanceof Map)
    return new Map([...value].map(([k, v]) => [mutateAt(k, target, random), mutateAt(v, target, random)]))
  if (value instanceof Set) return new Set([...value].map((m) => mutateAt(m, target, random)))
  const out: object = Object.getPrototypeOf(value) === null ? Object.create(null) : {}
  const record = value as Record<string, unknown>
  for (const key of Object.keys(value)) define(out, key, mutateAt(record[key], target, random))
  return out
}

/**
 * The argument list with one random node (an argument, or anything inside one) changed, or one argument added or
 * removed.
 */
export function mutate(args: readonly unknown[], random: () => number): unknown[] {
  const r = random()
  if (r < 0.1 || args.length === 0) return [...args, pick([undefined, null, 0, ''], random)]
  if (r < 0.2) return args.slice(0, -1)
  const total = args.reduce((n: number, a) => n + countNodes(a), 0)
  const target = { left: Math.floor(random() * total) }
  return args.map((a) => mutateAt(a, target, random))
}

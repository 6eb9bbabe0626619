/**
 * The one statement of every command's options: `COMMAND_OPTIONS` names them, the
 * option types below type them, and the check and its error message come from the
 * same table.
 */
import { describe } from '../util/describe.js'
import { type Duration, toLease, toSeconds } from '../util/duration.js'

/**
 * The options that tune how `getOrSet` keeps and recomputes a value, besides `ttl`: what the
 * cache's `defaults`, `cached` and `@Cached` take too. One list for all of them.
 * @internal
 */
export const GET_OR_SET_TUNING = [
  'grace',
  'graceBackoff',
  'softTimeout',
  'hardTimeout',
  'eagerRefresh',
  'lock',
  'lease',
] as const

/** Every option a command may take. */
export interface OptionTypes {
  /** Seconds (or `'10s'`, `'5m'`…) the entry lives. Default: the cache's ttl; `0` or `null`: never expires. */
  ttl?: Duration | null
  /** The namespace of the key(s). Default: the cache's. */
  namespace?: string
  /** How long this call may take, in seconds. Default: the cache's timeout; `0` or `null`: unbounded. */
  timeout?: Duration | null
  /** Encodes the value(s) instead of the cache's serializer. */
  dumps?: (value: unknown) => unknown
  /** Decodes the stored value(s) instead of the cache's serializer. */
  loads?: (stored: unknown) => unknown
  /** What `get` answers for a miss. Default `undefined`. */
  default?: unknown
  /** The stored value seen earlier: `set` writes only if it is still the stored one, else answers `false`. */
  casToken?: unknown
  /** `getOrSet`: seconds a value is kept past its ttl, answered as a stale fallback. Default: none. */
  grace?: Duration | null
  /** `getOrSet`: seconds the factory is not called again for a key after a stale fallback. Default `10`. */
  graceBackoff?: Duration
  /** `getOrSet`: with a stale value at hand, seconds to wait for the factory before answering it. */
  softTimeout?: Duration | null
  /** `getOrSet`: the longest wait for the factory, in seconds (then `FactoryTimeoutError` or the stale value). */
  hardTimeout?: Duration | null
  /** `getOrSet`: a hit after this fraction of its ttl (0 to 1) refreshes the value in the background. */
  eagerRefresh?: number | null
  /**
   * `getOrSet`: where the factory runs once for concurrent calls of a key: `'process'` (default) in this process,
   * `'distributed'` in all processes sharing the store (a lease lock on the key; Redis wakes the waiters by pub/sub).
   */
  lock?: 'process' | 'distributed'
  /**
   * `getOrSet` with `lock: 'distributed'`: seconds the lock is held at most, so a process that dies does not block
   * the others for longer. Default: `hardTimeout`, else `2`.
   */
  lease?: Duration
  /** Tags of the entry: `invalidateTags` with one of them makes it read as a miss (or as stale, with grace). */
  tags?: readonly string[]
}

/** The options of each command, in the order error messages list them. Its keys are the commands. */
export const COMMAND_OPTIONS = {
  /** `add(key, value, options)`. */
  add: ['ttl', 'namespace', 'dumps', 'timeout', 'tags'],
  /** `get(key, options)`. */
  get: ['default', 'namespace', 'loads', 'timeout'],
  /** `getOrSet(key, fn, { ttl, grace, graceBackoff, softTimeout, hardTimeout, eagerRefresh, lock, lease, … })`. */
  getOrSet: ['ttl', ...GET_OR_SET_TUNING, 'namespace', 'dumps', 'loads', 'timeout', 'tags'],
  /** `multiGet(keys, options)`. */
  multiGet: ['namespace', 'loads', 'timeout'],
  /** `set(key, value, options)`. */
  set: ['ttl', 'namespace', 'dumps', 'timeout', 'casToken', 'tags'],
  /** `multiSet(pairs, options)`. */
  multiSet: ['ttl', 'namespace', 'dumps', 'timeout', 'tags'],
  /** `delete(key, options)`. */
  delete: ['namespace', 'timeout'],
  /** `exists(key, options)`. */
  exists: ['namespace', 'timeout'],
  /** `increment(key, delta, options)`. */
  increment: ['namespace', 'timeout'],
  /** `expire(key, ttl, options)`. */
  expire: ['namespace', 'timeout'],
  /** `clear(options)`. */
  clear: ['namespace', 'timeout'],
  /** `invalidateTags(tags, { namespace, timeout })`. */
  invalidateTags: ['namespace', 'timeout'],
  /** `raw(command, ...args)` takes no options. */
  raw: [],
  /** `close()` takes no options. */
  close: [],
} as const satisfies Record<string, ReadonlyArray<keyof OptionTypes>>

/** Every command a cache runs through its chain. */
export type CommandName = keyof typeof COMMAND_OPTIONS

/** The commands, in table order. */
export const COMMANDS = Object.keys(COMMAND_OPTIONS) as readonly CommandName[]

/** The options of command `C`. */
export type OptionsOf<C extends CommandName> = Pick<OptionTypes, (typeof COMMAND_OPTIONS)[C][number]>

/** The options of `add`: `ttl`, `namespace`, `dumps`, `timeout`. */
export type AddOptions = OptionsOf<'add'>
/** The options of `get`: `default`, typed as the value, `namespace`, `loads`, `timeout`. */
export interface GetOptions<T = unknown> extends Omit<OptionsOf<'get'>, 'default'> {
  /** What `get` answers for a miss. Default `undefined`. */
  default?: T
}
/** The options of `multiGet`: `namespace`, `loads`, `timeout`. */
export type MultiGetOptions = OptionsOf<'multiGet'>
/** The options of `set`: `ttl`, `namespace`, `dumps`, `timeout`, `casToken`. */
export type SetOptions = OptionsOf<'set'>
/** The options of `multiSet`: `ttl`, `namespace`, `dumps`, `timeout`. */
export type MultiSetOptions = OptionsOf<'multiSet'>
/** The options of `delete`: `namespace`, `timeout`. */
export type DeleteOptions = OptionsOf<'delete'>
/** The options of `exists`: `namespace`, `timeout`. */
export type ExistsOptions = OptionsOf<'exists'>
/** The options of `increment`: `namespace`, `timeout`. */
export type IncrementOptions = OptionsOf<'increment'>
/** The options of `expire`: `namespace`, `timeout` (the ttl is an argument of its own). */
export type ExpireOptions = OptionsOf<'expire'>
/** The options of `clear`: `namespace`, `timeout`. */
export type ClearOptions = OptionsOf<'clear'>
/** The options of `invalidateTags`: `namespace`, `timeout`. */
export type InvalidateTagsOptions = OptionsOf<'invalidateTags'>
/**
 * The options of `getOrSet`: `ttl`, `grace`, `graceBackoff`, `softTimeout`, `hardTimeout`, `eagerRefresh`, `lock`,
 * `lease`, `namespace`, `dumps`, `loads`, `timeout`, `tags`.
 */
export type GetOrSetOptions = OptionsOf<'getOrSet'>

const KNOWN = Object.fromEntries(
  Object.entries(COMMAND_OPTIONS).map(([command, names]) => [command, new Set<string>(names)]),
) as unknown as Record<CommandName, ReadonlySet<string>>

/**
 * `args` with the caller's `options` copied in as given, or the TypeError that says
 * why they are not options of `command`. One pass checks and copies: a spread of
 * the caller's object would cost about a microsecond in V8. @internal
 */
export function withOptions<A extends object>(command: CommandName, args: A, options: unknown): A | TypeError {
  if (options === null || typeof options !== 'object') return optionsError(command, options)!
  const known = KNOWN[command]
  for (const name in options) {
    if (!known.has(name)) return optionsError(command, options)!
    ;(args as Record<string, unknown>)[name] = (options as Record<string, unknown>)[name]
  }
  return args
}

/**
 * `withOptions` for `getOrSet`, the command of the hot read path: the same args (but a `ttl` always present) and
 * the same errors for unknown names (a spec holds them equal for every option), copied by name rather than by a
 * computed key, which V8 runs several times faster at a call site every command shares. The values are checked as
 * they are copied, so that a hit checks nothing more: a bad one is the error, whatever the cache holds. @internal
 */
export function getOrSetArgs(key: string, fn: unknown, options: unknown): GetOrSetArgs | Error {
  if (options === null || typeof options !== 'object') return optionsError('getOrSet', options)!
  const o = options as OptionsOf<'getOrSet'>
  // `ttl`, the option nearly every call gives, is a property of the object as built: one added later would cost
  // V8 a new backing store for the object on every call. (When not given it is present and undefined.)
  const args: GetOrSetArgs = { key, fn, ttl: o.ttl }
  try {
    for (const name in o) {
      // `ttl` here, the others in a function of their own: the common call stays small enough to be inlined.
      if (name === 'ttl') {
        if (o.ttl !== undefined) toSeconds(o.ttl, 'getOrSet ttl')
      } else if (!otherOption(args, o, name)) {
        return optionsError('getOrSet', options)!
      }
    }
  } catch (error) {
    return error as Error
  }
  return args
}

/** Copies and checks `getOrSet`'s option `name` (not `ttl`) into `args`; `false` for an option it does not take. */
function otherOption(args: GetOrSetArgs, o: OptionsOf<'getOrSet'>, name: string): boolean {
  switch (name) {
    case 'grace':
      args.grace = o.grace
      if (o.grace !== undefined) toSeconds(o.grace, 'getOrSet grace')
      return true
    case 'graceBackoff':
      args.graceBackoff = o.graceBackoff
      if (o.graceBackoff !== undefined) toSeconds(o.graceBackoff, 'getOrSet graceBackoff')
      return true
    case 'softTimeout':
      args.softTimeout = o.softTimeout
      if (o.softTimeout !== undefined) toSeconds(o.softTimeout, 'getOrSet softTimeout')
      return true
    case 'hardTimeout':
      args.hardTimeout = o.hardTimeout
      if (o.hardTimeout !== undefined) toSeconds(o.hardTimeout, 'getOrSet hardTimeout')
      return true
    case 'eagerRefresh':
      args.eagerRefresh = o.eagerRefresh
      if (o.eagerRefresh !== undefined) fractionOf(o.eagerRefresh, 'getOrSet: eagerRefresh')
      return true
    case 'lock':
      args.lock = o.lock
      if (o.lock !== undefined) distributedOf(o.lock, 'getOrSet: lock')
      return true
    case 'lease':
      args.lease = o.lease
      if (o.lease !== undefined) toLease(o.lease, 'getOrSet: lease')
      return true
    case 'namespace':
      args.namespace = o.namespace
      return true
    case 'dumps':
      args.dumps = o.dumps
      return true
    case 'loads':
      args.loads = o.loads
      return true
    case 'timeout':
      args.timeout = o.timeout
      if (o.timeout !== undefined) toSeconds(o.timeout, 'getOrSet timeout')
      return true
    case 'tags':
      args.tags = o.tags
      return true
    default:
      return false
  }
}

/** The options that tune `getOrSet`, `ttl` included: what a cache's `defaults` may set. @internal */
export type TuningName = 'ttl' | (typeof GET_OR_SET_TUNING)[number]

/**
 * Throws for a value `getOrSet`'s option `name` cannot take, as `what` (`'defaults.grace'`, `'cached f: lock'`):
 * the one check of the tuning given to a cache's `defaults`, `cached` and the method decorators. @internal
 */
export function checkTuning(name: TuningName, value: unknown, what: string): void {
  if (value === undefined) return
  if (name === 'eagerRefresh') fractionOf(value, what)
  else if (name === 'lock') distributedOf(value, what)
  else if (name === 'lease') toLease(value, what)
  else toSeconds(value as Duration | null, what)
}

/** `eagerRefresh` as a fraction of the ttl (`undefined`, `null`: 0), or the RangeError that says why not. @internal */
export function fractionOf(eagerRefresh: unknown, what: string): number {
  const fraction = eagerRefresh ?? 0
  if (typeof fraction !== 'number' || !(fraction >= 0 && fraction < 1)) {
    throw new RangeError(
      `[oniocache] ${what} must be a fraction of the ttl, at least 0 and below 1 (0.8: a hit after 80 % of the ` +
        `ttl refreshes in the background); got ${describe(eagerRefresh)}`,
    )
  }
  return fraction
}

/** Whether `lock` is `'distributed'`, or the TypeError that says what it must be. @internal */
export function distributedOf(lock: unknown, what: string): boolean {
  if (lock !== 'process' && lock !== 'distributed') {
    throw new TypeError(
      `[oniocache] ${what} must be 'process' (one factory call per key in this process) or 'distributed' (one ` +
        `in all processes sharing the store); got ${describe(lock)}`,
    )
  }
  return lock === 'distributed'
}

/** The args of a `getOrSet`: its key, its factory and its options. @internal */
export type GetOrSetArgs = OptionsOf<'getOrSet'> & { key: string; fn: unknown }

/**
 * Why `options` are not options of `command` (not an object, or an unknown name),
 * as the TypeError a command rejects with; `undefined` when they are.
 * @internal
 */
export function optionsError(command: CommandName, options: unknown): TypeError | undefined {
  const known = KNOWN[command]
  if (options !== null && typeof options === 'object') {
    let unknown: string[] | undefined
    for (const name in options) if (!known.has(name)) (unknown ??= []).push(JSON.stringify(name))
    if (unknown === undefined) return undefined
    return new TypeError(
      `[oniocache] ${command}: unknown option ${unknown.join(', ')}; known: ${[...known].join(', ')}`,
    )
  }
  return new TypeError(
    `[oniocache] ${command}: options must be an object ({ ${[...known].join(', ')} }); got ${describe(options)}`,
  )
}

/**
 * The one statement of every command's options: `COMMAND_OPTIONS` names them, the
 * option types below type them, and the check and its error message come from the
 * same table.
 */
import { describe } from '../util/describe.js'
import type { Duration } from '../util/duration.js'

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
}

/** The options of each command, in the order error messages list them. Its keys are the commands. */
export const COMMAND_OPTIONS = {
  add: ['ttl', 'namespace', 'dumps', 'timeout'],
  get: ['default', 'namespace', 'loads', 'timeout'],
  multiGet: ['namespace', 'loads', 'timeout'],
  set: ['ttl', 'namespace', 'dumps', 'timeout', 'casToken'],
  multiSet: ['ttl', 'namespace', 'dumps', 'timeout'],
  delete: ['namespace', 'timeout'],
  exists: ['namespace', 'timeout'],
  increment: ['namespace', 'timeout'],
  expire: ['namespace', 'timeout'],
  clear: ['namespace', 'timeout'],
  raw: [],
  close: [],
} as const satisfies Record<string, ReadonlyArray<keyof OptionTypes>>

/** Every command a cache runs through its chain. */
export type CommandName = keyof typeof COMMAND_OPTIONS

/** The commands, in table order. */
export const COMMANDS = Object.keys(COMMAND_OPTIONS) as readonly CommandName[]

/** The options of command `C`. */
export type OptionsOf<C extends CommandName> = Pick<OptionTypes, (typeof COMMAND_OPTIONS)[C][number]>

export type AddOptions = OptionsOf<'add'>
export interface GetOptions<T = unknown> extends Omit<OptionsOf<'get'>, 'default'> {
  /** What `get` answers for a miss. Default `undefined`. */
  default?: T
}
export type MultiGetOptions = OptionsOf<'multiGet'>
export type SetOptions = OptionsOf<'set'>
export type MultiSetOptions = OptionsOf<'multiSet'>
export type DeleteOptions = OptionsOf<'delete'>
export type ExistsOptions = OptionsOf<'exists'>
export type IncrementOptions = OptionsOf<'increment'>
export type ExpireOptions = OptionsOf<'expire'>
export type ClearOptions = OptionsOf<'clear'>

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

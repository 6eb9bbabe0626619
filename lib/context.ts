import type { Cache } from './cache.js'
import type { Duration } from './duration.js'

/** Every command a cache runs through its chain. */
export type CommandName =
  | 'add' | 'get' | 'multiGet' | 'set' | 'multiSet' | 'delete'
  | 'exists' | 'increment' | 'expire' | 'clear' | 'raw' | 'close'

export const COMMANDS: readonly CommandName[] = [
  'add', 'get', 'multiGet', 'set', 'multiSet', 'delete', 'exists', 'increment', 'expire', 'clear', 'raw', 'close',
]

/**
 * A command's arguments exactly as the caller gave them: unbuilt keys,
 * unserialized values. Which fields are set depends on the command.
 */
export interface CommandArgs {
  key?: string
  keys?: Iterable<string>
  pairs?: Iterable<readonly [string, unknown]>
  value?: unknown
  delta?: number
  ttl?: Duration | null
  namespace?: string
  default?: unknown
  dumps?: (value: unknown) => unknown
  loads?: (stored: unknown) => unknown
  timeout?: Duration | null
  casToken?: unknown
  /** `raw`: the command and its arguments. */
  command?: string
  args?: unknown[]
}

/** What every layer of the chain receives. */
export interface Context {
  readonly cache: Cache
  readonly command: CommandName
  /** The caller's arguments; a layer may rewrite them before `next()`. */
  args: CommandArgs
  /** What the caller will receive, set once the inner layers finish. */
  result: unknown
  /**
   * Seconds the inner layers took, set after `next()` returns: a `BasePlugin`
   * measures its own `next()`; otherwise it is the core step's own time.
   */
  took: number
  /** `get`/`multiGet`: how many keys the core step found. */
  hits: number | undefined
  /** Aborted (with the `TimeoutError` as reason) when the command times out. */
  readonly signal: AbortSignal
  /** Scratch space for middleware, one per command. */
  readonly state: Record<string, unknown>
}

export type Next = () => Promise<void>
/** A layer of the onion: code before `await next()` is its pre hook, after it its post hook. */
export type Middleware = (ctx: Context, next: Next) => Promise<void> | void
/** An object that brings its own middleware. */
export interface Plugin {
  middleware(ctx: Context, next: Next): Promise<void> | void
}

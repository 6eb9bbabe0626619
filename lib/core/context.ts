import type { Duration } from '../util/duration.js'
import type { CommandName } from './options.js'

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

/**
 * The cache a command runs on: `BaseCache` and its subclasses. `core/cache.ts` says
 * so by declaration merging, so that this module imports nothing above it.
 */
// biome-ignore lint/suspicious/noEmptyInterface: filled in by core/cache.ts
export interface ContextCache {}

/** What every layer of the chain receives. */
export interface Context {
  readonly cache: ContextCache
  readonly command: CommandName
  /** The caller's arguments; a layer may rewrite them before `next()`. */
  args: CommandArgs
  /** What the caller will receive, set once the inner layers finish. */
  result: unknown
  /**
   * Seconds the inner layers took, written after `next()` returns by the layer that
   * measured them: a `BasePlugin`'s post hooks see the seconds its own `next()` took.
   */
  took: number
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

// Readers and writers of the context's private fields, defined in the class body below: only it can reach them.
/** @internal Aborts `ctx.signal` with `reason` (now, or as soon as someone asks for the signal). */
export let abort: (ctx: CommandContext, reason: unknown) => void
/** @internal The core step found `hits` of the keys it looked up. */
export let recordHits: (ctx: CommandContext, hits: number) => void
/**
 * How many keys the core step found for a `get` or `multiGet`; `undefined` when a
 * middleware answered without reaching it (or for any other command).
 * @internal
 */
export let hitsOf: (ctx: Context) => number | undefined
/** @internal The key(s) the core step built, for debug lines. */
export let recordKeys: (ctx: CommandContext, keys: string | string[]) => void
/** @internal */
export let keysOf: (ctx: CommandContext) => string | string[] | undefined

/**
 * The context of one command: exactly the fields of `Context`. What the core step
 * keeps per command (the keys it built, how many it found) sits in private fields, read through the functions above.
 * @internal
 */
export class CommandContext implements Context {
  readonly cache: ContextCache
  readonly command: CommandName
  args: CommandArgs
  result: unknown = undefined
  took = 0
  #controller: AbortController | undefined = undefined
  #state: Record<string, unknown> | undefined = undefined
  #abortedBy: unknown = undefined
  #hits: number | undefined = undefined
  #keys: string | string[] | undefined = undefined

  constructor(cache: ContextCache, command: CommandName, args: CommandArgs) {
    this.cache = cache
    this.command = command
    this.args = args
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController()
      if (this.#abortedBy !== undefined) this.#controller.abort(this.#abortedBy)
    }
    return this.#controller.signal
  }

  get state(): Record<string, unknown> {
    this.#state ??= {}
    return this.#state
  }

  static {
    abort = (ctx, reason) => {
      ctx.#abortedBy = reason
      ctx.#controller?.abort(reason)
    }
    recordHits = (ctx, hits) => {
      ctx.#hits = hits
    }
    hitsOf = (ctx) => (ctx instanceof CommandContext ? ctx.#hits : undefined)
    recordKeys = (ctx, keys) => {
      ctx.#keys = keys
    }
    keysOf = (ctx) => ctx.#keys
  }
}

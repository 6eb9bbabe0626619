import type { Duration } from '../util/duration.js'
import type { CommandName, OptionTypes } from './options.js'

/**
 * A command's arguments exactly as the caller gave them: unbuilt keys,
 * unserialized values, and its options (`OptionTypes`). Which fields are set
 * depends on the command.
 */
export interface CommandArgs extends OptionTypes {
  /** The key of `add`, `get`, `set`, `delete`, `exists`, `increment`, `expire` and `getOrSet`, before `buildKey`. */
  key?: string
  /** The keys of `multiGet`, before `buildKey`. */
  keys?: Iterable<string>
  /** The `[key, value]` pairs of `multiSet`. */
  pairs?: Iterable<readonly [string, unknown]>
  /** The value of `add` and `set`, before the serializer. */
  value?: unknown
  /** What `increment` adds. */
  delta?: number
  /** The ttl of a write (`undefined`: the cache's), or the new ttl of `expire`. */
  ttl?: Duration | null
  /** The tags of a write (`set`, `add`, `multiSet`, `getOrSet`), or those `invalidateTags` invalidates. */
  tags?: readonly string[]
  /** `getOrSet`: the factory that computes a missing value. */
  fn?: unknown
  /** `raw`: the command. */
  command?: string
  /** `raw`: the command's arguments. */
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
  /** The cache the command runs on. */
  readonly cache: ContextCache
  /** The command: `'get'`, `'multiGet'`, `'set'`, …, `'close'`. */
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

/** Runs the inner layers of the chain; resolves once they are done (and `ctx.result` is set). */
export type Next = () => Promise<void>
/** A layer of the onion: code before `await next()` is its pre hook, after it its post hook. */
export type Middleware = (ctx: Context, next: Next) => Promise<void> | void
/** An object that brings its own middleware. */
export interface Plugin {
  /**
   * The plugin's layer: code before `await next()` runs on the way in, code after it on the way out. Not calling
   * `next()` answers the command without the inner layers (set `ctx.result` first).
   */
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
 * @internal How a `getOrSet` was answered: kept in a private field and shown as
 * `ctx.state.outcome`, without making the state object for a command nobody looks at.
 */
export let recordOutcome: (ctx: CommandContext, outcome: string) => void

/**
 * What the core step learnt of an entry it answered from an envelope: until when
 * (wall-clock ms of the cache's clock; 0: no logical expiry) it may be answered as
 * fresh, and its tags. An entry answered without facts was stored plain. @internal
 */
export interface EntryFacts {
  readonly until: number
  readonly tags: readonly string[] | undefined
}
/** @internal The facts of a `get`'s or `getOrSet`'s entry, or of a `multiGet`'s entries by position. */
export let recordFacts: (ctx: CommandContext, facts: EntryFacts | ReadonlyArray<EntryFacts | undefined>) => void
/** @internal */
export let factsOf: (ctx: Context) => EntryFacts | ReadonlyArray<EntryFacts | undefined> | undefined
/** @internal How a `getOrSet` was answered, without making `ctx.state`. */
export let outcomeOf: (ctx: Context) => string | undefined

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
  #outcome: string | undefined = undefined
  #facts: EntryFacts | ReadonlyArray<EntryFacts | undefined> | undefined = undefined

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
    if (this.#state === undefined) {
      this.#state = {}
      if (this.#outcome !== undefined) this.#state.outcome = this.#outcome
    }
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
    recordFacts = (ctx, facts) => {
      ctx.#facts = facts
    }
    factsOf = (ctx) => (ctx instanceof CommandContext ? ctx.#facts : undefined)
    outcomeOf = (ctx) => (ctx instanceof CommandContext ? ctx.#outcome : undefined)
    recordOutcome = (ctx, outcome) => {
      ctx.#outcome = outcome
      if (ctx.#state !== undefined) ctx.#state.outcome = outcome
    }
  }
}

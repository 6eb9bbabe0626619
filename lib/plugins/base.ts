import { type Bind, LAYER_FOR, SYNC_NEXT, type SyncNext } from '../core/compose.js'
import type { Context, Next, Plugin } from '../core/context.js'
import { COMMANDS, type CommandName } from '../core/options.js'
import { type Clock, monotonic } from '../util/clock.js'

type Hook = (ctx: Context) => void | Promise<void>

/**
 * The optional hooks a `BasePlugin` subclass may define: one pre and one post per
 * command, and `pre`/`post` for every command (run before the command's own pre
 * hook and after its own post hook).
 *
 * Each is awaited when it answers a promise; one that throws rejects the command. Post hooks run only when the
 * inner layers succeeded. `ctx.took` is the seconds this plugin's `next()` took, unless its `timesNext` is `false`.
 */
export interface PluginHooks {
  /** Runs before every command, before the command's own pre hook. */
  pre?(ctx: Context): void | Promise<void>
  /** Runs after every command that succeeded, after the command's own post hook. */
  post?(ctx: Context): void | Promise<void>
  /** Runs before `add` goes on to the inner layers. */
  preAdd?(ctx: Context): void | Promise<void>
  /** Runs once `add` succeeded in the inner layers; sees `ctx.result` and `ctx.took`. */
  postAdd?(ctx: Context): void | Promise<void>
  /** Runs before `get` goes on to the inner layers. */
  preGet?(ctx: Context): void | Promise<void>
  /** Runs once `get` succeeded in the inner layers; sees `ctx.result` and `ctx.took`. */
  postGet?(ctx: Context): void | Promise<void>
  /** Runs before `getOrSet` goes on to the inner layers. */
  preGetOrSet?(ctx: Context): void | Promise<void>
  /**
   * Runs once `getOrSet` succeeded in the inner layers; sees `ctx.result`, `ctx.took` and `ctx.state.outcome`
   * (`'fresh'`, `'stale'` or `'computed'`).
   */
  postGetOrSet?(ctx: Context): void | Promise<void>
  /** Runs before `invalidateTags` goes on to the inner layers. */
  preInvalidateTags?(ctx: Context): void | Promise<void>
  /** Runs once `invalidateTags` succeeded in the inner layers; sees `ctx.result` and `ctx.took`. */
  postInvalidateTags?(ctx: Context): void | Promise<void>
  /** Runs before `multiGet` goes on to the inner layers. */
  preMultiGet?(ctx: Context): void | Promise<void>
  /** Runs once `multiGet` succeeded in the inner layers; sees `ctx.result` and `ctx.took`. */
  postMultiGet?(ctx: Context): void | Promise<void>
  /** Runs before `set` goes on to the inner layers. */
  preSet?(ctx: Context): void | Promise<void>
  /** Runs once `set` succeeded in the inner layers; sees `ctx.result` and `ctx.took`. */
  postSet?(ctx: Context): void | Promise<void>
  /** Runs before `multiSet` goes on to the inner layers. */
  preMultiSet?(ctx: Context): void | Promise<void>
  /** Runs once `multiSet` succeeded in the inner layers; sees `ctx.result` and `ctx.took`. */
  postMultiSet?(ctx: Context): void | Promise<void>
  /** Runs before `delete` goes on to the inner layers. */
  preDelete?(ctx: Context): void | Promise<void>
  /** Runs once `delete` succeeded in the inner layers; sees `ctx.result` and `ctx.took`. */
  postDelete?(ctx: Context): void | Promise<void>
  /** Runs before `exists` goes on to the inner layers. */
  preExists?(ctx: Context): void | Promise<void>
  /** Runs once `exists` succeeded in the inner layers; sees `ctx.result` and `ctx.took`. */
  postExists?(ctx: Context): void | Promise<void>
  /** Runs before `increment` goes on to the inner layers. */
  preIncrement?(ctx: Context): void | Promise<void>
  /** Runs once `increment` succeeded in the inner layers; sees `ctx.result` and `ctx.took`. */
  postIncrement?(ctx: Context): void | Promise<void>
  /** Runs before `expire` goes on to the inner layers. */
  preExpire?(ctx: Context): void | Promise<void>
  /** Runs once `expire` succeeded in the inner layers; sees `ctx.result` and `ctx.took`. */
  postExpire?(ctx: Context): void | Promise<void>
  /** Runs before `clear` goes on to the inner layers. */
  preClear?(ctx: Context): void | Promise<void>
  /** Runs once `clear` succeeded in the inner layers; sees `ctx.result` and `ctx.took`. */
  postClear?(ctx: Context): void | Promise<void>
  /** Runs before `raw` goes on to the inner layers. */
  preRaw?(ctx: Context): void | Promise<void>
  /** Runs once `raw` succeeded in the inner layers; sees `ctx.result` and `ctx.took`. */
  postRaw?(ctx: Context): void | Promise<void>
  /** Runs before `close` goes on to the inner layers. */
  preClose?(ctx: Context): void | Promise<void>
  /** Runs once `close` succeeded in the inner layers; sees `ctx.result` and `ctx.took`. */
  postClose?(ctx: Context): void | Promise<void>
}

/** A plugin's layer for one command, given its `next()` (which may finish synchronously), or `null`: no hook. */
type CommandLayer = Bind | null

/**
 * aiocache's plugin shape as middleware: define `preGet(ctx)`, `postSet(ctx)`, …
 * (or `pre`/`post` for every command) and they run before and after `next()`,
 * awaited when they answer a promise. Post hooks see `ctx.result` and `ctx.took`,
 * the seconds this plugin's own `next()` took. A hook that throws rejects the
 * command. Only methods are hooks: a field named `pre` or `postGet` that is not a
 * function is left alone. The hooks are read once, when a cache first composes its chain with the plugin (or on
 * the plugin's first command).
 *
 * @example
 * ```ts
 * import { BasePlugin, Cache, type Context } from 'oniocache'
 *
 * class LogPlugin extends BasePlugin {
 *   override preGet(ctx: Context): void {
 *     console.log('get', ctx.args.key)
 *   }
 *   override postSet(ctx: Context): void {
 *     console.log('set', ctx.args.key, '->', ctx.result, `in ${ctx.took.toFixed(6)} s`)
 *   }
 * }
 *
 * const cache = new Cache({ plugins: [new LogPlugin()] })
 * await cache.set('a', 1) // set a -> true in 0.000012 s
 * await cache.get('a') // get a
 * ```
 */
// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: the hooks are optional methods a subclass defines
export class BasePlugin implements Plugin {
  /**
   * Whether this plugin's post hooks read `ctx.took`. A subclass that never does
   * may set it to `false` (as `HitMissRatioPlugin` does): its `next()` is then not
   * timed, which saves two clock reads per command, and `ctx.took` holds what the
   * inner layers left there.
   */
  readonly timesNext: boolean = true
  /**
   * Where `ctx.took` is measured from, in milliseconds: a subclass (a test) may answer another clock. Read once,
   * when the plugin's layers are built.
   */
  protected get clock(): Clock {
    return monotonic
  }
  #layers: Record<CommandName, CommandLayer> | undefined

  /**
   * The plugin's layer: its layer for `ctx.command` (see `LAYER_FOR`), or `next()` alone for a command it has no
   * hook for. Written for both compositions: under the cache's own it finishes synchronously when the hooks and the
   * inner layers do.
   */
  middleware(ctx: Context, next: Next): Promise<void> | void {
    // The layer a cache composes (a shipped plugin may write its own out), else (a subclass's own middleware
    // calling this one) the one its hooks make.
    const written = this[LAYER_FOR](ctx.command)
    const layer = written === undefined ? this.#layerOf(ctx.command) : written
    return layer === null ? next() : layer(next as SyncNext)(ctx)
  }

  /**
   * The plugin's layer for one command, built once for every command from its hooks; `undefined` for a subclass
   * with a `middleware` of its own, which is then its layer. @internal
   */
  [LAYER_FOR](command: CommandName): CommandLayer | undefined {
    if (this.middleware !== BasePlugin.prototype.middleware) return undefined
    return this.#layerOf(command)
  }

  #layerOf(command: CommandName): CommandLayer {
    this.#layers ??= layersOf(this, this.clock)
    return this.#layers[command]
  }
}

// Declaration merging: the hooks are optional methods of every BasePlugin.
export interface BasePlugin extends PluginHooks {}

// The adapter takes a next() that may finish synchronously (see core/compose.ts).
Object.defineProperty(BasePlugin.prototype.middleware, SYNC_NEXT, { value: true })

/** `getOrSet` → `GetOrSet`: how a command is named in its hooks. */
const inHooks = (command: CommandName): Capitalize<CommandName> =>
  (command[0]!.toUpperCase() + command.slice(1)) as Capitalize<CommandName>

/** The names of every hook a `BasePlugin` may have. */
const HOOK_NAMES: ReadonlyArray<keyof PluginHooks> = [
  'pre',
  'post',
  ...COMMANDS.flatMap((command) => [`pre${inHooks(command)}`, `post${inHooks(command)}`] as const),
]

/**
 * Whether every hook `plugin` has is the one `prototype` has: a shipped plugin writes its layer out only when no
 * subclass or assignment gave it hooks of its own. @internal
 */
export function hasOnlyHooksOf(plugin: BasePlugin, prototype: BasePlugin): boolean {
  return HOOK_NAMES.every((name) => plugin[name] === prototype[name])
}

/** Calls hooks from `from` on; answers `undefined` if all were synchronous, else a promise of the rest. */
function call(plugin: BasePlugin, ctx: Context, hooks: readonly Hook[], from: number): Promise<void> | undefined {
  for (let i = from; i < hooks.length; i++) {
    const out = hooks[i]!.call(plugin, ctx)
    if (out !== undefined) return Promise.resolve(out).then(() => call(plugin, ctx, hooks, i + 1))
  }
  return undefined
}

const ignore = (): void => {}

/** A plugin's hooks of one kind (pre or post) for one command, called in order. */
type Hooks = (ctx: Context) => Promise<void> | undefined

/**
 * `call(plugin, ctx, hooks, 0)` as one function, built once: a single hook is called directly, as a method (a
 * bound copy of it would cost a call V8 does not inline).
 */
function caller(plugin: BasePlugin, hooks: readonly Hook[]): Hooks | null {
  if (hooks.length === 0) return null
  if (hooks.length !== 1) return (ctx) => call(plugin, ctx, hooks, 0)
  const hook = hooks[0]!
  return (ctx) => {
    const out = hook.call(plugin, ctx)
    return out === undefined ? undefined : Promise.resolve(out).then(ignore)
  }
}

/** Every command's layer of `plugin`, from its hooks (only functions count). */
function layersOf(plugin: BasePlugin, clock: Clock): Record<CommandName, CommandLayer> {
  const layers = {} as Record<CommandName, CommandLayer>
  const own = (name: keyof PluginHooks): Hook[] => {
    const hook: unknown = plugin[name]
    return typeof hook === 'function' ? [hook as Hook] : []
  }
  for (const command of COMMANDS) {
    const name = inHooks(command)
    const pre = caller(plugin, [...own('pre'), ...own(`pre${name}`)])
    const post = caller(plugin, [...own(`post${name}`), ...own('post')])
    layers[command] = layerOf(plugin.timesNext ? clock : undefined, pre, post)
  }
  return layers
}

/**
 * The one place the hook order lives: `pre`, `pre<Command>`, `next()` (timed on `clock` unless the plugin's
 * `timesNext` is false: no clock), `post<Command>`, `post`; `null` when there is no hook. The variants are chosen
 * here, once, so that a command runs only the steps its plugin has.
 */
function layerOf(clock: Clock | undefined, before: Hooks | null, after: Hooks | null): CommandLayer {
  if (before === null && after === null) return null
  const around: Bind =
    after === null
      ? (next) => next
      : clock === undefined
        ? (next) => (ctx) => {
            const inner = next(ctx)
            if (inner === undefined) return after(ctx)
            return inner.then(() => after(ctx))
          }
        : (next) => (ctx) => {
            const started = clock.now()
            const inner = next(ctx)
            if (inner === undefined) {
              ctx.took = (clock.now() - started) / 1000
              return after(ctx)
            }
            return inner.then(() => {
              ctx.took = (clock.now() - started) / 1000
              return after(ctx)
            })
          }
  if (before === null) return around
  return (next) => {
    const inside = around(next)
    return (ctx) => {
      const pending = before(ctx)
      if (pending !== undefined) return pending.then(() => inside(ctx))
      return inside(ctx)
    }
  }
}

/**
 * The onion. A cache's chain is a list of layers — the timeout, the plugins in
 * order, the core step — composed the way koa-compose composes middleware: each
 * layer gets a `next()` that runs the layers inside it.
 *
 * `compose` is koa-compose's algorithm with one optimisation, and only for layers
 * that declare they allow it (`SYNC_NEXT`: the timeout, `BasePlugin`'s adapter,
 * the core step): their `next()` may answer `undefined` instead of a promise when
 * the layers inside it finished synchronously, so a memory hit through them
 * finishes without a promise per layer; and it takes the context as an argument,
 * so that it is built once per chain rather than once per command. The library's
 * own layers come as a `Bind` too, the layer given its `next()` once when the
 * chain is built, so that entering a layer is one call. Any other
 * middleware gets what koa-compose gives: a `next()` that always answers a
 * promise, and its own answer made a promise. A differential property test holds
 * the two compositions equal over random stacks of layers.
 */
import { describe } from '../util/describe.js'
import type { CommandContext, Context, Middleware, Next, Plugin } from './context.js'
import type { CommandName } from './options.js'

/**
 * Marks a middleware function written for the fast path: it calls `next(ctx)` and
 * accepts `undefined` from it, meaning that the inner layers have finished. Under
 * plain koa-compose the argument is ignored and a promise comes back, which such a
 * layer accepts too.
 * @internal
 */
export const SYNC_NEXT: unique symbol = Symbol('oniocache.syncNext')

/**
 * A plugin's layer for one command, as a method keyed by this symbol: `plugin[LAYER_FOR](command)` answers that layer
 * as a `Bind` (given its `next()` once, it answers what runs the layer), `null` when the plugin does nothing for the
 * command (its layer would only call `next()`), or `undefined`: its `middleware` is its layer. A cache composes a
 * chain per command from these, so that a layer does not look its hooks up on every command, a layer with nothing to
 * do is left out, and a layer's `next()` is a function it holds rather than one made for it. `BasePlugin` answers
 * it. @internal
 */
export const LAYER_FOR: unique symbol = Symbol('oniocache.layerFor')

/** What a layer marked `SYNC_NEXT` is given as `next`. @internal */
export type SyncNext = (ctx: Context) => void | Promise<void>

/**
 * A layer marked `SYNC_NEXT` given its `next()` once, when a chain is built: it answers the function that runs the
 * layer with that `next()`, as `run(ctx, next)` would. @internal
 */
export type Bind = (next: SyncNext) => SyncNext

/**
 * A layer of a chain: a middleware function, whether it is marked `SYNC_NEXT`, and, for the library's own layers,
 * the same layer as a `Bind` (what `compose` uses: one call per layer instead of two). @internal
 */
export interface Layer {
  readonly run: Middleware
  readonly syncNext: boolean
  readonly bind?: Bind | undefined
}

/** A composed chain: answers `undefined` when the command finished synchronously, else a promise. @internal */
export type Chain = (ctx: CommandContext) => void | Promise<unknown>

const isMarked = (fn: unknown): boolean => (fn as { [SYNC_NEXT]?: unknown })[SYNC_NEXT] === true

/**
 * A plugin (an object with `middleware(ctx, next)`) or a bare middleware function
 * as a layer; anything else is a TypeError that says what a plugin is.
 * @internal
 */
export function layerOf(plugin: unknown, index: number): Layer {
  if (typeof plugin === 'function') return { run: plugin as Middleware, syncNext: isMarked(plugin) }
  if (plugin !== null && typeof plugin === 'object' && typeof (plugin as Plugin).middleware === 'function') {
    const { middleware } = plugin as Plugin
    return { run: middleware.bind(plugin), syncNext: isMarked(middleware) }
  }
  throw new TypeError(
    `[oniocache] plugins[${index}] is ${describe(plugin)}: a plugin is a middleware function (ctx, next) ` +
      'or an object with a middleware(ctx, next) method, such as a BasePlugin',
  )
}

/**
 * The layer of `plugin` for `command` alone: what `plugin[LAYER_FOR](command)` answers when it has that method
 * (`null`: no layer), else (or when it answers `undefined`) `layerOf(plugin)`. @internal
 */
export function commandLayerOf(plugin: unknown, index: number, command: CommandName): Layer | null {
  const layer = layerOf(plugin, index)
  const layerFor = typeof plugin === 'object' ? (plugin as { [LAYER_FOR]?: unknown })[LAYER_FOR] : undefined
  if (typeof layerFor !== 'function') return layer
  const bind = (layerFor as (command: CommandName) => Bind | null | undefined).call(plugin, command)
  if (bind === undefined) return layer
  return bind === null ? null : boundLayer(bind)
}

/** A layer from its `Bind`; its middleware form binds it on every call. */
function boundLayer(bind: Bind): Layer {
  const run = (ctx: Context, next: Next): void | Promise<void> => bind(next as SyncNext)(ctx)
  return { run: run as Middleware, syncNext: true, bind }
}

type Step = (ctx: CommandContext, next: SyncNext) => void | Promise<unknown>

/** A layer marked `SYNC_NEXT`, for the chain's own layers (the timeout): its `bind` made from `run`. @internal */
export function syncLayer(run: Step): Layer {
  const bind: Bind = (next) => (ctx) => run(ctx as CommandContext, next) as void | Promise<void>
  return { run: run as unknown as Middleware, syncNext: true, bind }
}

/** The innermost layer of a chain: a step that never calls `next()`, bound as itself. @internal */
export function innermost(step: (ctx: CommandContext) => void | Promise<unknown>): Layer {
  const bound = step as SyncNext
  return { run: step as unknown as Middleware, syncNext: true, bind: () => bound }
}

/** Composes layers, the first outermost (see the module's comment for how it differs from koa-compose). @internal */
export function compose(layers: readonly Layer[]): Chain {
  // Built once, from the innermost out: each layer entered with the next() that enters the layers inside it.
  let inner: SyncNext = nothingInside
  for (let i = layers.length - 1; i >= 0; i--) inner = entered(layers[i]!, inner)
  return inner as Chain
}

/** The next() of the innermost layer: nothing is inside it. */
const nothingInside = (): undefined => undefined

/** Runs `layer` with `next` as its next(): passed as it is to a marked layer, as koa-compose passes it otherwise. */
function entered(layer: Layer, next: SyncNext): SyncNext {
  if (layer.bind !== undefined) return layer.bind(next)
  const run = layer.run as (ctx: Context, next: unknown) => void | Promise<void>
  if (layer.syncNext) return (ctx) => run(ctx, next)
  // Any other middleware, exactly as koa-compose runs it, its next() refusing a second call.
  // (koa-compose refuses to enter a layer twice; the library's own layers call next() once,
  // so a second call of a middleware's next() is the only way in.) The closure is passed
  // unnamed: a named one costs a defineProperty per command where esbuild keeps names.
  return (ctx) => {
    let called = false
    try {
      return Promise.resolve(
        run(ctx, (): Promise<void> => {
          if (called) return Promise.reject(new Error('next() called multiple times'))
          called = true
          try {
            return Promise.resolve(next(ctx))
          } catch (error) {
            return Promise.reject(error)
          }
        }),
      )
    } catch (error) {
      return Promise.reject(error)
    }
  }
}

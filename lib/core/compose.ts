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
 * so that it is built once per chain rather than once per command. Any other
 * middleware gets what koa-compose gives: a `next()` that always answers a
 * promise, and its own answer made a promise. A differential property test holds
 * the two compositions equal over random stacks of layers.
 */
import { describe } from '../util/describe.js'
import type { CommandContext, Context, Middleware, Plugin } from './context.js'
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
 * A plugin's layer for one command, as a method keyed by this symbol: `plugin[LAYER_FOR](command)` answers a
 * middleware marked `SYNC_NEXT` that does for that command what `plugin.middleware` does, `null` when the plugin does
 * nothing for it (its layer would only call `next()`), or `undefined`: its `middleware` is its layer. A cache
 * composes a chain per command from these, so that a layer does not look its hooks up on every command and a layer
 * with nothing to do is left out. `BasePlugin` answers it. @internal
 */
export const LAYER_FOR: unique symbol = Symbol('oniocache.layerFor')

/** What a layer marked `SYNC_NEXT` is given as `next`. @internal */
export type SyncNext = (ctx: Context) => void | Promise<void>

/** A layer of a chain: a middleware function, and whether it is marked `SYNC_NEXT`. @internal */
export interface Layer {
  readonly run: Middleware
  readonly syncNext: boolean
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
  const run = (layerFor as (command: CommandName) => Middleware | null | undefined).call(plugin, command)
  if (run === undefined) return layer
  return run === null ? null : { run, syncNext: true }
}

/** A layer marked `SYNC_NEXT`: for the chain's own layers (timeout, core step). @internal */
export function syncLayer(run: (ctx: CommandContext, next: SyncNext) => void | Promise<unknown>): Layer {
  return { run: run as unknown as Middleware, syncNext: true }
}

/** Composes layers, the first outermost (see the module's comment for how it differs from koa-compose). @internal */
export function compose(layers: readonly Layer[]): Chain {
  const count = layers.length
  const runs = layers.map((layer) => layer.run as (ctx: CommandContext, next: unknown) => void | Promise<void>)
  const syncNext = layers.map((layer) => layer.syncNext)
  // One next() per position, built once: a marked layer passes the context back in.
  const nextAt: SyncNext[] = runs.map((_, i) => (ctx) => dispatch(ctx as CommandContext, i + 1))

  function dispatch(ctx: CommandContext, i: number): void | Promise<void> {
    if (i === count) return undefined
    if (syncNext[i]) return runs[i]!(ctx, nextAt[i])
    // Any other middleware, exactly as koa-compose runs it, its next() refusing a second call.
    // (koa-compose refuses to enter a layer twice; the library's own layers call next() once,
    // so a second call of a middleware's next() is the only way in.) The closure is passed
    // unnamed: a named one costs a defineProperty per command where esbuild keeps names.
    let called = false
    try {
      return Promise.resolve(
        runs[i]!(ctx, (): Promise<void> => {
          if (called) return Promise.reject(new Error('next() called multiple times'))
          called = true
          try {
            return Promise.resolve(dispatch(ctx, i + 1))
          } catch (error) {
            return Promise.reject(error)
          }
        }),
      )
    } catch (error) {
      return Promise.reject(error)
    }
  }

  return (ctx) => dispatch(ctx, 0)
}

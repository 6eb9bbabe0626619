/**
 * What the telemetry plugins read off a command they wrap: how it ended (once, and
 * at the caller's moment: a command that times out ends at its timeout, not when
 * its inner layers give up) and how many keys a `get` or `multiGet` looked up and found.
 */
import { type Context, hitsOf } from '../core/context.js'

/** Called exactly once per command: `failed` with the error, or not. @internal */
export type Settle = (failed: boolean, error: unknown) => void

/**
 * Calls `settle` once `inner` (what `next()` answered) settles or the command times
 * out, whichever comes first, and answers a promise that settles like `inner`. Only
 * asynchronous commands come here: a chain that finished synchronously cannot have
 * timed out. @internal
 */
export function whenSettled(ctx: Context, inner: PromiseLike<void>, settle: Settle): Promise<void> {
  let open = true
  const once: Settle = (failed, error) => {
    if (!open) return
    open = false
    settle(failed, error)
  }
  if (hasTimeout(ctx)) {
    const { signal } = ctx
    signal.addEventListener('abort', () => once(true, signal.reason), { once: true })
  }
  return Promise.resolve(inner).then(
    () => once(false, undefined),
    (error: unknown) => {
      once(true, error)
      throw error
    },
  )
}

/** Whether the command runs under a timeout (the call's, else the cache's): only then is a listener worth it. */
function hasTimeout(ctx: Context): boolean {
  const given = ctx.args.timeout
  const timeout = given === undefined ? ctx.cache.timeout : given
  return timeout !== null && timeout !== 0 && timeout !== undefined
}

/**
 * How many keys a finished `get` or `multiGet` looked up: 1 for `get`, the number of
 * values answered for `multiGet`, 0 for any other command. @internal
 */
export function lookedUp(ctx: Context): number {
  if (ctx.command === 'get' || ctx.command === 'getOrSet') return 1
  if (ctx.command === 'multiGet') return Array.isArray(ctx.result) ? ctx.result.length : 0
  return 0
}

/**
 * How many of those keys were found. The core step's count when it answered; when
 * a middleware inside the plugin answered alone, the values it answered that are
 * not `undefined` (as `HitMissRatioPlugin` counts them). @internal
 */
export function found(ctx: Context): number {
  const hits = hitsOf(ctx)
  if (hits !== undefined) return hits
  if (ctx.command === 'get') return ctx.result === undefined ? 0 : 1
  // A getOrSet hit is a fresh answer; a stale or computed one is a miss.
  if (ctx.command === 'getOrSet') return ctx.state.outcome === 'fresh' ? 1 : 0
  if (ctx.command !== 'multiGet' || !Array.isArray(ctx.result)) return 0
  let count = 0
  for (const value of ctx.result) if (value !== undefined) count++
  return count
}

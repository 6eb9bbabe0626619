/**
 * Running a command: the timeout, the outermost layer of every chain, and the
 * caller's promise. A chain that finishes synchronously (a memory hit through
 * synchronous hooks) has nothing left to time out: its promise is answered
 * settled and nothing is watched. Otherwise the command joins the shared
 * deadline list and its promise settles when the chain does or, past its
 * timeout, with a `TimeoutError` (and `ctx.signal` is aborted).
 */
import { now } from '../util/clock.js'
import { debug } from '../util/debug.js'
import { errorText } from '../util/describe.js'
import { toSeconds } from '../util/duration.js'
import { TimeoutError } from '../util/errors.js'
import { rejectLast, resolveLast, settleable } from '../util/promise.js'
import type { Receiver } from './backend.js'
import { commandChannel, commandMessage, traced } from './channels.js'
import { coreOf } from './commands.js'
import type { Chain, SyncNext } from './compose.js'
import { abort, type CommandContext, hitsOf, keysOf } from './context.js'
import { type Due, unwatch, watch } from './deadline.js'
import type { SharedReceiver } from './reads.js'

const DEBUG = debug.enabled

/**
 * The timeout layer: reads the call's timeout (else the cache's), runs the inner
 * layers and, if they are still running, answers the caller's promise — settled
 * with `ctx.result` when they finish, or rejected once the timeout has passed.
 * @internal
 */
export function timeout(ctx: CommandContext, next: SyncNext): void | Promise<unknown> {
  const seconds = secondsOf(ctx)
  const inner = next(ctx)
  if (inner === undefined) return undefined
  return settleLater(inner, seconds, ctx.command, ctx, undefined)
}

/**
 * The chain of a cache without plugins: the timeout layer and the core step fused
 * into one function, which does what `compose([timeout, core])` does (the
 * differential spec holds them equal) with one promise reaction less for an
 * asynchronous backend: the backend's answer finishes the core step and settles
 * the caller's promise in the same reaction. @internal
 */
export function bare(ctx: CommandContext): void | Promise<unknown> {
  const seconds = secondsOf(ctx)
  const step = coreOf(ctx.command)
  const answer = step.call(ctx)
  if (ctx.cache.backend.synchronous === true && !(answer instanceof Promise)) {
    step.done(ctx, answer)
    return undefined
  }
  return settleLater(Promise.resolve(answer), seconds, ctx.command, ctx, step)
}

/**
 * `bare` for `getOrSet` alone, the hot read path: the same steps (its timeout is 0: getOrSet bounds its own reads
 * and writes) in a function of its own, so that V8 keeps type feedback for it apart. In the one `bare` every
 * command shares, the calls of the core step see many targets and V8 inlines less behind them; the differential
 * spec holds the two equal. @internal
 */
export function bareGetOrSet(ctx: CommandContext): void | Promise<unknown> {
  const step = GET_OR_SET
  const answer = step.call(ctx)
  if (ctx.cache.backend.synchronous === true && !(answer instanceof Promise)) {
    step.done(ctx, answer)
    return undefined
  }
  return settleLater(Promise.resolve(answer), 0, 'getOrSet', ctx, step)
}

const GET_OR_SET = coreOf('getOrSet')

/**
 * `bare` for `get` alone, the most frequent command: the same steps, type feedback of its own (as `bareGetOrSet`).
 * @internal
 */
export function bareGet(ctx: CommandContext): void | Promise<unknown> {
  const seconds = secondsOf(ctx)
  const step = GET
  const { getInto } = ctx.cache.backend
  if (getInto !== undefined) {
    // The backend answers the command's Pending itself: no promise of its own, no reaction between the two.
    const promise = settleable()
    const pending = new Pending('get', ctx, step, resolveLast, rejectLast)
    if (seconds > 0) watch(pending, seconds * 1000)
    try {
      step.into!(ctx, getInto, pending)
    } catch (error) {
      pending.failed(error)
    }
    return promise
  }
  const answer = step.call(ctx)
  if (ctx.cache.backend.synchronous === true && !(answer instanceof Promise)) {
    step.done(ctx, answer)
    return undefined
  }
  return settleLater(Promise.resolve(answer), seconds, 'get', ctx, step)
}

const GET = coreOf('get')

/** The call's timeout in seconds, else the cache's; 0 for none. */
function secondsOf(ctx: CommandContext): number {
  // getOrSet bounds each read and write of the store itself; its factory is bounded by hardTimeout.
  if (ctx.command === 'getOrSet') return 0
  const given = ctx.args.timeout
  return given === undefined ? (ctx.cache.timeout ?? 0) : toSeconds(given, 'timeout')
}

/**
 * Runs a composed chain (the timeout outermost) and answers the caller's promise,
 * inside the `oniocache:command` tracing channel when anyone subscribes (`tracing`:
 * already inside it). Nothing is ever thrown: every error, bad input included, is a rejection.
 * @internal
 */
export function run(ctx: CommandContext, chain: Chain, tracing = false): Promise<unknown> {
  if (!tracing && traced()) return tracedRun(ctx, chain)
  const started = DEBUG ? now() : 0
  let pending: void | Promise<unknown>
  try {
    pending = chain(ctx)
  } catch (error) {
    if (DEBUG) log(ctx, started, error)
    return Promise.reject(error)
  }
  if (pending !== undefined) return DEBUG ? logged(pending, ctx, started) : pending
  if (DEBUG) log(ctx, started)
  return Promise.resolve(ctx.result)
}

/**
 * A command with a subscriber on `oniocache:command`: the same run, inside the
 * tracing channel's `tracePromise`, with a message that learns the built keys and
 * the hits before `asyncStart`.
 */
function tracedRun(ctx: CommandContext, chain: Chain): Promise<unknown> {
  const { cache } = ctx
  const namespace = ctx.args.namespace ?? cache.namespace
  const message = commandMessage(cache, ctx.command, namespace, keysFromArgs(ctx), cache.backend)
  const learn = (): void => {
    const built = keysOf(ctx)
    if (built !== undefined) message.keys = Array.isArray(built) ? built : [built]
    const hits = hitsOf(ctx)
    if (hits !== undefined) {
      if (ctx.command === 'get' || ctx.command === 'getOrSet') message.hit = hits === 1
      else if (ctx.command === 'multiGet') message.hits = hits
    }
  }
  return commandChannel.tracePromise(
    () =>
      run(ctx, chain, true).then(
        (result) => {
          learn()
          return result
        },
        (error: unknown) => {
          learn()
          throw error
        },
      ),
    message,
  )
}

/**
 * A backend call outside the command table (a lock's compare-and-delete, its
 * pub/sub) bounded like a command: past `seconds` (0: unbounded) it rejects with a
 * `TimeoutError` named `what`.
 * @internal
 */
export function bounded<T>(what: string, seconds: number, call: () => PromiseLike<T> | T): Promise<T> {
  let inner: PromiseLike<T> | T
  try {
    inner = call()
  } catch (error) {
    return Promise.reject(error)
  }
  return settleLater(Promise.resolve(inner), seconds, what, undefined, undefined) as Promise<T>
}

/** A command's core step as `bare` runs it: `done` turns the answer into `ctx.result`, `failed` sees a rejection. */
type Step = ReturnType<typeof coreOf>

/**
 * The promise of something still running: settled by it (after the core step `finish`,
 * when given, has turned its answer into `ctx.result`) or, past its timeout, by the deadline.
 */
function settleLater(
  inner: PromiseLike<unknown>,
  seconds: number,
  what: string,
  ctx: CommandContext | undefined,
  finish: Step | undefined,
): Promise<unknown> {
  const promise = settleable()
  const pending = new Pending(what, ctx, finish, resolveLast, rejectLast)
  if (seconds > 0) watch(pending, seconds * 1000)
  inner.then(
    (value) => pending.succeed(value),
    (error: unknown) => pending.failed(error),
  )
  return promise
}

/**
 * A command (or a bounded call) in flight: its entry in the shared deadline list
 * and its caller's promise, kept small (one stays alive per command in flight).
 */
class Pending implements Due, SharedReceiver {
  timeoutMs = 0
  stamp = 0
  prevDue: Due | null = null
  nextDue: Due | null = null
  readonly what: string
  readonly ctx: CommandContext | undefined
  readonly finish: Step | undefined
  /** `undefined` once settled. */
  resolve: ((value: unknown) => void) | undefined
  reject: ((reason: unknown) => void) | undefined
  /** The gets that joined this one's backend read (see `sharedGetInto`): answered with it, after it. */
  followers: Receiver[] | undefined = undefined

  constructor(
    what: string,
    ctx: CommandContext | undefined,
    finish: Step | undefined,
    resolve: (value: unknown) => void,
    reject: (reason: unknown) => void,
  ) {
    this.what = what
    this.ctx = ctx
    this.finish = finish
    this.resolve = resolve
    this.reject = reject
  }

  expire(): void {
    const reject = this.reject
    if (reject === undefined) return
    this.resolve = this.reject = undefined
    const seconds = this.ctx !== undefined ? secondsOf(this.ctx) : this.timeoutMs / 1000
    const error = new TimeoutError(this.what, seconds)
    if (this.ctx !== undefined) abort(this.ctx, error)
    reject(error)
  }

  join(other: Receiver): void {
    if (this.followers === undefined) this.followers = [other]
    else this.followers.push(other)
  }

  /** The inner work answered `value`: the command's result (after `finish`), or the value itself. */
  succeed(value: unknown): void {
    this.settle(value, false)
    const { followers } = this
    if (followers !== undefined) for (const follower of followers) follower.succeed(value)
  }

  settle(value: unknown, finished: boolean): void {
    const { ctx, finish } = this
    if (ctx !== undefined && !finished) {
      if (finish !== undefined) {
        let more: void | Promise<void>
        try {
          more = finish.done(ctx, value)
        } catch (error) {
          this.fail(error)
          return
        }
        // A command that reads once more (the invalidation times of tags) settles when that read has.
        if (more !== undefined) {
          more.then(
            () => this.settle(ctx.result, true),
            (error: unknown) => this.fail(error),
          )
          return
        }
      }
      value = ctx.result
    }
    const resolve = this.resolve
    if (resolve === undefined) return
    this.resolve = this.reject = undefined
    unwatch(this)
    resolve(value)
  }

  /** The inner work rejected: the core step learns it (see `Step`), then the caller. */
  failed(error: unknown): void {
    const { ctx, finish } = this
    if (ctx !== undefined && finish?.failed !== undefined) finish.failed(ctx)
    this.fail(error)
    const { followers } = this
    if (followers !== undefined) for (const follower of followers) follower.failed(error)
  }

  fail(error: unknown): void {
    const reject = this.reject
    if (reject === undefined) {
      // Timed out already: the caller has its TimeoutError; what the chain did later is only logged.
      if (DEBUG) debug('%s: after its timeout it also failed: %s', this.what, errorText(error))
      return
    }
    this.resolve = this.reject = undefined
    unwatch(this)
    reject(error)
  }
}

function logged(pending: Promise<unknown>, ctx: CommandContext, started: number): Promise<unknown> {
  pending.then(
    () => log(ctx, started),
    (error: unknown) => log(ctx, started, error),
  )
  return pending
}

/** One `NODE_DEBUG=oniocache` line: command, built key(s), hit or miss, the time it took. */
function log(ctx: CommandContext, started: number, error?: unknown): void {
  const ms = (now() - started).toFixed(3)
  const keys = loggedKeys(ctx)
  let outcome = ''
  const hits = hitsOf(ctx)
  if (error !== undefined) outcome = `error ${errorText(error)}`
  else if (ctx.command === 'get') outcome = hits === undefined ? 'answered by middleware' : hits === 1 ? 'hit' : 'miss'
  else if (ctx.command === 'multiGet') {
    outcome = hits === undefined ? 'answered by middleware' : `${hits}/${keys.split(',').length} hits`
  }
  debug('%s %s%s %sms', ctx.command, keys, outcome === '' ? '' : ` ${outcome}`, ms)
}

/** The key(s) the core step built; for a command that never reached it, what it would have built. */
function loggedKeys(ctx: CommandContext): string {
  const built = keysOf(ctx)
  if (built !== undefined) return Array.isArray(built) ? built.join(',') : built
  return keysFromArgs(ctx).join(',')
}

/** The keys a command's arguments would build; none for bad arguments (the error says what was wrong). */
function keysFromArgs(ctx: CommandContext): string[] {
  try {
    const { key, keys, pairs, namespace } = ctx.args
    if (typeof key === 'string') return [ctx.cache.buildKey(key, namespace)]
    // Only collections read twice alike: a generator's keys are learnt once the command has built them.
    if (reiterable(keys)) return Array.from(keys, (k) => ctx.cache.buildKey(k, namespace))
    if (reiterable(pairs)) return Array.from(pairs, ([k]) => ctx.cache.buildKey(k, namespace))
    if (ctx.command === 'clear') return [`${ctx.cache.buildKey('', namespace)}*`]
  } catch {
    // Bad arguments.
  }
  return []
}

function reiterable<T>(items: Iterable<T> | undefined): items is Iterable<T> {
  return Array.isArray(items) || items instanceof Set || items instanceof Map
}

import { now } from './clock.js'
import compose from 'koa-compose'
import { debuglog } from 'node:util'
import type { Cache } from './cache.js'
import { COMMANDS, type CommandArgs, type CommandName, type Context, type Middleware, type Plugin } from './context.js'
import { watch, unwatch, type Due } from './deadline.js'
import { describe, toSeconds } from './duration.js'
import { KeyExistsError, SerializationError, TimeoutError } from './errors.js'
import { BasePlugin, HOOK_NAMES, type PluginHooks } from './plugins/base.js'

const debug = debuglog('oniocache')
const DEBUG = debug.enabled

/**
 * The context of one command. Besides what middleware sees (`Context`), it is
 * its own entry in the shared deadline list and holds the caller's promise.
 */
export class CommandContext implements Context, Due {
  readonly cache: Cache
  readonly command: CommandName
  args: CommandArgs
  result: unknown = undefined
  took = 0
  hits: number | undefined = undefined
  /** The key(s) that reached the backend, for debug lines. */
  builtKey: string | string[] | undefined = undefined
  /** Whether the core step measures `took` (only when there is middleware to read it). */
  timed = false
  timeoutMs = 0
  stamp = 0
  prevDue: Due | null = null
  nextDue: Due | null = null
  timeout = 0
  started = 0
  settled = false
  resolve: ((value: unknown) => void) | undefined = undefined
  reject: ((reason: unknown) => void) | undefined = undefined
  #controller: AbortController | undefined = undefined
  #state: Record<string, unknown> | undefined = undefined
  #timeoutError: TimeoutError | undefined = undefined

  constructor(cache: Cache, command: CommandName, args: CommandArgs) {
    this.cache = cache
    this.command = command
    this.args = args
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController()
      if (this.#timeoutError !== undefined) this.#controller.abort(this.#timeoutError)
    }
    return this.#controller.signal
  }

  get state(): Record<string, unknown> {
    return (this.#state ??= {})
  }

  expire(): void {
    if (this.settled) return
    this.settled = true
    const error = (this.#timeoutError = new TimeoutError(this.command, this.timeout))
    this.#controller?.abort(error)
    if (DEBUG) log(this, error)
    this.reject!(error)
  }

  succeed(): void {
    if (this.settled) return
    this.settled = true
    unwatch(this)
    if (DEBUG) log(this)
    this.resolve!(this.result)
  }

  fail(error: unknown): void {
    if (this.settled) {
      // Timed out already: the caller has its TimeoutError; what the chain did later is only logged.
      if (DEBUG) debug('%s: after its timeout the chain also failed: %s', this.command, String(error))
      return
    }
    this.settled = true
    unwatch(this)
    if (DEBUG) log(this, error)
    this.reject!(error)
  }
}

let capturedResolve: ((value: unknown) => void) | undefined
let capturedReject: ((reason: unknown) => void) | undefined
function capture(resolve: (value: unknown) => void, reject: (reason: unknown) => void): void {
  capturedResolve = resolve
  capturedReject = reject
}

/** A composed chain: answers `undefined` when it finished synchronously, else a promise. */
export type Composed = ((ctx: CommandContext) => void | Promise<void>) | undefined

type Hook = (ctx: Context) => unknown
/** What one `BasePlugin` does around one command, linked to the next plugin's step (inner), `null` at the end of the group. */
interface Step {
  /** Its pre hooks, bound to the plugin. */
  pre: Hook[]
  /** Its post hooks, bound to the plugin. */
  post: Hook[]
  /** Whether `next()` is timed for the post hooks (they exist and the plugin reads `took`). */
  timed: boolean
  next: Step | null
}
/** Per command, the first step of a run of consecutive `BasePlugin`s; plugins with nothing to do for the command are left out. */
type GroupPlan = Record<CommandName, Step | null>
type Inner = (ctx: CommandContext) => void | Promise<void>

const isBasePlugin = (plugin: Plugin | Middleware): plugin is BasePlugin =>
  typeof plugin === 'object' && plugin !== null && plugin.middleware === BasePlugin.prototype.middleware

/**
 * Turns plugins (objects with `middleware`, or bare functions) into one composed chain, core innermost.
 *
 * Consecutive `BasePlugin`s (with the default `middleware`) run as one layer that
 * calls their hooks in the same onion order, awaiting only what a hook or the
 * inner layers answer as a promise: sync hooks around a sync backend finish the
 * command synchronously. Bare middleware is composed with `koa-compose`.
 */
export function composeChain(plugins: ReadonlyArray<Plugin | Middleware>): Composed {
  if (plugins.length === 0) return undefined
  const layers: Middleware[] = []
  let group: BasePlugin[] = []
  const flush = (): void => {
    if (group.length === 0) return
    const plans = groupPlans(group)
    layers.push((ctx, next) => runGroup(ctx as CommandContext, plans, next))
    group = []
  }
  plugins.forEach((plugin, i) => {
    if (isBasePlugin(plugin)) {
      group.push(plugin)
      return
    }
    flush()
    if (typeof plugin === 'function') layers.push(plugin)
    else if (plugin !== null && typeof plugin === 'object' && typeof plugin.middleware === 'function') layers.push(plugin.middleware.bind(plugin))
    else {
      throw new TypeError(
        `[oniocache] plugins[${i}] is ${describe(plugin)}: a plugin is a middleware function (ctx, next) or an object with a middleware(ctx, next) method, such as a BasePlugin`,
      )
    }
  })
  if (layers.length === 0) {
    // Only BasePlugins: they measure their own next(), the core step need not measure itself.
    const plans = groupPlans(group)
    return (ctx) => runGroup(ctx, plans, core)
  }
  flush()
  layers.push(coreMiddleware)
  const chain = compose<Context>(layers)
  return (ctx) => {
    ctx.timed = true
    return chain(ctx)
  }
}

interface GroupPlans {
  steps: GroupPlan
  postOnly: Record<CommandName, PostOnly | null>
}

function groupPlans(plugins: readonly BasePlugin[]): GroupPlans {
  const steps = planGroup(plugins)
  const flat = {} as Record<CommandName, PostOnly | null>
  for (const command of COMMANDS) flat[command] = postOnly(steps[command])
  return { steps, postOnly: flat }
}

/**
 * Runs a group of consecutive `BasePlugin`s around `inner`: as one loop for a command
 * none of them has a pre hook for, else plugin by plugin.
 */
function runGroup(ctx: CommandContext, plans: GroupPlans, inner: Inner): void | Promise<void> {
  const flat = plans.postOnly[ctx.command]
  return flat !== null ? runPostOnly(ctx, flat, inner) : enter(ctx, plans.steps[ctx.command], inner)
}

/** The hooks of each plugin per command, read (and bound) once when the chain is composed. */
function planGroup(plugins: readonly BasePlugin[]): GroupPlan {
  const plan = {} as GroupPlan
  for (const command of COMMANDS) {
    const names = HOOK_NAMES[command]
    let first: Step | null = null
    for (let i = plugins.length - 1; i >= 0; i--) {
      const plugin = plugins[i]!
      const bound = (hooks: Array<PluginHooks[keyof PluginHooks]>): Hook[] =>
        hooks.filter((hook) => hook !== undefined).map((hook) => hook.bind(plugin) as Hook)
      const pre = bound([plugin.pre, plugin[names.pre]])
      const post = bound([plugin[names.post], plugin.post])
      if (pre.length > 0 || post.length > 0) first = { pre, post, timed: post.length > 0 && plugin.timesNext, next: first }
    }
    plan[command] = first
  }
  return plan
}

/**
 * A group with no pre hooks for a command: every plugin's `next()` starts at the
 * same moment, so one loop does it — one clock read for the start (if any plugin
 * is timed), the inner layers, then the post hooks innermost first, each timed
 * plugin's `took` read just before its own post hooks, as the onion would.
 */
interface PostOnly {
  /** Innermost first. */
  steps: Step[]
  timed: boolean
}

function postOnly(first: Step | null): PostOnly | null {
  const steps: Step[] = []
  for (let step = first; step !== null; step = step.next) {
    if (step.pre.length !== 0) return null
    steps.unshift(step)
  }
  return { steps, timed: steps.some((step) => step.timed) }
}

function runPostOnly(ctx: CommandContext, plan: PostOnly, inner: Inner): void | Promise<void> {
  const started = plan.timed ? now() : 0
  const pending = inner(ctx)
  if (pending !== undefined) return pending.then(() => posts(ctx, plan.steps, 0, 0, started))
  return posts(ctx, plan.steps, 0, 0, started)
}

/** Post hooks from step `k`, hook `j` on; answers `undefined` if all were synchronous, else a promise of the rest. */
function posts(ctx: CommandContext, steps: readonly Step[], k: number, j: number, started: number): Promise<void> | undefined {
  for (; k < steps.length; k++, j = 0) {
    const step = steps[k]!
    if (j === 0 && step.timed) ctx.took = (now() - started) / 1000
    const list = step.post
    for (; j < list.length; j++) {
      const out = list[j]!(ctx)
      if (out !== undefined) {
        const next = j + 1
        const at = k
        return Promise.resolve(out).then(() => posts(ctx, steps, at, next, started))
      }
    }
  }
  return undefined
}

/** Runs a plugin's step around the rest of the group and `inner`, as `BasePlugin.middleware` does. */
function enter(ctx: CommandContext, step: Step | null, inner: Inner): void | Promise<void> {
  if (step === null) return inner(ctx)
  if (step.pre.length !== 0) {
    const pending = hooks(ctx, step.pre, 0)
    if (pending !== undefined) return pending.then(() => around(ctx, step, inner))
  }
  return around(ctx, step, inner)
}

/** The step's `next()` (timed when it has post hooks that read `took`), then its post hooks. */
function around(ctx: CommandContext, step: Step, inner: Inner): void | Promise<void> {
  const post = step.post
  if (post.length === 0) return enter(ctx, step.next, inner)
  if (!step.timed) {
    const pending = enter(ctx, step.next, inner)
    if (pending === undefined) return hooks(ctx, post, 0)
    return pending.then(() => hooks(ctx, post, 0))
  }
  const started = now()
  const pending = enter(ctx, step.next, inner)
  if (pending === undefined) {
    ctx.took = (now() - started) / 1000
    return hooks(ctx, post, 0)
  }
  return pending.then(() => {
    ctx.took = (now() - started) / 1000
    return hooks(ctx, post, 0)
  })
}

/** Calls the hooks from `from` on; answers `undefined` if all were synchronous, else a promise of the rest. */
function hooks(ctx: CommandContext, list: readonly Hook[], from: number): Promise<void> | undefined {
  for (let j = from; j < list.length; j++) {
    const out = list[j]!(ctx)
    if (out !== undefined) return Promise.resolve(out).then(() => hooks(ctx, list, j + 1))
  }
  return undefined
}

/**
 * Runs a command: the timeout outermost, then the composed plugins, then the
 * core step. A chain that finishes synchronously (a synchronous backend with no
 * plugins, or only `BasePlugin`s whose hooks are synchronous) has nothing left to
 * time out: its promise is answered settled and nothing is watched.
 */
export function run(ctx: CommandContext, composed: Composed, defaultTimeout: number): Promise<unknown> {
  if (DEBUG) ctx.started = now()
  const timeoutArg = ctx.args.timeout
  let timeout: number
  /** What the command still waits for: the chain's promise, or (no plugins) the async backend's answer. */
  let pending: unknown = undefined
  /** No plugins and an async backend: the core step's op, to finish the command when the backend answers. */
  let direct: Op | undefined = undefined
  try {
    timeout = timeoutArg === undefined ? defaultTimeout : toSeconds(timeoutArg, 'timeout')
    if (composed !== undefined) {
      pending = composed(ctx)
    } else {
      // No plugins: the core step inline, so that an async backend's answer takes one reaction, not two.
      const op = OPS[ctx.command]
      const answer = op.call(ctx)
      if (ctx.cache.backend.synchronous === true) op.done(ctx, answer)
      else {
        direct = op
        pending = answer
      }
    }
  } catch (error) {
    if (DEBUG) log(ctx, error)
    return Promise.reject(error)
  }
  if (direct === undefined && pending === undefined) {
    if (DEBUG) log(ctx)
    return Promise.resolve(ctx.result)
  }
  return settleLater(ctx, timeout, pending, direct)
}

/** The caller's promise of a command still running: settled by the command or, past `timeout` seconds, by the deadline. */
function settleLater(ctx: CommandContext, timeout: number, pending: unknown, direct: Op | undefined): Promise<unknown> {
  const promise = new Promise(capture)
  ctx.resolve = capturedResolve
  ctx.reject = capturedReject
  if (timeout > 0) {
    ctx.timeout = timeout
    watch(ctx, timeout * 1000)
  }
  if (direct !== undefined) {
    Promise.resolve(pending).then(
      (value) => {
        try {
          direct.done(ctx, value)
        } catch (error) {
          ctx.fail(error)
          return
        }
        ctx.succeed()
      },
      (error: unknown) => ctx.fail(error),
    )
  } else {
    ;(pending as Promise<void>).then(
      () => ctx.succeed(),
      (error: unknown) => ctx.fail(error),
    )
  }
  return promise
}

function log(ctx: CommandContext, error?: unknown): void {
  const ms = (now() - ctx.started).toFixed(3)
  const keys = loggedKeys(ctx)
  let outcome = ''
  if (error !== undefined) outcome = `error ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`
  else if (ctx.command === 'get') outcome = ctx.hits === undefined ? 'answered by middleware' : ctx.hits === 1 ? 'hit' : 'miss'
  else if (ctx.command === 'multiGet') outcome = ctx.hits === undefined ? 'answered by middleware' : `${ctx.hits}/${keys.split(',').length} hits`
  debug('%s %s %s %sms', ctx.command, keys, outcome, ms)
}

/** The key(s) the core step built; for a command that never reached it, what it would have built. */
function loggedKeys(ctx: CommandContext): string {
  const built = ctx.builtKey
  if (built !== undefined) return Array.isArray(built) ? built.join(',') : built
  try {
    const { key, keys } = ctx.args
    if (typeof key === 'string') return ctx.cache.buildKey(key, ctx.args.namespace)
    if (keys !== undefined) return Array.from(keys, (k) => ctx.cache.buildKey(k, ctx.args.namespace)).join(',')
  } catch {
    // Bad arguments: the error line says what was wrong.
  }
  return ''
}

// ---------------------------------------------------------------------------
// The core step: build the key, serialize, call the backend, deserialize.

function coreMiddleware(ctx: Context): void | Promise<void> {
  return core(ctx as CommandContext)
}

interface Op {
  /** Checks the arguments and calls the backend; answers what the backend answered. */
  call(ctx: CommandContext): unknown
  /** Turns the backend's answer into `ctx.result`. */
  done(ctx: CommandContext, answer: unknown): void
}

export function core(ctx: CommandContext): void | Promise<void> {
  const op = OPS[ctx.command]
  const started = ctx.timed ? now() : 0
  const answer = op.call(ctx)
  if (ctx.cache.backend.synchronous === true) {
    op.done(ctx, answer)
    if (ctx.timed) ctx.took = (now() - started) / 1000
    return
  }
  return Promise.resolve(answer).then((value) => {
    op.done(ctx, value)
    if (ctx.timed) ctx.took = (now() - started) / 1000
  })
}

function keyOf(ctx: CommandContext, key: unknown = ctx.args.key): string {
  if (typeof key !== 'string') {
    throw new TypeError(`[oniocache] ${ctx.command}: a key must be a string; got ${describe(key)}`)
  }
  return ctx.cache.buildKey(key, ctx.args.namespace)
}

function ttlOf(ctx: CommandContext): number {
  const ttl = ctx.args.ttl
  return ttl === undefined ? (ctx.cache.ttl ?? 0) : toSeconds(ttl, 'ttl')
}

function dump(ctx: CommandContext, key: string, value: unknown): unknown {
  if (value === undefined) {
    throw new TypeError(`[oniocache] ${ctx.command}: the value of ${describe(key)} is undefined, which could not be told apart from a miss; store null instead`)
  }
  const { serializer } = ctx.cache
  let stored: unknown
  try {
    stored = ctx.args.dumps === undefined ? serializer.dumps(value) : ctx.args.dumps(value)
  } catch (error) {
    throw new SerializationError(
      `[oniocache] ${ctx.command}: ${serializer.constructor.name} cannot encode the value of ${describe(key)}: ${error instanceof Error ? error.message : String(error)}; nothing was written`,
      { cause: error },
    )
  }
  if (stored === undefined) {
    throw new SerializationError(`[oniocache] ${ctx.command}: ${serializer.constructor.name} encoded the value of ${describe(key)} as undefined; nothing was written`)
  }
  return stored
}

function load(ctx: CommandContext, stored: unknown): unknown {
  const { serializer } = ctx.cache
  try {
    return ctx.args.loads === undefined ? serializer.loads(stored) : ctx.args.loads(stored)
  } catch (error) {
    throw new SerializationError(
      `[oniocache] ${ctx.command}: ${serializer.constructor.name} cannot decode a stored value: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    )
  }
}

function keysOf(ctx: CommandContext): string[] {
  const keys = ctx.args.keys
  if (keys === null || typeof keys !== 'object' || typeof (keys as Iterable<string>)[Symbol.iterator] !== 'function') {
    throw new TypeError(`[oniocache] multiGet: keys must be an array (or iterable) of strings; got ${describe(keys)}`)
  }
  const built: string[] = []
  for (const key of keys) built.push(keyOf(ctx, key))
  return built
}

function pairsOf(ctx: CommandContext): Array<[string, unknown]> {
  const pairs = ctx.args.pairs
  if (pairs === null || typeof pairs !== 'object' || typeof (pairs as Iterable<unknown>)[Symbol.iterator] !== 'function') {
    throw new TypeError(`[oniocache] multiSet: pairs must be an iterable of [key, value] pairs (an array of pairs, a Map, Object.entries(…)); got ${describe(pairs)}`)
  }
  const out: Array<[string, unknown]> = []
  const keys: string[] = []
  for (const pair of pairs as Iterable<unknown>) {
    if (!Array.isArray(pair) || pair.length !== 2) {
      throw new TypeError(`[oniocache] multiSet: pairs[${out.length}] is ${describe(pair)}, not a [key, value] pair; nothing was written`)
    }
    const key = keyOf(ctx, pair[0])
    keys.push(key)
    out.push([key, dump(ctx, pair[0] as string, pair[1])])
  }
  ctx.builtKey = keys
  return out
}

function deltaOf(ctx: CommandContext): number {
  const delta = ctx.args.delta ?? 1
  if (!Number.isSafeInteger(delta)) {
    throw new TypeError(`[oniocache] increment: delta must be a safe integer; got ${describe(delta)}`)
  }
  return delta
}

function at(ctx: CommandContext, key: string): string {
  ctx.builtKey = key
  return key
}

/** For commands whose result is the backend's answer as it is. */
function answerIsResult(ctx: CommandContext, answer: unknown): void {
  ctx.result = answer
}

const OPS: Record<CommandName, Op> = {
  get: {
    call: (ctx) => ctx.cache.backend.get(at(ctx, keyOf(ctx)), ctx.cache.serializer.encoding),
    done(ctx, stored) {
      if (stored === undefined) {
        ctx.hits = 0
        ctx.result = ctx.args.default
      } else {
        ctx.hits = 1
        ctx.result = load(ctx, stored)
      }
    },
  },
  multiGet: {
    call(ctx) {
      const keys = keysOf(ctx)
      ctx.builtKey = keys
      return ctx.cache.backend.multiGet(keys, ctx.cache.serializer.encoding)
    },
    done(ctx, answer) {
      const stored = answer as readonly unknown[]
      const values = new Array<unknown>(stored.length)
      let hits = 0
      for (let i = 0; i < stored.length; i++) {
        if (stored[i] === undefined) {
          values[i] = undefined // no holes: callers map over the array
        } else {
          hits++
          values[i] = load(ctx, stored[i])
        }
      }
      ctx.hits = hits
      ctx.result = values
    },
  },
  set: {
    call(ctx) {
      const key = at(ctx, keyOf(ctx))
      const ttl = ttlOf(ctx)
      return ctx.cache.backend.set(key, dump(ctx, ctx.args.key!, ctx.args.value), ttl, ctx.args.casToken)
    },
    done: answerIsResult,
  },
  add: {
    call(ctx) {
      const key = at(ctx, keyOf(ctx))
      const ttl = ttlOf(ctx)
      return ctx.cache.backend.add(key, dump(ctx, ctx.args.key!, ctx.args.value), ttl)
    },
    done(ctx, added) {
      if (added !== true) throw new KeyExistsError(ctx.args.key!)
      ctx.result = true
    },
  },
  multiSet: {
    call(ctx) {
      const ttl = ttlOf(ctx)
      return ctx.cache.backend.multiSet(pairsOf(ctx), ttl)
    },
    done(ctx) {
      ctx.result = true
    },
  },
  delete: {
    call: (ctx) => ctx.cache.backend.delete(at(ctx, keyOf(ctx))),
    done: answerIsResult,
  },
  exists: {
    call: (ctx) => ctx.cache.backend.exists(at(ctx, keyOf(ctx))),
    done: answerIsResult,
  },
  increment: {
    call(ctx) {
      const key = at(ctx, keyOf(ctx))
      return ctx.cache.backend.increment(key, deltaOf(ctx))
    },
    done: answerIsResult,
  },
  expire: {
    call(ctx) {
      const key = at(ctx, keyOf(ctx))
      if (ctx.args.ttl === undefined) throw new RangeError('[oniocache] expire: ttl is required (seconds, or 0 / null to remove the expiry)')
      return ctx.cache.backend.expire(key, ttlOf(ctx))
    },
    done: answerIsResult,
  },
  clear: {
    call(ctx) {
      const namespace = ctx.args.namespace ?? ctx.cache.namespace
      if (typeof namespace !== 'string') throw new TypeError(`[oniocache] clear: namespace must be a string; got ${describe(namespace)}`)
      const prefix = namespace === '' ? null : ctx.cache.buildKey('', namespace)
      if (prefix === '') {
        throw new TypeError(
          `[oniocache] clear: the keyBuilder gives namespace ${describe(namespace)} no prefix (keyBuilder('', namespace) is ''), so its keys cannot be told from all others; nothing was deleted. Use a keyBuilder that prefixes keys, or clear({ namespace: '' }) to empty the whole store`,
        )
      }
      ctx.builtKey = prefix === null ? '*' : prefix + '*'
      return ctx.cache.backend.clear(prefix, ctx.signal)
    },
    done(ctx) {
      ctx.result = true
    },
  },
  raw: {
    call(ctx) {
      const { command, args = [] } = ctx.args
      if (typeof command !== 'string') throw new TypeError(`[oniocache] raw: the command must be a string; got ${describe(command)}`)
      ctx.builtKey = command
      return ctx.cache.backend.raw(command, args)
    },
    done: answerIsResult,
  },
  close: {
    call: (ctx) => ctx.cache.backend.close(),
    done(ctx) {
      ctx.result = undefined
    },
  },
}

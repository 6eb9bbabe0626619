import { now } from './clock.js'
import compose from 'koa-compose'
import { debuglog } from 'node:util'
import type { Cache } from './cache.js'
import type { CommandArgs, CommandName, Context, Middleware, Plugin } from './context.js'
import { watch, unwatch, type Due } from './deadline.js'
import { describe, toSeconds } from './duration.js'
import { KeyExistsError, SerializationError, TimeoutError } from './errors.js'
import { BasePlugin } from './plugins/base.js'

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

export type Composed = ((ctx: Context) => Promise<void>) | undefined

/** Turns plugins (objects with `middleware`, or bare functions) into one composed chain, core innermost. */
export function composeChain(plugins: ReadonlyArray<Plugin | Middleware>): Composed {
  if (plugins.length === 0) return undefined
  const layers: Middleware[] = plugins.map((plugin, i) => {
    if (typeof plugin === 'function') return plugin
    if (plugin !== null && typeof plugin === 'object' && typeof plugin.middleware === 'function') return plugin.middleware.bind(plugin)
    throw new TypeError(
      `[oniocache] plugins[${i}] is ${describe(plugin)}: a plugin is a middleware function (ctx, next) or an object with a middleware(ctx, next) method, such as a BasePlugin`,
    )
  })
  layers.push(coreMiddleware)
  const chain = compose<Context>(layers)
  // A BasePlugin measures its own next(); the core step measures itself only for other middleware to read.
  if (plugins.every((plugin) => typeof plugin === 'object' && plugin.middleware === BasePlugin.prototype.middleware)) return chain
  return (ctx) => {
    ;(ctx as CommandContext).timed = true
    return chain(ctx)
  }
}

/**
 * Runs a command: the timeout outermost, then the composed plugins, then the
 * core step. With no plugins and a synchronous backend the core step finishes
 * before this returns, so there is nothing left to time out and nothing to await.
 */
export function run(ctx: CommandContext, composed: Composed, defaultTimeout: number): Promise<unknown> {
  if (DEBUG) ctx.started = now()
  const timeoutArg = ctx.args.timeout
  if (composed === undefined && ctx.cache.backend.synchronous === true) {
    try {
      if (timeoutArg !== undefined) toSeconds(timeoutArg, 'timeout')
      core(ctx)
    } catch (error) {
      if (DEBUG) log(ctx, error)
      return Promise.reject(error)
    }
    if (DEBUG) log(ctx)
    return Promise.resolve(ctx.result)
  }
  const promise = new Promise(capture)
  ctx.resolve = capturedResolve
  ctx.reject = capturedReject
  let out: unknown
  try {
    const timeout = timeoutArg === undefined ? defaultTimeout : toSeconds(timeoutArg, 'timeout')
    if (timeout > 0) {
      ctx.timeout = timeout
      watch(ctx, timeout * 1000)
    }
    out = composed === undefined ? core(ctx) : composed(ctx)
  } catch (error) {
    ctx.fail(error)
    return promise
  }
  Promise.resolve(out).then(
    () => ctx.succeed(),
    (error: unknown) => ctx.fail(error),
  )
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
    done(ctx, answer) {
      ctx.result = answer
    },
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
    done(ctx, answer) {
      ctx.result = answer
    },
  },
  exists: {
    call: (ctx) => ctx.cache.backend.exists(at(ctx, keyOf(ctx))),
    done(ctx, answer) {
      ctx.result = answer
    },
  },
  increment: {
    call(ctx) {
      const key = at(ctx, keyOf(ctx))
      return ctx.cache.backend.increment(key, deltaOf(ctx))
    },
    done(ctx, answer) {
      ctx.result = answer
    },
  },
  expire: {
    call(ctx) {
      const key = at(ctx, keyOf(ctx))
      if (ctx.args.ttl === undefined) throw new RangeError('[oniocache] expire: ttl is required (seconds, or 0 / null to remove the expiry)')
      return ctx.cache.backend.expire(key, ttlOf(ctx))
    },
    done(ctx, answer) {
      ctx.result = answer
    },
  },
  clear: {
    call(ctx) {
      const namespace = ctx.args.namespace ?? ctx.cache.namespace
      if (typeof namespace !== 'string') throw new TypeError(`[oniocache] clear: namespace must be a string; got ${describe(namespace)}`)
      const prefix = namespace === '' ? null : ctx.cache.buildKey('', namespace)
      ctx.builtKey = prefix === null ? '*' : prefix + '*'
      return ctx.cache.backend.clear(prefix)
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
    done(ctx, answer) {
      ctx.result = answer
    },
  },
  close: {
    call: (ctx) => ctx.cache.backend.close(),
    done(ctx) {
      ctx.result = undefined
    },
  },
}

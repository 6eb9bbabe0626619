/**
 * The core step, the innermost layer of every chain, and what each command does
 * in it: build the key, serialize, call the backend, deserialize. One entry per
 * command in `COMMAND_TABLE`: `call` checks the arguments and calls the backend,
 * `done` turns the backend's answer into `ctx.result`, and `neutral` is what the
 * command answers when `ONIOCACHE_DISABLE=1`.
 */
import type { Clock } from '../util/clock.js'
import { describe } from '../util/describe.js'
import { toSeconds } from '../util/duration.js'
import { KeyExistsError, SerializationError } from '../util/errors.js'
import type { Backend } from './backend.js'
import {
  keysOf as builtKeysOf,
  type CommandArgs,
  type CommandContext,
  type EntryFacts,
  recordFacts,
  recordHits,
  recordKeys,
  recordOutcome,
} from './context.js'
import { type EnvelopeHeader, mayBeWrapped, type Opened, plain, unwrap, wrap } from './envelope.js'
import { type Answer, abortGetOrSet, FRESH, getOrSet, neutralGetOrSet } from './get-or-set.js'
import type { CommandName } from './options.js'
import { forgetReads, type SharedReceiver, settledRead, sharedGet, sharedGetInto } from './reads.js'
import { checkTags, invalidated, tagKeys, tagTimes } from './tags.js'

interface Command {
  /** Checks the arguments and calls the backend; answers what the backend answered. */
  call(ctx: CommandContext): unknown
  /**
   * Turns the backend's answer into `ctx.result`; for an asynchronous backend it may
   * answer a promise when it needs another read (the invalidation times of tags).
   */
  done(ctx: CommandContext, answer: unknown): void | Promise<void>
  /** What the command answers, without running, when `ONIOCACHE_DISABLE=1`. */
  neutral(args: CommandArgs): unknown
  /** When the backend's answer is a rejection: what `call` started must end (`get`'s shared read). */
  failed?(ctx: CommandContext): void
  /**
   * `call` for a backend with `getInto` (`get` alone): the backend's answer goes to `receiver`, the command's own
   * promise holder, which then runs `done` (or `failed`).
   */
  into?(ctx: CommandContext, getInto: NonNullable<Backend['getInto']>, receiver: SharedReceiver): void
}

/**
 * The core step as a layer of the chain (the innermost; it never calls `next`).
 * With a synchronous backend (memory) it finishes before it returns and answers
 * `undefined`; otherwise it answers a promise of the backend's answer, handled.
 * @internal
 */
export function core(ctx: CommandContext): void | Promise<void> {
  const command = COMMAND_TABLE[ctx.command]
  const answer = command.call(ctx)
  // A synchronous backend answers directly, unless the command waits for more (getOrSet's factory).
  if (ctx.cache.backend.synchronous === true && !(answer instanceof Promise)) {
    command.done(ctx, answer)
    return
  }
  return later(command, ctx, answer)
}

/** The core step's end for an answer that is a promise: `done` once it resolves, `failed` if it rejects. */
function later(command: Command, ctx: CommandContext, answer: unknown): Promise<void> {
  const failed = command.failed
  if (failed === undefined) return Promise.resolve(answer).then((value) => command.done(ctx, value))
  return Promise.resolve(answer).then(
    (value) => command.done(ctx, value),
    (error: unknown) => {
      failed(ctx)
      throw error
    },
  )
}

/**
 * `core` for `get` alone: the same steps in a function of its own, so that V8 keeps its type feedback apart (the
 * calls of the one `core` every command shares see many targets, and V8 inlines less behind them). @internal
 */
export function coreGet(ctx: CommandContext): void | Promise<void> {
  const command = COMMAND_TABLE.get
  const answer = command.call(ctx)
  if (ctx.cache.backend.synchronous === true && !(answer instanceof Promise)) {
    command.done(ctx, answer)
    return
  }
  return later(command, ctx, answer)
}

/**
 * The core step of a command in its two halves, for the chain of a cache without
 * plugins (see `bare` in run.ts): `call` checks the arguments and calls the
 * backend, `done` turns its answer into `ctx.result`. @internal
 */
export function coreOf(command: CommandName): Pick<Command, 'call' | 'done' | 'failed' | 'into'> {
  return COMMAND_TABLE[command]
}

/**
 * The core step timing itself into `ctx.took`: the innermost layer of a chain
 * with middleware other than `BasePlugin`s, which read `ctx.took` after `next()`
 * without measuring it (a `BasePlugin` measures its own `next()`).
 * @internal
 */
export function timedCore(clock: Clock): (ctx: CommandContext) => void | Promise<void> {
  return (ctx) => {
    const started = clock.now()
    const pending = core(ctx)
    if (pending === undefined) {
      ctx.took = (clock.now() - started) / 1000
      return
    }
    return pending.then(() => {
      ctx.took = (clock.now() - started) / 1000
    })
  }
}

/** What `ctx.command` answers when `ONIOCACHE_DISABLE=1`. @internal */
export function neutral(command: CommandName, args: CommandArgs): unknown {
  return COMMAND_TABLE[command].neutral(args)
}

// The hot steps keep their rare paths (errors, envelopes) in functions of their own: small enough, V8 inlines the
// whole of a memory hit into one compiled function.

function keyOf(ctx: CommandContext, key: unknown = ctx.args.key): string {
  if (typeof key !== 'string') throw notAKey(ctx, key)
  return ctx.cache.buildKey(key, ctx.args.namespace)
}

function notAKey(ctx: CommandContext, key: unknown): TypeError {
  return new TypeError(`[oniocache] ${ctx.command}: a key must be a string; got ${describe(key)}`)
}

function ttlOf(ctx: CommandContext): number {
  const ttl = ctx.args.ttl
  return ttl === undefined ? (ctx.cache.ttl ?? 0) : toSeconds(ttl, 'ttl')
}

function dump(ctx: CommandContext, key: string, value: unknown): unknown {
  if (value === undefined) {
    throw new TypeError(
      `[oniocache] ${ctx.command}: the value of ${describe(key)} is undefined, which could not be told apart from a ` +
        `miss; store null instead`,
    )
  }
  const { serializer } = ctx.cache
  let stored: unknown
  try {
    stored = ctx.args.dumps === undefined ? serializer.dumps(value) : ctx.args.dumps(value)
  } catch (error) {
    throw new SerializationError(
      `[oniocache] ${ctx.command}: ${serializer.constructor.name} cannot encode the value of ${describe(key)}: ` +
        `${error instanceof Error ? error.message : String(error)}; nothing was written`,
      { cause: error },
    )
  }
  if (stored === undefined) {
    throw new SerializationError(
      `[oniocache] ${ctx.command}: ${serializer.constructor.name} encoded the value of ${describe(key)} as ` +
        `undefined; nothing was written`,
    )
  }
  return stored
}

/** A plain write's stored form: as the serializer made it, unless it would read back as an envelope. */
function plainly(ctx: CommandContext, key: string, value: unknown): unknown {
  const stored = dump(ctx, key, value)
  const { tags } = ctx.args
  if (tags !== undefined) return wrap(stored, { e: 0, c: ctx.cache.clock.now(), t: checkTags(ctx.command, tags) })
  return mayBeWrapped(stored) ? plain(stored, ctx.cache.clock.now()) : stored
}

/** An envelope's contents while it is fresh, `undefined` (a miss) once stale. */
function freshInner(ctx: CommandContext, envelope: Opened): unknown {
  const { e } = envelope.header
  return e === 0 || e > ctx.cache.clock.now() ? envelope.inner : undefined
}

/** `get`'s result from the stored value its checks left (`undefined`: a miss). */
function finishGet(ctx: CommandContext, stored: unknown): void {
  if (stored === undefined) {
    recordHits(ctx, 0)
    ctx.result = ctx.args.default
  } else {
    recordHits(ctx, 1)
    ctx.result = load(ctx, stored)
  }
}

/** `get`'s result from a stored value that may be an envelope: fresh or not, and its tags still valid or not. */
function finishWrapped(ctx: CommandContext, answer: unknown): void | Promise<void> {
  const envelope = unwrap(answer)
  if (envelope === undefined) return finishGet(ctx, answer)
  const inner = freshInner(ctx, envelope)
  const { c, e, t } = envelope.header
  if (inner !== undefined) recordFacts(ctx, { until: e, tags: t })
  if (inner === undefined || t === undefined || t.length === 0) return finishGet(ctx, inner)
  const times = tagTimes(ctx, t)
  if (times instanceof Promise) return times.then((read) => finishGet(ctx, invalidated(c, read) ? undefined : inner))
  finishGet(ctx, invalidated(c, times) ? undefined : inner)
}

/** `multiGet`'s result from the stored values its checks left. */
function finishMultiGet(ctx: CommandContext, stored: unknown[]): void {
  let hits = 0
  for (let i = 0; i < stored.length; i++) {
    const one = stored[i]
    // No holes: callers map over the array.
    if (one !== undefined) {
      hits++
      stored[i] = load(ctx, one)
    }
  }
  recordHits(ctx, hits)
  ctx.result = stored
}

function load(ctx: CommandContext, stored: unknown): unknown {
  const { serializer } = ctx.cache
  try {
    return ctx.args.loads === undefined ? serializer.loads(stored) : ctx.args.loads(stored)
  } catch (error) {
    throw undecodable(ctx, serializer, error)
  }
}

function undecodable(ctx: CommandContext, serializer: object, error: unknown): SerializationError {
  return new SerializationError(
    `[oniocache] ${ctx.command}: ${serializer.constructor.name} cannot decode a stored value: ` +
      `${error instanceof Error ? error.message : String(error)}`,
    { cause: error },
  )
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
  if (
    pairs === null ||
    typeof pairs !== 'object' ||
    typeof (pairs as Iterable<unknown>)[Symbol.iterator] !== 'function'
  ) {
    throw new TypeError(
      `[oniocache] multiSet: pairs must be an iterable of [key, value] pairs (an array of pairs, a Map, ` +
        `Object.entries(…)); got ${describe(pairs)}`,
    )
  }
  const out: Array<[string, unknown]> = []
  const keys: string[] = []
  for (const pair of pairs as Iterable<unknown>) {
    if (!Array.isArray(pair) || pair.length !== 2) {
      throw new TypeError(
        `[oniocache] multiSet: pairs[${out.length}] is ${describe(pair)}, not a [key, value] pair; nothing was written`,
      )
    }
    const key = keyOf(ctx, pair[0])
    keys.push(key)
    out.push([key, plainly(ctx, pair[0] as string, pair[1])])
  }
  recordKeys(ctx, keys)
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
  recordKeys(ctx, key)
  return key
}

/** For commands whose result is the backend's answer as it is. */
function answerIsResult(ctx: CommandContext, answer: unknown): void {
  ctx.result = answer
}

const TRUE = (): true => true
const NOTHING = (): undefined => undefined
const ZERO = (): 0 => 0
const FALSE = (): false => false

const COMMAND_TABLE: Record<CommandName, Command> = {
  get: {
    // Concurrent gets of one key share the backend's read (each loads the answer on its own).
    call: (ctx) => sharedGet(ctx.cache.backend, at(ctx, keyOf(ctx)), ctx.cache.serializer.encoding),
    done(ctx, answer) {
      const { backend } = ctx.cache
      if (backend.synchronous !== true) settledRead(backend, builtKeysOf(ctx) as string, ctx.cache.serializer.encoding)
      if (answer === undefined || !mayBeWrapped(answer)) return finishGet(ctx, answer)
      return finishWrapped(ctx, answer)
    },
    failed(ctx) {
      const key = builtKeysOf(ctx)
      if (typeof key === 'string') settledRead(ctx.cache.backend, key, ctx.cache.serializer.encoding)
    },
    into: (ctx, getInto, receiver) =>
      sharedGetInto(ctx.cache.backend, getInto, at(ctx, keyOf(ctx)), ctx.cache.serializer.encoding, receiver),
    neutral: NOTHING,
  },
  getOrSet: {
    call: (ctx) => getOrSet(ctx, at(ctx, keyOf(ctx)), load, dump),
    done(ctx, answer) {
      const { value, outcome } = answer as Answer
      if (answer === FRESH) FRESH.value = undefined
      recordHits(ctx, outcome === 'fresh' ? 1 : 0)
      recordOutcome(ctx, outcome)
      ctx.result = value
    },
    neutral: neutralGetOrSet,
  },
  multiGet: {
    call(ctx) {
      const keys = keysOf(ctx)
      recordKeys(ctx, keys)
      return ctx.cache.backend.multiGet(keys, ctx.cache.serializer.encoding)
    },
    done(ctx, answer) {
      const stored = answer as readonly unknown[]
      const values = new Array<unknown>(stored.length)
      let tagged: Array<{ i: number; header: EnvelopeHeader; inner: unknown }> | undefined
      let facts: Array<EntryFacts | undefined> | undefined
      for (let i = 0; i < stored.length; i++) {
        const one = stored[i]
        const envelope = one !== undefined && mayBeWrapped(one) ? unwrap(one) : undefined
        if (envelope === undefined) {
          values[i] = one
          continue
        }
        const inner = freshInner(ctx, envelope)
        const { e, t } = envelope.header
        if (inner !== undefined) (facts ??= new Array<EntryFacts | undefined>(stored.length))[i] = { until: e, tags: t }
        if (inner !== undefined && t !== undefined && t.length > 0)
          (tagged ??= []).push({ i, header: envelope.header, inner })
        else values[i] = inner
      }
      if (facts !== undefined) recordFacts(ctx, facts)
      if (tagged === undefined) return finishMultiGet(ctx, values)
      // One read of every tag the entries carry.
      const entries = tagged
      const tags = [...new Set(entries.flatMap(({ header }) => header.t!))]
      const apply = (times: readonly unknown[]): void => {
        const at = new Map(tags.map((tag, j) => [tag, times[j]]))
        for (const { i, header, inner } of entries) {
          values[i] = invalidated(
            header.c,
            header.t!.map((tag) => at.get(tag)),
          )
            ? undefined
            : inner
        }
        finishMultiGet(ctx, values)
      }
      const times = tagTimes(ctx, tags)
      if (times instanceof Promise) return times.then(apply)
      apply(times)
    },
    neutral: ({ keys }) =>
      keys !== null && typeof keys === 'object' && Symbol.iterator in keys ? Array.from(keys, NOTHING) : [],
  },
  set: {
    call(ctx) {
      const key = at(ctx, keyOf(ctx))
      const ttl = ttlOf(ctx)
      const stored = plainly(ctx, ctx.args.key!, ctx.args.value)
      forgetReads(ctx.cache.backend, key)
      return ctx.cache.backend.set(key, stored, ttl, ctx.args.casToken)
    },
    done: answerIsResult,
    neutral: TRUE,
  },
  add: {
    call(ctx) {
      const key = at(ctx, keyOf(ctx))
      const ttl = ttlOf(ctx)
      const stored = plainly(ctx, ctx.args.key!, ctx.args.value)
      forgetReads(ctx.cache.backend, key)
      return ctx.cache.backend.add(key, stored, ttl)
    },
    done(ctx, added) {
      if (added !== true) throw new KeyExistsError(ctx.args.key!)
      ctx.result = true
    },
    neutral: TRUE,
  },
  multiSet: {
    call(ctx) {
      const ttl = ttlOf(ctx)
      const pairs = pairsOf(ctx)
      for (const [key] of pairs) forgetReads(ctx.cache.backend, key)
      return ctx.cache.backend.multiSet(pairs, ttl)
    },
    done(ctx) {
      ctx.result = true
    },
    neutral: TRUE,
  },
  delete: {
    call(ctx) {
      const key = at(ctx, keyOf(ctx))
      forgetReads(ctx.cache.backend, key)
      return ctx.cache.backend.delete(key)
    },
    done: answerIsResult,
    neutral: ZERO,
  },
  exists: {
    call: (ctx) => ctx.cache.backend.exists(at(ctx, keyOf(ctx))),
    done: answerIsResult,
    neutral: FALSE,
  },
  increment: {
    call(ctx) {
      const key = at(ctx, keyOf(ctx))
      const delta = deltaOf(ctx)
      forgetReads(ctx.cache.backend, key)
      return ctx.cache.backend.increment(key, delta)
    },
    done: answerIsResult,
    neutral: ({ delta }) => delta,
  },
  expire: {
    call(ctx) {
      const key = at(ctx, keyOf(ctx))
      if (ctx.args.ttl === undefined)
        throw new RangeError('[oniocache] expire: ttl is required (seconds, or 0 / null to remove the expiry)')
      const ttl = ttlOf(ctx)
      forgetReads(ctx.cache.backend, key)
      return ctx.cache.backend.expire(key, ttl)
    },
    done: answerIsResult,
    neutral: FALSE,
  },
  invalidateTags: {
    call(ctx) {
      const tags = checkTags('invalidateTags', ctx.args.tags)
      const keys = tagKeys(ctx, tags)
      recordKeys(ctx, keys)
      const now = String(ctx.cache.clock.now())
      // One write per tag, never a scan: readers compare these times with their entries' creation.
      return ctx.cache.backend.multiSet(
        keys.map((key) => [key, now] as const),
        0,
      )
    },
    done(ctx) {
      ctx.result = true
    },
    neutral: TRUE,
  },
  clear: {
    call(ctx) {
      const namespace = ctx.args.namespace ?? ctx.cache.namespace
      if (typeof namespace !== 'string')
        throw new TypeError(`[oniocache] clear: namespace must be a string; got ${describe(namespace)}`)
      const prefix = namespace === '' ? null : ctx.cache.buildKey('', namespace)
      if (prefix === '') {
        throw new TypeError(
          `[oniocache] clear: the keyBuilder gives namespace ${describe(namespace)} no prefix (keyBuilder('', ` +
            `namespace) is ''), so its keys cannot be told from all others; nothing was deleted. Use a keyBuilder ` +
            `that prefixes keys, or clear({ namespace: '' }) to empty the whole store`,
        )
      }
      recordKeys(ctx, prefix === null ? '*' : prefix + '*')
      forgetReads(ctx.cache.backend, null)
      return ctx.cache.backend.clear(prefix, ctx.signal)
    },
    done(ctx) {
      ctx.result = true
    },
    neutral: TRUE,
  },
  raw: {
    call(ctx) {
      const { command, args = [] } = ctx.args
      if (typeof command !== 'string')
        throw new TypeError(`[oniocache] raw: the command must be a string; got ${describe(command)}`)
      recordKeys(ctx, command)
      forgetReads(ctx.cache.backend, null) // it may write anything
      return ctx.cache.backend.raw(command, args)
    },
    done: answerIsResult,
    neutral: NOTHING,
  },
  close: {
    call(ctx) {
      abortGetOrSet(ctx.cache)
      return ctx.cache.backend.close()
    },
    done(ctx) {
      ctx.result = undefined
    },
    neutral: NOTHING,
  },
}

/**
 * `getOrSet`, the core step of the command: read the entry; answer it while it is
 * fresh; otherwise run the factory once per key in the process (single flight),
 * store and answer its value. With `grace`, an entry outlives its ttl as a stale
 * value that is answered when the factory fails, outlasts `hardTimeout` or the
 * store fails (fail-safe), or at once when the factory outlasts `softTimeout`.
 * With `eagerRefresh`, a hit late in its ttl starts one background refresh.
 * Failures that are not the caller's are published on `oniocache:error`.
 */
import { randomUUID } from 'node:crypto'
import type { Clock } from '../util/clock.js'
import { debug } from '../util/debug.js'
import { describe, errorText } from '../util/describe.js'
import { type Duration, toLease, toSeconds } from '../util/duration.js'
import { FactoryTimeoutError, TimeoutError } from '../util/errors.js'
import { reportError } from './channels.js'
import { type CommandArgs, type CommandContext, type ContextCache, recordFacts } from './context.js'
import { type EnvelopeHeader, mayBeWrapped, plain, unwrap, wrap } from './envelope.js'
import { type Bound, releaseLock, STORED, waitForRelease } from './lock.js'
import { distributedOf, fractionOf, GET_OR_SET_TUNING, type GetOrSetOptions } from './options.js'
import { forgetReads, sharedRead } from './reads.js'
import { checkTags, invalidated, tagTimes } from './tags.js'

/** What the factory of `getOrSet` receives. */
export interface FactoryContext<T = unknown> {
  /** The key as given to `getOrSet` (not built). */
  readonly key: string
  /** The stale value kept by `grace`, if there is one; else `undefined`. */
  readonly stale: T | undefined
  /** Aborted when `hardTimeout` passes or the cache is closed. */
  readonly signal: AbortSignal
  /** Stores this value for `ttl` instead of the command's ttl. */
  setTtl(ttl: Duration | null): void
  /** Answers the value without storing it. */
  skip(): void
}

/** The factory of `getOrSet`: computes the value on a miss. */
export type Factory<T> = (context: FactoryContext<T>) => T | PromiseLike<T>

/** The options of `getOrSet` that may also be set once for the whole cache (its `defaults`). */
export type GetOrSetDefaults = Pick<
  GetOrSetOptions,
  'ttl' | 'grace' | 'graceBackoff' | 'softTimeout' | 'hardTimeout' | 'eagerRefresh' | 'lock' | 'lease'
>

/** The names of `GetOrSetDefaults`. @internal */
export const GET_OR_SET_DEFAULTS: ReadonlyArray<keyof GetOrSetDefaults> = ['ttl', ...GET_OR_SET_TUNING]

/** How a `getOrSet` was answered, in `ctx.state.outcome`: from a fresh entry, a stale one, or the factory. */
export type GetOrSetOutcome = 'fresh' | 'stale' | 'computed'

/** The answer of the core step. @internal */
export interface Answer {
  readonly value: unknown
  readonly outcome: GetOrSetOutcome
}

/** The options of one call, checked and in seconds (0: none). */
interface Settings {
  /** The bound of each read and write of the store: the call's timeout, else the cache's. */
  io: number
  ttl: number
  grace: number
  graceBackoff: number
  softTimeout: number
  hardTimeout: number
  eagerRefresh: number
  /** `lock: 'distributed'`: one factory call across processes, under a lease lock of `lease` seconds. */
  distributed: boolean
  lease: number
}

/** What a cache keeps for `getOrSet`: flights in progress, backoffs, background work. */
interface State {
  readonly flights: Map<string, Promise<Answer>>
  /** Key → clock time (ms) before which the factory is not called again. */
  readonly backoff: Map<string, number>
  readonly controllers: Set<AbortController>
  /** Bumped by `close()`: background work of an earlier generation writes nothing. */
  generation: number
}

const states = new WeakMap<ContextCache, State>()

function stateOf(cache: ContextCache): State {
  let state = states.get(cache)
  if (state === undefined) {
    state = { flights: new Map(), backoff: new Map(), controllers: new Set(), generation: 0 }
    states.set(cache, state)
  }
  return state
}

/**
 * Aborts the background work of a cache's `getOrSet`s (on `close()`): nothing it finishes later is stored.
 * @internal
 */
export function abortGetOrSet(cache: ContextCache): void {
  const state = states.get(cache)
  if (state === undefined) return
  state.generation++
  for (const controller of state.controllers) controller.abort(new Error('[oniocache] the cache was closed'))
  state.controllers.clear()
  state.flights.clear()
  state.backoff.clear()
}

/** An entry as read: its value (deserialized), whether it is fresh, and its envelope's header if any. */
interface Entry {
  readonly value: unknown
  readonly fresh: boolean
  readonly header: EnvelopeHeader | undefined
}

/**
 * The core step's call: answers directly for a fresh hit on a synchronous backend
 * (memory), else a promise. `build` builds the key and records it; `load` and
 * `dump` are the core's serializer steps. @internal
 */
export function getOrSet(
  ctx: CommandContext,
  key: string,
  load: (ctx: CommandContext, stored: unknown) => unknown,
  dump: (ctx: CommandContext, key: string, value: unknown) => unknown,
): Answer | Promise<Answer> {
  const a = ctx.args
  const { cache } = ctx
  // The common hit, small enough for V8 to inline: a plain value (no envelope, so always fresh) in a synchronous
  // store (memory). The options were checked as the command was made. Anything else, a failure included, goes the
  // general way, which reads again and reports the failure.
  if (cache.backend.synchronous === true && typeof a.fn === 'function' && a.tags === undefined) {
    try {
      const stored = cache.backend.get(key, cache.serializer.encoding)
      if (stored !== undefined && !mayBeWrapped(stored)) {
        FRESH.value = load(ctx, stored)
        return FRESH
      }
    } catch {}
  }
  return generally(ctx, key, load, dump)
}

/**
 * The answer of the common hit, one object for every call: the core step reads it as soon as it is answered, before
 * any other code runs (nothing runs between `load` and `done`), so no allocation is needed per hit; `done` lets go
 * of the value. @internal
 */
export const FRESH: { value: unknown; readonly outcome: 'fresh' } = { value: undefined, outcome: 'fresh' }

/** `getOrSet` but for its common hit. */
function generally(
  ctx: CommandContext,
  key: string,
  load: (ctx: CommandContext, stored: unknown) => unknown,
  dump: (ctx: CommandContext, key: string, value: unknown) => unknown,
): Answer | Promise<Answer> {
  const fn = ctx.args.fn
  if (typeof fn !== 'function') {
    throw new TypeError(`[oniocache] getOrSet: the factory must be a function; got ${describe(fn)}`)
  }
  if (ctx.args.tags !== undefined) checkTags('getOrSet', ctx.args.tags)
  const { cache } = ctx
  if (cache.backend.synchronous === true) {
    let stored: unknown
    try {
      stored = cache.backend.get(key, cache.serializer.encoding)
    } catch (error) {
      report(ctx, key, READ_FAILED, error)
      return slow({ ctx, key, settings: settingsOf(ctx), fn: fn as Factory<unknown>, load, dump }, undefined)
    }
    // The common hit: a plain value (no envelope, so always fresh), answered without an entry.
    if (stored !== undefined && !mayBeWrapped(stored)) {
      try {
        return { value: load(ctx, stored), outcome: 'fresh' }
      } catch (error) {
        report(ctx, key, UNREADABLE, error)
        return slow({ ctx, key, settings: settingsOf(ctx), fn: fn as Factory<unknown>, load, dump }, undefined)
      }
    }
    const job: Job = { ctx, key, settings: settingsOf(ctx), fn: fn as Factory<unknown>, load, dump }
    const entry = withTags(job, examine(job, stored))
    if (entry instanceof Promise) return entry.then((checked) => decide(job, checked))
    return decide(job, entry)
  }
  const job: Job = { ctx, key, settings: settingsOf(ctx), fn: fn as Factory<unknown>, load, dump }
  return readShared(job).then(
    (stored) => {
      const entry = withTags(job, examine(job, stored))
      return entry instanceof Promise ? entry.then((checked) => decide(job, checked)) : decide(job, entry)
    },
    (error: unknown) => {
      report(ctx, key, READ_FAILED, error)
      return slow(job, undefined)
    },
  )
}

/**
 * The stored value of a key on a backend that does I/O, read once (within the timeout) for the calls with the
 * same timeout that ask while the read is in progress: a crowd of calls on a missing key sends one read.
 */
function readShared(job: Job): Promise<unknown> {
  const { cache } = job.ctx
  const encoding = cache.serializer.encoding
  // Bounded by this call's timeout: shared only with the calls bounded alike.
  return sharedRead(cache.backend, job.key, `getOrSet ${job.settings.io} ${encoding === null ? 'bytes' : 'text'}`, () =>
    within(job, 'read', () => cache.backend.get(job.key, encoding)),
  )
}

/** What `ONIOCACHE_DISABLE=1` answers: the factory's value, nothing read or stored. @internal */
export function neutralGetOrSet(args: CommandArgs): Promise<unknown> {
  const fn = args.fn
  if (typeof fn !== 'function') {
    return Promise.reject(new TypeError(`[oniocache] getOrSet: the factory must be a function; got ${describe(fn)}`))
  }
  const context: FactoryContext = {
    key: args.key as string,
    stale: undefined,
    signal: new AbortController().signal,
    setTtl: () => {},
    skip: () => {},
  }
  return (async () => (fn as Factory<unknown>)(context))()
}

interface Job {
  readonly ctx: CommandContext
  readonly key: string
  readonly settings: Settings
  readonly fn: Factory<unknown>
  readonly load: (ctx: CommandContext, stored: unknown) => unknown
  readonly dump: (ctx: CommandContext, key: string, value: unknown) => unknown
}

function clockOf(cache: ContextCache): Clock {
  return cache.clock
}

function seconds(value: Duration | null | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback
  return toSeconds(value, `getOrSet ${name}`)
}

function settingsOf(ctx: CommandContext): Settings {
  // Each option read by name: the call's, else the cache's default (a keyed read by a variable name is slow).
  const a = ctx.args
  const d = ctx.cache.defaults
  const eagerRefresh = fractionOf(
    a.eagerRefresh !== undefined ? a.eagerRefresh : d.eagerRefresh,
    'getOrSet: eagerRefresh',
  )
  const lock = a.lock !== undefined ? a.lock : d.lock
  const distributed = lock !== undefined && distributedOf(lock, 'getOrSet: lock')
  const hardTimeout = seconds(a.hardTimeout !== undefined ? a.hardTimeout : d.hardTimeout, 0, 'hardTimeout')
  const lease = a.lease !== undefined ? a.lease : d.lease
  if (distributed && typeof ctx.cache.backend.deleteIf !== 'function') {
    throw new TypeError(
      `[oniocache] getOrSet: lock 'distributed' needs a backend with deleteIf (compare-and-delete); ` +
        `${ctx.cache.backend.name} has none`,
    )
  }
  return {
    io: seconds(a.timeout, ctx.cache.timeout ?? 0, 'timeout'),
    ttl: seconds(a.ttl !== undefined ? a.ttl : d.ttl, ctx.cache.ttl ?? 0, 'ttl'),
    grace: seconds(a.grace !== undefined ? a.grace : d.grace, 0, 'grace'),
    graceBackoff: seconds(a.graceBackoff !== undefined ? a.graceBackoff : d.graceBackoff, 10, 'graceBackoff'),
    softTimeout: seconds(a.softTimeout !== undefined ? a.softTimeout : d.softTimeout, 0, 'softTimeout'),
    hardTimeout,
    eagerRefresh,
    distributed,
    lease: lease !== undefined ? toLease(lease, 'getOrSet: lease') : hardTimeout > 0 ? hardTimeout : 2,
  }
}

/** The stored value as an entry, or `undefined` for a miss (an unreadable value counts as one, and is reported). */
function examine(job: Job, stored: unknown): Entry | undefined {
  if (stored === undefined) return undefined
  let inner: unknown = stored
  let header: EnvelopeHeader | undefined
  if (mayBeWrapped(stored)) {
    const opened = unwrap(stored)
    if (opened !== undefined) {
      inner = opened.inner
      header = opened.header
    }
  }
  let value: unknown
  try {
    value = job.load(job.ctx, inner)
  } catch (error) {
    report(job.ctx, job.key, UNREADABLE, error)
    return undefined
  }
  const fresh = header === undefined || header.e === 0 || header.e > clockOf(job.ctx.cache).now()
  return { value, fresh, header }
}

/** A fresh entry is a hit; anything else goes the slow way. */
function decide(job: Job, entry: Entry | undefined): Answer | Promise<Answer> {
  return entry?.fresh === true ? hit(job, entry) : slow(job, entry)
}

/**
 * An entry with tags, checked against their invalidation times: one invalidated since it was written is stale
 * when it was written with grace, else gone. Read directly from a synchronous backend, else a promise; a read
 * that fails counts as no invalidation known (and is reported).
 */
function withTags(job: Job, entry: Entry | undefined): Entry | undefined | Promise<Entry | undefined> {
  const tags = entry?.header?.t
  if (entry === undefined || tags === undefined || tags.length === 0) return entry
  const header = entry.header!
  const apply = (times: readonly unknown[]): Entry | undefined => {
    if (!invalidated(header.c, times)) return entry
    return header.g === 1 ? { value: entry.value, fresh: false, header } : undefined
  }
  const failed = (error: unknown): Entry | undefined => {
    report(job.ctx, job.key, READ_FAILED, error)
    return entry
  }
  let times: readonly unknown[] | Promise<readonly unknown[]>
  try {
    times = tagTimes(job.ctx, tags)
  } catch (error) {
    return failed(error)
  }
  return times instanceof Promise ? times.then(apply, failed) : apply(times)
}

/** A fresh entry: its value, and a background refresh when the hit comes late in its ttl. */
function hit(job: Job, entry: Entry): Answer {
  const { header } = entry
  if (header === undefined) return { value: entry.value, outcome: 'fresh' }
  const { eagerRefresh } = job.settings
  // Fresh for a near cache until the refresh is due (the hit then comes here and starts it), else until expiry.
  let until = header.e
  if (eagerRefresh > 0 && header.e > 0) {
    const due = header.c + eagerRefresh * (header.e - header.c)
    if (clockOf(job.ctx.cache).now() < due) until = due
    else if (!stateOf(job.ctx.cache).flights.has(job.key)) {
      // The caller has its value; the refresh's failure is only reported.
      flight(job, entry).catch(() => {})
    }
  }
  recordFacts(job.ctx, { until, tags: header.t })
  return { value: entry.value, outcome: 'fresh' }
}

/** A miss or a stale entry: the factory's value, through the key's flight, or the stale value. */
function slow(job: Job, entry: Entry | undefined): Answer | Promise<Answer> {
  const state = stateOf(job.ctx.cache)
  const stale = entry !== undefined
  if (stale) {
    const until = state.backoff.get(job.key)
    if (until !== undefined && until > clockOf(job.ctx.cache).now()) return { value: entry.value, outcome: 'stale' }
  }
  const pending = state.flights.get(job.key) ?? flight(job, entry)
  const { softTimeout } = job.settings
  // The flight's own promise, not one made here: a crowd of callers waits on it with nothing in between.
  if (!stale || softTimeout === 0) return pending
  return softly(pending, entry.value, softTimeout)
}

/** With a stale value at hand, waits at most `softTimeout` for the flight, which goes on and stores its value. */
async function softly(pending: Promise<Answer>, stale: unknown, softTimeout: number): Promise<Answer> {
  let timer: NodeJS.Timeout | undefined
  const soft = new Promise<Answer>((resolve) => {
    timer = setTimeout(() => resolve({ value: stale, outcome: 'stale' }), softTimeout * 1000)
  })
  try {
    return await Promise.race([pending, soft])
  } finally {
    clearTimeout(timer)
  }
}

/** Starts the factory for a key, as the one flight of the process; removed from the map when it ends. */
function flight(job: Job, entry: Entry | undefined): Promise<Answer> {
  const state = stateOf(job.ctx.cache)
  const promise = compute(job, entry, state)
  state.flights.set(job.key, promise)
  const remove = (): void => {
    if (state.flights.get(job.key) === promise) state.flights.delete(job.key)
  }
  promise.then(remove, remove)
  return promise
}

async function compute(job: Job, entry: Entry | undefined, state: State): Promise<Answer> {
  const { ctx, key, settings } = job
  const generation = state.generation
  const controller = new AbortController()
  state.controllers.add(controller)
  let ttl = settings.ttl
  let skipped = false
  const context: FactoryContext = {
    key: ctx.args.key as string,
    stale: entry?.value,
    signal: controller.signal,
    setTtl: (given) => {
      ttl = toSeconds(given, 'setTtl')
    },
    skip: () => {
      skipped = true
    },
  }
  const lock: Lock = { key: '', token: undefined, generation }
  let produced: Produced
  try {
    produced = await withHardTimeout(job, controller, () => produce(job, context, lock, controller.signal))
  } catch (error) {
    await unlock(job, lock)
    if (entry === undefined) throw error
    // Fail-safe: the stale value, and no new call for this key during graceBackoff.
    if (settings.graceBackoff > 0) {
      state.backoff.set(key, clockOf(ctx.cache).now() + settings.graceBackoff * 1000)
    }
    report(ctx, key, 'the function failed, answering the stale value', error)
    return { value: entry.value, outcome: 'stale' }
  } finally {
    state.controllers.delete(controller)
  }
  // Another process computed and stored the value while this one waited for its lock.
  if (produced.found !== undefined) {
    const { header } = produced.found
    if (header !== undefined) recordFacts(ctx, { until: header.e, tags: header.t })
    return { value: produced.found.value, outcome: 'fresh' }
  }
  const { value } = produced
  state.backoff.delete(key)
  let storing: Promise<void> | undefined
  let written: unknown
  if (value !== undefined && !skipped && generation === state.generation) {
    const failed = (error: unknown): void => {
      report(ctx, key, 'cache write failed, the value is returned uncached', error)
    }
    try {
      const { data, kept } = entryOf(job, value, ttl)
      forgetReads(ctx.cache.backend, key)
      storing = within(job, 'write', () => ctx.cache.backend.set(key, data, kept)).then(() => undefined, failed)
      written = data
    } catch (error) {
      failed(error)
    }
  }
  // The lock is released right behind the write, not after its answer: on one connection the store runs them in
  // order, so the waiters woken by the release find the value (or are handed it with the release).
  await Promise.all([storing, unlock(job, lock, written)])
  return { value, outcome: 'computed' }
}

/** What a flight produced: the factory's value, or a fresh entry another process stored meanwhile. */
type Produced = { readonly value: unknown; readonly found?: undefined } | { readonly found: Entry }

/** The lease lock a flight holds (`token` set while it holds it), taken in the cache's `generation`. */
interface Lock {
  key: string
  token: unknown
  readonly generation: number
}

/** With `lock: 'distributed'`, the lock first (or another process's value); then the factory's value. */
async function produce(job: Job, context: FactoryContext, lock: Lock, signal: AbortSignal): Promise<Produced> {
  if (job.settings.distributed) {
    const found = await coordinate(job, lock, signal)
    if (found !== undefined) return { found }
    if (signal.aborted) {
      // The hard timeout passed (or the cache was closed) while waiting: nothing runs, nothing is held.
      await unlock(job, lock)
      throw signal.reason
    }
  }
  return { value: await job.fn(context) }
}

/**
 * Takes the key's lease lock, or waits for the process that holds it and reads what it stored: answers that
 * fresh entry, or `undefined` once this flight holds the lock (and must call the factory). A lock the store cannot
 * take (down, timing out) is reported and the factory is called anyway: a broken cache never breaks the caller.
 */
async function coordinate(job: Job, lock: Lock, signal: AbortSignal): Promise<Entry | undefined> {
  const { ctx, key, settings } = job
  const { backend, serializer } = ctx.cache
  const built = ctx.cache.buildKey(`${ctx.args.key as string}-lock`, ctx.args.namespace)
  const bound: Bound = (call) => within(job, 'lock', call)
  let found: Entry | undefined
  // A holder's release may hand its value over (Redis pub/sub): then there is nothing to read.
  let handed: string | undefined
  const heard = (message: string): void => {
    if (message.startsWith(STORED)) handed = message.slice(STORED.length)
  }
  /** Whether a value was handed over and answers (then it is `found`). */
  const takeHanded = async (): Promise<boolean> => {
    if (handed === undefined) return false
    const given = handed
    handed = undefined
    found = await withTags(job, examine(job, given))
    return found?.fresh === true
  }
  // While waiting, the value is read first: a holder's value is there before its lock is gone. A release heard
  // while the store was asked (a read made before the holder wrote) hands over the value it would not find.
  // The read and the lock's check are sent together, in that order on one connection: one round trip.
  const held = async (): Promise<boolean> => {
    if (await takeHanded()) return false
    const reading = read(job)
    const locking = bound(() => backend.exists(built))
    locking.catch(() => {}) // not waited for when the read answers
    found = await reading
    if (found?.fresh === true || (await takeHanded())) return false
    const locked = await locking
    return !(await takeHanded()) && locked
  }
  while (!signal.aborted) {
    const token = serializer.dumps(randomUUID())
    // The lock and a read of the value in one round trip: a holder before this flight may have stored it since
    // this flight's first read (then it is answered, whether the lock was taken or not).
    const reading = read(job)
    let taken: boolean
    try {
      taken = await bound(() => backend.add(built, token, settings.lease))
    } catch (error) {
      report(ctx, key, 'the lock cannot be taken, calling the function', error)
      return undefined
    }
    found = await reading
    if (taken) {
      lock.key = built
      lock.token = token
      if (found?.fresh !== true) return undefined
      await unlock(job, lock)
      return found
    }
    if (found?.fresh === true) return found
    await waitForRelease(backend, built, settings.lease, held, bound, signal, heard)
    if (signal.aborted) break
    const seen = found as Entry | undefined // set by held()
    if (seen?.fresh === true) return seen
    // The holder stored nothing (its factory failed, or its lease ran out): take the lock in turn.
  }
  return undefined
}

/**
 * Releases the lock the flight holds, if any, handing `written` (the data the flight wrote) to the waiters of other
 * processes; a failure is reported (the lease ends the lock anyway). After
 * `close()` the lease ends it: a closed cache opens no connection again for its background work.
 */
async function unlock(job: Job, lock: Lock, written?: unknown): Promise<void> {
  const { token } = lock
  if (token === undefined) return
  lock.token = undefined
  if (stateOf(job.ctx.cache).generation !== lock.generation) return
  // The data just written, handed to the waiters with the release when it is text of a reasonable size.
  const message = typeof written === 'string' && written.length <= HAND_OFF_MAX ? STORED + written : undefined
  try {
    await releaseLock(job.ctx.cache.backend, lock.key, token, (call) => within(job, 'lock', call), message)
  } catch (error) {
    report(job.ctx, job.key, 'the lock cannot be released, its lease will end it', error)
  }
}

/** The key's entry read again (checked against its tags); a failed read counts as a miss and is reported. */
async function read(job: Job): Promise<Entry | undefined> {
  const { cache } = job.ctx
  try {
    const stored = await within(job, 'read', () => cache.backend.get(job.key, cache.serializer.encoding))
    return await withTags(job, examine(job, stored))
  } catch (error) {
    report(job.ctx, job.key, READ_FAILED, error)
    return undefined
  }
}

/** What `run` produces, or `FactoryTimeoutError` once `hardTimeout` has passed (the signal then aborted). */
function withHardTimeout<T>(job: Job, controller: AbortController, run: () => Promise<T>): Promise<T> {
  const running = run()
  const { hardTimeout } = job.settings
  if (hardTimeout === 0) return running
  let timer: NodeJS.Timeout | undefined
  const hard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new FactoryTimeoutError(job.ctx.args.key as string, hardTimeout)
      controller.abort(error)
      reject(error)
    }, hardTimeout * 1000)
  })
  running.catch(() => {}) // past the hard timeout, a later failure is nobody's
  return Promise.race([running, hard]).finally(() => clearTimeout(timer))
}

/** Values of text up to this many characters are handed to the waiters of other processes with the release. */
const HAND_OFF_MAX = 64 * 1024

/** What to write for a value: in an envelope when grace, eager refresh or tags need one, plain otherwise. */
function entryOf(job: Job, value: unknown, ttl: number): { data: unknown; kept: number } {
  const { ctx, settings } = job
  const stored = job.dump(ctx, ctx.args.key as string, value)
  const now = clockOf(ctx.cache).now()
  const { tags } = ctx.args
  const enveloped = settings.grace > 0 || settings.eagerRefresh > 0 || tags !== undefined
  const header: EnvelopeHeader = {
    e: ttl > 0 ? now + ttl * 1000 : 0,
    c: now,
    ...(tags !== undefined ? { t: tags } : {}),
    ...(settings.grace > 0 ? { g: 1 as const } : {}),
  }
  return { data: enveloped ? wrap(stored, header) : plain(stored, now), kept: ttl > 0 ? ttl + settings.grace : 0 }
}

/** A read or write of the store, rejected with `TimeoutError` past the call's timeout (the store is then failing). */
function within<T>(job: Job, what: 'read' | 'write' | 'lock', call: () => T | PromiseLike<T>): Promise<T> {
  let pending: Promise<T>
  try {
    pending = Promise.resolve(call())
  } catch (error) {
    return Promise.reject(error)
  }
  const { io } = job.settings
  if (io === 0) return pending
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`getOrSet ${what}`, io)), io * 1000)
  })
  pending.catch(() => {}) // past the timeout, a later failure is nobody's
  return Promise.race([pending, late]).finally(() => clearTimeout(timer))
}

const READ_FAILED = 'cache read failed, calling the function'
const UNREADABLE = 'the stored value cannot be read, calling the function'

/** A failure handled without throwing at the caller: a `NODE_DEBUG=oniocache` line and `oniocache:error`. */
function report(ctx: CommandContext, key: string, what: string, error: unknown): void {
  if (debug.enabled) debug('getOrSet %s: %s: %s', key, what, errorText(error))
  reportError('getOrSet', ctx.args.namespace ?? ctx.cache.namespace, error, ctx.cache)
}

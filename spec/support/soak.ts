/**
 * The soak: a long mixed workload on real caches, sampled after forced GCs, and the
 * check that what it samples stays flat. `npm run soak` (spec/support/fixtures/soak-run.ts)
 * runs it for minutes; spec/soak.spec.ts runs a 20-second version inside `npm test`
 * and proves, with deliberately leaking middleware, that the check catches a leak.
 *
 * The workload, per backend (memory, a private Redis, a private Memcached), with
 * `HitMissRatioPlugin` and `TimingPlugin` on every cache:
 *  - every command on a bounded key space, with and without ttls, namespaces cleared;
 *  - `cached`, `multiCached` and `cachedStampede` functions, `RedLock.run` with waiters,
 *    `OptimisticLock` with and without a conflicting write;
 *  - commands that time out (a slow middleware past a per-call timeout; on Redis also a
 *    blocking BLPOP on a cache with a 20 ms timeout) and commands that fail on bad input;
 *  - connection churn: caches created (by constructor, on a caller-owned client, by URL),
 *    used (locks included, so Redis opens its pub/sub connection) and closed, over and over.
 *
 * Sampling stops the workers at a barrier (every command settled), waits for sockets to
 * finish closing, forces two full GCs and reads: heap used + external, the active
 * resources by type (`process.getActiveResourcesInfo()`) and the open file descriptors,
 * the listener counts of the
 * process and of the caller-owned node-redis client, and the commands still watched by
 * the timeout layer. `checkFlatness` then compares the first third of the samples taken
 * after warm-up with the last third.
 */
import { readdirSync } from 'node:fs'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { watching } from '../../lib/core/deadline.js'
import {
  Cache,
  type Context,
  cached,
  cachedStampede,
  type Duration,
  HitMissRatioPlugin,
  InvalidKeyError,
  KeyExistsError,
  MemoryCache,
  type Middleware,
  multiCached,
  type Next,
  OptimisticLock,
  OptimisticLockError,
  type Plugin,
  RedLock,
  SerializationError,
  TimeoutError,
  TimingPlugin,
} from '../../lib/index.js'
import { MemcachedCache } from '../../lib/memcached.js'
import { RedisCache } from '../../lib/redis.js'
import { prng as random } from './fc-config.js'
import { startMemcached, startRedis } from './servers.js'

export type BackendKind = 'memory' | 'redis' | 'memcached'
export const BACKENDS: readonly BackendKind[] = ['memory', 'redis', 'memcached']

/** A deliberate leak, to prove the check catches one (spec/soak.spec.ts). */
export type LeakKind = 'heap' | 'timer' | 'listener'
export const LEAKS: readonly LeakKind[] = ['heap', 'timer', 'listener']

export interface SoakOptions {
  /** How long the workload runs, at least. */
  seconds: number
  /**
   * The run goes on past `seconds`, up to `maxSeconds` (default 3 × `seconds`), until it has
   * run enough commands after warm-up to see a leak of `leakBytesPerOp` (twice
   * `heapBytes / leakBytesPerOp`): on a loaded machine a short run would be blind.
   */
  maxSeconds?: number
  backends?: readonly BackendKind[]
  /** Concurrent workers per backend. Default 12. */
  workers?: number
  /** Seconds between samples. Default: a 25th of the run, between 0.4 and 10. */
  sampleEvery?: number
  /** Seconds before the first sample the check uses. Default: 15 % of the run, between 2 and 30. */
  warmUp?: number
  /** Adds a leaking middleware to every long-lived cache. */
  leak?: LeakKind
  tolerances?: Partial<Tolerances>
  seed?: number
  /** Progress lines (one per sample). */
  log?: (line: string) => void
}

/** What "flat" means. */
export interface Tolerances {
  /**
   * Most that heap used + external may grow between the median of the first third and
   * the median of the last third of the samples after warm-up, and along the least-squares
   * line through all of them. Default 4 MiB.
   */
  heapBytes: number
  /**
   * The smallest per-command leak the run must be able to see: it fails as "too short"
   * unless `leakBytesPerOp × commands between the two thirds > heapBytes`. Default 100.
   */
  leakBytesPerOp: number
  /** Most that an active resource type (TCPSocketWrap, Timeout…) may grow, by the same medians. Default 0. */
  handles: number
  /** Most that one listener count may grow, by the same medians. Default 0. */
  listeners: number
}

export const DEFAULT_TOLERANCES: Tolerances = {
  heapBytes: 4 * 1024 * 1024,
  leakBytesPerOp: 100,
  handles: 0,
  listeners: 0,
}

export interface Sample {
  /** Seconds since the workload started. */
  at: number
  /** Commands run through the chains so far. */
  ops: number
  heapUsed: number
  external: number
  /** Active resources by type, e.g. `{ TCPSocketWrap: 6, Timeout: 1 }`, and open file descriptors as `fd`. */
  handles: Record<string, number>
  /** `process:exit`, `redis-client:error`, … */
  listeners: Record<string, number>
  /** Commands the timeout layer still watches (must be 0 at the barrier). */
  watching: number
  /** Milliseconds the workers took to reach the barrier (their calls in flight finishing). */
  barrierMs: number
}

export interface FlatnessReport {
  ok: boolean
  problems: string[]
  /** The samples the check used (after warm-up), and the size of each third. */
  used: number
  third: number
  /** Medians of the first and last thirds. */
  heapFirst: number
  heapLast: number
  heapGrowth: number
  /** Bytes per command along the least-squares line, and that line's growth over the samples used. */
  slopeBytesPerOp: number
  trendGrowth: number
  /** Commands between the middles of the two thirds. */
  opsBetween: number
  /** The smallest per-command leak this run could see. */
  detectableBytesPerOp: number
  handlesFirst: Record<string, number>
  handlesLast: Record<string, number>
  listenersFirst: Record<string, number>
  listenersLast: Record<string, number>
}

export interface SoakReport {
  ok: boolean
  problems: string[]
  seconds: number
  backends: BackendKind[]
  ops: number
  opsPerSecond: number
  /** Calls by outcome: `get ok`, `get-slow TimeoutError`, `bad-input TypeError`… */
  outcomes: Record<string, number>
  /** The first 20 unexpected outcomes, and how many there were. */
  unexpected: string[]
  unexpectedCount: number
  unhandledRejections: string[]
  uncaughtExceptions: string[]
  timeouts: number
  samples: Sample[]
  flatness: FlatnessReport
  tolerances: Tolerances
}

// ---------------------------------------------------------------------------
// The check

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

const heapOf = (s: Sample): number => s.heapUsed + s.external

function medians(
  samples: readonly Sample[],
  read: (s: Sample) => Record<string, number>,
  names: Iterable<string>,
): Record<string, number> {
  const out: Record<string, number> = {}
  for (const name of names) out[name] = median(samples.map((s) => read(s)[name] ?? 0))
  return out
}

export const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(2)} MB`

/**
 * Whether the samples taken after `warmUp` seconds are flat: heap (used + external)
 * by the medians of the first and last thirds and by the least-squares line against
 * commands run; every active resource type and every listener count by the same
 * medians; nothing left watched by the timeout layer at any barrier.
 */
export function checkFlatness(
  samples: readonly Sample[],
  warmUp: number,
  tolerances: Tolerances = DEFAULT_TOLERANCES,
): FlatnessReport {
  const used = samples.filter((s) => s.at >= warmUp)
  const third = Math.max(2, Math.floor(used.length / 3))
  const first = used.slice(0, third)
  const last = used.slice(-third)
  const problems: string[] = []
  if (used.length < 6)
    problems.push(
      `only ${used.length} samples after the ${warmUp}s warm-up; at least 6 are needed (run longer or sample more ` +
        `often)`,
    )

  const heapFirst = first.length > 0 ? median(first.map(heapOf)) : 0
  const heapLast = last.length > 0 ? median(last.map(heapOf)) : 0
  const heapGrowth = heapLast - heapFirst
  const middle = (part: readonly Sample[]): number => part[Math.floor(part.length / 2)]?.ops ?? 0
  const opsBetween = middle(last) - middle(first)
  const detectableBytesPerOp = opsBetween > 0 ? tolerances.heapBytes / opsBetween : Infinity

  // Least squares of heap against commands run: a leak per command is a straight line.
  let slopeBytesPerOp = 0
  let trendGrowth = 0
  if (used.length >= 2) {
    const xs = used.map((s) => s.ops)
    const ys = used.map(heapOf)
    const mx = xs.reduce((a, b) => a + b, 0) / xs.length
    const my = ys.reduce((a, b) => a + b, 0) / ys.length
    let sxy = 0
    let sxx = 0
    for (let i = 0; i < xs.length; i++) {
      sxy += (xs[i]! - mx) * (ys[i]! - my)
      sxx += (xs[i]! - mx) ** 2
    }
    slopeBytesPerOp = sxx > 0 ? sxy / sxx : 0
    trendGrowth = slopeBytesPerOp * (xs[xs.length - 1]! - xs[0]!)
  }

  if (heapGrowth > tolerances.heapBytes) {
    problems.push(
      `heap: used + external grew ${mb(heapGrowth)} (median of the first third ${mb(heapFirst)}, of the last third ` +
        `${mb(heapLast)}); tolerance ${mb(tolerances.heapBytes)}`,
    )
  }
  if (trendGrowth > tolerances.heapBytes) {
    problems.push(
      `heap: the trend is ${slopeBytesPerOp.toFixed(1)} bytes per command, ${mb(trendGrowth)} over the samples; ` +
        `tolerance ${mb(tolerances.heapBytes)}`,
    )
  }
  if (detectableBytesPerOp > tolerances.leakBytesPerOp) {
    problems.push(
      `too few commands: ${opsBetween} between the two thirds, so a leak of ${tolerances.leakBytesPerOp} bytes per ` +
        `command (${mb(opsBetween * tolerances.leakBytesPerOp)}) would stay under the ${mb(tolerances.heapBytes)} ` +
        `tolerance`,
    )
  }

  const handleTypes = new Set(used.flatMap((s) => Object.keys(s.handles)))
  const handlesFirst = medians(first, (s) => s.handles, handleTypes)
  const handlesLast = medians(last, (s) => s.handles, handleTypes)
  for (const type of handleTypes) {
    const growth = handlesLast[type]! - handlesFirst[type]!
    if (growth > tolerances.handles)
      problems.push(
        `handles: ${type} went from ${handlesFirst[type]} to ${handlesLast[type]} (medians of the first and last ` +
          `thirds); tolerance +${tolerances.handles}`,
      )
  }

  const listenerNames = new Set(used.flatMap((s) => Object.keys(s.listeners)))
  const listenersFirst = medians(first, (s) => s.listeners, listenerNames)
  const listenersLast = medians(last, (s) => s.listeners, listenerNames)
  for (const name of listenerNames) {
    const growth = listenersLast[name]! - listenersFirst[name]!
    if (growth > tolerances.listeners)
      problems.push(
        `listeners: ${name} went from ${listenersFirst[name]} to ${listenersLast[name]} (medians of the first and ` +
          `last thirds); tolerance +${tolerances.listeners}`,
      )
  }

  const watched = used.filter((s) => s.watching !== 0)
  if (watched.length > 0)
    problems.push(
      `timeouts: ${watched[0]!.watching} command(s) still watched at the barrier at ${watched[0]!.at.toFixed(1)}s, ` +
        `with every command settled`,
    )

  return {
    ok: problems.length === 0,
    problems,
    used: used.length,
    third,
    heapFirst,
    heapLast,
    heapGrowth,
    slopeBytesPerOp,
    trendGrowth,
    opsBetween,
    detectableBytesPerOp,
    handlesFirst,
    handlesLast,
    listenersFirst,
    listenersLast,
  }
}

// ---------------------------------------------------------------------------
// Sampling

/** `global.gc`, from `--expose-gc` or, failing that, switched on now. */
export function gcFunction(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc
  if (typeof exposed === 'function') return exposed
  setFlagsFromString('--expose-gc')
  return runInNewContext('gc') as () => void
}

const PROCESS_EVENTS = [
  'exit',
  'beforeExit',
  'SIGINT',
  'SIGTERM',
  'SIGHUP',
  'unhandledRejection',
  'uncaughtException',
  'warning',
  'message',
] as const

interface Emitter {
  eventNames(): Array<string | symbol>
  listenerCount(event: string | symbol): number
}

function listenerCounts(emitters: Readonly<Record<string, Emitter>>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const event of PROCESS_EVENTS) out[`process:${event}`] = process.listenerCount(event)
  for (const event of process.eventNames()) out[`process:${String(event)}`] = process.listenerCount(event)
  for (const [name, emitter] of Object.entries(emitters)) {
    for (const event of emitter.eventNames()) out[`${name}:${String(event)}`] = emitter.listenerCount(event)
  }
  return out
}

/**
 * Active resources by type, and open file descriptors as `fd`: idle sockets that are
 * unref'd (Memcached's) are not active resources, but each holds a descriptor.
 */
function handleCounts(): Record<string, number> {
  const out: Record<string, number> = {}
  for (const type of process.getActiveResourcesInfo()) out[type] = (out[type] ?? 0) + 1
  try {
    out.fd = readdirSync('/proc/self/fd').length
  } catch {
    // not Linux: active resources only
  }
  return out
}

// ---------------------------------------------------------------------------
// The workload

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/** Counts every command that runs through a chain, and those still in it. */
class Tracker {
  ops = 0
  inflight = 0
  #idle: Array<() => void> = []
  readonly middleware: Middleware = async (_ctx: Context, next: Next) => {
    this.inflight++
    try {
      await next()
    } finally {
      this.inflight--
      this.ops++
      if (this.inflight === 0) for (const wake of this.#idle.splice(0)) wake()
    }
  }
  /** Resolves when no command is in any chain (timed-out ones that still run included). */
  idle(): Promise<void> {
    return this.inflight === 0 ? Promise.resolve() : new Promise((resolve) => this.#idle.push(resolve))
  }
}

const SLOW_MS = 30
const FAST_TIMEOUT = '10ms'

/**
 * Holds keys starting with `slow-` for 30 ms, past the 10 ms timeout they are called
 * with. `slow-abort-…` gives up when `ctx.signal` aborts (the chain then fails after
 * the caller got its TimeoutError); `slow-keep-…` goes on to the backend anyway.
 */
const slowMiddleware: Middleware = async (ctx: Context, next: Next) => {
  const key = ctx.args.key
  if (typeof key === 'string' && key.startsWith('slow-')) {
    if (key.startsWith('slow-abort-')) {
      const signal = ctx.signal
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, SLOW_MS)
        function done(): void {
          clearTimeout(timer)
          signal.removeEventListener('abort', done)
          resolve()
        }
        signal.addEventListener('abort', done)
      })
      signal.throwIfAborted()
    } else {
      await sleep(SLOW_MS)
    }
  }
  await next()
}

/** The deliberate leaks of spec/soak.spec.ts; `stop()` undoes them so the process can end. */
function leakingMiddleware(kind: LeakKind): { middleware: Middleware; stop(): void } {
  const retained: object[] = []
  const timers: NodeJS.Timeout[] = []
  const listeners: Array<() => void> = []
  let n = 0
  const middleware: Middleware = (_ctx: Context, next: Next) => {
    n++
    // About 100 bytes kept per command: an object of 9 small integers (measured: 106 bytes with its array slot).
    if (kind === 'heap') retained.push({ n, a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8 })
    // One timer, or one process listener, per 2000 commands.
    else if (kind === 'timer' && n % 2000 === 0) timers.push(setInterval(() => {}, 1 << 30))
    else if (kind === 'listener' && n % 2000 === 0) {
      const listener = (): void => {}
      listeners.push(listener)
      process.on('exit', listener)
    }
    return next()
  }
  return {
    middleware,
    stop() {
      retained.length = 0
      for (const timer of timers.splice(0)) clearInterval(timer)
      for (const listener of listeners.splice(0)) process.off('exit', listener)
    },
  }
}

type Outcomes = Map<string, number>

interface Target {
  kind: BackendKind
  /** The long-lived cache every worker shares. */
  main: Cache
  /** More long-lived caches (e.g. Redis on a caller-owned client), used now and then. */
  others: Cache[]
  /** A new cache for the connection churn. */
  fresh(plugins: Array<Plugin | Middleware>): Cache
  /** Commands that time out on this backend besides the slow middleware's. */
  blocking?: () => Promise<unknown>
  /** Emitters whose listeners are counted. */
  emitters: Record<string, Emitter>
  stop(): Promise<void>
}

interface Shared {
  tracker: Tracker
  plugins(): Array<Plugin | Middleware>
}

async function openTarget(kind: BackendKind, shared: Shared): Promise<Target> {
  let churned = 0
  if (kind === 'memory') {
    const main = new MemoryCache({ namespace: 'soak', plugins: shared.plugins() })
    return {
      kind,
      main,
      others: [new MemoryCache({ namespace: 'soak-lru', maxSize: 64, plugins: shared.plugins() })],
      fresh: (plugins) =>
        ++churned % 3 === 0
          ? Cache.fromUrl('memory://?namespace=churn-url', { plugins })
          : new MemoryCache({ namespace: 'churn', sweepInterval: 0.05, plugins }),
      emitters: {},
      stop: async () => {
        await main.close()
      },
    }
  }
  if (kind === 'redis') {
    const server = await startRedis()
    const { createClient } = await import('@redis/client')
    // A client of our own, given to caches: oniocache must leave no listener on it.
    const client = createClient({ url: server.url })
    client.on('error', () => {})
    await client.connect()
    const main = new RedisCache({ url: server.url, namespace: 'soak', plugins: shared.plugins() })
    const viaClient = new RedisCache({ client, namespace: 'soak-client', plugins: shared.plugins() })
    // BLPOP holds the connection for 60 ms; the cache gives up after 20. One at a time: queued
    // behind each other on the one connection they would pile up faster than they drain.
    let blockingInFlight = 0
    const countBlocking: Middleware = async (_ctx, next) => {
      blockingInFlight++
      try {
        await next()
      } finally {
        blockingInFlight--
      }
    }
    const blocking = new RedisCache({
      url: server.url,
      namespace: 'soak-blocking',
      timeout: '20ms',
      plugins: [shared.tracker.middleware, countBlocking],
    })
    return {
      kind,
      main,
      others: [viaClient],
      fresh: (plugins) => {
        const n = ++churned % 3
        if (n === 0) return Cache.fromUrl(`${server.url}?namespace=churn-url`, { plugins })
        return n === 1
          ? new RedisCache({ url: server.url, namespace: 'churn', plugins })
          : new RedisCache({ client, namespace: 'churn-client', plugins })
      },
      blocking: () =>
        blockingInFlight === 0 ? blocking.raw('BLPOP', 'soak-blocking:nothing', '0.06') : blocking.exists('nothing'),
      emitters: { 'redis-client': client as unknown as Emitter },
      stop: async () => {
        await Promise.all([main.close(), viaClient.close(), blocking.close()])
        await client.close()
        await server.stop()
      },
    }
  }
  const server = await startMemcached()
  const main = new MemcachedCache({ servers: [server.server], namespace: 'soak', plugins: shared.plugins() })
  return {
    kind,
    main,
    others: [],
    fresh: (plugins) =>
      ++churned % 3 === 0
        ? Cache.fromUrl(`memcached://${server.server}?namespace=churn-url`, { plugins })
        : new MemcachedCache({ servers: [server.server], namespace: 'churn', plugins }),
    emitters: {},
    stop: async () => {
      await main.close()
      await server.stop()
    },
  }
}

/** Runs `fn`; rejections of the listed classes are expected outcomes, anything else is unexpected. */
async function expect(
  outcomes: Outcomes,
  label: string,
  fn: () => Promise<unknown>,
  expected: ReadonlyArray<new (...args: never[]) => Error> = [],
): Promise<void> {
  let outcome = 'ok'
  try {
    await fn()
  } catch (error) {
    const match = expected.find((type) => error instanceof type)
    if (match === undefined)
      throw new Error(`${label}: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`, {
        cause: error,
      })
    outcome = match.name
  }
  const name = `${label} ${outcome}`
  outcomes.set(name, (outcomes.get(name) ?? 0) + 1)
}

type Operation = readonly [weight: number, name: string, run: () => Promise<void>]

/** The mixed workload of one backend: weighted operations, each checking its outcome. */
function operations(target: Target, rand: () => number, outcomes: Outcomes, shared: Shared): Operation[] {
  const cache = target.main
  const pick = (n: number): number => Math.floor(rand() * n)
  const key = (): string => `k${pick(200)}`
  const ttl = (): Duration | null | undefined => ([undefined, 0.05, 1, '2s', null] as const)[pick(5)]
  const value = (): unknown => ({ n: pick(1000), s: 'v'.repeat(pick(64)) })
  const memcached = target.kind === 'memcached'
  const other = (): Cache =>
    target.others.length > 0 && rand() < 0.2 ? target.others[pick(target.others.length)]! : cache

  const load = cached(
    async function soakLoad(id: number) {
      return { id, loaded: true }
    },
    { cache, ttl: 0.3 },
  )
  const many = multiCached(
    async function soakMany(ids: string[]) {
      return Object.fromEntries(ids.map((id) => [id, { id }]))
    },
    { cache, keysFrom: 0, ttl: 0.3 },
  )
  const compute = cachedStampede(
    async function soakCompute(id: number) {
      await sleep(2)
      return { id, computed: true }
    },
    { cache, ttl: 0.3, lease: 1 },
  )

  const badInput: Array<[() => Promise<unknown>, new (...args: never[]) => Error]> = [
    [() => cache.get(42 as unknown as string), TypeError],
    [() => cache.set('bad', undefined), TypeError],
    [() => cache.set('bad', 1, { ttl: -1 }), RangeError],
    [() => cache.expire('bad', 'soon' as unknown as number), RangeError],
    [() => cache.increment('bad', 1.5), TypeError],
    [() => cache.multiGet(null as unknown as string[]), TypeError],
    [() => cache.multiSet([['only-key']] as unknown as Array<[string, unknown]>), TypeError],
    [() => cache.get('bad', { bogus: 1 } as object), TypeError],
    [
      async () => {
        await cache.set('not-a-number', 'text')
        await cache.increment('not-a-number')
      },
      TypeError,
    ],
    [() => cache.add('bad', 1, { timeout: -5 }), RangeError],
  ]
  if (target.kind !== 'memory') {
    const cycle: Record<string, unknown> = {}
    cycle.self = cycle
    badInput.push([() => cache.set('cycle', cycle), SerializationError])
  }
  if (memcached) badInput.push([() => cache.get('x'.repeat(300)), InvalidKeyError])

  const ops: Operation[] = [
    [20, 'get', () => expect(outcomes, 'get', () => other().get(key()))],
    [10, 'set', () => expect(outcomes, 'set', () => other().set(key(), value(), { ttl: ttl() }))],
    [4, 'add', () => expect(outcomes, 'add', () => cache.add(key(), value(), { ttl: 1 }), [KeyExistsError])],
    [4, 'delete', () => expect(outcomes, 'delete', () => other().delete(key()))],
    [4, 'exists', () => expect(outcomes, 'exists', () => cache.exists(key()))],
    [4, 'increment', () => expect(outcomes, 'increment', () => cache.increment(`counter${pick(10)}`, pick(5) + 1))],
    [4, 'multiGet', () => expect(outcomes, 'multiGet', () => other().multiGet([key(), key(), key(), key(), key()]))],
    [
      3,
      'multiSet',
      () =>
        expect(outcomes, 'multiSet', () =>
          cache.multiSet(
            [
              [key(), value()],
              [key(), value()],
              [key(), value()],
            ],
            { ttl: ttl() },
          ),
        ),
    ],
    [3, 'expire', () => expect(outcomes, 'expire', () => cache.expire(key(), [0, 0.5, 2, null][pick(4)]!))],
    [
      1,
      'clear',
      () =>
        expect(
          outcomes,
          'clear',
          async () => {
            const namespace = `tmp${pick(4)}`
            await cache.set('a', 1, { namespace })
            await cache.set('b', 2, { namespace, ttl: 1 })
            await cache.clear({ namespace })
          },
          memcached ? [Error] : [],
        ),
    ],
    [
      4,
      'cached',
      () =>
        expect(outcomes, 'cached', async () => {
          await load(pick(50))
        }),
    ],
    [
      2,
      'multiCached',
      () => expect(outcomes, 'multiCached', () => many([`m${pick(30)}`, `m${pick(30)}`, `m${pick(30)}`])),
    ],
    [
      2,
      'cachedStampede',
      () =>
        expect(outcomes, 'cachedStampede', async () => {
          const id = pick(20)
          await Promise.all([compute(id), compute(id), compute(id), compute(id)])
        }),
    ],
    [
      1,
      'RedLock',
      () =>
        expect(outcomes, 'RedLock', async () => {
          const lockKey = `lock${pick(8)}`
          const holder = async (): Promise<number> =>
            RedLock.run(cache, lockKey, { lease: 1 }, async () => {
              await sleep(2)
              return 1
            })
          await Promise.all([holder(), holder(), holder()])
        }),
    ],
    [
      2,
      'OptimisticLock',
      () =>
        expect(
          outcomes,
          'OptimisticLock',
          async () => {
            const lockKey = `opt${pick(5)}`
            const lock = await OptimisticLock.acquire(cache, lockKey)
            if (rand() < 0.3) await cache.set(lockKey, value())
            await lock.cas(value(), { ttl: 2 })
          },
          [OptimisticLockError],
        ),
    ],
    [
      2,
      'timeout',
      () =>
        expect(
          outcomes,
          'timeout',
          () => cache.get(`slow-${rand() < 0.5 ? 'abort' : 'keep'}-${pick(5)}`, { timeout: FAST_TIMEOUT }),
          [TimeoutError],
        ),
    ],
    [
      3,
      'bad-input',
      () => {
        const [call, type] = badInput[pick(badInput.length)]!
        return expect(outcomes, 'bad-input', call, [type])
      },
    ],
    [
      0.3,
      'churn',
      () =>
        expect(outcomes, 'churn', async () => {
          const fresh = target.fresh([shared.tracker.middleware, new TimingPlugin()])
          try {
            await fresh.set('c', { at: pick(100) }, { ttl: 0.2 })
            await fresh.get('c')
            await fresh.exists('c')
            // Two holders: the second waits (on Redis through the pub/sub connection).
            await Promise.all([0, 1].map(() => RedLock.run(fresh, 'churn', { lease: 1 }, () => sleep(1))))
          } finally {
            await fresh.close()
          }
        }),
    ],
  ]
  if (target.blocking !== undefined) {
    const blocking = target.blocking
    ops.push([0.5, 'blocking', () => expect(outcomes, 'blocking', blocking, [TimeoutError])])
  }
  return ops
}

function chooser(ops: readonly Operation[], rand: () => number): () => Operation {
  const total = ops.reduce((sum, [weight]) => sum + weight, 0)
  return () => {
    let r = rand() * total
    for (const op of ops) {
      r -= op[0]
      if (r < 0) return op
    }
    return ops[ops.length - 1]!
  }
}

// ---------------------------------------------------------------------------
// The run

/**
 * Runs the workload for `options.seconds`, sampling at barriers, and checks flatness,
 * unexpected errors, unhandled rejections and uncaught exceptions. Never throws for a
 * failed check: `report.ok` and `report.problems` say what failed.
 */
export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const seconds = options.seconds
  const maxSeconds = Math.max(seconds, options.maxSeconds ?? seconds * 3)
  const backends = [...(options.backends ?? BACKENDS)]
  const workers = options.workers ?? 12
  const sampleEvery = options.sampleEvery ?? Math.min(10, Math.max(0.4, seconds / 25))
  const warmUp = options.warmUp ?? Math.min(30, Math.max(2, seconds * 0.15))
  const tolerances: Tolerances = { ...DEFAULT_TOLERANCES, ...options.tolerances }
  const log = options.log ?? (() => {})
  const rand = random(options.seed ?? 20240607)
  const gc = gcFunction()
  const enoughOps = Math.ceil((2 * tolerances.heapBytes) / tolerances.leakBytesPerOp)

  const tracker = new Tracker()
  const leak = options.leak === undefined ? undefined : leakingMiddleware(options.leak)
  const shared: Shared = {
    tracker,
    plugins: () => [
      tracker.middleware,
      new HitMissRatioPlugin(),
      new TimingPlugin(),
      slowMiddleware,
      ...(leak !== undefined ? [leak.middleware] : []),
    ],
  }

  const unhandledRejections: string[] = []
  const uncaughtExceptions: string[] = []
  const onRejection = (reason: unknown): void => void unhandledRejections.push(String(reason))
  const onException = (error: unknown): void => void uncaughtExceptions.push(String(error))
  process.on('unhandledRejection', onRejection)
  process.on('uncaughtException', onException)

  const outcomes: Outcomes = new Map()
  const unexpected: string[] = []
  let unexpectedCount = 0
  const targets: Target[] = []
  const samples: Sample[] = []
  let started = 0
  try {
    for (const kind of backends) targets.push(await openTarget(kind, shared))
    const emitters = Object.assign({}, ...targets.map((t) => t.emitters)) as Record<string, Emitter>
    const plans = targets.map((target) => ({ target, next: chooser(operations(target, rand, outcomes, shared), rand) }))

    let pausing = false
    const work = async (next: () => Operation): Promise<void> => {
      let n = 0
      while (!pausing) {
        const [, , op] = next()
        try {
          await op()
        } catch (error) {
          unexpectedCount++
          if (unexpected.length < 20) unexpected.push(error instanceof Error ? error.message : String(error))
        }
        // Memory commands settle on microtasks alone: let I/O and timers in now and then.
        if (++n % 32 === 0) await tick()
      }
    }
    const sample = async (): Promise<Omit<Sample, 'barrierMs'>> => {
      // Sockets of closed caches finish closing on the next turns of the loop.
      await sleep(50)
      gc()
      await tick()
      gc()
      const memory = process.memoryUsage()
      return {
        at: (performance.now() - started) / 1000,
        ops: tracker.ops,
        heapUsed: memory.heapUsed,
        external: memory.external,
        handles: handleCounts(),
        listeners: listenerCounts(emitters),
        watching: watching(),
      }
    }

    started = performance.now()
    const end = started + seconds * 1000
    const cap = started + maxSeconds * 1000
    let extended = false
    for (;;) {
      pausing = false
      const running = plans.flatMap(({ next }) => Array.from({ length: workers }, () => work(next)))
      const wait = Math.max(0, Math.min(sampleEvery * 1000, (extended ? cap : end) - performance.now()))
      let paused = performance.now()
      const timer = setTimeout(() => {
        pausing = true
        paused = performance.now()
      }, wait)
      await Promise.all(running)
      clearTimeout(timer)
      await tracker.idle()
      const s = { ...(await sample()), barrierMs: Math.round(performance.now() - paused) }
      samples.push(s)
      log(
        `${s.at.toFixed(1).padStart(6)}s  ${String(s.ops).padStart(9)} ops  heap ${mb(s.heapUsed)} + external ` +
          `${mb(s.external)}  ` +
          `handles ${JSON.stringify(s.handles)}  listeners ${Object.values(s.listeners).reduce((a, b) => a + b, 0)} ` +
          ` barrier ${s.barrierMs} ms`,
      )
      if (performance.now() < end) continue
      const afterWarmUp = s.ops - (samples.find((x) => x.at >= warmUp)?.ops ?? s.ops)
      if (afterWarmUp >= enoughOps || performance.now() >= cap) break
      if (!extended)
        log(
          `        ${afterWarmUp} commands after warm-up, fewer than the ${enoughOps} that show a ` +
            `${tolerances.leakBytesPerOp}-byte leak per command: going on (at most ${maxSeconds}s)`,
        )
      extended = true
    }
  } catch (error) {
    unexpected.push(
      `the soak itself failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    )
  } finally {
    leak?.stop()
    await Promise.all(
      targets.map((t) =>
        t.stop().catch((error: unknown) => void unexpected.push(`stopping ${t.kind}: ${String(error)}`)),
      ),
    )
    // A rejection reported on the next turn still counts.
    await tick()
    process.off('unhandledRejection', onRejection)
    process.off('uncaughtException', onException)
  }

  const elapsed = samples.length > 0 ? samples[samples.length - 1]!.at : 0
  const ops = tracker.ops
  const flatness = checkFlatness(samples, warmUp, tolerances)
  const problems = [...flatness.problems]
  unexpectedCount = Math.max(unexpectedCount, unexpected.length)
  if (unexpectedCount > 0)
    problems.push(`${unexpectedCount} unexpected outcome(s): ${unexpected.slice(0, 5).join(' | ')}`)
  if (unhandledRejections.length > 0)
    problems.push(
      `${unhandledRejections.length} unhandled rejection(s): ${unhandledRejections.slice(0, 5).join(' | ')}`,
    )
  if (uncaughtExceptions.length > 0)
    problems.push(`${uncaughtExceptions.length} uncaught exception(s): ${uncaughtExceptions.slice(0, 5).join(' | ')}`)
  const timeouts = [...outcomes].filter(([name]) => name.endsWith(' TimeoutError')).reduce((sum, [, n]) => sum + n, 0)
  if (timeouts === 0 && problems.length === 0)
    problems.push('no command timed out: the workload did not exercise timeouts')
  return {
    ok: problems.length === 0,
    problems,
    seconds: elapsed,
    backends,
    ops,
    opsPerSecond: elapsed > 0 ? Math.round(ops / elapsed) : 0,
    outcomes: Object.fromEntries([...outcomes].sort(([a], [b]) => a.localeCompare(b))),
    unexpected,
    unexpectedCount,
    unhandledRejections,
    uncaughtExceptions,
    timeouts,
    samples,
    flatness,
    tolerances,
  }
}

/**
 * NearCachePlugin: decoded values kept in process memory in front of a shared
 * store, answering `get`, `multiGet` and `getOrSet` hits without calling `next()`.
 *
 * What keeps the copy honest:
 * - a stream of invalidations — the backend's own (`Backend.watchChanges`: Redis'
 *   server-assisted client-side caching) or a bus (`RedisBus`) — drops a key's copy
 *   whenever anyone changes it;
 * - the copy is filled only while that stream is live, and dropped whole when it is
 *   lost, for then changes may have gone untold;
 * - a read fills the copy only if no invalidation of its key (or of its entry's tag
 *   keys) arrived since the read began, and the stream stayed up meanwhile: a read
 *   that raced a change never stores what it read;
 * - writes through the cache drop the keys they touched, once they are done;
 * - every copy lives at most `ttl`, and no longer than its entry's logical expiry.
 */

import { keyPrefix } from '../core/cache.js'
import { reportError } from '../core/channels.js'
import { SYNC_NEXT, type SyncNext } from '../core/compose.js'
import {
  type CommandContext,
  type Context,
  type EntryFacts,
  factsOf,
  hitsOf,
  keysOf,
  type Next,
  outcomeOf,
  type Plugin,
  recordHits,
  recordKeys,
  recordOutcome,
} from '../core/context.js'
import type { InvalidationBus, InvalidationListener, StopListening } from '../core/invalidation.js'
import { forgetReads } from '../core/reads.js'
import { tagKeys } from '../core/tags.js'
import { type Clock, coarse } from '../util/clock.js'
import { debug } from '../util/debug.js'
import { describe } from '../util/describe.js'
import { type Duration, toSeconds } from '../util/duration.js'
import { checkOptions } from '../util/options.js'

const DEBUG = debug.enabled

/** The options of `NearCachePlugin`. */
export interface NearCacheOptions {
  /** How many entries the copy holds at most; the least recently used are dropped first. Default `10_000`. */
  maxSize?: number
  /**
   * How long a copy lives at most, in seconds (or `'30s'`, `'1m'`…): the bound on staleness where nothing tells the
   * copy about changes. Default `60`.
   */
  ttl?: Duration
  /**
   * Where other processes' changes come from on a backend that cannot tell them itself (Memcached, memory): a
   * `RedisBus`. A Redis cache needs none: the server tells them.
   */
  bus?: InvalidationBus
  /**
   * The monotonic clock of the copy's ttl, in milliseconds. Default: the monotonic high-resolution clock, read at
   * most once a millisecond; tests pass their own.
   */
  clock?: Clock
}

/** What `NearCachePlugin.stats` counts. */
export interface NearCacheStats {
  /** Lookups answered from the copy: one per `get` or `getOrSet`, one per key of a `multiGet`. */
  readonly hits: number
  /** Lookups that went on to the cache. */
  readonly misses: number
  /**
   * Copies dropped before their time: their key (or a tag of their entry) changed, by this process or another, or
   * the whole copy went (a lost stream, `clear`, `raw`, `close`). Copies that outlived their ttl or were evicted
   * under `maxSize` are not counted.
   */
  readonly invalidations: number
  /** Entries held now. */
  readonly size: number
}

/** One value kept. */
interface Copy {
  readonly value: unknown
  /** Until when it may be answered, on the plugin's clock. */
  readonly until: number
  /** The keys of its entry's tags, whose invalidation drops it. */
  readonly tags: readonly string[] | undefined
  /** Read since it last came round in eviction: a second chance. */
  used: boolean
}

/** A read in flight: when it began, in invalidations counted and streams lost. */
interface Read {
  readonly seq: number
  readonly epoch: number
}

const OPTIONS = ['maxSize', 'ttl', 'bus', 'clock']
/** How long the first command waits for the stream to be live, at most. */
const FIRST_WAIT_MS = 1000

/**
 * Keeps decoded values in process memory in front of a shared cache and answers
 * `get`, `multiGet` and `getOrSet` hits without calling `next()`; misses go on and
 * fill it. On a `RedisCache` the server tells it about every change of a key (by any
 * client, by expiry or eviction); on another backend give it a `bus` (`RedisBus`).
 * Without either, the copy is process-local and bounded by its own `ttl`.
 *
 * Values are shared, not copied: a caller must not modify what it receives.
 *
 * @example
 * ```ts
 * import { NearCachePlugin } from 'oniocache'
 * import { RedisCache } from 'oniocache/redis'
 *
 * const near = new NearCachePlugin({ maxSize: 10_000, ttl: '1m' })
 * const cache = new RedisCache({ url: 'redis://127.0.0.1:6379', plugins: [near] })
 * await cache.set('user:42', { name: 'Ada' })
 * await cache.get('user:42') // read from Redis, kept
 * await cache.get('user:42') // answered from process memory, until anyone changes the key
 * console.log(near.stats) // { hits, misses, invalidations, size }
 * await cache.close()
 * ```
 */
export class NearCachePlugin implements Plugin {
  /** The most entries held. */
  readonly maxSize: number
  /** The longest a copy lives, in seconds. */
  readonly ttl: number
  readonly #ttlMs: number
  readonly #bus: InvalidationBus | undefined
  readonly #clock: Clock
  readonly #copies = new Map<string, Copy>()
  /** Entries by the key of a tag they carry. */
  readonly #dependents = new Map<string, Set<string>>()
  #hits = 0
  #misses = 0
  #invalidations = 0
  /** The cache served, set by the first command. */
  #cache: Context['cache'] | undefined
  /** Keys kept start with it: what the stream covers. */
  #prefix = ''
  /**
   * With the library's key builders, the copy is keyed by the caller's key (the built key less this prefix, that of
   * the cache's namespace): a hit builds no key. `undefined` with any other builder: the copy is keyed by built keys.
   */
  #direct: string | undefined
  /** The cache's namespace when the plugin attached, which `#direct` is the prefix of. */
  #namespace = ''
  /** The stream of invalidations being followed: how to stop it, once started. */
  #stream: Promise<StopListening | undefined> | undefined
  /** In front of a backend in process memory (synchronous), a copy would only add a second, staler one. */
  #off = false
  /** A configuration the stream refused (a Redis Cluster): every command rejects with it. */
  #refused: Error | undefined
  /** Whether the stream carries every change now: only then is the copy filled. */
  #live = false
  /** Invalidations counted, and the streams lost or made live: reads compare them with where they began. */
  #seq = 0
  #epoch = 0
  /** Reads in flight, oldest first. */
  readonly #reads = new Set<Read>()
  /** The last invalidation of each key while reads are in flight, oldest first. */
  readonly #moved = new Map<string, number>()
  /** What the stream tells, bound to this plugin. */
  readonly #listener: InvalidationListener = {
    invalidate: (keys) => this.#invalidate(keys),
    invalidatePrefix: (prefix) => this.#dropPrefix(prefix),
    lost: (error) => this.#lost(error),
    live: () => {
      this.#epoch++
      this.#live = true
      this.#hear()
    },
  }
  /** Wakes the first command once the stream has said whether it is live. */
  #heard: (() => void) | undefined

  #hear(): void {
    this.#heard?.()
    this.#heard = undefined
  }

  /**
   * @param options - `maxSize` (default 10,000), `ttl` (default 60 s), `bus`, `clock`.
   * @throws {TypeError} for an unknown option, a `maxSize` that is not a positive integer or a `bus` without
   *   `listen` and `publish`.
   * @throws {RangeError} for a `ttl` that is not a positive duration.
   */
  constructor(options: NearCacheOptions = {}) {
    checkOptions(options, OPTIONS, 'NearCachePlugin')
    const { maxSize = 10_000, ttl = 60, bus, clock = coarse } = options
    if (!Number.isSafeInteger(maxSize) || maxSize < 1) {
      throw new TypeError(`[oniocache] NearCachePlugin: maxSize must be a positive integer; got ${describe(maxSize)}`)
    }
    let seconds = 0
    try {
      seconds = ttl === null ? 0 : toSeconds(ttl, 'ttl')
    } catch {}
    if (!(seconds > 0)) {
      throw new RangeError(
        `[oniocache] NearCachePlugin: ttl must be a duration of more than 0 (seconds, or '30s', '1m'…); got ` +
          describe(ttl),
      )
    }
    if (bus !== undefined && (typeof bus?.listen !== 'function' || typeof bus.publish !== 'function')) {
      throw new TypeError(
        `[oniocache] NearCachePlugin: bus must have listen() and publish(), such as new RedisBus({ url }); got ` +
          describe(bus),
      )
    }
    if (clock === null || typeof clock !== 'object' || typeof clock.now !== 'function') {
      throw new TypeError(`[oniocache] NearCachePlugin: clock must have a now() method; got ${describe(clock)}`)
    }
    this.maxSize = maxSize
    this.ttl = seconds
    this.#ttlMs = seconds * 1000
    this.#bus = bus
    this.#clock = clock
  }

  /** Hits, misses and invalidations so far, and the entries held now. */
  get stats(): NearCacheStats {
    return { hits: this.#hits, misses: this.#misses, invalidations: this.#invalidations, size: this.#copies.size }
  }

  /**
   * The layer: answers hits of `get`, `multiGet` and `getOrSet` from the copy,
   * fills it from their misses, and drops what writes touch.
   */
  middleware(ctx: Context, next: Next): Promise<void> | void {
    if (ctx.cache !== this.#cache) {
      const attached = this.#attach(ctx)
      // The first command waits for the stream to start (not to be live), so that a refusal is its error too.
      if (attached !== undefined) return attached.then(() => this.middleware(ctx, next))
    }
    if (this.#refused !== undefined && ctx.command !== 'close') return Promise.reject(this.#refused)
    if (this.#off) return ctx.command === 'close' ? this.#close(ctx, next as SyncNext) : (next as SyncNext)(ctx)
    switch (ctx.command) {
      case 'get':
        return this.#get(ctx as CommandContext, next as SyncNext)
      case 'getOrSet':
        return this.#getOrSet(ctx as CommandContext, next as SyncNext)
      case 'multiGet':
        return this.#multiGet(ctx as CommandContext, next as SyncNext)
      case 'exists':
        return (next as SyncNext)(ctx)
      case 'close':
        return this.#close(ctx, next as SyncNext)
      default:
        return this.#write(ctx, next as SyncNext)
    }
  }

  /** The first command: the cache served, and its stream of invalidations. */
  #attach(ctx: Context): Promise<void> | undefined {
    if (this.#cache !== undefined) {
      return Promise.reject(
        new TypeError(
          '[oniocache] NearCachePlugin: one plugin serves one cache (its copy is keyed by that cache’s keys); ' +
            'give each cache its own NearCachePlugin',
        ),
      )
    }
    this.#cache = ctx.cache
    this.#start()
    const stream = this.#stream
    if (stream === undefined) return undefined
    // The first command waits (a little) for the stream to be live, so that the copy fills from the first read.
    const heard = new Promise<void>((resolve) => (this.#heard = resolve))
    let timer: NodeJS.Timeout | undefined
    const enough = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, FIRST_WAIT_MS)
      timer.unref()
    })
    return Promise.race([stream.then(() => (this.#refused === undefined ? heard : undefined)), enough]).then(() =>
      clearTimeout(timer),
    )
  }

  /** Starts following changes: the bus, else the backend's own stream, else none (process-local). */
  #start(): void {
    const cache = this.#cache!
    const { backend } = cache
    this.#off = backend.synchronous === true
    if (this.#off) return
    this.#namespace = cache.namespace
    this.#direct = keyPrefix(cache.keyBuilder, cache.namespace)
    let starting: Promise<StopListening> | undefined
    if (this.#bus !== undefined) {
      this.#prefix = ''
      starting = this.#bus.listen(this.#listener)
    } else if (typeof backend.watchChanges === 'function') {
      try {
        this.#prefix = cache.buildKey('', cache.namespace)
        starting = backend.watchChanges(this.#prefix, this.#listener)
      } catch (error) {
        starting = Promise.reject(error)
      }
    }
    if (starting === undefined) {
      // Nothing tells this process about other processes' changes: the copy is bounded by its ttl alone.
      this.#live = true
      return
    }
    this.#stream = starting.then(
      (stop) => stop,
      (error: unknown) => {
        // A configuration the stream cannot serve (a Redis Cluster) is every command's error; anything else is a
        // stream that is not there (yet): the cache works without the copy.
        if (error instanceof TypeError) this.#refused = error
        else this.#lost(error)
        return undefined
      },
    )
  }

  /** `get`: the copy's value, else the cache's, kept when read whole and unraced. */
  #get(ctx: CommandContext, next: SyncNext): Promise<void> | void {
    const args = ctx.args
    if (args.loads !== undefined || typeof args.key !== 'string') return next(ctx)
    const key = this.#keyOf(ctx, args.key)
    if (key === undefined) return next(ctx)
    if (this.#answered(ctx, key)) return
    this.#misses++
    if (!this.#live) return next(ctx)
    const read = this.#begin()
    return this.#around(
      ctx,
      next,
      () => this.#filled(ctx, read, key),
      () => this.#end(read),
    )
  }

  /** Answers the command from the copy when it holds `key`, within its lifetime. */
  #answered(ctx: CommandContext, key: string): boolean {
    const copy = this.#copies.get(key)
    if (copy === undefined) return false
    if (copy.until > this.#clock.now()) {
      copy.used = true
      this.#hits++
      recordHits(ctx, 1)
      ctx.result = copy.value
      return true
    }
    this.#drop(key, false) // past its time: not an invalidation
    return false
  }

  /** Runs the inner layers, then `done`; `failed` when they fail (the error goes on). */
  #around(ctx: CommandContext, next: SyncNext, done: () => void, failed: () => void): Promise<void> | void {
    let inner: Promise<void> | void
    try {
      inner = next(ctx)
    } catch (error) {
      failed()
      throw error
    }
    if (inner === undefined) return done()
    return inner.then(done, (error: unknown) => {
      failed()
      throw error
    })
  }

  /** After a `get` or `getOrSet` that read the store: keeps what it found, if nothing raced it. */
  #filled(ctx: CommandContext, read: Read, key: string): void {
    // Checked before the read is forgotten: ending it may forget the invalidations it must see.
    if (hitsOf(ctx) === 1) this.#keep(ctx, read, key, ctx.result, factsOf(ctx) as EntryFacts | undefined)
    this.#end(read)
  }

  /** `getOrSet`: the copy's value, else the cache's; a value it computed and wrote is a change like any write. */
  #getOrSet(ctx: CommandContext, next: SyncNext): Promise<void> | void {
    const args = ctx.args
    if (args.loads !== undefined || args.dumps !== undefined || typeof args.key !== 'string') return next(ctx)
    const key = this.#keyOf(ctx, args.key)
    if (key === undefined) return next(ctx)
    if (this.#answered(ctx, key)) {
      recordOutcome(ctx, 'fresh')
      return
    }
    this.#misses++
    const read = this.#begin()
    const after = (): void => {
      if (outcomeOf(ctx) === 'computed') {
        this.#end(read)
        this.#changed(ctx, [key])
      } else if (this.#live) this.#filled(ctx, read, key)
      else this.#end(read)
    }
    return this.#around(ctx, next, after, () => this.#end(read))
  }

  /** `multiGet`: the keys held answered from the copy, only the others asked of the cache. */
  #multiGet(ctx: CommandContext, next: SyncNext): Promise<void> | void {
    const args = ctx.args
    const given = args.keys
    if (args.loads !== undefined || given === null || typeof given !== 'object' || !(Symbol.iterator in given)) {
      return next(ctx)
    }
    const keys = Array.from(given)
    const local = new Array<string>(keys.length)
    const values = new Array<unknown>(keys.length)
    const missing: number[] = []
    const now = this.#clock.now()
    for (let i = 0; i < keys.length; i++) {
      const key = typeof keys[i] === 'string' ? this.#keyOf(ctx, keys[i]!) : undefined
      // A bad key, or one the stream does not cover: the cache reads them all.
      if (key === undefined) return next(ctx)
      local[i] = key
      const copy = this.#copies.get(key)
      if (copy !== undefined && copy.until > now) {
        copy.used = true
        values[i] = copy.value
      } else {
        if (copy !== undefined) this.#drop(key, false)
        missing.push(i)
      }
    }
    const found = keys.length - missing.length
    this.#hits += found
    this.#misses += missing.length
    if (missing.length === 0) {
      recordHits(ctx, found)
      ctx.result = values
      return
    }
    const read = this.#live ? this.#begin() : undefined
    ctx.args = { ...args, keys: missing.map((i) => keys[i]!) }
    const merge = (): void => {
      const answered = ctx.result as readonly unknown[]
      const facts = factsOf(ctx) as ReadonlyArray<EntryFacts | undefined> | undefined
      for (let j = 0; j < missing.length; j++) {
        const i = missing[j]!
        const value = answered[j]
        values[i] = value
        if (read !== undefined && value !== undefined) this.#keep(ctx, read, local[i]!, value, facts?.[j])
      }
      if (read !== undefined) this.#end(read)
      recordHits(ctx, found + (hitsOf(ctx) ?? 0))
      // The keys of the whole command, not only of those the store was asked for.
      recordKeys(
        ctx,
        keys.map((key) => ctx.cache.buildKey(key, args.namespace)),
      )
      ctx.args = args
      ctx.result = values
    }
    return this.#around(ctx, next, merge, () => {
      if (read !== undefined) this.#end(read)
      ctx.args = args
    })
  }

  /** Any other command changes the store: what it touched is dropped (and told on the bus) once it is done. */
  #write(ctx: Context, next: SyncNext): Promise<void> | void {
    const after = (): void => {
      const touched = keysOf(ctx as CommandContext)
      if (ctx.command === 'clear') {
        const pattern = typeof touched === 'string' ? touched : '*'
        const prefix = pattern.slice(0, -1)
        this.#dropPrefix(prefix)
        this.#bus?.publish(this.#listener, { prefix }, this.#failed)
      } else if (ctx.command === 'raw') {
        // Anything may have changed; other processes learn it only from the store itself.
        this.#dropPrefix('')
      } else if (touched !== undefined) {
        this.#changed(ctx, typeof touched === 'string' ? [touched] : touched)
      }
    }
    // A write that failed may still have been made (a timeout): its keys are dropped all the same.
    return this.#around(ctx as CommandContext, next, after, after)
  }

  /** This process changed `keys`: dropped here, and told to the others on the bus. */
  #changed(ctx: Context, keys: readonly string[]): void {
    if (keys.length === 0) return
    this.#invalidate(keys)
    this.#bus?.publish(this.#listener, { keys }, this.#failed)
    if (DEBUG) debug('near cache: %s %s dropped', ctx.command, keys.join(','))
  }

  /** `close`: the copy and its stream go; the next command starts afresh. */
  #close(ctx: Context, next: SyncNext): Promise<void> {
    const stream = this.#stream
    this.#stream = this.#cache = this.#refused = undefined
    this.#live = false
    this.#dropPrefix('')
    const stopping = stream?.then((stop) => stop?.())
    return Promise.all([stopping, next(ctx)]).then(() => {})
  }

  /** The key the copy holds a command's key under, if it may hold it: one the stream covers. */
  #keyOf(ctx: Context, key: string): string | undefined {
    const namespace = ctx.args.namespace
    if (
      this.#direct !== undefined &&
      (namespace === undefined || namespace === this.#namespace) &&
      ctx.cache.namespace === this.#namespace
    ) {
      return key
    }
    let built: string
    try {
      built = ctx.cache.buildKey(key, namespace)
    } catch {
      return undefined
    }
    return this.#local(built)
  }

  /** The key the copy holds a built key under; `undefined` for a key it never holds. */
  #local(built: string): string | undefined {
    const direct = this.#direct
    if (direct !== undefined) return built.startsWith(direct) ? built.slice(direct.length) : undefined
    return built.startsWith(this.#prefix) ? built : undefined
  }

  /** A read begins: where the invalidations stand. */
  #begin(): Read {
    const read: Read = { seq: this.#seq, epoch: this.#epoch }
    this.#reads.add(read)
    return read
  }

  /** A read is done: invalidations no read in flight can be concerned with are forgotten. */
  #end(read: Read): void {
    const reads = this.#reads
    reads.delete(read)
    const moved = this.#moved
    if (reads.size === 0) {
      moved.clear()
      return
    }
    const oldest = (reads.values().next().value as Read).seq
    for (const [key, seq] of moved) {
      if (seq > oldest) break
      moved.delete(key)
    }
  }

  /** Whether `key` was invalidated since `read` began. */
  #raced(read: Read, key: string): boolean {
    return (this.#moved.get(key) ?? -1) > read.seq
  }

  /** Keeps a value a read found, unless the stream was lost meanwhile or one of its keys was invalidated. */
  #keep(ctx: Context, read: Read, key: string, value: unknown, facts: EntryFacts | undefined): void {
    if (read.epoch !== this.#epoch || !this.#live || this.#raced(read, key)) return
    const now = this.#clock.now()
    let until = now + this.#ttlMs
    let tags: string[] | undefined
    if (facts !== undefined) {
      if (facts.until > 0) {
        const left = facts.until - ctx.cache.clock.now()
        if (left <= 0) return
        until = Math.min(until, now + left)
      }
      if (facts.tags !== undefined && facts.tags.length > 0) {
        tags = []
        for (const built of tagKeys(ctx as CommandContext, facts.tags)) {
          const tag = this.#local(built)
          // A tag the stream does not cover could be invalidated untold.
          if (tag === undefined || this.#raced(read, tag)) return
          tags.push(tag)
        }
      }
    }
    if (this.#copies.has(key)) this.#drop(key, false)
    this.#copies.set(key, { value, until, tags, used: false })
    if (tags !== undefined) {
      for (const tag of tags) {
        let keys = this.#dependents.get(tag)
        if (keys === undefined) this.#dependents.set(tag, (keys = new Set()))
        keys.add(key)
      }
    }
    if (this.#copies.size > this.maxSize) this.#evict()
  }

  /** Drops one entry: the first not read since it last came round (a second chance for the others). */
  #evict(): void {
    const copies = this.#copies
    for (const [key, copy] of copies) {
      if (!copy.used) {
        this.#drop(key, false)
        return
      }
      copy.used = false
      copies.delete(key)
      copies.set(key, copy)
    }
  }

  /** Drops a key's copy (and its place among its tags' dependents). */
  #drop(key: string, counted = true): void {
    const copy = this.#copies.get(key)
    if (copy === undefined) return
    this.#copies.delete(key)
    if (counted) this.#invalidations++
    if (copy.tags === undefined) return
    for (const tag of copy.tags) {
      const keys = this.#dependents.get(tag)
      keys?.delete(key)
      if (keys?.size === 0) this.#dependents.delete(tag)
    }
  }

  /** Keys changed (`null`: any key): their copies, and those of entries tagged with them, are dropped. */
  #invalidate(keys: readonly string[] | null): void {
    if (keys === null) {
      this.#dropPrefix('')
      return
    }
    const tracking = this.#reads.size !== 0
    const backend = this.#cache?.backend
    for (const built of keys) {
      // A read of the key issued from now on must not join one issued before the change (getOrSet shares reads).
      if (backend !== undefined) forgetReads(backend, built)
      const key = this.#local(built)
      if (key === undefined) continue
      const seq = ++this.#seq
      if (tracking) {
        this.#moved.delete(key)
        this.#moved.set(key, seq)
      }
      this.#drop(key)
      const dependents = this.#dependents.get(key)
      if (dependents !== undefined) for (const entry of [...dependents]) this.#drop(entry)
    }
  }

  /** Every key starting with `prefix` (built) changed: their copies go, and no read in flight keeps what it read. */
  #dropPrefix(prefix: string): void {
    this.#epoch++
    if (this.#cache !== undefined) forgetReads(this.#cache.backend, null)
    const base = this.#direct ?? ''
    if (base.startsWith(prefix)) {
      this.#invalidations += this.#copies.size
      this.#copies.clear()
      this.#dependents.clear()
      return
    }
    if (!prefix.startsWith(base)) return
    const local = prefix.slice(base.length)
    for (const key of [...this.#copies.keys()]) if (key.startsWith(local)) this.#drop(key)
  }

  /** The stream was lost: nothing kept can be trusted any more, nor anything read until it is live again. */
  #lost(error: unknown): void {
    this.#live = false
    this.#hear()
    if (DEBUG) debug('near cache: invalidation stream lost, %d copies dropped', this.#copies.size)
    this.#dropPrefix('')
    this.#report(error)
  }

  /** A publish on the bus failed for good: other processes may keep old copies up to their ttl. */
  readonly #failed = (error: unknown): void => this.#report(error)

  #report(error: unknown): void {
    const cache = this.#cache
    reportError('nearCache', cache?.namespace ?? '', error, cache)
  }
}

// The layer takes a next() that may finish synchronously (see core/compose.ts).
Object.defineProperty(NearCachePlugin.prototype.middleware, SYNC_NEXT, { value: true })

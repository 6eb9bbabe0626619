/**
 * `cachedStampede` and `@CachedStampede`: `cached` that runs the function once for
 * a crowd of concurrent calls with equal arguments. Within a process, calls with
 * the same key share one lookup (one read, at most one lock attempt, at most one
 * call); across processes a `RedLock` on the key does the rest, as in aiocache:
 * get → hit? answer it; lock(key, lease): get again → hit? answer it; else call the
 * function and store its result.
 */
import type { BaseCache as Cache } from '../core/cache.js'
import { reportError } from '../core/channels.js'
import { RedLock } from '../locks/red-lock.js'
import { debug } from '../util/debug.js'
import { type Duration, toLease } from '../util/duration.js'
import { checkOptions } from '../util/options.js'
import {
  type AroundMiss,
  CACHED_OPTIONS,
  type CachedConfig,
  type CachedMethodOptions,
  type CachedOptions,
  cachedConfig,
  cachedInvoker,
  defaultKey,
} from './cached.js'
import {
  type CachedFunction,
  type CachingDecorator,
  callable,
  DEFAULT_FLAGS,
  fixedCache,
  functionSite,
  type Invoke,
  methodDecorator,
  nameOf,
  type Site,
} from './wrap.js'

/** What `cachedStampede` adds to `cached`'s options. */
export interface StampedeOptions {
  /**
   * How long the one call may hold the lock, in **seconds** (or `'500ms'`…): the
   * others wait at most that long, then call the function themselves. Default `2`.
   */
  lease?: Duration
}

/** The options of {@link cachedStampede}: those of {@link cached} and `lease`. */
export interface CachedStampedeOptions<This, Args extends unknown[], R>
  extends CachedOptions<This, Args, R>,
    StampedeOptions {}
/** The options of the {@link CachedStampede} method decorator: those of {@link Cached} and `lease`. */
export interface CachedStampedeMethodOptions<Self> extends CachedMethodOptions<Self>, StampedeOptions {}

const STAMPEDE_OPTIONS: readonly string[] = [...CACHED_OPTIONS, 'lease']

/**
 * `cached` for functions that must not run in a crowd: concurrent calls with
 * equal arguments run `fn` once — within a process on every backend, across
 * processes on Redis and Memcached (through `RedLock`, for at most `lease`
 * seconds; see RedLock for the waiting semantics).
 *
 * In a process, calls with the same cache, key and per-call switches share one run while it is in flight. On a
 * miss the run takes a `RedLock` on the key (or waits for its holder, at most `lease` seconds), reads again, and
 * calls `fn` only if that is still a miss. A lock the cache cannot take (backend down) does not stop the call.
 *
 * @param fn - The function to protect; its result may be a promise.
 * @param options - Those of {@link cached}, and `lease` (seconds, default `2`).
 * @throws {TypeError} for options as {@link cached} refuses them.
 * @throws {RangeError} for a `ttl` that is not a valid duration, or a `lease` that is 0 or not a valid duration.
 *
 * @example
 * ```ts
 * import { cachedStampede, MemoryCache } from 'oniocache'
 *
 * let builds = 0
 * async function buildReport(day: string): Promise<string> {
 *   builds++
 *   await new Promise((resolve) => setTimeout(resolve, 50))
 *   return `report of ${day}`
 * }
 * const report = cachedStampede(buildReport, { cache: new MemoryCache(), ttl: 300, lease: 5 })
 * await Promise.all([report('2024-06-01'), report('2024-06-01'), report('2024-06-01')])
 * console.log(builds) // 1
 * await report.cache.close()
 * ```
 */
export function cachedStampede<This, Args extends unknown[], R>(
  fn: (this: This, ...args: Args) => R,
  options: CachedStampedeOptions<This, Args, R>,
): CachedFunction<This, Args, Awaited<R>> {
  const name = nameOf('cachedStampede', fn)
  const what = `cachedStampede ${name}`
  const [lease, config] = stampedeConfig(what, options)
  const cache = fixedCache(what, options.cache)
  const site = functionSite('cachedStampede', fn, cache) as Site<This>
  const invoke = coalesced(stampedeInvoker<This, Args, Awaited<R>>(fn, config, site, lease), config, site, fn)
  return callable(invoke, name, cache)
}

/**
 * The standard method decorator of `cachedStampede`; keys as for `@Cached`.
 *
 * @throws {TypeError} for options as {@link cachedStampede} refuses them, or (when the class is defined) when it
 *   decorates something other than a method.
 * @throws {RangeError} for a `ttl` or `lease` that is not a valid duration, or a `lease` of 0.
 */
export function CachedStampede<Self = unknown>(options: CachedStampedeMethodOptions<Self>): CachingDecorator<Self> {
  const [lease, config] = stampedeConfig('@CachedStampede', options)
  return methodDecorator('@CachedStampede', options.cache, (method, site) => {
    const invoke = coalesced(stampedeInvoker(method, config, site, lease), config, site, method)
    return function (this: unknown, ...args: unknown[]) {
      return invoke(this, args, DEFAULT_FLAGS)
    }
  }) as CachingDecorator<Self>
}

function stampedeConfig(what: string, options: object): [number, CachedConfig] {
  checkOptions(options, STAMPEDE_OPTIONS, what)
  const { lease = 2, ...rest } = options as { lease?: unknown }
  return [toLease(lease, `${what}: lease`), cachedConfig(what, rest, CACHED_OPTIONS)]
}

/**
 * `cached`'s engine with the miss path under a lock. A call that skips the read
 * (`cacheRead: false`) wants a fresh result: it takes no lock, as the lock is only
 * there to read what another caller stored.
 */
function stampedeInvoker<This, Args extends unknown[], T>(
  fn: (this: This, ...args: Args) => unknown,
  config: CachedConfig,
  site: Site<This>,
  lease: number,
): Invoke<This, Args, T> {
  const locked = cachedInvoker<This, Args, T>(fn, config, site, underLock(lease))
  const fresh = cachedInvoker<This, Args, T>(fn, config, site)
  return (self, args, flags) => (flags.cacheRead ? locked : fresh)(self, args, flags)
}

/**
 * The miss path under a RedLock: read again once the lock is held or its holder
 * is done, and call the function only if that is still a miss. A lock the cache
 * cannot take (backend down) does not stop the call: a broken cache never breaks
 * the caller.
 */
function underLock(lease: number): AroundMiss {
  return async (miss, fill) => {
    let lock: RedLock
    try {
      lock = await RedLock.acquire(miss.cache, miss.key, { lease })
    } catch (error) {
      if (debug.enabled) debug('cachedStampede %s: no lock (%s), calling the function', miss.key, String(error))
      reportError('lock', miss.namespace ?? miss.cache.namespace, error, miss.cache)
      return fill()
    }
    try {
      const hit = await miss.read()
      if (hit !== undefined) return hit
      return await fill()
    } finally {
      await lock.release().catch((error: unknown) => {
        debug('cachedStampede %s: release failed: %s', miss.key, String(error))
        reportError('unlock', miss.namespace ?? miss.cache.namespace, error, miss.cache)
      })
    }
  }
}

/**
 * Calls with the same cache, key and switches share one run while it is in
 * flight. The key is worked out as `cached` does; a call whose key cannot be
 * built goes through alone (and gets `cached`'s error).
 */
function coalesced<This, Args extends unknown[], T>(
  invoke: Invoke<This, Args, T>,
  config: CachedConfig,
  site: Site<This>,
  fn: unknown,
): Invoke<This, Args, T> {
  const inflight = new WeakMap<Cache, Map<string, Promise<T>>>()
  const keyOf = (self: This, args: Args): string => {
    if (config.key !== undefined) return config.key
    if (config.keyBuilder !== undefined) return String(config.keyBuilder.call(self, args, fn))
    return defaultKey(site, self, args)
  }
  return (self, args, flags) => {
    let key: string
    let cache: Cache
    try {
      key = keyOf(self, args)
      cache = site.cache(self)
    } catch {
      return invoke(self, args, flags)
    }
    const id =
      `${Number(flags.cacheRead)}${Number(flags.cacheWrite)}${Number(flags.waitForWrite)} ` +
      `${JSON.stringify(config.namespace ?? null)} ${key}`
    let running = inflight.get(cache)
    if (running === undefined) inflight.set(cache, (running = new Map()))
    const shared = running.get(id)
    if (shared !== undefined) return shared
    const calls = running
    const call = invoke(self, args, flags).finally(() => calls.delete(id))
    calls.set(id, call)
    return call
  }
}

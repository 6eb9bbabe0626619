/**
 * `cachedStampede` and `@CachedStampede`: `cached` whose `getOrSet` takes a lease
 * lock on the key (`lock: 'distributed'`), so that concurrent calls with equal
 * arguments run the function once — in the process by single flight, across
 * processes sharing a Redis or Memcached store by the lock, whose holder's release
 * wakes the others to read what it stored.
 */
import type { Duration } from '../util/duration.js'
import { checkOptions } from '../util/options.js'
import {
  CACHED_FN_OPTIONS,
  type CachedConfig,
  type CachedMethodOptions,
  type CachedOptions,
  cachedConfig,
  cachedInvoker,
} from './cached.js'
import {
  type CachedFunction,
  type CachingDecorator,
  callable,
  DEFAULT_FLAGS,
  fixedCache,
  functionSite,
  methodDecorator,
  nameOf,
} from './wrap.js'

/** What `cachedStampede` adds to `cached`'s options. */
export interface StampedeOptions {
  /**
   * How long the one call may hold the lock, in **seconds** (or `'500ms'`…): the
   * others wait at most that long, then call the function themselves. Default: `hardTimeout`, else `2`.
   */
  lease?: Duration
}

/** The options of {@link cachedStampede}: those of {@link cached} but `lock` (always `'distributed'`). */
export interface CachedStampedeOptions<This, Args extends unknown[], R>
  extends Omit<CachedOptions<This, Args, R>, 'lock'>,
    StampedeOptions {}
/** The options of the {@link CachedStampede} method decorator: those of {@link Cached} but `lock`. */
export interface CachedStampedeMethodOptions<Self> extends Omit<CachedMethodOptions<Self>, 'lock'>, StampedeOptions {}

/** What `cachedStampede` takes: `cached`'s options but `lock`, which it sets. */
const STAMPEDE_OPTIONS: readonly string[] = CACHED_FN_OPTIONS.filter((name) => name !== 'lock')

/**
 * `cached` for functions that must not run in a crowd: concurrent calls with
 * equal arguments run `fn` once — within a process on every backend, across
 * processes on Redis and Memcached. A call is a `getOrSet` with
 * `lock: 'distributed'`: the first process to miss takes a lease lock on the key
 * (`key + '-lock'`, the lock `RedLock` takes) and calls `fn`; the others wait until
 * it has stored the result — woken by pub/sub on Redis, by a short poll on
 * Memcached — and read it. A holder that dies blocks them at most `lease` seconds.
 * A lock the cache cannot take (backend down) does not stop the call.
 *
 * Per-call variants (`.options({ cacheRead: false })`…) read and write as `cached`'s do, without the lock.
 *
 * @param fn - The function to protect; its result may be a promise.
 * @param options - Those of {@link cached} but `lock`; `lease` (seconds, default `hardTimeout`, else `2`).
 * @throws {TypeError} for options as {@link cached} refuses them, or a cache whose backend cannot hold a lock.
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
  const config = stampedeConfig(what, options)
  const cache = fixedCache(what, options.cache)
  const invoke = cachedInvoker<This, Args, Awaited<R>>(fn, config, functionSite('cachedStampede', fn, cache))
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
  const config = stampedeConfig('@CachedStampede', options)
  return methodDecorator('@CachedStampede', options.cache, (method, site) => {
    const invoke = cachedInvoker(method, config, site)
    return function (this: unknown, ...args: unknown[]) {
      return invoke(this, args, DEFAULT_FLAGS)
    }
  }) as CachingDecorator<Self>
}

function stampedeConfig(what: string, options: object): CachedConfig {
  checkOptions(options, STAMPEDE_OPTIONS, what)
  return cachedConfig(what, { ...options, lock: 'distributed' }, CACHED_FN_OPTIONS)
}

/**
 * `cached(fn, opts)` and the standard (TC39) method decorator `@Cached(opts)`:
 * a call whose key is cached answers the cached value without calling `fn`.
 *
 * A cache that fails — a backend error, a timeout, a throwing plugin, a value the
 * serializer cannot encode — never breaks the caller: the failure is logged under
 * `NODE_DEBUG=oniocache` and the function's own result is returned.
 */
import type { BaseCache as Cache } from '../core/cache.js'
import { reportError } from '../core/channels.js'
import type { FactoryContext, GetOrSetDefaults } from '../core/get-or-set.js'
import { checkTuning, GET_OR_SET_TUNING } from '../core/options.js'
import { debug } from '../util/debug.js'
import { describe, errorText } from '../util/describe.js'
import type { Duration } from '../util/duration.js'
import { FactoryTimeoutError } from '../util/errors.js'
import { argumentsKey, UnkeyableError } from './key-encoding.js'
import {
  type CachedFunction,
  type CacheSource,
  type CachingDecorator,
  callable,
  checkNames,
  DEFAULT_FLAGS,
  type EntryOptions,
  entryOptions,
  fixedCache,
  functionSite,
  type Invoke,
  methodDecorator,
  nameOf,
  type Site,
  settle,
} from './wrap.js'

export type { CachedFunction } from './wrap.js'

/**
 * What `cached` and `@Cached` pass on to `getOrSet`: `grace`, `graceBackoff`, `softTimeout`, `hardTimeout`,
 * `eagerRefresh`, `lock` and `lease` (see `getOrSet`).
 */
export type GetOrSetTuning = Pick<
  GetOrSetDefaults,
  'grace' | 'graceBackoff' | 'softTimeout' | 'hardTimeout' | 'eagerRefresh' | 'lock' | 'lease'
>

/** The options of {@link cached}. */
export interface CachedOptions<This, Args extends unknown[], R> extends EntryOptions, GetOrSetTuning {
  /** The cache that holds the results. */
  cache: Cache
  /** One fixed key for every call, whatever its arguments. */
  key?: string
  /** The key of a call instead of the default `name(arguments)`; runs with the call's `this`. */
  keyBuilder?: (this: This, args: Args, fn: (this: This, ...args: Args) => R) => string
  /** `true` for a result that must not be stored. */
  skipCache?: (result: Awaited<R>) => boolean
}

/** The options of the {@link Cached} method decorator. */
export interface CachedMethodOptions<Self> extends EntryOptions, GetOrSetTuning {
  /** The cache, or a function of the instance (the class, for a static method) that answers it. */
  cache: CacheSource<Self>
  /** One fixed key for every call, whatever its arguments (and whatever `this`). */
  key?: string
  /** The key of a call instead of the default `Class.method(arguments)`; runs with the call's `this`. */
  keyBuilder?: (this: Self, args: readonly unknown[], method: (...args: never[]) => unknown) => string
  /** `true` for a result that must not be stored. */
  skipCache?: (result: unknown) => boolean
}

/**
 * Caches `fn`'s results: a call whose key is cached answers the cached value
 * without calling `fn`. The default key is `fn.name`, the function's tag (two
 * different functions never share a key, even with the same name) and the stable
 * encoding of the arguments (see `key-encoding.ts`). `undefined` results are not stored.
 *
 * A call is a `getOrSet` of the cache: concurrent calls with the same key in the process run `fn` once and share
 * its result, and `grace`, `graceBackoff`, `softTimeout`, `hardTimeout` and `eagerRefresh` work as there (a stale
 * result answered when `fn` fails, …). A cache that fails (backend down, timeout, a value the serializer cannot
 * encode) never breaks the caller: a failed read counts as a miss and a failed write is dropped, both logged under
 * `NODE_DEBUG=oniocache` and published on the `oniocache:error` channel. {@link cachedStampede} also runs `fn`
 * once across processes.
 *
 * @param fn - The function to cache; its result may be a promise.
 * @param options - `cache` (required), `ttl`, `namespace`, and one of `key` or `keyBuilder`; `skipCache`.
 * @returns An async function with `fn`'s parameters, plus `.cache` and `.options(…)` for per-call variants
 *   (`cacheRead`, `cacheWrite`, `waitForWrite`).
 * @throws {TypeError} when `fn` is not a function, `cache` is missing or not a cache, an option is unknown or of
 *   the wrong kind, or both `key` and `keyBuilder` are given. A call rejects with a `TypeError` when its key cannot
 *   be built (an argument such as a function, or a `keyBuilder` that answers no string), and with `fn`'s own error.
 * @throws {RangeError} for a `ttl` that is not a valid duration.
 *
 * @example
 * ```ts
 * import { cached, MemoryCache } from 'oniocache'
 *
 * let loads = 0
 * async function loadUser(id: string): Promise<{ id: string }> {
 *   loads++
 *   return { id }
 * }
 * const getUser = cached(loadUser, { cache: new MemoryCache(), ttl: '5m' })
 * await getUser('42') // a miss: loadUser runs
 * await getUser('42') // a hit: it does not
 * await getUser.options({ cacheRead: false })('42') // runs loadUser again and stores its result
 * console.log(loads) // 2
 * await getUser.cache.close()
 * ```
 */
export function cached<This, Args extends unknown[], R>(
  fn: (this: This, ...args: Args) => R,
  options: CachedOptions<This, Args, R>,
): CachedFunction<This, Args, Awaited<R>> {
  const name = nameOf('cached', fn)
  const config = cachedConfig(`cached ${name}`, options, CACHED_FN_OPTIONS)
  const cache = fixedCache(`cached ${name}`, options.cache)
  const invoke = cachedInvoker<This, Args, Awaited<R>>(fn, config, functionSite('cached', fn, cache))
  return callable(invoke, name, cache)
}

/**
 * The standard method decorator of `cached`. The default key is
 * `Class.method(arguments)`; `this` is not part of it, so instances share entries
 * unless `cache` is a function of the instance or `keyBuilder` uses `this`.
 * It is a TC39 decorator: TypeScript 5+ without `experimentalDecorators`.
 *
 * @throws {TypeError} for options as {@link cached} refuses them, or (when the class is defined) when it decorates
 *   something other than a method.
 * @throws {RangeError} for a `ttl` that is not a valid duration.
 *
 * @example
 * ```ts
 * import { Cached, MemoryCache } from 'oniocache'
 *
 * const cache = new MemoryCache()
 *
 * class Users {
 *   queries = 0
 *
 *   @Cached({ cache, ttl: 60 })
 *   async find(id: number): Promise<string> {
 *     this.queries++
 *     return `user ${id}`
 *   }
 * }
 *
 * const users = new Users()
 * await users.find(7)
 * await users.find(7) // from the cache
 * console.log(users.queries) // 1
 * ```
 */
export function Cached<Self = unknown>(options: CachedMethodOptions<Self>): CachingDecorator<Self> {
  const config = cachedConfig('@Cached', options, CACHED_FN_OPTIONS)
  return methodDecorator('@Cached', options.cache, (method, site) => {
    const invoke = cachedInvoker(method, config, site)
    return function (this: unknown, ...args: unknown[]) {
      return invoke(this, args, DEFAULT_FLAGS)
    }
  }) as CachingDecorator<Self>
}

/** Validated options of `cached` and `@Cached`. @internal */
export interface CachedConfig {
  readonly ttl: Duration | null | undefined
  readonly namespace: string | undefined
  readonly key: string | undefined
  readonly keyBuilder: ((this: unknown, args: unknown[], fn: unknown) => unknown) | undefined
  readonly skipCache: ((result: unknown) => unknown) | undefined
  /** What a call passes on to `getOrSet`: the entry's ttl and namespace, and the tuning given. */
  readonly getOrSet: Readonly<GetOrSetTuning & EntryOptions>
}

/** The options `cached` and `@Cached` take. @internal */
export const CACHED_OPTIONS: readonly string[] = ['cache', 'ttl', 'namespace', 'key', 'keyBuilder', 'skipCache']
/** The options `cached` and `@Cached` take: `CACHED_OPTIONS` and `getOrSet`'s tuning. @internal */
export const CACHED_FN_OPTIONS: readonly string[] = [...CACHED_OPTIONS, ...GET_OR_SET_TUNING]

/** Checks the options of `cached`-like wrappers; `known` lists the names they take. Throws. @internal */
export function cachedConfig(what: string, options: object, known: Iterable<string>): CachedConfig {
  checkNames(what, options, known)
  const { key, keyBuilder, skipCache } = options as { key?: unknown; keyBuilder?: unknown; skipCache?: unknown }
  if (key !== undefined && typeof key !== 'string')
    throw new TypeError(`[oniocache] ${what}: key must be a string; got ${describe(key)}`)
  if (keyBuilder !== undefined && typeof keyBuilder !== 'function') {
    throw new TypeError(
      `[oniocache] ${what}: keyBuilder must be a function (args, fn) => string; got ${describe(keyBuilder)}`,
    )
  }
  if (key !== undefined && keyBuilder !== undefined)
    throw new TypeError(`[oniocache] ${what}: give key (one fixed key) or keyBuilder (a key per call), not both`)
  if (skipCache !== undefined && typeof skipCache !== 'function') {
    throw new TypeError(
      `[oniocache] ${what}: skipCache must be a function (result) => boolean; got ${describe(skipCache)}`,
    )
  }
  const entry = entryOptions(what, options)
  const getOrSet: Record<string, unknown> = {}
  if (entry.ttl !== undefined) getOrSet.ttl = entry.ttl
  if (entry.namespace !== undefined) getOrSet.namespace = entry.namespace
  for (const name of GET_OR_SET_TUNING) {
    const value = (options as Record<string, unknown>)[name]
    if (value === undefined) continue
    checkTuning(name, value, `${what}: ${name}`)
    getOrSet[name] = value
  }
  return {
    ...entry,
    key,
    keyBuilder: keyBuilder as CachedConfig['keyBuilder'],
    skipCache: skipCache as CachedConfig['skipCache'],
    getOrSet: Object.freeze(getOrSet),
  }
}

/** The engine of `cached` and `@Cached`: look up, else call and store. @internal */
export function cachedInvoker<This, Args extends unknown[], T>(
  fn: (this: This, ...args: Args) => unknown,
  config: CachedConfig,
  site: Site<This>,
): Invoke<This, Args, T> {
  const { ttl, namespace, key: fixedKey, keyBuilder, skipCache } = config

  function keyOf(self: This, args: Args): string {
    if (fixedKey !== undefined) return fixedKey
    if (keyBuilder !== undefined) {
      const key = keyBuilder.call(self, args, fn)
      if (typeof key !== 'string')
        throw new TypeError(
          `[oniocache] ${site.kind} ${site.name(self)}: keyBuilder must return a string; it returned ${describe(key)}`,
        )
      return key
    }
    return defaultKey(site, self, args)
  }

  /**
   * The usual call: one `getOrSet`, whose factory is `fn`. A failure of the cache itself (a throwing plugin, a
   * key the store refuses) still answers `fn`'s result, computed once.
   */
  async function viaGetOrSet(self: This, args: Args, cache: Cache, key: string): Promise<T> {
    let computed: { value: unknown } | undefined
    const factory = async (f: FactoryContext): Promise<unknown> => {
      let result: unknown
      try {
        result = await fn.apply(self, args)
      } catch (error) {
        if ((typeof error === 'object' && error !== null) || typeof error === 'function') thrownByFunctions.add(error)
        throw error
      }
      computed = { value: result }
      if (result !== undefined && (skipCache?.(result) ?? false)) f.skip()
      return result
    }
    try {
      return (await cache.getOrSet(key, factory, config.getOrSet)) as T
    } catch (error) {
      if (isFunctionError(error)) throw error
      if (debug.enabled) debug('%s %s: the cache failed, calling the function: %s', site.kind, key, errorText(error))
      reportError('getOrSet', namespace ?? cache.namespace, error, cache)
      return (computed !== undefined ? computed.value : await fn.apply(self, args)) as T
    }
  }

  return async (self, args, flags) => {
    const cache = site.cache(self)
    const key = keyOf(self, args)
    if (flags.cacheRead && flags.cacheWrite && flags.waitForWrite) {
      return viaGetOrSet(self, args, cache, key)
    }
    if (flags.cacheRead) {
      const hit = await read(cache, key, namespace, site.kind)
      if (hit !== undefined) return hit as T
    }
    // A per-call variant: read and write as asked, without getOrSet (and its single flight).
    const result = await fn.apply(self, args)
    if (flags.cacheWrite && result !== undefined && !(skipCache?.(result) ?? false)) {
      const write = settle(
        () => cache.set(key, result, { ttl, namespace }),
        { command: 'set', cache, namespace },
        site.kind,
        key,
        'the result is returned uncached',
      )
      if (flags.waitForWrite) await write
    }
    return result as T
  }
}

/**
 * What the functions of `cached` calls threw: the calls that shared a flight receive the error of the one call
 * that ran, and tell it from a failure of the cache by this.
 */
const thrownByFunctions = new WeakSet<object>()

/**
 * Whether a `getOrSet` rejection is the function's own (its error, its hard timeout) rather than the cache's.
 * The cache only fails with error objects; a thrown primitive can only be the function's.
 */
function isFunctionError(error: unknown): boolean {
  if (error instanceof FactoryTimeoutError) return true
  if ((typeof error === 'object' && error !== null) || typeof error === 'function') return thrownByFunctions.has(error)
  return true
}

/** The default key of a call: the site's key name and its arguments' encoding. @internal */
export function defaultKey<This>(site: Site<This>, self: This, args: readonly unknown[]): string {
  try {
    return argumentsKey(site.keyName(self), args)
  } catch (error) {
    if (!(error instanceof UnkeyableError)) throw error
    throw new TypeError(
      `[oniocache] ${site.kind} ${site.name(self)}: cannot build a key for this call: ${error.message}; ` +
        `give ${site.kind} a keyBuilder (or a fixed key) that leaves it out`,
    )
  }
}

/** The cache's answer to a `get`, a failure counting as a miss. */
async function read(cache: Cache, key: string, namespace: string | undefined, kind: string): Promise<unknown> {
  try {
    return await cache.get(key, { namespace })
  } catch (error) {
    if (debug.enabled) debug('%s %s: cache read failed, calling the function: %s', kind, key, errorText(error))
    reportError('get', namespace ?? cache.namespace, error, cache)
    return undefined
  }
}

/**
 * `multiCached(fn, opts)` and `@MultiCached(opts)`: caching a function that answers
 * many keys at once. Keys found in the cache are not asked for: `fn` is called with
 * the missing ones only, and not at all when every key is cached.
 */
import type { BaseCache as Cache } from '../core/cache.js'
import { reportError } from '../core/channels.js'
import { debug } from '../util/debug.js'
import { describe, errorText } from '../util/describe.js'
import type { Duration } from '../util/duration.js'
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

/** What a `multiCached` function answers: a record or a `Map` keyed like its keys argument. */
export type MultiResult = Readonly<Record<string, unknown>> | ReadonlyMap<string, unknown>

/** The type of the values of a `MultiResult`. */
export type MultiValue<Res> =
  Res extends ReadonlyMap<string, infer V> ? V : Res extends Readonly<Record<string, infer V>> ? V : never

/** A keys argument: any iterable of strings (an array, a Set, a generator), but not a string itself. */
type KeysLike<T> = T extends string ? never : T extends Iterable<string> ? T : never

/** Indexes of the arguments that are iterables of strings. */
export type KeysIndex<Args extends unknown[]> = {
  [I in keyof Args]-?: [KeysLike<NonNullable<Args[I]>>] extends [never]
    ? never
    : I extends number
      ? I
      : I extends `${infer N extends number}`
        ? N
        : never
}[number]

/** Names of the properties of the first argument that are iterables of strings. */
export type KeysProperty<Args extends unknown[]> =
  NonNullable<Args[0]> extends infer First
    ? First extends object
      ? { [P in keyof First]-?: [KeysLike<NonNullable<First[P]>>] extends [never] ? never : P }[keyof First] & string
      : never
    : never

/** Where `multiCached` finds the keys: an argument's index, or a property of the first argument. */
export type KeysFrom<Args extends unknown[]> = KeysIndex<Args> | KeysProperty<Args>

/**
 * What the wrapped function answers its callers: a record unless `returns: 'map'`
 * (typed code whose function answers a `Map` says so, to get Maps back). The
 * function's own answer may be either; it is cached the same way.
 */
export type ReturnsOption<Res> =
  Res extends ReadonlyMap<string, unknown>
    ? {
        /** Required when the function answers a `Map`: the wrapper then answers a `Map` too. */
        returns: 'map'
      }
    : {
        /** `'record'` (the default): the wrapper answers a plain object. */
        returns?: 'record'
      }

/** A key's answer from a call in flight: its value, or none. */
type Fetched = { readonly found: true; readonly value: unknown } | { readonly found: false }

/** The options of {@link multiCached}, besides `returns` (see {@link ReturnsOption}). */
export interface MultiCachedOptions<This, Args extends unknown[], Res> extends EntryOptions {
  /** The cache that holds the values. */
  cache: Cache
  /**
   * The index of the keys argument (an array of strings), or the name of the property of the first argument that holds
   * them.
   */
  keysFrom: KeysFrom<Args>
  /** The cache key of one key. Default: the key itself. Runs with the call's `this`. */
  keyBuilder?: (this: This, key: string, args: Args) => string
  /** `true` for a value that must not be stored. */
  skipCache?: (key: string, value: MultiValue<Res>) => boolean
}

/** What `multiCached` answers: the function, always async, plus its cache and per-call variants. */
export interface MultiCachedFunction<This, Args extends unknown[], Res> extends CachedFunction<This, Args, Res> {}

/** The options of the {@link MultiCached} method decorator. */
export interface MultiCachedMethodOptions<Self, Shape extends 'record' | 'map'> extends EntryOptions {
  /** The cache, or a function of the instance (the class, for a static method) that answers it. */
  cache: CacheSource<Self>
  /** The index of the keys argument, or the name of the property of the first argument that holds the keys. */
  keysFrom: number | string
  /** The cache key of one key. Default: the key itself. Runs with the call's `this`. */
  keyBuilder?: (this: Self, key: string, args: readonly unknown[]) => string
  /** `true` for a value that must not be stored. */
  skipCache?: (key: string, value: unknown) => boolean
  /** What the method answers: `'record'` (default) or `'map'`. */
  returns?: Shape
}

/**
 * Caches a function that answers many keys at once: the keys found in the cache
 * (one `multiGet`) are not asked for, `fn` is called with the missing ones only
 * (and not at all when every key is cached), and what it answers is stored with
 * one `multiSet`. The answer holds every requested key that has a value.
 *
 * `fn` is called with the keys argument replaced by the missing keys (a `Set` if it was a `Set`, else an array),
 * duplicates dropped. Values it answers `undefined` for, and keys it leaves out, are neither stored nor answered.
 * As with {@link cached}, a failing cache never breaks the caller: a failed read counts every key as missing, a
 * failed write is dropped (both reported on the `oniocache:error` channel).
 *
 * @param fn - Answers a record or a `Map` keyed like its keys argument.
 * @param options - `cache` and `keysFrom` (required), `keyBuilder`, `skipCache`, `ttl`, `namespace`, `returns`.
 * @throws {TypeError} when `fn` is not a function, `cache` is missing, `keysFrom` is not an index or a property
 *   name, or an option is unknown or of the wrong kind. A call rejects with a `TypeError` when its keys argument is
 *   not an iterable of strings or `fn` answers something other than a record or a `Map`, and with `fn`'s own error.
 * @throws {RangeError} for a `ttl` that is not a valid duration.
 *
 * @example
 * ```ts
 * import { MemoryCache, multiCached } from 'oniocache'
 *
 * async function pricesFor(skus: string[]): Promise<Record<string, number>> {
 *   console.log('asked for', skus)
 *   return Object.fromEntries(skus.map((sku) => [sku, sku.length * 10]))
 * }
 * const prices = multiCached(pricesFor, { cache: new MemoryCache(), keysFrom: 0, ttl: 60 })
 * console.log(await prices(['a', 'bb'])) // asked for [ 'a', 'bb' ], then { a: 10, bb: 20 }
 * console.log(await prices(['bb', 'ccc'])) // asked for [ 'ccc' ], then { bb: 20, ccc: 30 }
 * await prices.cache.close()
 * ```
 */
export function multiCached<This, Args extends unknown[], Res extends MultiResult>(
  fn: (this: This, ...args: Args) => Res | Promise<Res>,
  options: MultiCachedOptions<This, Args, Res> & ReturnsOption<Res>,
): MultiCachedFunction<This, Args, Res> {
  const name = nameOf('multiCached', fn)
  const config = multiConfig(`multiCached ${name}`, options)
  const cache = fixedCache(`multiCached ${name}`, options.cache)
  const invoke = multiInvoker<This, Args, Res>(fn, config, functionSite('multiCached', fn, cache))
  return callable(invoke, name, cache)
}

/**
 * The standard method decorator of `multiCached`; `returns: 'map'` for a method that answers a `Map`.
 *
 * @throws {TypeError} for options as {@link multiCached} refuses them, or (when the class is defined) when it
 *   decorates something other than a method.
 * @throws {RangeError} for a `ttl` that is not a valid duration.
 *
 * @example
 * ```ts
 * import { MemoryCache, MultiCached } from 'oniocache'
 *
 * class Rows {
 *   readonly cache = new MemoryCache()
 *
 *   @MultiCached({ cache: (self: Rows) => self.cache, keysFrom: 'ids', returns: 'map' })
 *   async find(query: { ids: string[] }): Promise<Map<string, string>> {
 *     return new Map(query.ids.map((id) => [id, `row ${id}`]))
 *   }
 * }
 * console.log(await new Rows().find({ ids: ['1', '2'] })) // Map(2) { '1' => 'row 1', '2' => 'row 2' }
 * ```
 */
export function MultiCached<Self = unknown, Shape extends 'record' | 'map' = 'record'>(
  options: MultiCachedMethodOptions<Self, Shape>,
): CachingDecorator<Self, Shape extends 'map' ? ReadonlyMap<string, unknown> : Readonly<Record<string, unknown>>> {
  const config = multiConfig('@MultiCached', options)
  return methodDecorator('@MultiCached', options.cache, (method, site) => {
    const invoke = multiInvoker(method as (...args: unknown[]) => MultiResult, config, site)
    return function (this: unknown, ...args: unknown[]) {
      return invoke(this, args, DEFAULT_FLAGS)
    }
  }) as CachingDecorator<Self, Shape extends 'map' ? ReadonlyMap<string, unknown> : Readonly<Record<string, unknown>>>
}

interface MultiConfig {
  readonly ttl: Duration | null | undefined
  readonly namespace: string | undefined
  readonly keysFrom: number | string
  readonly keyBuilder: ((this: unknown, key: string, args: unknown[]) => unknown) | undefined
  readonly skipCache: ((key: string, value: unknown) => unknown) | undefined
  readonly returns: 'record' | 'map'
}

const MULTI_OPTIONS: readonly string[] = ['cache', 'keysFrom', 'keyBuilder', 'skipCache', 'ttl', 'namespace', 'returns']

function multiConfig(what: string, options: object): MultiConfig {
  checkNames(what, options, MULTI_OPTIONS)
  const {
    keysFrom,
    keyBuilder,
    skipCache,
    returns = 'record',
  } = options as { keysFrom?: unknown; keyBuilder?: unknown; skipCache?: unknown; returns?: unknown }
  if (
    !(
      (typeof keysFrom === 'number' && Number.isSafeInteger(keysFrom) && keysFrom >= 0) ||
      (typeof keysFrom === 'string' && keysFrom !== '')
    )
  ) {
    throw new TypeError(
      `[oniocache] ${what}: keysFrom must be the index of the keys argument (0, 1, …) or the name of the property ` +
        `of the first argument that holds the keys; got ${describe(keysFrom)}`,
    )
  }
  if (keyBuilder !== undefined && typeof keyBuilder !== 'function') {
    throw new TypeError(
      `[oniocache] ${what}: keyBuilder must be a function (key, args) => string; got ${describe(keyBuilder)}`,
    )
  }
  if (skipCache !== undefined && typeof skipCache !== 'function') {
    throw new TypeError(
      `[oniocache] ${what}: skipCache must be a function (key, value) => boolean; got ${describe(skipCache)}`,
    )
  }
  if (returns !== 'record' && returns !== 'map')
    throw new TypeError(`[oniocache] ${what}: returns must be 'record' or 'map'; got ${describe(returns)}`)
  return {
    ...entryOptions(what, options),
    keysFrom,
    keyBuilder: keyBuilder as MultiConfig['keyBuilder'],
    skipCache: skipCache as MultiConfig['skipCache'],
    returns,
  }
}

function multiInvoker<This, Args extends unknown[], Res extends MultiResult>(
  fn: (this: This, ...args: Args) => Res | Promise<Res>,
  config: MultiConfig,
  site: Site<This>,
): Invoke<This, Args, Res> {
  const { ttl, namespace, keysFrom, keyBuilder, skipCache, returns } = config
  const where =
    typeof keysFrom === 'number'
      ? `argument ${keysFrom}`
      : `the ${JSON.stringify(keysFrom)} property of the first argument`

  /**
   * The keys of a call (read once: a generator can be read only once), duplicates dropped, and the argument they came
   * in.
   */
  function keysOf(self: This, args: Args): { keys: string[]; given: unknown } {
    const holder: unknown = typeof keysFrom === 'number' ? args : args[0]
    const given =
      holder !== null && typeof holder === 'object' ? (holder as Record<string | number, unknown>)[keysFrom] : undefined
    // A string is iterable too, but as its characters: never what a keys argument means.
    const keys =
      given !== null && typeof given === 'object' && typeof (given as Iterable<unknown>)[Symbol.iterator] === 'function'
        ? [...(given as Iterable<unknown>)]
        : undefined
    if (keys === undefined || !keys.every((key) => typeof key === 'string')) {
      throw new TypeError(
        `[oniocache] ${site.kind} ${site.name(self)}: ${where} (keysFrom) must be an iterable of string keys ` +
          `(an array, a Set, …); got ${describe(given)}`,
      )
    }
    return { keys: [...new Set(keys as string[])], given }
  }

  /** The arguments with the keys argument replaced by `keys`, as a Set if it was one, else as an array. */
  function withKeys(args: Args, given: unknown, keys: string[]): Args {
    const copy = [...args] as Args
    const replaced = given instanceof Set ? new Set(keys) : keys
    if (typeof keysFrom === 'number') copy[keysFrom] = replaced
    else copy[0] = { ...(args[0] as object), [keysFrom]: replaced }
    return copy
  }

  function cacheKeyOf(self: This, key: string, args: Args): string {
    if (keyBuilder === undefined) return key
    const built = keyBuilder.call(self, key, args)
    if (typeof built !== 'string')
      throw new TypeError(
        `[oniocache] ${site.kind} ${site.name(self)}: keyBuilder must return a string; it returned ${describe(built)}`,
      )
    return built
  }

  /** fn's answer as a Map of the requested keys that have a value. */
  function answered(self: This, answer: unknown, keys: string[]): Map<string, unknown> {
    const found = new Map<string, unknown>()
    if (answer instanceof Map) {
      for (const key of keys) {
        const value: unknown = answer.get(key)
        if (value !== undefined) found.set(key, value)
      }
      return found
    }
    if (answer === null || typeof answer !== 'object' || Array.isArray(answer)) {
      throw new TypeError(
        `[oniocache] ${site.kind} ${site.name(self)}: the function must answer a record or a Map keyed like its ` +
          `keys; it answered ${describe(answer)}`,
      )
    }
    for (const key of keys) {
      const value: unknown = Object.hasOwn(answer, key) ? (answer as Record<string, unknown>)[key] : undefined
      if (value !== undefined) found.set(key, value)
    }
    return found
  }

  /**
   * The keys being fetched by a call in flight, per cache, by namespace and cache key: a concurrent call that
   * misses one of them waits for that call's answer instead of asking `fn` for it again.
   */
  const inflight = new WeakMap<Cache, Map<string, Promise<Fetched>>>()
  const flightKey = (namespace: string | undefined, cacheKey: string): string => `${namespace ?? ''}\u0000${cacheKey}`

  /**
   * Asks `fn` for the keys no call is fetching, registered as in flight until it answers, and waits for the
   * others; each key's value (or none) in a Map. A failure of `fn` reaches every call waiting for its keys.
   */
  async function fetchMissing(
    self: This,
    args: Args,
    given: unknown,
    cache: Cache,
    missing: string[],
    missingCacheKeys: string[],
  ): Promise<{ fetched: Map<string, unknown>; own: Set<string> }> {
    let flights = inflight.get(cache)
    if (flights === undefined) {
      flights = new Map()
      inflight.set(cache, flights)
    }
    const own: string[] = []
    const joined: Array<[string, Promise<Fetched>]> = []
    const settlers = new Map<string, (result: Fetched | Error) => void>()
    for (let i = 0; i < missing.length; i++) {
      const id = flightKey(namespace, missingCacheKeys[i]!)
      const flight = flights.get(id)
      if (flight !== undefined) {
        joined.push([missing[i]!, flight])
        continue
      }
      own.push(missing[i]!)
      const promise = new Promise<Fetched>((resolve, reject) => {
        settlers.set(id, (result) => (result instanceof Error ? reject(result) : resolve(result)))
      })
      promise.catch(() => {}) // nobody may be waiting for it
      flights.set(id, promise)
    }
    const fetched = new Map<string, unknown>()
    try {
      if (own.length > 0) {
        const answer = answered(self, await fn.apply(self, withKeys(args, given, own)), own)
        for (const [key, value] of answer) fetched.set(key, value)
        for (let i = 0; i < missing.length; i++) {
          const settle = settlers.get(flightKey(namespace, missingCacheKeys[i]!))
          settle?.(fetched.has(missing[i]!) ? { found: true, value: fetched.get(missing[i]!) } : { found: false })
        }
      }
    } catch (error) {
      const failure = error instanceof Error ? error : new Error(String(error))
      for (const settle of settlers.values()) settle(failure)
      throw error
    } finally {
      for (const id of settlers.keys()) flights.delete(id)
    }
    for (const [key, flight] of joined) {
      const result = await flight
      if (result.found) fetched.set(key, result.value)
    }
    return { fetched, own: new Set(own) }
  }

  return async (self, args, flags) => {
    const cache = site.cache(self)
    const { keys, given } = keysOf(self, args)
    const cacheKeys = keys.map((key) => cacheKeyOf(self, key, args))
    let stored: readonly unknown[] = []
    if (flags.cacheRead && keys.length > 0) {
      try {
        stored = await cache.multiGet(cacheKeys, { namespace })
      } catch (error) {
        if (debug.enabled)
          debug(
            '%s %s: cache read failed, every key counts as missing: %s',
            site.kind,
            site.name(self),
            errorText(error),
          )
        reportError('multiGet', namespace ?? cache.namespace, error, cache)
      }
    }
    const values = new Map<string, unknown>()
    const missing: string[] = []
    const missingCacheKeys: string[] = []
    for (let i = 0; i < keys.length; i++) {
      const value = stored[i]
      if (value !== undefined) values.set(keys[i]!, value)
      else {
        missing.push(keys[i]!)
        missingCacheKeys.push(cacheKeys[i]!)
      }
    }
    if (missing.length > 0) {
      // A call that reads the cache merges its misses with the calls in flight; one that skips the read asks fn.
      const { fetched, own } = flags.cacheRead
        ? await fetchMissing(self, args, given, cache, missing, missingCacheKeys)
        : {
            fetched: answered(self, await fn.apply(self, withKeys(args, given, missing)), missing),
            own: new Set(missing),
          }
      const pairs: Array<[string, unknown]> = []
      for (let i = 0; i < missing.length; i++) {
        const key = missing[i]!
        if (!fetched.has(key)) continue
        const value = fetched.get(key)
        values.set(key, value)
        // Only the call that asked fn for a key stores it.
        if (flags.cacheWrite && own.has(key) && !(skipCache?.(key, value) ?? false)) {
          pairs.push([missingCacheKeys[i]!, value])
        }
      }
      if (pairs.length > 0) {
        const write = settle(
          () => cache.multiSet(pairs, { ttl, namespace }),
          { command: 'multiSet', cache, namespace },
          site.kind,
          site.name(self),
          'the values are returned uncached',
        )
        if (flags.waitForWrite) await write
      }
    }
    const ordered: Array<[string, unknown]> = []
    for (const key of keys) if (values.has(key)) ordered.push([key, values.get(key)])
    return (returns === 'map' ? new Map(ordered) : Object.fromEntries(ordered)) as Res
  }
}

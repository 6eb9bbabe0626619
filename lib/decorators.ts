/**
 * Caching a function's results: `cached(fn, opts)`, `multiCached(fn, opts)` and the
 * standard (TC39) method decorators `@Cached(opts)` and `@MultiCached(opts)`.
 *
 * A cache that fails — a backend error, a timeout, a throwing plugin, a value the
 * serializer cannot encode — never breaks the caller: the failure is logged under
 * `NODE_DEBUG=oniocache` and the function's own result is returned.
 */
import { debuglog } from 'node:util'
import type { Cache } from './cache.js'
import { describe, toSeconds, type Duration } from './duration.js'
import { anonymousName, argumentsKey, UnkeyableError } from './key-encoding.js'

const debug = debuglog('oniocache')

// ---------------------------------------------------------------------------
// Public types

/** Per-call switches: `getUser.options({ cacheRead: false })(id)`. */
export interface CallOptions {
  /** Look the result up first. Default `true`; `false` always calls the function (its result is still stored). */
  cacheRead?: boolean
  /** Store the result. Default `true`. */
  cacheWrite?: boolean
  /**
   * Answer only once the store finished. Default `true`. With `false` the result is
   * returned at once and stored in the background; a failed store is logged, never
   * an unhandled rejection.
   */
  waitForWrite?: boolean
}

/** Where and how long results are kept. */
export interface EntryOptions {
  /** Seconds (or `'10s'`, `'5m'`…) a stored result lives. Default: the cache's ttl; `0` or `null`: never expires. */
  ttl?: Duration | null
  /** Namespace of the stored entries. Default: the cache's. */
  namespace?: string
}

export interface CachedOptions<This, Args extends unknown[], R> extends EntryOptions {
  /** The cache that holds the results. */
  cache: Cache
  /** One fixed key for every call, whatever its arguments. */
  key?: string
  /** The key of a call instead of the default `name(arguments)`; runs with the call's `this`. */
  keyBuilder?: (this: This, args: Args, fn: (this: This, ...args: Args) => R) => string
  /** `true` for a result that must not be stored. */
  skipCache?: (result: Awaited<R>) => boolean
}

/** What `cached` answers: the function, always async, plus its cache and per-call variants. */
export interface CachedFunction<This, Args extends unknown[], T> {
  (this: This, ...args: Args): Promise<T>
  /** The cache used. */
  readonly cache: Cache
  /** The same function with other per-call switches. */
  options(options: CallOptions): (this: This, ...args: Args) => Promise<T>
}

/** What a `multiCached` function answers: a record or a `Map` keyed like its keys argument. */
export type MultiResult = Readonly<Record<string, unknown>> | ReadonlyMap<string, unknown>

/** The type of the values of a `MultiResult`. */
export type MultiValue<Res> = Res extends ReadonlyMap<string, infer V> ? V : Res extends Readonly<Record<string, infer V>> ? V : never

/** Indexes of the arguments that are arrays of strings. */
export type KeysIndex<Args extends unknown[]> = {
  [I in keyof Args]-?: NonNullable<Args[I]> extends readonly string[] ? (I extends number ? I : I extends `${infer N extends number}` ? N : never) : never
}[number]

/** Names of the properties of the first argument that are arrays of strings. */
export type KeysProperty<Args extends unknown[]> = NonNullable<Args[0]> extends infer First
  ? First extends object
    ? { [P in keyof First]-?: NonNullable<First[P]> extends readonly string[] ? P : never }[keyof First] & string
    : never
  : never

/** Where `multiCached` finds the keys: an argument's index, or a property of the first argument. */
export type KeysFrom<Args extends unknown[]> = KeysIndex<Args> | KeysProperty<Args>

/** A function that answers a `Map` must say so: when every key is cached, it is not called to show its shape. */
export type ReturnsOption<Res> = Res extends ReadonlyMap<string, unknown> ? { returns: 'map' } : { returns?: 'record' }

export interface MultiCachedOptions<This, Args extends unknown[], Res> extends EntryOptions {
  /** The cache that holds the values. */
  cache: Cache
  /** The index of the keys argument (an array of strings), or the name of the property of the first argument that holds them. */
  keysFrom: KeysFrom<Args>
  /** The cache key of one key. Default: the key itself. Runs with the call's `this`. */
  keyBuilder?: (this: This, key: string, args: Args) => string
  /** `true` for a value that must not be stored. */
  skipCache?: (key: string, value: MultiValue<Res>) => boolean
}

export interface MultiCachedFunction<This, Args extends unknown[], Res> {
  (this: This, ...args: Args): Promise<Res>
  /** The cache used. */
  readonly cache: Cache
  /** The same function with other per-call switches. */
  options(options: CallOptions): (this: This, ...args: Args) => Promise<Res>
}

/** A decorated method's cache: one cache, or one per instance (`(self) => self.cache`). */
export type CacheSource<Self> = Cache | ((self: Self) => Cache)

export interface CachedMethodOptions<Self> extends EntryOptions {
  /** The cache, or a function of the instance (the class, for a static method) that answers it. */
  cache: CacheSource<Self>
  key?: string
  /** The key of a call instead of the default `Class.method(arguments)`; runs with the call's `this`. */
  keyBuilder?: (this: Self, args: readonly unknown[], method: (...args: never[]) => unknown) => string
  skipCache?: (result: unknown) => boolean
}

export interface MultiCachedMethodOptions<Self, Shape extends 'record' | 'map'> extends EntryOptions {
  cache: CacheSource<Self>
  keysFrom: number | string
  keyBuilder?: (this: Self, key: string, args: readonly unknown[]) => string
  skipCache?: (key: string, value: unknown) => boolean
  /** What the method answers: `'record'` (default) or `'map'`. */
  returns?: Shape
}

type Method<This, Args extends unknown[], Res> = (this: This, ...args: Args) => Promise<Res>

/** A standard method decorator that keeps the method's type. */
export type CachingDecorator<Self, Res = unknown> = <This extends Self, Args extends unknown[], R extends Res>(
  method: Method<This, Args, R>,
  context: ClassMethodDecoratorContext<This, Method<This, Args, R>>,
) => Method<This, Args, R>

// ---------------------------------------------------------------------------
// cached

/**
 * Caches `fn`'s results: a call whose key is cached answers the cached value
 * without calling `fn`. The default key is `fn.name` and the stable encoding of
 * the arguments (see `key-encoding.ts`). `undefined` results are not stored.
 */
export function cached<This, Args extends unknown[], R>(
  fn: (this: This, ...args: Args) => R,
  options: CachedOptions<This, Args, R>,
): CachedFunction<This, Args, Awaited<R>> {
  if (typeof fn !== 'function') throw new TypeError(`[oniocache] cached(fn, options): fn must be a function; got ${describe(fn)}`)
  const name = fn.name === '' ? anonymousName(fn) : fn.name
  const config = cachedConfig(`cached ${name}`, options, CACHED_OPTIONS)
  const cache = fixedCache(`cached ${name}`, options.cache)
  const invoke = cachedInvoker<This, Args, Awaited<R>>(fn, config, functionSite('cached', name, cache))
  return callable(invoke, name, cache) as CachedFunction<This, Args, Awaited<R>>
}

/**
 * The standard method decorator of `cached`. The default key is
 * `Class.method(arguments)`; `this` is not part of it, so instances share entries
 * unless `cache` is a function of the instance or `keyBuilder` uses `this`.
 */
export function Cached<Self = unknown>(options: CachedMethodOptions<Self>): CachingDecorator<Self> {
  const config = cachedConfig('@Cached', options, CACHED_OPTIONS)
  return methodDecorator('@Cached', options.cache, (method, site) => {
    const invoke = cachedInvoker(method, config, site)
    return function (this: unknown, ...args: unknown[]) {
      return invoke(this, args, DEFAULT_FLAGS)
    }
  }) as CachingDecorator<Self>
}

// ---------------------------------------------------------------------------
// multiCached

/**
 * Caches a function that answers many keys at once: the keys found in the cache
 * (one `multiGet`) are not asked for, `fn` is called with the missing ones only
 * (and not at all when every key is cached), and what it answers is stored with
 * one `multiSet`. The answer holds every requested key that has a value.
 */
export function multiCached<This, Args extends unknown[], Res extends MultiResult>(
  fn: (this: This, ...args: Args) => Res | Promise<Res>,
  options: MultiCachedOptions<This, Args, Res> & ReturnsOption<Res>,
): MultiCachedFunction<This, Args, Res> {
  if (typeof fn !== 'function') throw new TypeError(`[oniocache] multiCached(fn, options): fn must be a function; got ${describe(fn)}`)
  const name = fn.name === '' ? anonymousName(fn) : fn.name
  const config = multiConfig(`multiCached ${name}`, options)
  const cache = fixedCache(`multiCached ${name}`, options.cache)
  const invoke = multiInvoker<This, Args, Res>(fn, config, functionSite('multiCached', name, cache))
  return callable(invoke, name, cache) as MultiCachedFunction<This, Args, Res>
}

/** The standard method decorator of `multiCached`; `returns: 'map'` for a method that answers a `Map`. */
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

// ---------------------------------------------------------------------------
// The engine, shared by the functions and the decorators (and by the stampede
// variant, which wraps the miss path in a lock through `aroundMiss`).

/** The per-call switches, all set. */
export type Flags = Readonly<Required<CallOptions>>
export const DEFAULT_FLAGS: Flags = Object.freeze({ cacheRead: true, cacheWrite: true, waitForWrite: true })

/** Runs one call: `this`, the arguments and the per-call switches. @internal */
export type Invoke<This, Args extends unknown[], T> = (self: This, args: Args, flags: Flags) => Promise<T>

type AnyFunction = (this: unknown, ...args: unknown[]) => unknown

/**
 * Where a wrapped function lives: its name in default keys and messages, and the
 * cache a call uses. Fixed for a function; per `this` for a decorated method. @internal
 */
export interface Site<This = unknown> {
  /** `'cached'`, `'@Cached'`, … for messages. */
  readonly kind: string
  /** `getUser`, or `UserService.find` for a method. */
  name(self: This): string
  cache(self: This): Cache
}

/** What the miss path of a call knows. @internal */
export interface Miss {
  readonly cache: Cache
  readonly key: string
  readonly namespace: string | undefined
  /** Looks the key up again; a failed read counts as a miss. */
  read(): Promise<unknown>
}

/**
 * Wraps the miss path of a call (`fill`: call the function, store its result).
 * `cachedStampede` passes one that holds a lock around it. @internal
 */
export type AroundMiss = (miss: Miss, fill: () => Promise<unknown>) => Promise<unknown>

/** Validated options of `cached` and `@Cached`. @internal */
export interface CachedConfig {
  readonly ttl: Duration | null | undefined
  readonly namespace: string | undefined
  readonly key: string | undefined
  readonly keyBuilder: ((this: unknown, args: unknown[], fn: unknown) => unknown) | undefined
  readonly skipCache: ((result: unknown) => unknown) | undefined
}

/** The options `cached` and `@Cached` take. @internal */
export const CACHED_OPTIONS: ReadonlySet<string> = new Set(['cache', 'ttl', 'namespace', 'key', 'keyBuilder', 'skipCache'])

/** Checks the options of `cached`-like wrappers; `known` lists the names they take. Throws. @internal */
export function cachedConfig(what: string, options: object, known: ReadonlySet<string>): CachedConfig {
  checkNames(what, options, known)
  const { key, keyBuilder, skipCache } = options as { key?: unknown; keyBuilder?: unknown; skipCache?: unknown }
  if (key !== undefined && typeof key !== 'string') throw new TypeError(`[oniocache] ${what}: key must be a string; got ${describe(key)}`)
  if (keyBuilder !== undefined && typeof keyBuilder !== 'function') {
    throw new TypeError(`[oniocache] ${what}: keyBuilder must be a function (args, fn) => string; got ${describe(keyBuilder)}`)
  }
  if (key !== undefined && keyBuilder !== undefined) throw new TypeError(`[oniocache] ${what}: give key (one fixed key) or keyBuilder (a key per call), not both`)
  if (skipCache !== undefined && typeof skipCache !== 'function') {
    throw new TypeError(`[oniocache] ${what}: skipCache must be a function (result) => boolean; got ${describe(skipCache)}`)
  }
  return { ...entryOptions(what, options), key, keyBuilder: keyBuilder as CachedConfig['keyBuilder'], skipCache: skipCache as CachedConfig['skipCache'] }
}

/** The engine of `cached` and `@Cached`: look up, else call and store. @internal */
export function cachedInvoker<This, Args extends unknown[], T>(
  fn: (this: This, ...args: Args) => unknown,
  config: CachedConfig,
  site: Site<This>,
  aroundMiss?: AroundMiss,
): Invoke<This, Args, T> {
  const { ttl, namespace, key: fixedKey, keyBuilder, skipCache } = config

  function keyOf(self: This, args: Args): string {
    if (fixedKey !== undefined) return fixedKey
    if (keyBuilder !== undefined) {
      const key = keyBuilder.call(self, args, fn)
      if (typeof key !== 'string') throw new TypeError(`[oniocache] ${site.kind} ${site.name(self)}: keyBuilder must return a string; it returned ${describe(key)}`)
      return key
    }
    return defaultKey(site, self, args)
  }

  return async (self, args, flags) => {
    const cache = site.cache(self)
    const key = keyOf(self, args)
    if (flags.cacheRead) {
      const hit = await read(cache, key, namespace, site.kind)
      if (hit !== undefined) return hit as T
    }
    const fill = async (): Promise<unknown> => {
      const result = await fn.apply(self, args)
      if (flags.cacheWrite && result !== undefined && !(skipCache?.(result) ?? false)) {
        const write = settle(() => cache.set(key, result, { ttl, namespace }), site.kind, key, 'the result is returned uncached')
        if (flags.waitForWrite) await write
      }
      return result
    }
    if (aroundMiss === undefined) return (await fill()) as T
    return (await aroundMiss({ cache, key, namespace, read: () => read(cache, key, namespace, site.kind) }, fill)) as T
  }
}

interface MultiConfig {
  readonly ttl: Duration | null | undefined
  readonly namespace: string | undefined
  readonly keysFrom: number | string
  readonly keyBuilder: ((this: unknown, key: string, args: unknown[]) => unknown) | undefined
  readonly skipCache: ((key: string, value: unknown) => unknown) | undefined
  readonly returns: 'record' | 'map'
}

const MULTI_OPTIONS: ReadonlySet<string> = new Set(['cache', 'keysFrom', 'keyBuilder', 'skipCache', 'ttl', 'namespace', 'returns'])

function multiConfig(what: string, options: object): MultiConfig {
  checkNames(what, options, MULTI_OPTIONS)
  const { keysFrom, keyBuilder, skipCache, returns = 'record' } = options as { keysFrom?: unknown; keyBuilder?: unknown; skipCache?: unknown; returns?: unknown }
  if (!((typeof keysFrom === 'number' && Number.isSafeInteger(keysFrom) && keysFrom >= 0) || (typeof keysFrom === 'string' && keysFrom !== ''))) {
    throw new TypeError(
      `[oniocache] ${what}: keysFrom must be the index of the keys argument (0, 1, …) or the name of the property of the first argument that holds the keys; got ${describe(keysFrom)}`,
    )
  }
  if (keyBuilder !== undefined && typeof keyBuilder !== 'function') {
    throw new TypeError(`[oniocache] ${what}: keyBuilder must be a function (key, args) => string; got ${describe(keyBuilder)}`)
  }
  if (skipCache !== undefined && typeof skipCache !== 'function') {
    throw new TypeError(`[oniocache] ${what}: skipCache must be a function (key, value) => boolean; got ${describe(skipCache)}`)
  }
  if (returns !== 'record' && returns !== 'map') throw new TypeError(`[oniocache] ${what}: returns must be 'record' or 'map'; got ${describe(returns)}`)
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
  const where = typeof keysFrom === 'number' ? `argument ${keysFrom}` : `the ${JSON.stringify(keysFrom)} property of the first argument`

  function keysOf(self: This, args: Args): string[] {
    const holder: unknown = typeof keysFrom === 'number' ? args : args[0]
    const keys = holder !== null && typeof holder === 'object' ? (holder as Record<string | number, unknown>)[keysFrom] : undefined
    if (!Array.isArray(keys) || !keys.every((key) => typeof key === 'string')) {
      throw new TypeError(`[oniocache] ${site.kind} ${site.name(self)}: ${where} (keysFrom) must be an array of string keys; got ${describe(keys)}`)
    }
    return [...new Set(keys as string[])]
  }

  function withKeys(args: Args, keys: string[]): Args {
    const copy = [...args] as Args
    if (typeof keysFrom === 'number') copy[keysFrom] = keys
    else copy[0] = { ...(args[0] as object), [keysFrom]: keys }
    return copy
  }

  function cacheKeyOf(self: This, key: string, args: Args): string {
    if (keyBuilder === undefined) return key
    const built = keyBuilder.call(self, key, args)
    if (typeof built !== 'string') throw new TypeError(`[oniocache] ${site.kind} ${site.name(self)}: keyBuilder must return a string; it returned ${describe(built)}`)
    return built
  }

  /** fn's answer as a Map of the requested keys that have a value. */
  function answered(self: This, answer: unknown, keys: string[]): Map<string, unknown> {
    const found = new Map<string, unknown>()
    if (answer instanceof Map) {
      if (returns !== 'map') throw new TypeError(`[oniocache] ${site.kind} ${site.name(self)}: the function answered a Map; pass returns: 'map' so that answers from the cache are Maps too`)
      for (const key of keys) {
        const value: unknown = answer.get(key)
        if (value !== undefined) found.set(key, value)
      }
      return found
    }
    if (answer === null || typeof answer !== 'object' || Array.isArray(answer)) {
      throw new TypeError(`[oniocache] ${site.kind} ${site.name(self)}: the function must answer a record or a Map keyed like its keys; it answered ${describe(answer)}`)
    }
    if (returns === 'map') throw new TypeError(`[oniocache] ${site.kind} ${site.name(self)}: the function answered a record, but returns is 'map': answer a Map or drop returns`)
    for (const key of keys) {
      const value: unknown = Object.hasOwn(answer, key) ? (answer as Record<string, unknown>)[key] : undefined
      if (value !== undefined) found.set(key, value)
    }
    return found
  }

  return async (self, args, flags) => {
    const cache = site.cache(self)
    const keys = keysOf(self, args)
    const cacheKeys = keys.map((key) => cacheKeyOf(self, key, args))
    let stored: readonly unknown[] = []
    if (flags.cacheRead && keys.length > 0) {
      try {
        stored = await cache.multiGet(cacheKeys, { namespace })
      } catch (error) {
        if (debug.enabled) debug('%s %s: cache read failed, every key counts as missing: %s', site.kind, site.name(self), errorText(error))
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
      const fetched = answered(self, await fn.apply(self, withKeys(args, missing)), missing)
      const pairs: Array<[string, unknown]> = []
      for (let i = 0; i < missing.length; i++) {
        const key = missing[i]!
        if (!fetched.has(key)) continue
        const value = fetched.get(key)
        values.set(key, value)
        if (flags.cacheWrite && !(skipCache?.(key, value) ?? false)) pairs.push([missingCacheKeys[i]!, value])
      }
      if (pairs.length > 0) {
        const write = settle(() => cache.multiSet(pairs, { ttl, namespace }), site.kind, site.name(self), 'the values are returned uncached')
        if (flags.waitForWrite) await write
      }
    }
    const ordered: Array<[string, unknown]> = []
    for (const key of keys) if (values.has(key)) ordered.push([key, values.get(key)])
    return (returns === 'map' ? new Map(ordered) : Object.fromEntries(ordered)) as Res
  }
}

// ---------------------------------------------------------------------------
// Method decorators

/**
 * The site of a decorated method. Its class is found on the first call, by
 * walking from `this` to the object that holds the decorated method: the class
 * that defined it, also when a subclass instance calls it. @internal
 */
export class MethodSite implements Site {
  readonly kind: string
  /** The method's name as written: `find`, `#find`, `Symbol(x)`. */
  readonly method: string
  readonly isStatic: boolean
  readonly #key: string | symbol
  readonly #private: boolean
  /** The replacement installed on the class; set once the decorator made it. */
  wrapper: unknown = undefined
  readonly cache: (self: unknown) => Cache
  #owner: string | undefined = undefined

  constructor(kind: string, context: ClassMethodDecoratorContext, cache: (self: unknown) => Cache) {
    this.kind = kind
    this.method = String(context.name)
    this.#key = context.name
    this.#private = context.private
    this.isStatic = context.static
    this.cache = cache
  }

  name(self: unknown): string {
    return `${this.#owner ?? this.#findOwner(self)}.${this.method}`
  }

  #findOwner(self: unknown): string {
    for (let holder = this.#private ? null : self; (typeof holder === 'object' && holder !== null) || typeof holder === 'function'; holder = Object.getPrototypeOf(holder)) {
      if (Object.getOwnPropertyDescriptor(holder, this.#key)?.value === this.wrapper) {
        const owner = this.isStatic ? holder : (holder as { constructor?: unknown }).constructor
        return (this.#owner = typeof owner === 'function' && owner.name !== '' ? owner.name : 'anonymous')
      }
    }
    // A private method, or one called on another object: name the class of `this`.
    const owner = this.isStatic ? self : (self as { constructor?: unknown } | null | undefined)?.constructor
    return typeof owner === 'function' && owner.name !== '' ? owner.name : 'anonymous'
  }
}

/**
 * Turns a wrapper factory into a standard method decorator: checks that it
 * decorates a method, resolves the cache per call (`Cache` or `(self) => Cache`)
 * and names the method `Class.method` in default keys. `@Cached` and
 * `@MultiCached` are built on it, and so can `@CachedStampede` be. @internal
 */
export function methodDecorator(
  kind: string,
  source: unknown,
  wrap: (method: AnyFunction, site: MethodSite) => AnyFunction,
): (method: AnyFunction, context: ClassMethodDecoratorContext) => AnyFunction {
  const cache = cacheResolver(kind, source)
  return (method, context) => {
    if (context === null || typeof context !== 'object' || context.kind !== 'method') {
      const what = context !== null && typeof context === 'object' ? `a ${String((context as { kind?: unknown }).kind)}` : describe(context)
      throw new TypeError(`[oniocache] ${kind} decorates methods (a standard TC39 decorator, without experimentalDecorators); it was applied to ${what}`)
    }
    if (typeof method !== 'function') throw new TypeError(`[oniocache] ${kind} decorates methods; got ${describe(method)}`)
    const site = new MethodSite(kind, context, cache)
    const wrapper = wrap(method, site)
    Object.defineProperty(wrapper, 'name', { value: method.name })
    site.wrapper = wrapper
    return wrapper
  }
}

// ---------------------------------------------------------------------------
// Helpers

function checkNames(what: string, options: unknown, known: ReadonlySet<string>): asserts options is object {
  if (options === null || typeof options !== 'object') throw new TypeError(`[oniocache] ${what}: options must be an object ({ cache, … }); got ${describe(options)}`)
  for (const name of Object.keys(options)) {
    if (!known.has(name)) throw new TypeError(`[oniocache] ${what}: unknown option ${JSON.stringify(name)}; known: ${[...known].join(', ')}`)
  }
  if (!('cache' in options) || (options as { cache?: unknown }).cache === undefined) {
    throw new TypeError(`[oniocache] ${what}: the cache option is required (such as new MemoryCache())`)
  }
}

function entryOptions(what: string, options: object): { ttl: Duration | null | undefined; namespace: string | undefined } {
  const { ttl, namespace } = options as { ttl?: unknown; namespace?: unknown }
  if (ttl !== undefined) toSeconds(ttl, `${what}: ttl`)
  if (namespace !== undefined && typeof namespace !== 'string') throw new TypeError(`[oniocache] ${what}: namespace must be a string; got ${describe(namespace)}`)
  return { ttl: ttl as Duration | null | undefined, namespace }
}

export function isCache(value: unknown): value is Cache {
  if (value === null || typeof value !== 'object') return false
  const cache = value as Record<string, unknown>
  return typeof cache.get === 'function' && typeof cache.set === 'function' && typeof cache.multiGet === 'function' && typeof cache.multiSet === 'function'
}

function fixedCache(what: string, cache: unknown): Cache {
  if (isCache(cache)) return cache
  throw new TypeError(
    `[oniocache] ${what}: cache must be a Cache (such as new MemoryCache()); got ${describe(cache)}` +
      (typeof cache === 'function' ? ' (a function (self) => Cache is for the method decorators)' : ''),
  )
}

function cacheResolver(kind: string, source: unknown): (self: unknown) => Cache {
  if (isCache(source)) return () => source
  if (typeof source === 'function') {
    return (self) => {
      const cache: unknown = source(self)
      if (!isCache(cache)) throw new TypeError(`[oniocache] ${kind}: the cache function answered ${describe(cache)}, not a Cache`)
      return cache
    }
  }
  throw new TypeError(`[oniocache] ${kind}: cache must be a Cache (such as new MemoryCache()) or a function (self) => Cache; got ${describe(source)}`)
}

function functionSite(kind: string, name: string, cache: Cache): Site {
  return { kind, name: () => name, cache: () => cache }
}

function defaultKey<This>(site: Site<This>, self: This, args: readonly unknown[]): string {
  try {
    return argumentsKey(site.name(self), args)
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
    return undefined
  }
}

/** A write that never rejects (nor throws): a failure is logged. */
async function settle(write: () => Promise<unknown>, kind: string, label: string, outcome: string): Promise<void> {
  try {
    await write()
  } catch (error) {
    if (debug.enabled) debug('%s %s: cache write failed, %s: %s', kind, label, outcome, errorText(error))
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error)
}

export function checkFlags(what: string, options: unknown): Flags {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`[oniocache] ${what}.options: pass an object ({ cacheRead?, cacheWrite?, waitForWrite? }); got ${describe(options)}`)
  }
  const flags = { ...DEFAULT_FLAGS }
  for (const [name, value] of Object.entries(options)) {
    if (!(name in DEFAULT_FLAGS)) throw new TypeError(`[oniocache] ${what}.options: unknown option ${JSON.stringify(name)}; known: cacheRead, cacheWrite, waitForWrite`)
    if (value === undefined) continue
    if (typeof value !== 'boolean') throw new TypeError(`[oniocache] ${what}.options: ${name} must be a boolean; got ${describe(value)}`)
    flags[name as keyof Flags] = value
  }
  return Object.freeze(flags)
}

/** The public face of an invoker: a function with `.cache` and `.options(…)`. */
export function callable<This, Args extends unknown[], T>(invoke: Invoke<This, Args, T>, name: string, cache: Cache): CachedFunction<This, Args, T> {
  const variant = (flags: Flags): ((this: This, ...args: Args) => Promise<T>) => {
    const call = function (this: This, ...args: Args): Promise<T> {
      return invoke(this, args, flags)
    }
    Object.defineProperty(call, 'name', { value: name })
    return call
  }
  const wrapper = variant(DEFAULT_FLAGS)
  Object.defineProperty(wrapper, 'cache', { value: cache, enumerable: true })
  Object.defineProperty(wrapper, 'options', { value: (options: CallOptions) => variant(checkFlags(name, options)) })
  return wrapper as CachedFunction<This, Args, T>
}

/**
 * What `cached`, `multiCached`, `cachedStampede` and their method decorators share:
 * per-call switches, where a wrapped function lives (its name and its cache), the
 * method-decorator plumbing, and a write that never breaks the caller.
 */
import type { BaseCache as Cache } from '../core/cache.js'
import { reportError } from '../core/channels.js'
import { debug } from '../util/debug.js'
import { describe, errorText } from '../util/describe.js'
import { type Duration, toSeconds } from '../util/duration.js'
import { checkOptions } from '../util/options.js'
import { functionTag } from './key-encoding.js'

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

/** A decorated method's cache: one cache, or one per instance (`(self) => self.cache`). */
export type CacheSource<Self> = Cache | ((self: Self) => Cache)

/** An async method: what the method decorators take and answer. */
type Method<This, Args extends unknown[], Res> = (this: This, ...args: Args) => Promise<Res>

/** A standard method decorator that keeps the method's type. */
export type CachingDecorator<Self, Res = unknown> = <This extends Self, Args extends unknown[], R extends Res>(
  method: Method<This, Args, R>,
  context: ClassMethodDecoratorContext<This, Method<This, Args, R>>,
) => Method<This, Args, R>

/** The per-call switches, all set. */
export type Flags = Readonly<Required<CallOptions>>

/** @internal */
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
  /** `getUser`, or `UserService.find` for a method: in messages. */
  name(self: This): string
  /** The name in default keys: `name` and the function's tag (see `functionTag`). */
  keyName(self: This): string
  cache(self: This): Cache
}

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

  readonly #tag: string

  constructor(
    kind: string,
    context: ClassMethodDecoratorContext,
    cache: (self: unknown) => Cache,
    method: AnyFunction,
  ) {
    this.kind = kind
    this.#tag = functionTag(method)
    this.method = String(context.name)
    this.#key = context.name
    this.#private = context.private
    this.isStatic = context.static
    this.cache = cache
  }

  name(self: unknown): string {
    return `${this.#owner ?? this.#findOwner(self)}.${this.method}`
  }

  keyName(self: unknown): string {
    return this.name(self) + this.#tag
  }

  #findOwner(self: unknown): string {
    for (
      let holder = this.#private ? null : self;
      (typeof holder === 'object' && holder !== null) || typeof holder === 'function';
      holder = Object.getPrototypeOf(holder)
    ) {
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
      const what =
        context !== null && typeof context === 'object'
          ? `a ${String((context as { kind?: unknown }).kind)}`
          : describe(context)
      throw new TypeError(
        `[oniocache] ${kind} decorates methods (a standard TC39 decorator, without experimentalDecorators); it was ` +
          `applied to ${what}`,
      )
    }
    if (typeof method !== 'function')
      throw new TypeError(`[oniocache] ${kind} decorates methods; got ${describe(method)}`)
    const site = new MethodSite(kind, context, cache, method)
    const wrapper = wrap(method, site)
    Object.defineProperty(wrapper, 'name', { value: method.name })
    site.wrapper = wrapper
    return wrapper
  }
}

/** Checks a wrapper's option names, `cache` required. @internal */
export function checkNames(what: string, options: unknown, known: Iterable<string>): asserts options is object {
  checkOptions(options, known, what)
  if (!('cache' in options) || (options as { cache?: unknown }).cache === undefined) {
    throw new TypeError(`[oniocache] ${what}: the cache option is required (such as new MemoryCache())`)
  }
}

/** @internal */
export function entryOptions(
  what: string,
  options: object,
): { ttl: Duration | null | undefined; namespace: string | undefined } {
  const { ttl, namespace } = options as { ttl?: unknown; namespace?: unknown }
  if (ttl !== undefined) toSeconds(ttl, `${what}: ttl`)
  if (namespace !== undefined && typeof namespace !== 'string')
    throw new TypeError(`[oniocache] ${what}: namespace must be a string; got ${describe(namespace)}`)
  return { ttl: ttl as Duration | null | undefined, namespace }
}

/** @internal */
export function isCache(value: unknown): value is Cache {
  if (value === null || typeof value !== 'object') return false
  const cache = value as Record<string, unknown>
  return (
    typeof cache.get === 'function' &&
    typeof cache.set === 'function' &&
    typeof cache.multiGet === 'function' &&
    typeof cache.multiSet === 'function'
  )
}

/** @internal */
export function fixedCache(what: string, cache: unknown): Cache {
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
      if (!isCache(cache))
        throw new TypeError(`[oniocache] ${kind}: the cache function answered ${describe(cache)}, not a Cache`)
      return cache
    }
  }
  throw new TypeError(
    `[oniocache] ${kind}: cache must be a Cache (such as new MemoryCache()) or a function (self) => Cache; got ` +
      `${describe(source)}`,
  )
}

/** The name of a function to wrap (`anonymous` if it has none); a TypeError if it is no function. @internal */
export function nameOf(kind: string, fn: unknown): string {
  if (typeof fn !== 'function') {
    throw new TypeError(`[oniocache] ${kind}(fn, options): fn must be a function; got ${describe(fn)}`)
  }
  return fn.name === '' ? 'anonymous' : fn.name
}

/** The site of a wrapped function: its name and its one cache. @internal */
export function functionSite(kind: string, fn: (...args: never[]) => unknown, cache: Cache): Site {
  const name = nameOf(kind, fn)
  const keyName = name + functionTag(fn)
  return { kind, name: () => name, keyName: () => keyName, cache: () => cache }
}

/** Where a decorator's cache write goes: the command, the cache and the namespace. @internal */
export interface WriteTarget {
  readonly command: 'set' | 'multiSet'
  readonly cache: Cache
  readonly namespace: string | undefined
}

/**
 * A write that never rejects (nor throws): a failure is logged and published on
 * `oniocache:error`. @internal
 */
export async function settle(
  write: () => Promise<unknown>,
  target: WriteTarget,
  kind: string,
  label: string,
  outcome: string,
): Promise<void> {
  try {
    await write()
  } catch (error) {
    if (debug.enabled) debug('%s %s: cache write failed, %s: %s', kind, label, outcome, errorText(error))
    reportError(target.command, target.namespace ?? target.cache.namespace, error, target.cache)
  }
}

/** @internal */
export function checkFlags(what: string, options: unknown): Flags {
  checkOptions(options, Object.keys(DEFAULT_FLAGS), `${what}.options`)
  const flags = { ...DEFAULT_FLAGS }
  for (const [name, value] of Object.entries(options)) {
    if (value === undefined) continue
    if (typeof value !== 'boolean') {
      throw new TypeError(`[oniocache] ${what}.options: ${name} must be a boolean; got ${describe(value)}`)
    }
    flags[name as keyof Flags] = value
  }
  return Object.freeze(flags)
}

/** What `cached` answers: the function, always async, plus its cache and per-call variants. */
export interface CachedFunction<This, Args extends unknown[], T> {
  /** Calls the function through the cache: what is cached is answered from it, the rest asked of it and stored. */
  (this: This, ...args: Args): Promise<T>
  /** The cache used. */
  readonly cache: Cache
  /**
   * The same function with other per-call switches: `getUser.options({ cacheRead: false })('42')`.
   * @throws {TypeError} for an unknown switch, or one that is not a boolean.
   */
  options(options: CallOptions): (this: This, ...args: Args) => Promise<T>
}

/** The public face of an invoker: a function with `.cache` and `.options(…)`. @internal */
export function callable<This, Args extends unknown[], T>(
  invoke: Invoke<This, Args, T>,
  name: string,
  cache: Cache,
): CachedFunction<This, Args, T> {
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

/**
 * aiocache's `caches` and `Cache.from_url`: caches described by data (aliases in
 * a config, or a URL) and built synchronously. Names resolve through a registry
 * of classes, so a config can be plain JSON.
 */
import { Cache, cacheOfKind, inContext } from '../caches/cache.js'
import { type CacheKind, KINDS, readCacheUrl } from '../caches/kinds.js'
import type { KeyBuilder } from '../core/cache.js'
import type { Middleware, Plugin } from '../core/context.js'
import type { AnySerializer } from '../core/serializer.js'
import { HitMissRatioPlugin } from '../plugins/hit-miss-ratio.js'
import { TimingPlugin } from '../plugins/timing.js'
import { JsonSerializer, MsgPackSerializer, NullSerializer, StringSerializer, V8Serializer } from '../serializers.js'
import { describe } from '../util/describe.js'
import type { Duration } from '../util/duration.js'
import { InvalidCacheTypeError } from '../util/errors.js'

/** `Cache` or a subclass (`MemoryCache`, `RedisCache`, your own), constructed with the config's options. */
export type CacheClass = new (options: never) => Cache
/** A class whose instances have `dumps` and `loads`, constructed with the spec's options. */
export type SerializerClass = new (options: never) => AnySerializer
/** A class whose instances have `middleware(ctx, next)`, such as a `BasePlugin` subclass. */
export type PluginClass = new (options: never) => Plugin

/** `{ class: 'JsonSerializer' }`; other keys are passed to the constructor as one options object. */
export interface SerializerSpec {
  /** A registered name (`'JsonSerializer'`, `'aiocache.serializers.JsonSerializer'`, …) or a serializer class. */
  class: string | SerializerClass
  [option: string]: unknown
}

/** `{ class: 'TimingPlugin' }`; other keys are passed to the constructor as one options object. */
export interface PluginSpec {
  /** A registered name (`'TimingPlugin'`, `'aiocache.plugins.TimingPlugin'`, …) or a plugin class. */
  class: string | PluginClass
  [option: string]: unknown
}

/** Everything of a cache's config but its class: what `caches.create` and `caches.fromUrl` take as overrides. */
export interface CacheOverrides {
  /** A spec built anew for every cache, or an instance shared by every cache built from this config. */
  serializer?: SerializerSpec | AnySerializer
  /** Specs are built anew for every cache; plugin instances and middleware functions are shared. */
  plugins?: Array<PluginSpec | Plugin | Middleware>
  /** Prefix of every key. Default `''`. */
  namespace?: string
  /** Builds the key that reaches the backend. Default: `namespace + ':' + key`. */
  keyBuilder?: KeyBuilder
  /** Default ttl in seconds (or `'5m'`…). Default: none. */
  ttl?: Duration | null
  /** Bound on every command in seconds (or `'250ms'`…). Default `5`; `0` or `null` disables it. */
  timeout?: Duration | null
  /** Any other option of the cache class: `maxSize`, `host`, `port`, `db`, `password`, … */
  [option: string]: unknown
}

/** One alias: a cache class (by name or constructor) and its options. */
export interface CacheConfig extends CacheOverrides {
  /** A registered name (`'memory'`, `'redis'`, `'aiocache.RedisCache'`, …) or a Cache class. */
  cache: string | CacheClass
}

/** The aliases `caches.setConfig` takes; `default` is required. */
export interface CachesConfig {
  /** The alias `caches.get('default')` answers; required. */
  default: CacheConfig
  [alias: string]: CacheConfig
}

/** Overrides for `caches.fromUrl`: the URL picks the cache class, so `cache` is not one of them. */
export interface UrlOverrides extends CacheOverrides {
  /** Not allowed: the URL's scheme picks the cache. */
  cache?: never
}

type Sort = 'cache' | 'serializer' | 'plugin'
type AnyClass = CacheClass | SerializerClass | PluginClass
type Construct<T> = new (options?: Record<string, unknown>) => T
/** What a cache name stands for: a built-in kind (built as `Cache.fromUrl` builds it) or a registered class. */
type CacheName = CacheKind | CacheClass
const BUILTIN_SERIALIZERS: readonly SerializerClass[] = [
  NullSerializer,
  StringSerializer,
  JsonSerializer,
  MsgPackSerializer,
  V8Serializer,
]
const BUILTIN_PLUGINS: readonly PluginClass[] = [HitMissRatioPlugin, TimingPlugin]
/** The shipped serializers and plugins take no options: extra keys in their spec are a mistake. */
const TAKES_NO_OPTIONS: ReadonlySet<unknown> = new Set<unknown>([...BUILTIN_SERIALIZERS, ...BUILTIN_PLUGINS])

/** aiocache's class names (the last part of `aiocache.…` dotted paths) for our cache names. */
const AIOCACHE_CACHES: Readonly<Record<string, string>> = {
  SimpleMemoryCache: 'memory',
  RedisCache: 'redis',
  MemcachedCache: 'memcached',
}

/**
 * Aliases and names: `caches` is the one every program shares; `new
 * CacheHandler()` makes an independent one. The built-in cache names `memory`,
 * `redis` and `memcached` build a `Cache` as `Cache.fromUrl` does (the Redis and
 * Memcached backend modules loaded on the first command); a registered class is
 * constructed with the config's options.
 *
 * A new handler knows the cache names `memory`, `redis` and `memcached` (also as aiocache's dotted paths
 * `aiocache.SimpleMemoryCache`, `aiocache.RedisCache`, `aiocache.MemcachedCache`), the shipped serializers and
 * plugins by class name (also as `aiocache.serializers.JsonSerializer`, …), and one alias:
 * `{ default: { cache: 'memory' } }`.
 */
export class CacheHandler {
  readonly #caches = new Map<string, CacheName>(Object.values(KINDS).map((kind) => [kind.name, kind]))
  readonly #names: Record<Exclude<Sort, 'cache'>, Map<string, AnyClass>> = {
    serializer: new Map(BUILTIN_SERIALIZERS.map((ctor) => [ctor.name, ctor])),
    plugin: new Map(BUILTIN_PLUGINS.map((ctor) => [ctor.name, ctor])),
  }
  #config: CachesConfig = { default: { cache: 'memory' } }
  #instances = new Map<string, Cache>()

  /**
   * Names a class for configs and URLs. What it names is told from the class: a
   * `Cache` subclass, a plugin (`middleware` method) or a serializer (`dumps` and
   * `loads` methods). A name registered again is replaced, built-in names included.
   * @returns The handler, for chaining.
   * @throws {TypeError} for an empty name, or a constructor that is none of the three.
   */
  register(name: string, ctor: CacheClass | SerializerClass | PluginClass): this {
    if (typeof name !== 'string' || name === '')
      throw new TypeError(`[oniocache] caches.register: name must be a non-empty string; got ${describe(name)}`)
    const sort = sortOf(ctor)
    if (sort === undefined) {
      throw new TypeError(
        `[oniocache] caches.register(${JSON.stringify(name)}): expected a Cache subclass, a serializer class ` +
          `(dumps/loads methods) or a plugin class (a middleware method); got ${describe(ctor)}`,
      )
    }
    if (sort === 'cache') this.#caches.set(name, ctor as CacheClass)
    else this.#names[sort].set(name, ctor)
    return this
  }

  /**
   * Replaces every alias. The whole config is checked first, by building one
   * instance of each alias (constructors do no I/O): if anything is wrong, this
   * throws and nothing changes. Those instances are the ones `get` answers from
   * now on; instances handed out before are forgotten, not closed.
   * @throws {TypeError} when the config is not an object, has no `default` alias, or an alias has an option its
   *   cache does not take (the message names the alias).
   * @throws {InvalidCacheTypeError} for an unknown cache, serializer or plugin name, or a class of the wrong
   *   sort.
   * @throws {RangeError} for a duration (`ttl`, `timeout`, …) that is not one.
   */
  setConfig(config: CachesConfig): void {
    if (!isPlainObject(config))
      throw new TypeError(
        `[oniocache] caches.setConfig: the config must be an object of aliases ({ default: { cache: 'memory' }, … ` +
          `}); got ${describe(config)}`,
      )
    if (!Object.hasOwn(config, 'default')) {
      throw new TypeError(
        `[oniocache] caches.setConfig: the config must have a "default" alias (such as default: { cache: 'memory' ` +
          `}); it has ${aliasList(config)}`,
      )
    }
    const copy = copyPlain(config)
    const instances = new Map<string, Cache>()
    for (const alias of Object.keys(copy))
      instances.set(alias, this.#build(copy[alias], `alias ${JSON.stringify(alias)}`))
    this.#config = copy
    this.#instances = instances
  }

  /** A copy of the current config: changing it changes nothing until given to `setConfig`. */
  getConfig(): CachesConfig {
    return copyPlain(this.#config)
  }

  /**
   * The cache of `alias`: the same instance on every call until `setConfig` is called again.
   * @throws {InvalidCacheTypeError} when there is no such alias.
   */
  get(alias: string): Cache {
    let cache = this.#instances.get(alias)
    if (cache === undefined) {
      cache = this.#build(this.#entry(alias), `alias ${JSON.stringify(alias)}`)
      this.#instances.set(alias, cache)
    }
    return cache
  }

  /**
   * A new cache on every call, from the alias' config with `overrides` merged over it (one level deep, as aiocache
   * does).
   * @throws {InvalidCacheTypeError} when there is no such alias, or for an unknown name in `overrides`.
   * @throws {TypeError} when `overrides` is not an object or holds an option the cache does not take.
   */
  create(alias: string, overrides: Partial<CacheConfig> = {}): Cache {
    const entry = this.#entry(alias)
    if (!isPlainObject(overrides))
      throw new TypeError(
        `[oniocache] caches.create(${JSON.stringify(alias)}): overrides must be an object; got ${describe(overrides)}`,
      )
    return this.#build({ ...entry, ...defined(overrides) }, `alias ${JSON.stringify(alias)}`)
  }

  /**
   * `Cache.fromUrl` with this handler's names: a cache name registered for the URL's
   * kind (`redis`, `memcached`, `memory`) builds that class; `overrides` may hold
   * specs (`{ class: 'JsonSerializer' }`) as a config does.
   * @throws {InvalidCacheTypeError} for an unknown scheme, or an unknown name in `overrides`.
   * @throws {TypeError} for a malformed URL, an option its kind does not take, or `cache` in `overrides`.
   * @throws {RangeError} for a duration that is not one.
   */
  fromUrl(url: string, overrides: UrlOverrides = {}): Cache {
    const { kind, options } = readCacheUrl(url)
    const where = `a ${url.slice(0, url.indexOf(':')).toLowerCase()}:// URL`
    if (!isPlainObject(overrides))
      throw new TypeError(`[oniocache] caches.fromUrl: overrides must be an object; got ${describe(overrides)}`)
    if (Object.hasOwn(overrides, 'cache')) {
      throw new TypeError('[oniocache] caches.fromUrl: the URL picks the cache class; "cache" cannot be overridden')
    }
    return this.#build({ ...options, ...defined(overrides), cache: kind.name }, where)
  }

  #entry(alias: string): CacheConfig {
    if (!Object.hasOwn(this.#config, alias)) {
      throw new InvalidCacheTypeError(
        `[oniocache] no cache alias ${describe(alias)} in the config; aliases: ` +
          `${Object.keys(this.#config).join(', ')}. ` +
          'Add it with caches.setConfig()',
      )
    }
    return copyPlain(this.#config[alias]!)
  }

  /** One cache from one config entry; every error says which alias or URL it comes from. */
  #build(entry: unknown, where: string): Cache {
    if (!isPlainObject(entry)) {
      throw new TypeError(`[oniocache] ${where}: must be an object such as { cache: 'memory' }; got ${describe(entry)}`)
    }
    const { cache, serializer, plugins, ...options } = entry
    if (cache === undefined)
      throw new TypeError(`[oniocache] ${where}: "cache" is required: ${this.#available('cache')}, or a Cache class`)
    const named = this.#resolveCache(cache, where)
    if (serializer !== undefined) options.serializer = this.#serializer(serializer, where)
    if (plugins !== undefined) options.plugins = this.#plugins(plugins, where)
    try {
      if (typeof named === 'function') return new (named as Construct<Cache>)(options)
      return cacheOfKind(named, options)
    } catch (error) {
      throw inContext(error, where)
    }
  }

  #serializer(value: unknown, where: string): unknown {
    if (isPlainObject(value) && Object.hasOwn(value, 'class'))
      return this.#instantiate('serializer', value, `${where}: serializer`)
    if (value !== null && typeof value === 'object' && typeof (value as Partial<AnySerializer>).dumps === 'function')
      return value
    throw new TypeError(
      `[oniocache] ${where}: serializer must be { class: 'JsonSerializer' } (${this.#available('serializer')}) ` +
        `or a serializer instance; got ${describe(value)}`,
    )
  }

  #plugins(value: unknown, where: string): unknown[] {
    if (!Array.isArray(value)) {
      throw new TypeError(
        `[oniocache] ${where}: plugins must be an array such as [{ class: 'TimingPlugin' }]; got ${describe(value)}`,
      )
    }
    return value.map((plugin: unknown, i) => {
      if (isPlainObject(plugin) && Object.hasOwn(plugin, 'class'))
        return this.#instantiate('plugin', plugin, `${where}: plugins[${i}]`)
      if (
        typeof plugin === 'function' ||
        (plugin !== null && typeof plugin === 'object' && typeof (plugin as Partial<Plugin>).middleware === 'function')
      ) {
        return plugin
      }
      throw new TypeError(
        `[oniocache] ${where}: plugins[${i}] must be { class: 'TimingPlugin' } (${this.#available('plugin')}), ` +
          `a plugin or a middleware function; got ${describe(plugin)}`,
      )
    })
  }

  #instantiate(sort: 'serializer' | 'plugin', spec: Record<string, unknown>, where: string): unknown {
    const { class: name, ...options } = spec
    const Ctor = this.#resolve(sort, name, where) as Construct<unknown>
    const given = Object.keys(options)
    if (given.length > 0 && TAKES_NO_OPTIONS.has(Ctor)) {
      throw new TypeError(`[oniocache] ${where}: ${Ctor.name} takes no options; got ${given.join(', ')}`)
    }
    try {
      return given.length > 0 ? new Ctor(options) : new Ctor()
    } catch (error) {
      throw inContext(error, where)
    }
  }

  /** A cache name (exact, else aiocache's dotted path) or a Cache class. */
  #resolveCache(value: unknown, where: string): CacheName {
    if (typeof value === 'function') {
      if (sortOf(value) === 'cache') return value as CacheClass
      throw new InvalidCacheTypeError(
        `[oniocache] ${where}: ${describe(value)} ${value.name === '' ? '' : `(${value.name}) `}is not a cache ` +
          `class; ${this.#available('cache')}`,
      )
    }
    if (typeof value !== 'string')
      throw new TypeError(`[oniocache] ${where}: a cache is a registered name or a class; got ${describe(value)}`)
    const found = this.#caches.get(value) ?? this.#caches.get(fromAiocache('cache', value))
    if (found === undefined)
      throw new InvalidCacheTypeError(
        `[oniocache] ${where}: unknown cache ${JSON.stringify(value)}; ${this.#available('cache')}`,
      )
    return found
  }

  /** A serializer or plugin name (exact, else aiocache's dotted path) or a class of that sort. */
  #resolve(sort: 'serializer' | 'plugin', value: unknown, where: string): AnyClass {
    if (typeof value === 'function') {
      if (sortOf(value) === sort) return value as AnyClass
      throw new InvalidCacheTypeError(
        `[oniocache] ${where}: ${describe(value)} ${value.name === '' ? '' : `(${value.name}) `}is not a ${sort} ` +
          `class; ${this.#available(sort)}`,
      )
    }
    if (typeof value !== 'string')
      throw new TypeError(`[oniocache] ${where}: a ${sort} is a registered name or a class; got ${describe(value)}`)
    const names = this.#names[sort]
    const found = names.get(value) ?? names.get(fromAiocache(sort, value))
    if (found === undefined)
      throw new InvalidCacheTypeError(
        `[oniocache] ${where}: unknown ${sort} ${JSON.stringify(value)}; ${this.#available(sort)}`,
      )
    return found
  }

  #available(sort: Sort): string {
    const names = [...(sort === 'cache' ? this.#caches : this.#names[sort]).keys()]
    return `available ${sort === 'cache' ? 'caches' : sort + 's'}: ${names.length === 0 ? 'none' : names.join(', ')}`
  }
}

/**
 * The aliases every program shares. Initially `{ default: { cache: 'memory' } }`.
 *
 * @example
 * ```ts
 * import { caches } from 'oniocache'
 *
 * caches.setConfig({
 *   default: { cache: 'memory', serializer: { class: 'StringSerializer' } },
 *   sessions: { cache: 'memory', ttl: '1h', plugins: [{ class: 'HitMissRatioPlugin' }] },
 *   // remote: { cache: 'redis', host: '127.0.0.1', port: 6379, timeout: 1 },
 * })
 * const cache = caches.get('default') // the same instance on every call
 * const mine = caches.create('sessions', { namespace: 'web' }) // a new instance on every call
 * await cache.set('n', 1)
 * console.log(await cache.get('n'), mine.ttl) // 1 3600 (StringSerializer reads back text)
 * ```
 */
export const caches = new CacheHandler()

/**
 * What a cache URL means, as a config entry (the same shape as a `setConfig`
 * alias), without building anything. Query values are read by the option's type:
 * numbers for `maxSize`/`sweepBatch`, durations (`5`, `0.25`, `'250ms'`) for
 * `ttl`/`timeout`/…, text for `namespace`. Errors never repeat the URL: it may hold a password.
 *
 * @throws {InvalidCacheTypeError} for an unknown scheme.
 * @throws {TypeError} for a malformed URL or an option its query does not take.
 * @throws {RangeError} for a duration that is not one.
 *
 * ```ts
 * parseCacheUrl('rediss://:pw@cache.local:6380/2?namespace=app&ttl=5m')
 * // { cache: 'redis', host: 'cache.local', port: 6380, db: 2, password: 'pw', tls: true, namespace: 'app', ttl: '5m' }
 * ```
 */
export function parseCacheUrl(url: string): CacheConfig {
  const { kind, options } = readCacheUrl(url)
  return { cache: kind.name, ...options }
}

// ---------------------------------------------------------------------------
// Helpers

function sortOf(ctor: unknown): Sort | undefined {
  if (typeof ctor !== 'function') return undefined
  const proto: unknown = ctor.prototype
  if (proto === null || typeof proto !== 'object') return undefined
  if (ctor === Cache || proto instanceof Cache) return 'cache'
  const methods = proto as Record<string, unknown>
  if (typeof methods.middleware === 'function') return 'plugin'
  if (typeof methods.dumps === 'function' && typeof methods.loads === 'function') return 'serializer'
  return undefined
}

/**
 * aiocache's dotted paths: `aiocache.RedisCache`, `aiocache.serializers.JsonSerializer`,
 * `aiocache.plugins.TimingPlugin`, …
 */
function fromAiocache(sort: Sort, name: string): string {
  if (!name.startsWith('aiocache.')) return name
  const last = name.slice(name.lastIndexOf('.') + 1)
  return sort === 'cache' ? (AIOCACHE_CACHES[last] ?? name) : last
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false
  const proto: unknown = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/** A deep copy of plain objects and arrays; class instances and functions are kept as they are. */
function copyPlain<T>(value: T): T {
  if (Array.isArray(value)) return value.map(copyPlain) as T
  if (!isPlainObject(value)) return value
  const out: Record<string, unknown> = {}
  for (const [key, item] of Object.entries(value)) out[key] = copyPlain(item)
  return out as T
}

/** The keys given a value: `{ namespace: undefined }` means "not given", as in a call's options. */
function defined(overrides: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(overrides)) if (value !== undefined) out[key] = copyPlain(value)
  return out
}

function aliasList(config: object): string {
  const aliases = Object.keys(config)
  return aliases.length === 0 ? 'no aliases' : `only ${aliases.map((a) => JSON.stringify(a)).join(', ')}`
}

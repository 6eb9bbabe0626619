/**
 * aiocache's `caches` and `Cache.from_url`: caches described by data (aliases in
 * a config, or a URL) and built synchronously. Names resolve through a registry
 * of classes, so a config can be plain JSON.
 */
import { MemcachedCache } from './backends/memcached.js'
import { RedisCache } from './backends/redis.js'
import { Cache, installUrlFactory, MemoryCache, type KeyBuilder } from './cache.js'
import type { Middleware, Plugin } from './context.js'
import { describe, toSeconds, type Duration } from './duration.js'
import { InvalidCacheTypeError } from './errors.js'
import { HitMissRatioPlugin } from './plugins/hit-miss-ratio.js'
import { TimingPlugin } from './plugins/timing.js'
import { JsonSerializer, MsgPackSerializer, NullSerializer, StringSerializer, V8Serializer, type AnySerializer } from './serializers.js'

/** `Cache` or a subclass (`MemoryCache`, `RedisCache`, your own), constructed with the config's options. */
export type CacheClass = new (options: never) => Cache
/** A class whose instances have `dumps` and `loads`, constructed with the spec's options. */
export type SerializerClass = new (options: never) => AnySerializer
/** A class whose instances have `middleware(ctx, next)`, such as a `BasePlugin` subclass. */
export type PluginClass = new (options: never) => Plugin

/** `{ class: 'JsonSerializer' }`; other keys are passed to the constructor as one options object. */
export interface SerializerSpec {
  class: string | SerializerClass
  [option: string]: unknown
}

/** `{ class: 'TimingPlugin' }`; other keys are passed to the constructor as one options object. */
export interface PluginSpec {
  class: string | PluginClass
  [option: string]: unknown
}

/** Everything of a cache's config but its class: what `Cache.fromUrl` takes as overrides. */
export interface CacheOverrides {
  /** A spec built anew for every cache, or an instance shared by every cache built from this config. */
  serializer?: SerializerSpec | AnySerializer
  /** Specs are built anew for every cache; plugin instances and middleware functions are shared. */
  plugins?: Array<PluginSpec | Plugin | Middleware>
  namespace?: string
  keyBuilder?: KeyBuilder
  ttl?: Duration | null
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
  default: CacheConfig
  [alias: string]: CacheConfig
}

/** Overrides for `Cache.fromUrl`: the URL picks the cache class, so `cache` is not one of them. */
export interface UrlOverrides extends CacheOverrides {
  cache?: never
}

type Kind = 'cache' | 'serializer' | 'plugin'
type AnyClass = CacheClass | SerializerClass | PluginClass
type Construct<T> = new (options?: Record<string, unknown>) => T

const BUILTIN_CACHES: ReadonlyArray<[string, CacheClass]> = [
  ['memory', MemoryCache],
  ['redis', RedisCache],
  ['memcached', MemcachedCache],
]
const BUILTIN_SERIALIZERS: readonly SerializerClass[] = [NullSerializer, StringSerializer, JsonSerializer, MsgPackSerializer, V8Serializer]
const BUILTIN_PLUGINS: readonly PluginClass[] = [HitMissRatioPlugin, TimingPlugin]
/** The shipped serializers and plugins take no options: extra keys in their spec are a mistake. */
const TAKES_NO_OPTIONS: ReadonlySet<unknown> = new Set<unknown>([...BUILTIN_SERIALIZERS, ...BUILTIN_PLUGINS])

/** aiocache's class names (the last part of `aiocache.…` dotted paths) for our cache names. */
const AIOCACHE_CACHES: Readonly<Record<string, string>> = { SimpleMemoryCache: 'memory', RedisCache: 'redis', MemcachedCache: 'memcached' }

/**
 * Aliases and names: `caches` is the one every program shares (and the one
 * `Cache.fromUrl` resolves names with); `new CacheHandler()` makes an independent one.
 */
export class CacheHandler {
  readonly #names: Record<Kind, Map<string, AnyClass>> = {
    cache: new Map(BUILTIN_CACHES),
    serializer: new Map(BUILTIN_SERIALIZERS.map((ctor) => [ctor.name, ctor])),
    plugin: new Map(BUILTIN_PLUGINS.map((ctor) => [ctor.name, ctor])),
  }
  #config: CachesConfig = { default: { cache: 'memory' } }
  #instances = new Map<string, Cache>()

  /**
   * Names a class for configs and URLs. What it names is told from the class: a
   * `Cache` subclass, a plugin (`middleware` method) or a serializer (`dumps` and
   * `loads` methods). A name registered again is replaced, built-in names included.
   */
  register(name: string, ctor: CacheClass | SerializerClass | PluginClass): this {
    if (typeof name !== 'string' || name === '') throw new TypeError(`[oniocache] caches.register: name must be a non-empty string; got ${describe(name)}`)
    const kind = kindOf(ctor)
    if (kind === undefined) {
      throw new TypeError(
        `[oniocache] caches.register(${JSON.stringify(name)}): expected a Cache subclass, a serializer class (dumps/loads methods) or a plugin class (a middleware method); got ${describe(ctor)}`,
      )
    }
    this.#names[kind].set(name, ctor)
    return this
  }

  /**
   * Replaces every alias. The whole config is checked first, by building one
   * instance of each alias (constructors do no I/O): if anything is wrong, this
   * throws and nothing changes. Those instances are the ones `get` answers from
   * now on; instances handed out before are forgotten, not closed.
   */
  setConfig(config: CachesConfig): void {
    if (!isPlainObject(config)) throw new TypeError(`[oniocache] caches.setConfig: the config must be an object of aliases ({ default: { cache: 'memory' }, … }); got ${describe(config)}`)
    if (!Object.hasOwn(config, 'default')) {
      throw new TypeError(`[oniocache] caches.setConfig: the config must have a "default" alias (such as default: { cache: 'memory' }); it has ${aliasList(config)}`)
    }
    const copy = copyPlain(config)
    const instances = new Map<string, Cache>()
    for (const alias of Object.keys(copy)) instances.set(alias, this.#build(copy[alias], `alias ${JSON.stringify(alias)}`))
    this.#config = copy
    this.#instances = instances
  }

  /** A copy of the current config: changing it changes nothing until given to `setConfig`. */
  getConfig(): CachesConfig {
    return copyPlain(this.#config)
  }

  /** The cache of `alias`: the same instance on every call until `setConfig` is called again. */
  get(alias: string): Cache {
    let cache = this.#instances.get(alias)
    if (cache === undefined) {
      cache = this.#build(this.#entry(alias), `alias ${JSON.stringify(alias)}`)
      this.#instances.set(alias, cache)
    }
    return cache
  }

  /** A new cache on every call, from the alias' config with `overrides` merged over it (one level deep, as aiocache does). */
  create(alias: string, overrides: Partial<CacheConfig> = {}): Cache {
    const entry = this.#entry(alias)
    if (!isPlainObject(overrides)) throw new TypeError(`[oniocache] caches.create(${JSON.stringify(alias)}): overrides must be an object; got ${describe(overrides)}`)
    return this.#build({ ...entry, ...defined(overrides) }, `alias ${JSON.stringify(alias)}`)
  }

  /** `Cache.fromUrl` with this handler's names. */
  fromUrl(url: string, overrides: UrlOverrides = {}): Cache {
    const scheme = schemeOf(url)
    const available = Object.keys(SCHEMES).filter((s) => this.#names.cache.has(SCHEMES[s]!.cache))
    if (Object.hasOwn(SCHEMES, scheme) && !available.includes(scheme)) {
      const name = SCHEMES[scheme]!.cache
      throw new InvalidCacheTypeError(
        `[oniocache] ${scheme}:// needs the ${JSON.stringify(name)} cache, which is not available yet: register one with caches.register(${JSON.stringify(name)}, CacheClass); available schemes: ${available.map((s) => s + '://').join(', ')}`,
      )
    }
    const config = parseUrl(url, available)
    if (!isPlainObject(overrides)) throw new TypeError(`[oniocache] Cache.fromUrl: overrides must be an object; got ${describe(overrides)}`)
    if (Object.hasOwn(overrides, 'cache')) throw new TypeError('[oniocache] Cache.fromUrl: the URL picks the cache class; "cache" cannot be overridden')
    return this.#build({ ...config, ...defined(overrides) }, `a ${scheme}:// URL`)
  }

  #entry(alias: string): CacheConfig {
    if (!Object.hasOwn(this.#config, alias)) {
      throw new InvalidCacheTypeError(`[oniocache] no cache alias ${describe(alias)} in the config; aliases: ${Object.keys(this.#config).join(', ')}. Add it with caches.setConfig()`)
    }
    return copyPlain(this.#config[alias]!)
  }

  /** One cache from one config entry; every error says which alias or URL it comes from. */
  #build(entry: unknown, where: string): Cache {
    if (!isPlainObject(entry)) throw new TypeError(`[oniocache] ${where}: must be an object such as { cache: 'memory' }; got ${describe(entry)}`)
    const { cache, serializer, plugins, ...options } = entry
    if (cache === undefined) throw new TypeError(`[oniocache] ${where}: "cache" is required: ${this.#available('cache')}, or a Cache class`)
    const Ctor = this.#resolve('cache', cache, where) as Construct<Cache>
    if (serializer !== undefined) options.serializer = this.#serializer(serializer, where)
    if (plugins !== undefined) options.plugins = this.#plugins(plugins, where)
    try {
      return new Ctor(options)
    } catch (error) {
      throw inContext(error, where)
    }
  }

  #serializer(value: unknown, where: string): unknown {
    if (isPlainObject(value) && Object.hasOwn(value, 'class')) return this.#instantiate('serializer', value, `${where}: serializer`)
    if (value !== null && typeof value === 'object' && typeof (value as Partial<AnySerializer>).dumps === 'function') return value
    throw new TypeError(`[oniocache] ${where}: serializer must be { class: 'JsonSerializer' } (${this.#available('serializer')}) or a serializer instance; got ${describe(value)}`)
  }

  #plugins(value: unknown, where: string): unknown[] {
    if (!Array.isArray(value)) throw new TypeError(`[oniocache] ${where}: plugins must be an array such as [{ class: 'TimingPlugin' }]; got ${describe(value)}`)
    return value.map((plugin: unknown, i) => {
      if (isPlainObject(plugin) && Object.hasOwn(plugin, 'class')) return this.#instantiate('plugin', plugin, `${where}: plugins[${i}]`)
      if (typeof plugin === 'function' || (plugin !== null && typeof plugin === 'object' && typeof (plugin as Partial<Plugin>).middleware === 'function')) return plugin
      throw new TypeError(`[oniocache] ${where}: plugins[${i}] must be { class: 'TimingPlugin' } (${this.#available('plugin')}), a plugin or a middleware function; got ${describe(plugin)}`)
    })
  }

  #instantiate(kind: 'serializer' | 'plugin', spec: Record<string, unknown>, where: string): unknown {
    const { class: name, ...options } = spec
    const Ctor = this.#resolve(kind, name, where) as Construct<unknown>
    const given = Object.keys(options)
    if (given.length > 0 && TAKES_NO_OPTIONS.has(Ctor)) throw new TypeError(`[oniocache] ${where}: ${Ctor.name} takes no options; got ${given.join(', ')}`)
    try {
      return given.length > 0 ? new Ctor(options) : new Ctor()
    } catch (error) {
      throw inContext(error, where)
    }
  }

  /** A name (exact, else aiocache's dotted path) or a class of the right kind. */
  #resolve(kind: Kind, value: unknown, where: string): AnyClass {
    if (typeof value === 'function') {
      if (kindOf(value) === kind) return value as AnyClass
      throw new InvalidCacheTypeError(`[oniocache] ${where}: ${describe(value)} ${value.name === '' ? '' : `(${value.name}) `}is not a ${kind} class; ${this.#available(kind)}`)
    }
    if (typeof value !== 'string') throw new TypeError(`[oniocache] ${where}: a ${kind} is a registered name or a class; got ${describe(value)}`)
    const names = this.#names[kind]
    const found = names.get(value) ?? names.get(fromAiocache(kind, value))
    if (found === undefined) throw new InvalidCacheTypeError(`[oniocache] ${where}: unknown ${kind} ${JSON.stringify(value)}; ${this.#available(kind)}`)
    return found
  }

  #available(kind: Kind): string {
    const names = [...this.#names[kind].keys()]
    return `available ${kind === 'cache' ? 'caches' : kind + 's'}: ${names.length === 0 ? 'none' : names.join(', ')}`
  }
}

/** The aliases every program shares. Initially `{ default: { cache: 'memory' } }`. */
export const caches = new CacheHandler()

installUrlFactory((url, overrides) => caches.fromUrl(url, overrides))

// ---------------------------------------------------------------------------
// URLs

type QueryKind = 'string' | 'duration' | 'integer'

interface Scheme {
  /** The registered cache name the scheme builds. */
  cache: string
  /** Options the query string may set, and how their text is read. */
  query: Readonly<Record<string, QueryKind>>
  /** Options from the part between `//` and `?`. */
  location(userinfo: string | undefined, hosts: string, path: string, scheme: string): Record<string, unknown>
}

const COMMON_QUERY = { namespace: 'string', ttl: 'duration', timeout: 'duration' } as const
const REDIS_QUERY = { ...COMMON_QUERY, connectTimeout: 'duration' } as const

/** Every scheme `parseCacheUrl` reads. memcached:// builds once a "memcached" cache is registered. */
const SCHEMES: Readonly<Record<string, Scheme>> = {
  memory: { cache: 'memory', query: { ...COMMON_QUERY, maxSize: 'integer', sweepInterval: 'duration', sweepBatch: 'integer' }, location: memoryLocation },
  redis: { cache: 'redis', query: REDIS_QUERY, location: redisLocation },
  rediss: { cache: 'redis', query: REDIS_QUERY, location: redisLocation },
  memcached: { cache: 'memcached', query: COMMON_QUERY, location: memcachedLocation },
}

const URL_FORMS = 'memory://, redis://[[user]:password@]host[:port][/db], rediss://…, memcached://host:port[,host:port]'
const ENCODE_HINT = 'characters such as / ? # @ : in a user or password must be percent-encoded'

/**
 * What a cache URL means, as a config entry (the same shape as a `setConfig`
 * alias), without building anything. Query values are read by the option's type:
 * numbers for `maxSize`/`sweepBatch`, durations (`5`, `0.25`, `'250ms'`) for
 * `ttl`/`timeout`/…, text for `namespace`. Errors never repeat the URL: it may hold a password.
 *
 * ```ts
 * parseCacheUrl('rediss://:pw@cache.local:6380/2?namespace=app&ttl=5m')
 * // { cache: 'redis', host: 'cache.local', port: 6380, db: 2, password: 'pw', tls: true, namespace: 'app', ttl: '5m' }
 * ```
 */
export function parseCacheUrl(url: string): CacheConfig {
  return parseUrl(url, Object.keys(SCHEMES))
}

function parseUrl(url: string, available: readonly string[]): CacheConfig {
  const scheme = schemeOf(url)
  const known = Object.hasOwn(SCHEMES, scheme) ? SCHEMES[scheme] : undefined
  if (known === undefined) {
    throw new InvalidCacheTypeError(`[oniocache] unknown cache URL scheme ${JSON.stringify(scheme + '://')}; available: ${available.map((s) => s + '://').join(', ')}`)
  }
  const m = /^[^:]+:\/\/([^/?#]*)([^?#]*)(?:\?([^#]*))?(#.*)?$/s.exec(url)!
  const [, authority = '', path = '', query = '', fragment] = m
  // An @ past the host means a / ? or # in the user info cut the URL short: reading on could echo part of a password.
  if ((path + query + (fragment ?? '')).includes('@')) throw new TypeError(`[oniocache] a ${scheme}:// URL has an "@" after its host: ${ENCODE_HINT} (and an @ in a query value as %40)`)
  if (fragment !== undefined) throw new TypeError(`[oniocache] a ${scheme}:// URL takes no #fragment`)
  const at = authority.lastIndexOf('@')
  const userinfo = at === -1 ? undefined : authority.slice(0, at)
  const hosts = authority.slice(at + 1)
  const config: CacheConfig = { cache: known.cache, ...known.location(userinfo, hosts, path, scheme) }
  const params = new URLSearchParams(query)
  for (const name of new Set(params.keys())) {
    const kind = Object.hasOwn(known.query, name) ? known.query[name] : undefined
    if (kind === undefined) {
      throw new TypeError(`[oniocache] unknown option ${JSON.stringify(name)} in a ${scheme}:// URL; the query takes: ${Object.keys(known.query).join(', ')}`)
    }
    const values = params.getAll(name)
    if (values.length > 1) throw new TypeError(`[oniocache] option ${JSON.stringify(name)} is given ${values.length} times in a ${scheme}:// URL`)
    config[name] = queryValue(name, values[0]!, kind, scheme)
  }
  return config
}

/** The scheme, lower-cased; a TypeError that does not echo the input if there is none. */
function schemeOf(url: unknown): string {
  if (typeof url !== 'string') throw new TypeError(`[oniocache] a cache URL must be a string such as redis://127.0.0.1:6379/0; got ${describe(url)}`)
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url)
  if (m === null) throw new TypeError(`[oniocache] not a cache URL (it must start with a scheme and "://"); URLs look like ${URL_FORMS}`)
  return m[1]!.toLowerCase()
}

function queryValue(name: string, text: string, kind: QueryKind, scheme: string): unknown {
  switch (kind) {
    case 'string':
      return text
    case 'integer':
      if (!/^\d+$/.test(text)) throw new TypeError(`[oniocache] option ${JSON.stringify(name)} in a ${scheme}:// URL must be an integer; got ${describe(text)}`)
      return Number(text)
    case 'duration': {
      const value = /^(\d+(\.\d*)?|\.\d+)$/.test(text) ? Number(text) : text
      toSeconds(value, `${name} in a ${scheme}:// URL`)
      return value
    }
  }
}

function memoryLocation(userinfo: string | undefined, hosts: string, path: string): Record<string, unknown> {
  if (userinfo !== undefined || hosts !== '' || (path !== '' && path !== '/')) {
    throw new TypeError('[oniocache] a memory:// URL takes no host, user, password or path: options go in the query, such as memory://?maxSize=1000&ttl=60')
  }
  return {}
}

function redisLocation(userinfo: string | undefined, hosts: string, path: string, scheme: string): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  if (hosts.includes(',')) throw new TypeError(`[oniocache] a ${scheme}:// URL takes one host; for a Redis Cluster pass the cluster option ([{ url }] or ['host:port'])`)
  const { host, port } = hostPort(hosts, scheme)
  if (host !== '') out.host = host
  if (port !== undefined) out.port = port
  if (path !== '' && path !== '/') {
    if (!/^\/\d+$/.test(path)) throw new TypeError(`[oniocache] the path of a ${scheme}:// URL is the database number, such as /2 (${ENCODE_HINT})`)
    out.db = Number(path.slice(1))
  }
  if (userinfo !== undefined) {
    const colon = userinfo.indexOf(':')
    const username = decode(colon === -1 ? userinfo : userinfo.slice(0, colon), scheme)
    const password = colon === -1 ? '' : decode(userinfo.slice(colon + 1), scheme)
    if (username !== '') out.username = username
    if (password !== '') out.password = password
  }
  if (scheme === 'rediss') out.tls = true
  return out
}

function memcachedLocation(userinfo: string | undefined, hosts: string, path: string): Record<string, unknown> {
  if (userinfo !== undefined) throw new TypeError('[oniocache] a memcached:// URL takes no user or password: the meta protocol has no authentication')
  if (path !== '' && path !== '/') throw new TypeError('[oniocache] a memcached:// URL takes no path: servers are host:port pairs separated by commas')
  if (hosts === '') return {}
  const servers = hosts.split(',').map((server) => {
    const { host, port = 11211 } = hostPort(server, 'memcached')
    if (host === '') throw new TypeError('[oniocache] every server of a memcached:// URL needs a host, such as memcached://10.0.0.1:11211,10.0.0.2:11211')
    return `${host.includes(':') ? `[${host}]` : host}:${port}`
  })
  return { servers }
}

/** `host`, `host:port`, `[v6]` or `[v6]:port`; the host comes back without brackets. */
function hostPort(text: string, scheme: string): { host: string; port?: number } {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]*))(?::(\d*))?$/.exec(text)
  if (m === null) throw new TypeError(`[oniocache] a ${scheme}:// URL has a host that cannot be read (expected host:port or [IPv6]:port; ${ENCODE_HINT})`)
  const host = m[1] ?? m[2]!
  if (m[3] === undefined || m[3] === '') return { host }
  const port = Number(m[3])
  if (port < 1 || port > 65535) throw new TypeError(`[oniocache] a ${scheme}:// URL has a port out of range (1 to 65535)`)
  return { host, port }
}

function decode(text: string, scheme: string): string {
  try {
    return decodeURIComponent(text)
  } catch {
    throw new TypeError(`[oniocache] a ${scheme}:// URL has a user or password with a malformed %-escape`)
  }
}

// ---------------------------------------------------------------------------
// Helpers

function kindOf(ctor: unknown): Kind | undefined {
  if (typeof ctor !== 'function') return undefined
  const proto: unknown = ctor.prototype
  if (proto === null || typeof proto !== 'object') return undefined
  if (ctor === Cache || proto instanceof Cache) return 'cache'
  const methods = proto as Record<string, unknown>
  if (typeof methods.middleware === 'function') return 'plugin'
  if (typeof methods.dumps === 'function' && typeof methods.loads === 'function') return 'serializer'
  return undefined
}

/** aiocache's dotted paths: `aiocache.RedisCache`, `aiocache.serializers.JsonSerializer`, `aiocache.plugins.TimingPlugin`, … */
function fromAiocache(kind: Kind, name: string): string {
  if (!name.startsWith('aiocache.')) return name
  const last = name.slice(name.lastIndexOf('.') + 1)
  return kind === 'cache' ? (AIOCACHE_CACHES[last] ?? name) : last
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

const REWRAPPED: ReadonlySet<unknown> = new Set<unknown>([TypeError, RangeError, InvalidCacheTypeError])

/** A constructor's TypeError, RangeError or InvalidCacheTypeError again (subclasses are left alone), saying which alias or URL it comes from. */
function inContext(error: unknown, where: string): unknown {
  if (!(error instanceof Error) || !REWRAPPED.has(error.constructor)) return error
  const Same = error.constructor as new (message: string, options: ErrorOptions) => Error
  return new Same(`[oniocache] ${where}: ${error.message.replace(/^\[oniocache\] /, '')}`, { cause: error })
}

import type { Backend } from './backends/backend.js'
import { MemoryBackend, type MemoryBackendOptions } from './backends/memory.js'
import { CommandContext, composeChain, run, type Composed } from './chain.js'
import type { UrlOverrides } from './config.js'
import { type CommandArgs, type CommandName, type Middleware, type Plugin } from './context.js'
import { describe, toSeconds, type Duration } from './duration.js'
import { HitMissRatioPlugin, type HitMissRatio } from './plugins/hit-miss-ratio.js'
import { TimingPlugin, type Profiling } from './plugins/timing.js'
import { JsonSerializer, NullSerializer, type AnySerializer } from './serializers.js'

export type KeyBuilder = (key: string, namespace: string) => string

export interface CacheOptions {
  /** Where entries live. Default: a new in-process `MemoryBackend`. */
  backend?: Backend
  /** Default: `NullSerializer` on the memory backend, `JsonSerializer` elsewhere. */
  serializer?: AnySerializer
  /** Middleware functions or plugins, the first outermost. */
  plugins?: Array<Plugin | Middleware>
  /** Prefix of every key, joined by `keyBuilder`. Default `''`. */
  namespace?: string
  /** Default: `namespace + ':' + key`, or the key alone when the namespace is `''`. */
  keyBuilder?: KeyBuilder
  /** Default ttl in **seconds** (or `'10s'`, `'5m'`…). Default: none. */
  ttl?: Duration | null
  /** Bound on every command in **seconds**. Default `5`; `0` or `null` disables it. */
  timeout?: Duration | null
}

export interface MemoryCacheOptions extends Omit<CacheOptions, 'backend'>, MemoryBackendOptions {}

interface KeyOptions {
  namespace?: string
  timeout?: Duration | null
}
export interface GetOptions<T = unknown> extends KeyOptions {
  default?: T
  loads?: (stored: unknown) => unknown
}
export interface MultiGetOptions extends KeyOptions {
  loads?: (stored: unknown) => unknown
}
export interface SetOptions extends KeyOptions {
  ttl?: Duration | null
  dumps?: (value: unknown) => unknown
  /** The stored value seen earlier: write only if it is still the stored one. */
  casToken?: unknown
}
export type AddOptions = Omit<SetOptions, 'casToken'>
export type MultiSetOptions = Omit<SetOptions, 'casToken'>
export interface ClearOptions {
  namespace?: string
  timeout?: Duration | null
}

const CACHE_OPTIONS = new Set(['backend', 'serializer', 'plugins', 'namespace', 'keyBuilder', 'ttl', 'timeout'])
const MEMORY_OPTIONS = new Set(['maxSize', 'clock', 'sweepInterval', 'sweepBatch'])

const defaultKeyBuilder: KeyBuilder = (key, namespace) => (namespace === '' ? key : namespace + ':' + key)

type UrlFactory = (url: string, overrides?: UrlOverrides) => Cache
/** Set by config.ts, which cache.ts cannot import: the backends it names extend Cache. */
let urlFactory: UrlFactory | undefined

/** @internal config.ts hands `Cache.fromUrl` its implementation. */
export function installUrlFactory(factory: UrlFactory): void {
  urlFactory = factory
}

/**
 * An asynchronous cache. Every command builds a context and runs it through the
 * chain: the timeout, then the plugins in order, then the core step (key,
 * serializer, backend).
 */
export class Cache {
  /**
   * A cache from a URL, built synchronously and without connecting:
   * `memory://?maxSize=100`, `redis://[[user]:password@]host[:port][/db]?namespace=app&ttl=5`,
   * `rediss://…` (TLS), `memcached://host:port,host:port`. `overrides` go over what the URL says.
   */
  static fromUrl(url: string, overrides?: UrlOverrides): Cache {
    if (urlFactory === undefined) throw new Error("[oniocache] Cache.fromUrl needs oniocache's config module: import Cache from 'oniocache'")
    return urlFactory(url, overrides)
  }

  /** Where entries live. */
  readonly backend: Backend
  /** Builds the key that reaches the backend. */
  readonly keyBuilder: KeyBuilder
  #serializer!: AnySerializer
  #namespace = ''
  #ttl: number | null = null
  #timeout: number | null = 5
  #plugins: ReadonlyArray<Plugin | Middleware> = []
  #chain: Composed = undefined
  readonly #disabled = process.env.ONIOCACHE_DISABLE === '1'

  constructor(options: CacheOptions = {}) {
    checkOptions(options, CACHE_OPTIONS, 'Cache')
    const { backend, serializer, plugins = [], namespace = '', keyBuilder = defaultKeyBuilder, ttl = null, timeout = 5 } = options
    if (backend !== undefined && (backend === null || typeof backend !== 'object' || typeof backend.get !== 'function')) {
      throw new TypeError(`[oniocache] backend must be a Backend instance (such as new MemoryBackend()); got ${describe(backend)}`)
    }
    if (typeof keyBuilder !== 'function') throw new TypeError(`[oniocache] keyBuilder must be a function (key, namespace) => string; got ${describe(keyBuilder)}`)
    this.backend = backend ?? new MemoryBackend()
    this.keyBuilder = keyBuilder
    this.serializer = serializer ?? (this.backend instanceof MemoryBackend ? new NullSerializer() : new JsonSerializer())
    this.namespace = namespace
    this.ttl = ttl
    this.timeout = timeout
    this.plugins = plugins
  }

  /** Prefix of every key. */
  get namespace(): string {
    return this.#namespace
  }
  set namespace(namespace: string) {
    if (typeof namespace !== 'string') throw new TypeError(`[oniocache] namespace must be a string; got ${describe(namespace)}`)
    this.#namespace = namespace
  }

  /** Default ttl in seconds, `null` for none. Assign seconds or a string such as `'5m'`. */
  get ttl(): number | null {
    return this.#ttl
  }
  set ttl(ttl: Duration | null) {
    const seconds = toSeconds(ttl, 'ttl')
    this.#ttl = seconds === 0 ? null : seconds
  }

  /** Bound on every command in seconds, `null` for none. Assign seconds or a string such as `'250ms'`. */
  get timeout(): number | null {
    return this.#timeout
  }
  set timeout(timeout: Duration | null) {
    const seconds = toSeconds(timeout, 'timeout')
    this.#timeout = seconds === 0 ? null : seconds
  }

  get serializer(): AnySerializer {
    return this.#serializer
  }
  set serializer(serializer: AnySerializer) {
    if (serializer === null || typeof serializer !== 'object' || typeof serializer.dumps !== 'function' || typeof serializer.loads !== 'function') {
      throw new TypeError(`[oniocache] serializer must have dumps(value) and loads(stored) methods, such as new JsonSerializer(); got ${describe(serializer)}`)
    }
    this.#serializer = serializer
  }

  /** The plugins in chain order, first outermost. Assigning recomposes the chain. */
  get plugins(): ReadonlyArray<Plugin | Middleware> {
    return this.#plugins
  }
  set plugins(plugins: ReadonlyArray<Plugin | Middleware>) {
    if (!Array.isArray(plugins)) throw new TypeError(`[oniocache] plugins must be an array of plugins or middleware functions; got ${describe(plugins)}`)
    this.#chain = composeChain(plugins)
    this.#plugins = Object.freeze([...plugins])
  }

  /** Appends a plugin or middleware (innermost so far) and answers the cache. */
  use(plugin: Plugin | Middleware): this {
    this.plugins = [...this.#plugins, plugin]
    return this
  }

  /** `TimingPlugin`'s figures, when the cache has one. */
  get profiling(): Profiling | undefined {
    return this.#plugins.find((p): p is TimingPlugin => p instanceof TimingPlugin)?.profiling
  }

  /** `HitMissRatioPlugin`'s figures, when the cache has one. */
  get hitMissRatio(): HitMissRatio | undefined {
    return this.#plugins.find((p): p is HitMissRatioPlugin => p instanceof HitMissRatioPlugin)?.hitMissRatio
  }

  /** The key that reaches the backend. */
  buildKey(key: string, namespace: string = this.#namespace): string {
    if (typeof key !== 'string') throw new TypeError(`[oniocache] buildKey: a key must be a string; got ${describe(key)}`)
    if (typeof namespace !== 'string') throw new TypeError(`[oniocache] namespace must be a string; got ${describe(namespace)}`)
    const built = this.keyBuilder(key, namespace)
    if (typeof built !== 'string') throw new TypeError(`[oniocache] keyBuilder must return a string; it returned ${describe(built)}`)
    return built
  }

  /** Stores a value only if the key is absent; rejects with `KeyExistsError` otherwise. */
  add(key: string, value: unknown, options?: AddOptions): Promise<true> {
    return this.#run('add', { key, value, ttl: options?.ttl, namespace: options?.namespace, dumps: options?.dumps, timeout: options?.timeout }, options) as Promise<true>
  }

  /** The value, or `default`, or `undefined` for a miss. */
  get<T = unknown>(key: string, options?: GetOptions<T>): Promise<T | undefined> {
    return this.#run('get', { key, default: options?.default, namespace: options?.namespace, loads: options?.loads, timeout: options?.timeout }, options) as Promise<T | undefined>
  }

  /** Values in key order, `undefined` for misses. */
  multiGet<T = unknown>(keys: Iterable<string>, options?: MultiGetOptions): Promise<Array<T | undefined>> {
    return this.#run('multiGet', { keys, namespace: options?.namespace, loads: options?.loads, timeout: options?.timeout }, options) as Promise<Array<T | undefined>>
  }

  /** `true`; with `casToken`, `false` when the stored value changed since it was read. */
  set(key: string, value: unknown, options?: SetOptions): Promise<boolean> {
    return this.#run(
      'set',
      { key, value, ttl: options?.ttl, namespace: options?.namespace, dumps: options?.dumps, timeout: options?.timeout, casToken: options?.casToken },
      options,
    ) as Promise<boolean>
  }

  /** Stores every `[key, value]` pair of any iterable (array of pairs, Map, `Object.entries`). */
  multiSet(pairs: Iterable<readonly [string, unknown]>, options?: MultiSetOptions): Promise<true> {
    return this.#run('multiSet', { pairs, ttl: options?.ttl, namespace: options?.namespace, dumps: options?.dumps, timeout: options?.timeout }, options) as Promise<true>
  }

  /** Number of keys deleted: 0 or 1. */
  delete(key: string, options?: KeyOptions): Promise<number> {
    return this.#run('delete', { key, namespace: options?.namespace, timeout: options?.timeout }, options) as Promise<number>
  }

  exists(key: string, options?: KeyOptions): Promise<boolean> {
    return this.#run('exists', { key, namespace: options?.namespace, timeout: options?.timeout }, options) as Promise<boolean>
  }

  /** Adds `delta` (default 1) to an integer value; a missing key starts at 0. */
  increment(key: string, delta: number = 1, options?: KeyOptions): Promise<number> {
    return this.#run('increment', { key, delta, namespace: options?.namespace, timeout: options?.timeout }, options) as Promise<number>
  }

  /** Sets the key's ttl in seconds (`0` or `null` removes it); `false` if the key is missing. */
  expire(key: string, ttl: Duration | null, options?: KeyOptions): Promise<boolean> {
    return this.#run('expire', { key, ttl, namespace: options?.namespace, timeout: options?.timeout }, options) as Promise<boolean>
  }

  /**
   * Removes the keys under `namespace` (default: the cache's own). Only a cache
   * whose namespace is `''` empties the whole store.
   */
  clear(options?: ClearOptions): Promise<true> {
    return this.#run('clear', { namespace: options?.namespace, timeout: options?.timeout }, options) as Promise<true>
  }

  /** Passes a command to the backend as given: on memory, a `Map` method. */
  raw(command: string, ...args: unknown[]): Promise<unknown> {
    return this.#run('raw', { command, args }, undefined)
  }

  /** Releases connections and timers; the cache works again on the next command. */
  close(): Promise<void> {
    return this.#run('close', {}, undefined) as Promise<void>
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }

  #run(command: CommandName, args: CommandArgs, options: object | undefined): Promise<unknown> {
    if (options !== undefined && !isPlainOptions(options, command)) return Promise.reject(optionsError(options, command))
    const ctx = new CommandContext(this, command, args)
    if (this.#disabled) return Promise.resolve(neutral(ctx))
    return run(ctx, this.#chain, this.#timeout ?? 0)
  }
}

/**
 * The memory cache as aiocache's `SimpleMemoryCache`: the memory backend with
 * `NullSerializer` (values are kept as they are, not copied).
 */
export class MemoryCache extends Cache {
  declare readonly backend: MemoryBackend
  constructor(options: MemoryCacheOptions = {}) {
    const [memory, rest] = splitOptions<MemoryBackendOptions>(options, MEMORY_OPTIONS, 'MemoryCache')
    super({ serializer: new NullSerializer(), ...rest, backend: new MemoryBackend(memory) })
  }
}

/**
 * Splits the options of a backend's cache class into the backend's and the
 * cache's, rejecting any that belong to neither (and `backend` itself).
 */
export function splitOptions<B>(options: object, backendOptions: Iterable<string>, what: string): [B, Omit<CacheOptions, 'backend'>] {
  const own = new Set(backendOptions)
  checkOptions(options, new Set([...CACHE_OPTIONS, ...own].filter((o) => o !== 'backend')), what)
  const backend: Record<string, unknown> = {}
  const rest: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(options)) {
    if (own.has(name)) backend[name] = value
    else rest[name] = value
  }
  return [backend as B, rest as Omit<CacheOptions, 'backend'>]
}

/** aiocache's name for `MemoryCache`. */
export const SimpleMemoryCache = MemoryCache
export type SimpleMemoryCache = MemoryCache

const COMMAND_OPTIONS: Partial<Record<CommandName, ReadonlySet<string>>> = {
  add: new Set(['ttl', 'namespace', 'dumps', 'timeout']),
  get: new Set(['default', 'namespace', 'loads', 'timeout']),
  multiGet: new Set(['namespace', 'loads', 'timeout']),
  set: new Set(['ttl', 'namespace', 'dumps', 'timeout', 'casToken']),
  multiSet: new Set(['ttl', 'namespace', 'dumps', 'timeout']),
  delete: new Set(['namespace', 'timeout']),
  exists: new Set(['namespace', 'timeout']),
  increment: new Set(['namespace', 'timeout']),
  expire: new Set(['namespace', 'timeout']),
  clear: new Set(['namespace', 'timeout']),
}

function isPlainOptions(options: object, command: CommandName): boolean {
  if (options === null || typeof options !== 'object') return false
  const known = COMMAND_OPTIONS[command]!
  for (const name in options) if (!known.has(name)) return false
  return true
}

function optionsError(options: unknown, command: CommandName): TypeError {
  const known = [...COMMAND_OPTIONS[command]!].join(', ')
  if (options === null || typeof options !== 'object') {
    return new TypeError(`[oniocache] ${command}: options must be an object ({ ${known} }); got ${describe(options)}`)
  }
  const unknown = Object.keys(options).filter((name) => !COMMAND_OPTIONS[command]!.has(name))
  return new TypeError(`[oniocache] ${command}: unknown option ${unknown.map((n) => JSON.stringify(n)).join(', ')}; known: ${known}`)
}

function checkOptions(options: object, known: ReadonlySet<string>, what: string): void {
  if (options === null || typeof options !== 'object') throw new TypeError(`[oniocache] ${what} options must be an object; got ${describe(options)}`)
  for (const name of Object.keys(options)) {
    if (!known.has(name)) throw new TypeError(`[oniocache] ${what}: unknown option ${JSON.stringify(name)}; known: ${[...known].join(', ')}`)
  }
}

/** What a command answers when ONIOCACHE_DISABLE=1. */
function neutral(ctx: CommandContext): unknown {
  switch (ctx.command) {
    case 'set': case 'add': case 'multiSet': case 'clear': return true
    case 'delete': return 0
    case 'exists': case 'expire': return false
    case 'increment': return ctx.args.delta
    case 'multiGet': {
      const keys = ctx.args.keys
      return keys !== null && typeof keys === 'object' && Symbol.iterator in keys ? Array.from(keys, () => undefined) : []
    }
    default: return undefined
  }
}


import { type Clock, monotonic } from '../util/clock.js'
import { describe } from '../util/describe.js'
import { type Duration, toSeconds } from '../util/duration.js'
import { checkOptions } from '../util/options.js'
import type { Backend } from './backend.js'
import { core, coreGet, neutral, timedCore } from './commands.js'
import { type Chain, commandLayerOf, compose, innermost, type Layer, layerOf, syncLayer } from './compose.js'
import { type CommandArgs, CommandContext, type Middleware, type Plugin } from './context.js'
import { type Factory, GET_OR_SET_DEFAULTS, type GetOrSetDefaults } from './get-or-set.js'
import {
  type AddOptions,
  type ClearOptions,
  COMMANDS,
  type CommandName,
  checkTuning,
  type DeleteOptions,
  type ExistsOptions,
  type ExpireOptions,
  type GetOptions,
  type GetOrSetOptions,
  getOrSetArgs,
  type IncrementOptions,
  type InvalidateTagsOptions,
  type MultiGetOptions,
  type MultiSetOptions,
  type SetOptions,
  withOptions,
} from './options.js'
import { bare, bareGet, bareGetOrSet, run, timeout } from './run.js'
import type { AnySerializer } from './serializer.js'

/**
 * Builds the key that reaches the backend from the caller's key and the namespace in effect (the call's, else the
 * cache's). The default joins them as `namespace + ':' + key`, or answers the key alone when the namespace is `''`;
 * {@link plainKeys} joins them with nothing between. It must answer a string.
 */
export type KeyBuilder = (key: string, namespace: string) => string

/** What every cache takes. */
export interface CacheOptions {
  /** Middleware functions or plugins, the first outermost. */
  plugins?: ReadonlyArray<Plugin | Middleware>
  /** Prefix of every key, joined by `keyBuilder`. Default `''`. */
  namespace?: string
  /** Default: `namespace + ':' + key`, or the key alone when the namespace is `''`. */
  keyBuilder?: KeyBuilder
  /** Default ttl in **seconds** (or `'10s'`, `'5m'`…). Default: none. */
  ttl?: Duration | null
  /** Bound on every command in **seconds**. Default `5`; `0` or `null` disables it. */
  timeout?: Duration | null
  /** Options of every `getOrSet` of the cache (`grace`, `softTimeout`, …), which a call's own options override. */
  defaults?: GetOrSetDefaults
  /**
   * Where the wall-clock time of `getOrSet`'s logical expiry and backoff comes from, in milliseconds since the
   * epoch. Default `Date`; a memory cache's backend reads the same clock.
   */
  clock?: Clock
}

/** The options of `BaseCache`: a backend and a serializer, which `Cache` and its subclasses choose by default. */
export interface BaseCacheOptions extends CacheOptions {
  /** Where entries live. */
  backend: Backend
  /** How values become what the backend stores. */
  serializer: AnySerializer
}

/** Lookups counted by `HitMissRatioPlugin` (`multiGet` counts every key). */
export interface HitMissRatio {
  /** Lookups that found a value: one per `get` hit, one per key found by a `multiGet`. */
  hits: number
  /** Lookups made: one per `get`, one per key asked of a `multiGet`. */
  total: number
  /** `hits / total`, 0 before any lookup. */
  hitRatio: number
}

/**
 * `TimingPlugin`'s figures per command, in seconds, with aiocache's keys: `get_total`
 * (how many calls), `get_avg`, `get_min`, `get_max`, `set_total`, `multiGet_avg`, …
 */
export type Profiling = Record<`${CommandName}_${'total' | 'avg' | 'min' | 'max'}`, number>

/** The names of `CacheOptions`, for the option checkers of `BaseCache` and its subclasses. @internal */
export const CACHE_OPTIONS: ReadonlyArray<keyof CacheOptions> = [
  'plugins',
  'namespace',
  'keyBuilder',
  'ttl',
  'timeout',
  'defaults',
  'clock',
]

// `ctx.cache` is a BaseCache: see ContextCache in context.ts.
declare module './context.js' {
  interface ContextCache extends BaseCache {}
}

const TIMEOUT = syncLayer(timeout)
const CORE = innermost(core)
const CORE_GET = innermost(coreGet)
const TIMED_CORE = innermost(timedCore(monotonic))

/**
 * @internal The layers of a cache's chain: the timeout, the plugins in order, the
 * core step — timing itself when a layer other than a `BasePlugin` may read `ctx.took`.
 * For one `command`: each plugin's layer for it (see `LAYER_FOR`), those with nothing to do left out.
 */
export function chainLayers(plugins: ReadonlyArray<unknown>, clock?: Clock, command?: CommandName): Layer[] {
  const layers: Layer[] = []
  for (let i = 0; i < plugins.length; i++) {
    const layer = command === undefined ? layerOf(plugins[i], i) : commandLayerOf(plugins[i], i, command)
    if (layer !== null) layers.push(layer)
  }
  const timed = clock === undefined ? TIMED_CORE : innermost(timedCore(clock))
  const inner = command === 'get' ? CORE_GET : CORE
  return [TIMEOUT, ...layers, layers.every((layer) => layer.syncNext) ? inner : timed]
}

/** @internal A cache's chain for each command. */
export type Chains = Readonly<Record<CommandName, Chain>>

/**
 * @internal A cache's chains, one per command: the command's layers composed, or, when no plugin has anything to
 * do for it, the timeout and the core step fused (`bare`, and its copies `bareGet` and `bareGetOrSet`: the same
 * steps, a promise reaction less).
 */
export function chainsOf(plugins: ReadonlyArray<unknown>, clock?: Clock): Chains {
  const chains = {} as Record<CommandName, Chain>
  for (const command of COMMANDS) {
    const layers = chainLayers(plugins, clock, command)
    if (layers.length > 2) chains[command] = compose(layers)
    else chains[command] = command === 'getOrSet' ? bareGetOrSet : command === 'get' ? bareGet : bare
  }
  return chains
}

/** The chains of a cache without plugins. */
const BARE_CHAINS = chainsOf([])
/** `Date` as a clock: what `getOrSet`'s expiry reads by default. */
const WALL_CLOCK: Clock = { now: () => Date.now() }

/** The cache's `defaults`, checked: known names, each value one `getOrSet` takes. */
function checkDefaults(defaults: unknown): Readonly<GetOrSetDefaults> {
  checkOptions(defaults, GET_OR_SET_DEFAULTS, 'defaults')
  const checked = defaults as GetOrSetDefaults
  for (const name of GET_OR_SET_DEFAULTS) checkTuning(name, checked[name], `defaults.${name}`)
  return Object.freeze({ ...checked })
}

const defaultKeyBuilder: KeyBuilder = (key, namespace) => (namespace === '' ? key : namespace + ':' + key)

/**
 * The key builder of aiocache's caches other than `RedisCache`: namespace and key
 * joined with nothing between them. Give it to a `MemcachedCache` that shares its
 * store with aiocache's `MemcachedCache`.
 */
export const plainKeys: KeyBuilder = (key, namespace) => namespace + key

/**
 * What the keys of `namespace` start with when `keyBuilder` is one of the library's, which only put that prefix
 * before the caller's key (so that a built key gives the caller's key back); `undefined` for any other builder.
 * @internal
 */
export function keyPrefix(keyBuilder: KeyBuilder, namespace: string): string | undefined {
  if (keyBuilder === defaultKeyBuilder) return namespace === '' ? '' : namespace + ':'
  if (keyBuilder === plainKeys) return namespace
  return undefined
}

/**
 * The engine of every cache. Each command builds a context and runs it through
 * the chain — the timeout, the plugins in order, the core step (key, serializer,
 * backend); see `core/run.ts`, `core/compose.ts` and `core/commands.ts`. Use
 * `Cache` (memory by default, `Cache.fromUrl`) or a backend's cache class.
 *
 * Commands never throw: every error, bad input included, is a rejected promise.
 * Any command may reject with {@link TimeoutError} once its timeout has passed,
 * with {@link BackendError} when a backend that does I/O fails or cannot be
 * reached, and with whatever a plugin throws. Durations are seconds, or strings
 * such as `'250ms'`, `'10s'`, `'5m'`.
 */
export class BaseCache {
  /** Where entries live. */
  readonly backend: Backend
  /** Builds the key that reaches the backend. */
  readonly keyBuilder: KeyBuilder
  /** The wall clock (milliseconds since the epoch) of `getOrSet`'s logical expiry and backoff. */
  readonly clock: Clock
  /** The options every `getOrSet` of the cache starts from. */
  readonly defaults: Readonly<GetOrSetDefaults>
  #serializer!: AnySerializer
  #namespace = ''
  #ttl: number | null = null
  #timeout: number | null = 5
  #plugins: ReadonlyArray<Plugin | Middleware> = []
  #chains: Chains = BARE_CHAINS
  readonly #disabled = process.env.ONIOCACHE_DISABLE === '1'

  /**
   * Checks the options and composes the chain; does no I/O.
   * @param options - The backend, the serializer and the options of every cache.
   * @throws {TypeError} for an unknown option, or a backend, serializer, key builder, namespace or plugin list of
   *   the wrong kind.
   * @throws {RangeError} for a `ttl` or `timeout` that is negative, not a number or an unreadable string.
   */
  constructor(options: BaseCacheOptions) {
    checkOptions(options, ['backend', 'serializer', ...CACHE_OPTIONS], new.target.name)
    const {
      backend,
      serializer,
      plugins = [],
      namespace = '',
      keyBuilder = defaultKeyBuilder,
      ttl = null,
      timeout = 5,
      defaults = {},
      clock = WALL_CLOCK,
    } = options
    if (backend === null || typeof backend !== 'object' || typeof backend.get !== 'function') {
      throw new TypeError(
        `[oniocache] backend must be a Backend instance (such as new MemoryBackend()); got ${describe(backend)}`,
      )
    }
    if (typeof keyBuilder !== 'function') {
      throw new TypeError(
        `[oniocache] keyBuilder must be a function (key, namespace) => string; got ${describe(keyBuilder)}`,
      )
    }
    if (clock === null || typeof clock !== 'object' || typeof clock.now !== 'function') {
      throw new TypeError(`[oniocache] clock must be an object with a now() method; got ${describe(clock)}`)
    }
    this.backend = backend
    this.keyBuilder = keyBuilder
    this.clock = clock
    this.defaults = checkDefaults(defaults)
    this.serializer = serializer
    this.namespace = namespace
    this.ttl = ttl
    this.timeout = timeout
    this.plugins = plugins
  }

  /** Prefix of every key. */
  get namespace(): string {
    return this.#namespace
  }
  /**
   * Sets the namespace of the commands that follow.
   * @throws {TypeError} when `namespace` is not a string.
   */
  set namespace(namespace: string) {
    if (typeof namespace !== 'string')
      throw new TypeError(`[oniocache] namespace must be a string; got ${describe(namespace)}`)
    this.#namespace = namespace
  }

  /** Default ttl in seconds, `null` for none. Assign seconds or a string such as `'5m'`. */
  get ttl(): number | null {
    return this.#ttl
  }
  /**
   * Sets the default ttl of the writes that follow: seconds or a string such as `'5m'`; `0` or `null` for none.
   * @throws {RangeError} for a negative, non-finite or unreadable duration.
   */
  set ttl(ttl: Duration | null) {
    const seconds = toSeconds(ttl, 'ttl')
    this.#ttl = seconds === 0 ? null : seconds
  }

  /** Bound on every command in seconds, `null` for none. Assign seconds or a string such as `'250ms'`. */
  get timeout(): number | null {
    return this.#timeout
  }
  /**
   * Sets the bound of the commands that follow: seconds or a string such as `'250ms'`; `0` or `null` for none.
   * @throws {RangeError} for a negative, non-finite or unreadable duration.
   */
  set timeout(timeout: Duration | null) {
    const seconds = toSeconds(timeout, 'timeout')
    this.#timeout = seconds === 0 ? null : seconds
  }

  /** How values become what the backend stores, and back. */
  get serializer(): AnySerializer {
    return this.#serializer
  }
  /**
   * Sets the serializer of the commands that follow. Entries written with another serializer are not converted.
   * @throws {TypeError} when `serializer` has no `dumps` and `loads` methods.
   */
  set serializer(serializer: AnySerializer) {
    if (
      serializer === null ||
      typeof serializer !== 'object' ||
      typeof serializer.dumps !== 'function' ||
      typeof serializer.loads !== 'function'
    ) {
      throw new TypeError(
        `[oniocache] serializer must have dumps(value) and loads(stored) methods, such as new JsonSerializer(); got ` +
          `${describe(serializer)}`,
      )
    }
    this.#serializer = serializer
  }

  /** The plugins in chain order, first outermost. Assigning recomposes the chain. */
  get plugins(): ReadonlyArray<Plugin | Middleware> {
    return this.#plugins
  }
  /**
   * Replaces the plugins, first outermost; the chain is composed here, once, and used from the next command on.
   * @throws {TypeError} when `plugins` is not an array, or holds something that is neither a middleware function
   *   nor an object with a `middleware` method.
   */
  set plugins(plugins: ReadonlyArray<Plugin | Middleware>) {
    if (!Array.isArray(plugins)) {
      throw new TypeError(
        `[oniocache] plugins must be an array of plugins or middleware functions; got ${describe(plugins)}`,
      )
    }
    this.#chains = chainsOf(plugins)
    this.#plugins = Object.freeze([...plugins])
  }

  /**
   * Appends a plugin or middleware (innermost so far) and answers the cache, for chaining.
   * @throws {TypeError} when `plugin` is neither a middleware function nor an object with a `middleware` method.
   */
  use(plugin: Plugin | Middleware): this {
    this.plugins = [...this.#plugins, plugin]
    return this
  }

  /** The figures of the first plugin that keeps `profiling` (`TimingPlugin`). */
  get profiling(): Profiling | undefined {
    return figures(this.#plugins, 'profiling') as Profiling | undefined
  }

  /** The counts of the first plugin that keeps `hitMissRatio` (`HitMissRatioPlugin`). */
  get hitMissRatio(): HitMissRatio | undefined {
    return figures(this.#plugins, 'hitMissRatio') as HitMissRatio | undefined
  }

  /**
   * The key that reaches the backend: `keyBuilder(key, namespace)`.
   * @param key - The caller's key.
   * @param namespace - Default: the cache's.
   * @throws {TypeError} when `key` or `namespace` is not a string, or the key builder answers something else.
   */
  buildKey(key: string, namespace: string = this.#namespace): string {
    if (typeof key !== 'string' || typeof namespace !== 'string') throw unbuildable(key, namespace)
    const built = this.keyBuilder(key, namespace)
    if (typeof built !== 'string') throw notBuilt(built)
    return built
  }

  /**
   * Stores a value only if the key is absent.
   * @param key - The caller's key; the namespace is applied by `buildKey`.
   * @param value - Anything the serializer can encode but `undefined`.
   * @param options - `ttl`, `namespace`, `dumps` (instead of the serializer), `timeout`.
   * @returns `true` once stored.
   * @throws {KeyExistsError} when the key exists.
   * @throws {SerializationError} when the serializer cannot encode the value (nothing is written).
   * @throws {TypeError} for a value that is `undefined`, a key that is not a string or an unknown option.
   * @throws {RangeError} for a `ttl` or `timeout` that is not a valid duration.
   * @throws {TimeoutError} past the timeout.
   * @throws {BackendError} when the backend fails.
   */
  add(key: string, value: unknown, options?: AddOptions): Promise<true> {
    return this.#run('add', options, { key, value }) as Promise<true>
  }

  /**
   * Answers the cached value of `key` while it is fresh; otherwise calls `fn` once per key in the process (the
   * concurrent calls share it), stores its value and answers it. With `grace` a value is kept past its ttl and
   * answered when `fn` fails, outlasts `hardTimeout` or the store fails, and at once when `fn` outlasts
   * `softTimeout`; with `eagerRefresh` a late hit refreshes in the background. A store that fails is never the
   * caller's failure: the failure is published on `oniocache:error`. `fn` answering `undefined` stores nothing.
   * `ctx.state.outcome` tells middleware how it was answered: `'fresh'`, `'stale'` or `'computed'`.
   * @param key - The caller's key; the namespace is applied by `buildKey`.
   * @param fn - Computes the value from `{ key, stale, signal, setTtl, skip }`.
   * @param options - `ttl`, `grace`, `graceBackoff`, `softTimeout`, `hardTimeout`, `eagerRefresh` (over the cache's
   *   `defaults`), `namespace`, `dumps`, `loads`, `timeout`.
   * @returns The fresh, stale or computed value.
   * @throws {FactoryTimeoutError} when `fn` outlasts `hardTimeout` and no stale value is kept.
   * @throws {TypeError} for a key that is not a string, a factory that is not a function or an unknown option.
   * @throws {RangeError} for a bad duration or `eagerRefresh`.
   * Its `timeout` bounds each read and write of the store (one that does not answer in time is a failing store,
   * never the caller's failure); `hardTimeout` bounds `fn`.
   * @example
   * ```ts
   * import { MemoryCache } from 'oniocache'
   *
   * const cache = new MemoryCache()
   * const user = await cache.getOrSet('user:42', async () => ({ id: 42 }), { ttl: '10m', grace: '1h' })
   * console.log(user) // { id: 42 }, computed once, then answered from the cache
   * await cache.close()
   * ```
   */
  getOrSet<T>(key: string, fn: Factory<T>, options?: GetOrSetOptions): Promise<T> {
    const args = options === undefined ? { key, fn, ttl: undefined } : getOrSetArgs(key, fn, options)
    if (args instanceof Error) return Promise.reject(args)
    if (this.#disabled) return Promise.resolve(neutral('getOrSet', args)) as Promise<T>
    return run(new CommandContext(this, 'getOrSet', args), this.#chains.getOrSet) as Promise<T>
  }

  /**
   * Invalidates every entry written with one of `tags` (by `set`, `add`, `multiSet` or `getOrSet` with `tags`)
   * before this call, in every process sharing the store: they read as a miss, or as a stale value when written
   * with `grace`. One write per tag, never a scan; entries written afterwards are not affected (an entry written in
   * the same millisecond counts as before).
   * @param tags - Non-empty strings.
   * @param options - `namespace` (the tags' namespace: the entries' one), `timeout`.
   * @returns `true`.
   * @throws {TypeError} for tags that are not an array of non-empty strings, or an unknown option.
   * @throws {TimeoutError} past the timeout.
   * @throws {BackendError} when the backend fails.
   */
  invalidateTags(tags: readonly string[], options?: InvalidateTagsOptions): Promise<true> {
    return this.#run('invalidateTags', options, { tags }) as Promise<true>
  }

  /**
   * Reads a key.
   * @param key - The caller's key; the namespace is applied by `buildKey`.
   * @param options - `default` (answered for a miss), `namespace`, `loads` (instead of the serializer), `timeout`.
   * @returns The value, or `default`, or `undefined` for a miss.
   * @throws {SerializationError} when the stored value cannot be decoded.
   * @throws {TypeError} for a key that is not a string or an unknown option.
   * @throws {TimeoutError} past the timeout.
   * @throws {BackendError} when the backend fails.
   */
  get<T = unknown>(key: string, options?: GetOptions<T>): Promise<T | undefined> {
    // The most frequent command, without options: what #run does, its chain read without a lookup by name.
    if (options === undefined && !this.#disabled) {
      return run(new CommandContext(this, 'get', { key }), this.#chains.get) as Promise<T | undefined>
    }
    return this.#run('get', options, { key }) as Promise<T | undefined>
  }

  /**
   * Reads many keys at once.
   * @param keys - Any iterable of keys (array, Set, generator).
   * @param options - `namespace`, `loads` (instead of the serializer), `timeout`.
   * @returns The values in key order, `undefined` for misses.
   * @throws {SerializationError} when a stored value cannot be decoded.
   * @throws {TypeError} when `keys` is not an iterable of strings, or for an unknown option.
   * @throws {TimeoutError} past the timeout.
   * @throws {BackendError} when the backend fails.
   */
  multiGet<T = unknown>(keys: Iterable<string>, options?: MultiGetOptions): Promise<Array<T | undefined>> {
    return this.#run('multiGet', options, { keys }) as Promise<Array<T | undefined>>
  }

  /**
   * Stores a value.
   * @param key - The caller's key; the namespace is applied by `buildKey`.
   * @param value - Anything the serializer can encode but `undefined`.
   * @param options - `ttl`, `namespace`, `dumps` (instead of the serializer), `timeout`, and `casToken`: the stored
   *   value read earlier (as stored), to write only if it is still the stored one.
   * @returns `true`; with `casToken`, `false` when the stored value changed since it was read.
   * @throws {SerializationError} when the serializer cannot encode the value (nothing is written).
   * @throws {TypeError} for a value that is `undefined`, a key that is not a string or an unknown option.
   * @throws {RangeError} for a `ttl` or `timeout` that is not a valid duration.
   * @throws {TimeoutError} past the timeout.
   * @throws {BackendError} when the backend fails.
   */
  set(key: string, value: unknown, options?: SetOptions): Promise<boolean> {
    return this.#run('set', options, { key, value }) as Promise<boolean>
  }

  /**
   * Stores many values with the same ttl.
   * @param pairs - Any iterable of `[key, value]` pairs: an array of pairs, a `Map`, `Object.entries(…)`.
   * @param options - `ttl`, `namespace`, `dumps` (instead of the serializer), `timeout`.
   * @returns `true` once stored.
   * @throws {SerializationError} when a value cannot be encoded (nothing is written).
   * @throws {TypeError} when `pairs` holds something other than `[key, value]` pairs, for an `undefined` value or an
   *   unknown option.
   * @throws {RangeError} for a `ttl` or `timeout` that is not a valid duration.
   * @throws {TimeoutError} past the timeout.
   * @throws {BackendError} when the backend fails.
   */
  multiSet(pairs: Iterable<readonly [string, unknown]>, options?: MultiSetOptions): Promise<true> {
    return this.#run('multiSet', options, { pairs }) as Promise<true>
  }

  /**
   * Removes a key.
   * @param options - `namespace`, `timeout`.
   * @returns The number of keys deleted: 0 or 1.
   * @throws {TypeError} for a key that is not a string or an unknown option.
   * @throws {TimeoutError} past the timeout.
   * @throws {BackendError} when the backend fails.
   */
  delete(key: string, options?: DeleteOptions): Promise<number> {
    return this.#run('delete', options, { key }) as Promise<number>
  }

  /**
   * Whether the key holds a value that has not expired.
   * @param options - `namespace`, `timeout`.
   * @throws {TypeError} for a key that is not a string or an unknown option.
   * @throws {TimeoutError} past the timeout.
   * @throws {BackendError} when the backend fails.
   */
  exists(key: string, options?: ExistsOptions): Promise<boolean> {
    return this.#run('exists', options, { key }) as Promise<boolean>
  }

  /**
   * Adds `delta` to an integer value; a missing key starts at 0 (and is stored without a ttl).
   * @param delta - A safe integer, negative to decrement. Default 1.
   * @param options - `namespace`, `timeout`.
   * @returns The new value.
   * @throws {TypeError} when the stored value is not an integer, `delta` is not a safe integer, the key is not a
   *   string or an option is unknown.
   * @throws {RangeError} when the result would pass `Number.MAX_SAFE_INTEGER` (memory and Memcached backends).
   * @throws {TimeoutError} past the timeout.
   * @throws {BackendError} when the backend fails.
   */
  increment(key: string, delta: number = 1, options?: IncrementOptions): Promise<number> {
    return this.#run('increment', options, { key, delta }) as Promise<number>
  }

  /**
   * Sets a key's ttl.
   * @param ttl - Seconds or a string such as `'5m'`; `0` or `null` removes the expiry.
   * @param options - `namespace`, `timeout`.
   * @returns `true`, or `false` when the key is missing.
   * @throws {RangeError} when `ttl` is left out or is not a valid duration.
   * @throws {TypeError} for a key that is not a string or an unknown option.
   * @throws {TimeoutError} past the timeout.
   * @throws {BackendError} when the backend fails.
   */
  expire(key: string, ttl: Duration | null, options?: ExpireOptions): Promise<boolean> {
    return this.#run('expire', options, { key, ttl }) as Promise<boolean>
  }

  /**
   * Removes the keys under `namespace` (default: the cache's own): those that start with `buildKey('', namespace)`.
   * Only the namespace `''` empties the whole store (Redis: its db; Memcached: `flush_all` on every server).
   * @param options - `namespace`, `timeout`.
   * @returns `true` once done.
   * @throws {BackendError} on Memcached for a namespace other than `''` (it cannot list keys), or when the backend
   *   fails.
   * @throws {TypeError} when the key builder gives the namespace no prefix, or for an unknown option.
   * @throws {TimeoutError} past the timeout (what was deleted so far stays deleted).
   */
  clear(options?: ClearOptions): Promise<true> {
    return this.#run('clear', options, {}) as Promise<true>
  }

  /**
   * Passes a command to the backend with its arguments as given (no namespace applied, nothing serialized): on
   * memory a `Map` method (`raw('keys')`), on Redis a command (`raw('TTL', key)`), on Memcached a meta command
   * (`raw('mg', key, 'v')`), `version` or `flush_all`.
   * @returns Whatever the backend answers.
   * @throws {TypeError} when the memory or Memcached backend has no such command (Redis rejects with a
   *   `BackendError`).
   * @throws {TimeoutError} past the timeout.
   * @throws {BackendError} when the backend fails.
   */
  raw(command: string, ...args: unknown[]): Promise<unknown> {
    return this.#run('raw', undefined, { command, args })
  }

  /**
   * Releases connections and timers; the cache works again on the next command (it reconnects). A client passed
   * to a `RedisCache` stays open.
   */
  close(): Promise<void> {
    return this.#run('close', undefined, {}) as Promise<void>
  }

  /** Closes the cache, so that `await using cache = new MemoryCache()` closes it at the end of the block. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }

  /** The caller's options checked against the command's, then copied beside its positional arguments. */
  #run(command: CommandName, options: object | undefined, positional: CommandArgs): Promise<unknown> {
    const args = options === undefined ? positional : withOptions(command, positional, options)
    if (args instanceof TypeError) return Promise.reject(args)
    if (this.#disabled) return Promise.resolve(neutral(command, args))
    return run(new CommandContext(this, command, args), this.#chains[command])
  }
}

/** Why `buildKey(key, namespace)` cannot build: the key or the namespace is not a string. */
function unbuildable(key: unknown, namespace: unknown): TypeError {
  if (typeof key !== 'string')
    return new TypeError(`[oniocache] buildKey: a key must be a string; got ${describe(key)}`)
  return new TypeError(`[oniocache] namespace must be a string; got ${describe(namespace)}`)
}

function notBuilt(built: unknown): TypeError {
  return new TypeError(`[oniocache] keyBuilder must return a string; it returned ${describe(built)}`)
}

function figures(plugins: ReadonlyArray<Plugin | Middleware>, name: string): unknown {
  for (const plugin of plugins) {
    if (plugin !== null && typeof plugin === 'object' && name in plugin)
      return (plugin as unknown as Record<string, unknown>)[name]
  }
  return undefined
}

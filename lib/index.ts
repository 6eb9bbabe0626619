/**
 * `oniocache`: the core, the memory backend, serializers, plugins, decorators, locks and config.
 *
 * Start with {@link Cache} (or {@link MemoryCache}), {@link Cache.fromUrl} or {@link caches}; wrap functions with
 * {@link cached}, {@link multiCached} and {@link cachedStampede}; add plugins such as {@link TimingPlugin}. The
 * Redis and Memcached caches are in `oniocache/redis` and `oniocache/memcached`. Durations are seconds.
 *
 * @example
 * ```ts
 * import { cached, MemoryCache } from 'oniocache'
 *
 * const cache = new MemoryCache({ namespace: 'app', ttl: '10m' })
 * await cache.set('greeting', 'hello')
 * const square = cached(async (n: number) => n * n, { cache })
 * console.log(await cache.get('greeting'), await square(12)) // hello 144
 * await cache.close()
 * ```
 * @module
 */

export {
  type Clock,
  estimateSize,
  MemoryBackend,
  type MemoryBackendOptions,
  type MemoryPolicy,
} from './backends/memory/backend.js'
export { Cache, type CacheOptions, type UrlOptions } from './caches/cache.js'
export { MemoryCache, type MemoryCacheOptions, SimpleMemoryCache } from './caches/memory.js'
export {
  type CacheClass,
  type CacheConfig,
  CacheHandler,
  type CacheOverrides,
  type CachesConfig,
  caches,
  type PluginClass,
  type PluginSpec,
  parseCacheUrl,
  type SerializerClass,
  type SerializerSpec,
  type UrlOverrides,
} from './config/handler.js'
export { type Awaitable, type Backend, type BackendIdentity, identify, type MessageListener } from './core/backend.js'
export {
  BaseCache,
  type BaseCacheOptions,
  type HitMissRatio,
  type KeyBuilder,
  type Profiling,
  plainKeys,
} from './core/cache.js'
export { type CommandMessage, commandChannel, type ErrorMessage, errorChannel } from './core/channels.js'
export type { CommandArgs, Context, ContextCache, Middleware, Next, Plugin } from './core/context.js'
export type { Factory, FactoryContext, GetOrSetDefaults, GetOrSetOutcome } from './core/get-or-set.js'
export type {
  InvalidationBus,
  InvalidationChange,
  InvalidationListener,
  StopListening,
} from './core/invalidation.js'
export { lockChannel } from './core/lock.js'
export {
  type AddOptions,
  type ClearOptions,
  COMMAND_OPTIONS,
  COMMANDS,
  type CommandName,
  type DeleteOptions,
  type ExistsOptions,
  type ExpireOptions,
  type GetOptions,
  type GetOrSetOptions,
  type IncrementOptions,
  type InvalidateTagsOptions,
  type MultiGetOptions,
  type MultiSetOptions,
  type OptionsOf,
  type OptionTypes,
  type SetOptions,
} from './core/options.js'
export type { AnySerializer, Serializer } from './core/serializer.js'
export { Cached, type CachedMethodOptions, type CachedOptions, cached } from './decorators/cached.js'
export {
  type KeysFrom,
  type KeysIndex,
  type KeysProperty,
  MultiCached,
  type MultiCachedFunction,
  type MultiCachedMethodOptions,
  type MultiCachedOptions,
  type MultiResult,
  type MultiValue,
  multiCached,
  type ReturnsOption,
} from './decorators/multi-cached.js'
export {
  CachedStampede,
  type CachedStampedeMethodOptions,
  type CachedStampedeOptions,
  cachedStampede,
  type StampedeOptions,
} from './decorators/stampede.js'
export type { CachedFunction, CacheSource, CachingDecorator, CallOptions, EntryOptions } from './decorators/wrap.js'
export { OptimisticLock } from './locks/optimistic-lock.js'
export { RedLock, type RedLockOptions } from './locks/red-lock.js'
export { BasePlugin, type PluginHooks } from './plugins/base.js'
export { HitMissRatioPlugin } from './plugins/hit-miss-ratio.js'
export { type NearCacheOptions, NearCachePlugin, type NearCacheStats } from './plugins/near-cache.js'
export { TimingPlugin } from './plugins/timing.js'
export { JsonSerializer, MsgPackSerializer, NullSerializer, StringSerializer, V8Serializer } from './serializers.js'
export { type Duration, type DurationUnit, toSeconds } from './util/duration.js'
export {
  BackendError,
  CacheError,
  FactoryTimeoutError,
  InvalidCacheTypeError,
  InvalidKeyError,
  KeyExistsError,
  OptimisticLockError,
  SerializationError,
  TimeoutError,
} from './util/errors.js'

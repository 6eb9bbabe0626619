/** `oniocache`: the core, the memory backend, serializers, plugins, decorators, locks and config. */
export { Cache, type CacheOptions, type UrlOptions } from './caches/cache.js'
export { MemoryCache, type MemoryCacheOptions, SimpleMemoryCache } from './caches/memory.js'
export { BaseCache, type BaseCacheOptions, type HitMissRatio, type KeyBuilder, type Profiling } from './core/cache.js'
export type { Awaitable, Backend, MessageListener } from './core/backend.js'
export type { CommandArgs, Context, ContextCache, Middleware, Next, Plugin } from './core/context.js'
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
  type IncrementOptions,
  type MultiGetOptions,
  type MultiSetOptions,
  type OptionsOf,
  type OptionTypes,
  type SetOptions,
} from './core/options.js'
export type { AnySerializer, Serializer } from './core/serializer.js'
export { type Clock, MemoryBackend, type MemoryBackendOptions } from './backends/memory/backend.js'
export {
  CacheHandler,
  caches,
  parseCacheUrl,
  type CacheClass,
  type CacheConfig,
  type CacheOverrides,
  type CachesConfig,
  type PluginClass,
  type PluginSpec,
  type SerializerClass,
  type SerializerSpec,
  type UrlOverrides,
} from './config/handler.js'
export { Cached, cached, type CachedMethodOptions, type CachedOptions } from './decorators/cached.js'
export {
  type KeysFrom,
  type KeysIndex,
  type KeysProperty,
  MultiCached,
  multiCached,
  type MultiCachedFunction,
  type MultiCachedMethodOptions,
  type MultiCachedOptions,
  type MultiResult,
  type MultiValue,
  type ReturnsOption,
} from './decorators/multi-cached.js'
export {
  CachedStampede,
  cachedStampede,
  type CachedStampedeMethodOptions,
  type CachedStampedeOptions,
  type StampedeOptions,
} from './decorators/stampede.js'
export type { CachedFunction, CacheSource, CachingDecorator, CallOptions, EntryOptions } from './decorators/wrap.js'
export { lockChannel, RedLock, type RedLockOptions } from './locks/red-lock.js'
export { OptimisticLock } from './locks/optimistic-lock.js'
export { BasePlugin, type PluginHooks } from './plugins/base.js'
export { HitMissRatioPlugin } from './plugins/hit-miss-ratio.js'
export { TimingPlugin } from './plugins/timing.js'
export { JsonSerializer, MsgPackSerializer, NullSerializer, StringSerializer, V8Serializer } from './serializers.js'
export { type Duration, type DurationUnit, toSeconds } from './util/duration.js'
export {
  BackendError,
  CacheError,
  InvalidCacheTypeError,
  InvalidKeyError,
  KeyExistsError,
  OptimisticLockError,
  SerializationError,
  TimeoutError,
} from './util/errors.js'

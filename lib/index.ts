export { Cache, MemoryCache, SimpleMemoryCache } from './cache.js'
export type {
  AddOptions, CacheOptions, ClearOptions, GetOptions, KeyBuilder, MemoryCacheOptions, MultiGetOptions, MultiSetOptions, SetOptions,
} from './cache.js'
export type { Awaitable, Backend } from './backends/backend.js'
export { MemoryBackend } from './backends/memory.js'
export type { Clock, MemoryBackendOptions } from './backends/memory.js'
export { CacheHandler, caches, parseCacheUrl } from './config.js'
export type {
  CacheClass, CacheConfig, CacheOverrides, CachesConfig, PluginClass, PluginSpec, SerializerClass, SerializerSpec, UrlOverrides,
} from './config.js'
export { COMMANDS } from './context.js'
export type { CommandArgs, CommandName, Context, Middleware, Next, Plugin } from './context.js'
export { Cached, cached, MultiCached, multiCached } from './decorators.js'
export type {
  CachedFunction, CachedMethodOptions, CachedOptions, CacheSource, CachingDecorator, CallOptions, EntryOptions, KeysFrom, KeysIndex, KeysProperty,
  MultiCachedFunction, MultiCachedMethodOptions, MultiCachedOptions, MultiResult, MultiValue, ReturnsOption,
} from './decorators.js'
export { toSeconds } from './duration.js'
export type { Duration, DurationUnit } from './duration.js'
export {
  BackendError, CacheError, InvalidCacheTypeError, InvalidKeyError, KeyExistsError, OptimisticLockError, SerializationError, TimeoutError,
} from './errors.js'
export { BasePlugin } from './plugins/base.js'
export type { PluginHooks } from './plugins/base.js'
export { HitMissRatioPlugin } from './plugins/hit-miss-ratio.js'
export type { HitMissRatio } from './plugins/hit-miss-ratio.js'
export { TimingPlugin } from './plugins/timing.js'
export type { Profiling } from './plugins/timing.js'
export { JsonSerializer, MsgPackSerializer, NullSerializer, StringSerializer, V8Serializer } from './serializers.js'
export type { AnySerializer, Serializer } from './serializers.js'
export { OptimisticLock, RedLock, lockChannel } from './locks.js'
export type { RedLockOptions } from './locks.js'
export { CachedStampede, cachedStampede } from './stampede.js'
export type { CachedStampedeMethodOptions, CachedStampedeOptions, StampedeOptions } from './stampede.js'

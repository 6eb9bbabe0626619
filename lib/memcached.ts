/** `oniocache/memcached`: the Memcached backend, its cache and the meta-protocol client. */
import './config.js' // registers Cache.fromUrl, so MemcachedCache.fromUrl works from this entry too
export { MemcachedBackend, MemcachedCache, checkKey, exptime } from './backends/memcached.js'
export type { MemcachedBackendOptions, MemcachedCacheOptions } from './backends/memcached.js'
export { MemcachedClient } from './memcached/client.js'
export type { MemcachedClientOptions, MetaReply } from './memcached/client.js'

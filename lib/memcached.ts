/**
 * `oniocache/memcached`: the Memcached backend, its cache and the meta-protocol client (memcached >= 1.6), which
 * needs no client library.
 * @module
 */
export { exptime, MemcachedBackend } from './backends/memcached/backend.js'
export { MemcachedClient, type MemcachedClientOptions, type MetaReply } from './backends/memcached/client.js'
export { checkKey } from './backends/memcached/keys.js'
export type { MemcachedBackendOptions } from './backends/memcached/options.js'
export { MemcachedCache, type MemcachedCacheOptions } from './caches/memcached.js'

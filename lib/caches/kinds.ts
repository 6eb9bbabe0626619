/**
 * The built-in kinds of cache — memory, Redis, Memcached — as `Cache.fromUrl` and
 * `caches` build them from data: each kind's URL schemes and grammar (its
 * backend's), its backend options, its default serializer, and how its backend is
 * made. Redis and Memcached backends made here are `DeferredBackend`s: their
 * modules are loaded on the first command, so that building such a cache (and
 * importing oniocache) loads neither.
 */

import { DeferredBackend } from '../backends/deferred.js'
import {
  checkMemcachedOptions,
  MEMCACHED_OPTIONS,
  type MemcachedBackendOptions,
} from '../backends/memcached/options.js'
import { memcachedLocation } from '../backends/memcached/url.js'
import { MEMORY_OPTIONS, MemoryBackend, type MemoryBackendOptions } from '../backends/memory/backend.js'
import { MEMORY_QUERY, memoryLocation } from '../backends/memory/url.js'
import { checkRedisOptions, REDIS_OPTIONS, type RedisBackendOptions, serverLabel } from '../backends/redis/options.js'
import { parseRedisUrl, REDIS_QUERY, redisLocation } from '../backends/redis/url.js'
import type { Backend } from '../core/backend.js'
import { CACHE_OPTIONS } from '../core/cache.js'
import type { AnySerializer } from '../core/serializer.js'
import { JsonSerializer, NullSerializer } from '../serializers.js'
import { InvalidCacheTypeError } from '../util/errors.js'
import { checkOptions } from '../util/options.js'
import { CACHE_QUERY, type QueryKind, readQuery, splitUrl, type UrlParts } from '../util/url.js'

export type KindName = 'memory' | 'redis' | 'memcached'

/** One built-in kind of cache. */
export interface CacheKind {
  readonly name: KindName
  /** The class users construct for it, for messages: `MemoryCache`. */
  readonly className: string
  readonly schemes: readonly string[]
  /** The backend's option names. */
  readonly options: readonly string[]
  /** The backend options its URL's query may set (the cache's own are read for every kind). */
  readonly query: Readonly<Record<string, QueryKind>>
  /** What the part of its URL before the query says, as backend options. */
  location(parts: UrlParts): object
  /** Its backend, from checked-as-you-go backend options. */
  backend(options: Record<string, unknown>): Backend
  /** aiocache's default serializer for it. */
  serializer(): AnySerializer
}

const memory: CacheKind = {
  name: 'memory',
  className: 'MemoryCache',
  schemes: ['memory'],
  options: MEMORY_OPTIONS,
  query: MEMORY_QUERY,
  location: memoryLocation,
  backend: (options) => new MemoryBackend(options as MemoryBackendOptions),
  serializer: () => new NullSerializer(),
}

const redis: CacheKind = {
  name: 'redis',
  className: 'RedisCache',
  schemes: ['redis', 'rediss'],
  options: REDIS_OPTIONS,
  query: REDIS_QUERY,
  location: redisLocation,
  backend(options) {
    const checked = options as RedisBackendOptions
    checkRedisOptions(checked)
    const load = (): Promise<Backend> =>
      import('../backends/redis/backend.js').then(({ RedisBackend }) => new RedisBackend(checked))
    return new DeferredBackend(`redis ${serverLabel(checked)}`, load, { deleteIf: true, pubsub: true })
  },
  serializer: () => new JsonSerializer(),
}

const memcached: CacheKind = {
  name: 'memcached',
  className: 'MemcachedCache',
  schemes: ['memcached'],
  options: MEMCACHED_OPTIONS,
  query: {},
  location: memcachedLocation,
  backend(options) {
    const checked = options as MemcachedBackendOptions
    const servers = checkMemcachedOptions(checked)
    const load = (): Promise<Backend> =>
      import('../backends/memcached/backend.js').then(({ MemcachedBackend }) => new MemcachedBackend(checked))
    return new DeferredBackend(`memcached ${servers.join(',')}`, load, { deleteIf: true })
  },
  serializer: () => new JsonSerializer(),
}

/** @internal */
export const KINDS: Readonly<Record<KindName, CacheKind>> = { memory, redis, memcached }

/** The scheme of every kind, for messages: `memory://, redis://, rediss://, memcached://`. @internal */
export const SCHEMES: readonly string[] = Object.values(KINDS).flatMap((kind) => kind.schemes)

/** What a cache URL says: its kind, and the options it sets (backend and cache options together). @internal */
export function readCacheUrl(url: string): { kind: CacheKind; options: Record<string, unknown> } {
  const parts = splitUrl(url)
  const kind = Object.values(KINDS).find((k) => k.schemes.includes(parts.scheme))
  if (kind === undefined) {
    throw new InvalidCacheTypeError(
      `[oniocache] unknown cache URL scheme ${JSON.stringify(parts.scheme + '://')}; available: ` +
        `${SCHEMES.map((s) => s + '://').join(', ')}`,
    )
  }
  return {
    kind,
    options: { ...kind.location(parts), ...readQuery(parts.query, { ...CACHE_QUERY, ...kind.query }, parts.scheme) },
  }
}

/**
 * Checks the options of a cache of `kind` (its backend's, `serializer`, and every
 * cache's) and splits them into its backend's and the cache's.
 */
/** @internal */
export function kindOptions(
  kind: CacheKind,
  options: object,
  what: string,
): [Record<string, unknown>, Record<string, unknown>] {
  checkOptions(options, [...kind.options, 'serializer', ...CACHE_OPTIONS], what)
  return splitKindOptions(kind, options as Record<string, unknown>)
}

/**
 * Splits a kind's options into its backend's and the cache's. A Redis `url`
 * becomes what it says: where it points for the backend, the cache options of
 * its query for the cache (options given beside the url win).
 * @internal
 */
export function splitKindOptions(
  kind: CacheKind,
  options: Record<string, unknown>,
): [Record<string, unknown>, Record<string, unknown>] {
  const backend: Record<string, unknown> = {}
  const cache: Record<string, unknown> = {}
  const url = kind === redis && typeof options.url === 'string' ? options.url : undefined
  if (url !== undefined) {
    const { namespace, ttl, timeout, ...location } = parseRedisUrl(url)
    Object.assign(backend, location)
    Object.assign(cache, defined({ namespace, ttl, timeout }))
  }
  for (const [name, value] of Object.entries(options)) {
    if (url !== undefined && name === 'url') continue
    // A clock is the cache's (getOrSet's expiry) and, where the backend takes one, the backend's too.
    if (name === 'clock') cache[name] = value
    if (kind.options.includes(name)) backend[name] = value
    else cache[name] = value
  }
  return [backend, cache]
}

function defined(options: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined))
}

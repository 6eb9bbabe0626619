import { MemoryBackend } from '../backends/memory/backend.js'
import type { Backend } from '../core/backend.js'
import { BaseCache, type CacheOptions as BaseOptions, CACHE_OPTIONS } from '../core/cache.js'
import type { AnySerializer } from '../core/serializer.js'
import { JsonSerializer, NullSerializer } from '../serializers.js'
import { describe } from '../util/describe.js'
import { InvalidCacheTypeError } from '../util/errors.js'
import { checkOptions } from '../util/options.js'
import { type CacheKind, kindOptions, readCacheUrl } from './kinds.js'

/** The options of `new Cache(…)`: every cache's, plus the backend and the serializer, both optional. */
export interface CacheOptions extends BaseOptions {
  /** Where entries live. Default: a new in-process `MemoryBackend`. */
  backend?: Backend
  /** Default: `NullSerializer` on the memory backend, `JsonSerializer` elsewhere. */
  serializer?: AnySerializer
}

/** What `Cache.fromUrl` takes besides the URL: any option of the cache it builds, over what the URL says. */
export interface UrlOptions extends Omit<CacheOptions, 'backend'> {
  /** Any option of the kind's backend: `maxSize`, `db`, `password`, `connectionsPerServer`, … */
  [option: string]: unknown
}

/**
 * An asynchronous cache, in-process memory unless given another backend, as
 * aiocache's `Cache()`. Every command runs through the chain: the timeout, the
 * plugins in order, the core step (key, serializer, backend).
 *
 * @example
 * ```ts
 * import { Cache, HitMissRatioPlugin } from 'oniocache'
 *
 * const cache = new Cache({ namespace: 'main', ttl: '10m', plugins: [new HitMissRatioPlugin()] })
 * await cache.set('user:1', { name: 'Ada' })
 * console.log(await cache.get('user:1')) // { name: 'Ada' }
 * console.log(await cache.get('user:2', { default: null })) // null
 * console.log(cache.hitMissRatio) // { hits: 1, total: 2, hitRatio: 0.5 }
 * await cache.close()
 * ```
 */
export class Cache extends BaseCache {
  /**
   * A cache from a URL, built synchronously and without connecting:
   * `memory://?maxSize=100`, `redis://[[user]:password@]host[:port][/db]?namespace=app&ttl=5`,
   * `rediss://…` (TLS), `memcached://host:port,host:port`. `options` go over what the
   * URL says. The Redis and Memcached backend modules are loaded on the first command.
   *
   * @param url - A `memory://`, `redis://`, `rediss://` or `memcached://` URL; error messages never repeat it.
   * @param options - Options of the cache and its backend, over what the URL says; not `backend` nor `cache`.
   * @throws {InvalidCacheTypeError} for an unknown scheme.
   * @throws {TypeError} for a malformed URL, an option the URL's kind does not take, or `backend` / `cache` in
   *   `options`.
   * @throws {RangeError} for a duration (`ttl`, `timeout`, …) that is not one.
   *
   * @example
   * ```ts
   * import { Cache } from 'oniocache'
   *
   * const cache = Cache.fromUrl('memory://?maxSize=1000&ttl=60', { namespace: 'app' })
   * await cache.set('answer', 42)
   * console.log(cache.ttl, await cache.get('answer')) // 60 42
   * await cache.close()
   *
   * // Redis db 2 with a password, each command bounded by 1 s; nothing connects before the first command:
   * const redis = Cache.fromUrl('redis://:secret@127.0.0.1:6379/2?timeout=1&namespace=app')
   * ```
   */
  static fromUrl(url: string, options: UrlOptions = {}): Cache {
    const { kind, options: fromUrl } = readCacheUrl(url)
    const where = `a ${url.slice(0, url.indexOf(':')).toLowerCase()}:// URL`
    if (options === null || typeof options !== 'object') {
      throw new TypeError(`[oniocache] Cache.fromUrl: options must be an object; got ${describe(options)}`)
    }
    if (Object.hasOwn(options, 'backend') || Object.hasOwn(options, 'cache')) {
      throw new TypeError(
        '[oniocache] Cache.fromUrl: the URL picks the cache class and its backend; "cache" and "backend" cannot be ' +
          'given beside it',
      )
    }
    const given = Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined))
    try {
      return cacheOfKind(kind, { ...fromUrl, ...given })
    } catch (error) {
      throw inContext(error, where)
    }
  }

  /**
   * A cache on `options.backend`, else on a new in-process `MemoryBackend`. The serializer defaults to
   * `NullSerializer` on a `MemoryBackend` and `JsonSerializer` on any other backend. Does no I/O.
   * @throws {TypeError} for an unknown option, or one of the wrong kind.
   * @throws {RangeError} for a `ttl` or `timeout` that is not a valid duration.
   */
  constructor(options: CacheOptions = {}) {
    checkOptions(options, ['backend', 'serializer', ...CACHE_OPTIONS], new.target.name)
    const backend = options.backend ?? new MemoryBackend()
    const serializer =
      options.serializer ?? (backend instanceof MemoryBackend ? new NullSerializer() : new JsonSerializer())
    super({ ...options, backend, serializer })
  }
}

/**
 * A `Cache` of a built-in kind from its options (backend and cache options
 * together), as `Cache.fromUrl` and `caches` build it.
 * @internal
 */
export function cacheOfKind(kind: CacheKind, options: Record<string, unknown>): Cache {
  const [backendOptions, cacheOptions] = kindOptions(kind, options, kind.className)
  return new Cache({ serializer: kind.serializer(), ...cacheOptions, backend: kind.backend(backendOptions) })
}

const REWRAPPED: ReadonlySet<unknown> = new Set<unknown>([TypeError, RangeError, InvalidCacheTypeError])

/**
 * A constructor's TypeError, RangeError or InvalidCacheTypeError again (subclasses are left alone), saying
 * which alias or URL it comes from.
 * @internal
 */
export function inContext(error: unknown, where: string): unknown {
  if (!(error instanceof Error) || !REWRAPPED.has(error.constructor)) return error
  const Same = error.constructor as new (message: string, options: ErrorOptions) => Error
  return new Same(`[oniocache] ${where}: ${error.message.replace(/^\[oniocache\] /, '')}`, { cause: error })
}

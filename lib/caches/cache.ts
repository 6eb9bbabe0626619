import { MemoryBackend } from '../backends/memory/backend.js'
import type { Backend } from '../core/backend.js'
import { BaseCache, type CacheOptions as BaseOptions, CACHE_OPTIONS } from '../core/cache.js'
import type { AnySerializer } from '../core/serializer.js'
import { JsonSerializer, NullSerializer } from '../serializers.js'
import { describe } from '../util/describe.js'
import { InvalidCacheTypeError } from '../util/errors.js'
import { checkOptions } from '../util/options.js'
import { type CacheKind, kindOptions, readCacheUrl } from './kinds.js'

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
 */
export class Cache extends BaseCache {
  /**
   * A cache from a URL, built synchronously and without connecting:
   * `memory://?maxSize=100`, `redis://[[user]:password@]host[:port][/db]?namespace=app&ttl=5`,
   * `rediss://…` (TLS), `memcached://host:port,host:port`. `options` go over what the
   * URL says. The Redis and Memcached backend modules are loaded on the first command.
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

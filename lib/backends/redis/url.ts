/**
 * The Redis URL grammar, the one every part of oniocache reads: `Cache.fromUrl`,
 * `caches` and the `url` option of `RedisCache` and `RedisBackend`.
 *
 * `redis://[[user]:password@]host[:port][/db][?query]`, `rediss://…` for TLS. One
 * host (a Cluster is given by its nodes); a port from 1 to 65535; the path is the
 * database number. The query takes the cache's options (`namespace`, `ttl`,
 * `timeout`), `connectTimeout` and `batch` (`true` or `false`). Errors never repeat the URL: it may hold a password.
 */

import type { Duration } from '../../util/duration.js'
import {
  CACHE_QUERY,
  type CacheQuery,
  decodeUserinfo,
  ENCODE_HINT,
  hostPort,
  readQuery,
  splitUrl,
  type UrlParts,
} from '../../util/url.js'

/** Where a Redis URL points, as backend options. */
export interface RedisLocation {
  /** The host, without brackets for IPv6; absent when the URL leaves it out. */
  host?: string
  /** The port (1 to 65535); absent when the URL leaves it out. */
  port?: number
  /** The database number, from the path (`/2`). */
  db?: number
  /** The user, percent-decoded. */
  username?: string
  /** The password, percent-decoded. */
  password?: string
  /** `true` for rediss://. */
  tls?: boolean
}

/** Everything a Redis URL says: where it points, `connectTimeout`, and the cache options of its query. */
export interface RedisUrl extends RedisLocation, CacheQuery {
  /** `?connectTimeout=2`: how long one connection attempt may take, as written (seconds or a string with a unit). */
  connectTimeout?: Duration
  /** `?batch=true`: the gets of a tick go to Redis as one `MGET` (see the `batch` option). */
  batch?: boolean
}

/** The backend options a redis:// query may set. @internal */
export const REDIS_QUERY = { connectTimeout: 'duration', batch: 'boolean' } as const

/** What the part of a redis:// or rediss:// URL before its query says. @internal */
export function redisLocation(parts: UrlParts): RedisLocation {
  const { scheme, userinfo, hosts, path } = parts
  const out: RedisLocation = {}
  if (hosts.includes(',')) {
    throw new TypeError(
      `[oniocache] a ${scheme}:// URL takes one host; for a Redis Cluster pass the cluster option ([{ url }] or ` +
        `['host:port'])`,
    )
  }
  const { host, port } = hostPort(hosts, `a ${scheme}:// URL`)
  if (host !== '') out.host = host
  if (port !== undefined) out.port = port
  if (path !== '' && path !== '/') {
    if (!/^\/\d+$/.test(path))
      throw new TypeError(
        `[oniocache] the path of a ${scheme}:// URL is the database number, such as /2 (${ENCODE_HINT})`,
      )
    out.db = Number(path.slice(1))
  }
  if (userinfo !== undefined) {
    const colon = userinfo.indexOf(':')
    const username = decodeUserinfo(colon === -1 ? userinfo : userinfo.slice(0, colon), scheme)
    const password = colon === -1 ? '' : decodeUserinfo(userinfo.slice(colon + 1), scheme)
    if (username !== '') out.username = username
    if (password !== '') out.password = password
  }
  if (scheme === 'rediss') out.tls = true
  return out
}

/**
 * Reads a redis:// or rediss:// URL, without connecting.
 *
 * @throws {TypeError} for anything that is not a redis:// or rediss:// URL, or an option its query does not take;
 *   the message never repeats the URL.
 * @throws {RangeError} for a `ttl`, `timeout` or `connectTimeout` that is not a valid duration.
 *
 * ```ts
 * parseRedisUrl('rediss://:pw@cache.local:6380/2?namespace=app&ttl=5m')
 * // { host: 'cache.local', port: 6380, db: 2, password: 'pw', tls: true, namespace: 'app', ttl: '5m' }
 * ```
 */
export function parseRedisUrl(url: string): RedisUrl {
  const parts = splitUrl(url)
  if (parts.scheme !== 'redis' && parts.scheme !== 'rediss') {
    throw new TypeError('[oniocache] [redis] a Redis URL starts with redis:// or rediss://')
  }
  return { ...redisLocation(parts), ...readQuery(parts.query, { ...CACHE_QUERY, ...REDIS_QUERY }, parts.scheme) }
}

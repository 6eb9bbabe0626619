/**
 * The Redis backend's options and their checks, apart from the backend itself so
 * that a cache built from a URL or a config is checked at once without loading it.
 */
import type { ConnectionOptions } from 'node:tls'
import { describe } from '../../util/describe.js'
import { type Duration, toSeconds } from '../../util/duration.js'
import { checkOptions } from '../../util/options.js'
import { hostPort } from '../../util/url.js'
import { parseRedisUrl, type RedisLocation } from './url.js'

/** Where the Redis backend connects. Durations are seconds. */
export interface RedisBackendOptions {
  /** `redis://[[user]:password@]host[:port][/db]` or `rediss://…` for TLS. */
  url?: string
  /** The server's host. Default `'127.0.0.1'` (or the url's). */
  host?: string
  /** The server's port. Default `6379` (or the url's). */
  port?: number
  /** The database number. Default `0` (or the url's). */
  db?: number
  /** The user for Redis ACLs (`AUTH user password`). */
  username?: string
  /** The password (`AUTH`). */
  password?: string
  /** `true`, or Node's TLS options. */
  tls?: boolean | ConnectionOptions
  /**
   * An existing node-redis client or cluster. It belongs to the caller: `close()`
   * leaves it open, and connecting it is the caller's job (oniocache connects it
   * if it is not open yet).
   */
  client?: unknown
  /** A Redis Cluster, by its root nodes: `[{ url }]` or `['host:port']`. */
  cluster?: ReadonlyArray<
    | {
        /** A root node's URL: `redis://[[user]:password@]host:port`. */
        url: string
      }
    | string
  >
  /** How long one connection attempt may take. Default `5` (seconds). */
  connectTimeout?: Duration
  /**
   * Batched reads: the `get`s issued in the same tick reach Redis as one `MGET` (one per hash slot on a Cluster;
   * a tick with a single get sends a plain `GET`). Each get still answers, fails and times out on its own.
   * Default `false`. In a URL: `?batch=true`.
   */
  batch?: boolean
}

/** @internal */
export const REDIS_OPTIONS: ReadonlyArray<keyof RedisBackendOptions> = [
  'url',
  'host',
  'port',
  'db',
  'username',
  'password',
  'tls',
  'client',
  'cluster',
  'connectTimeout',
  'batch',
]

/**
 * Checks the backend's options, the url and the cluster's node urls included (a
 * TypeError whose message repeats no part of a url: node-redis would fail on the
 * first command with the url, password included, in its error). Answers where
 * the url points, or `{}`.
 * @internal
 */
export function checkRedisOptions(
  options: RedisBackendOptions,
): RedisLocation & { connectTimeout?: Duration; batch?: boolean } {
  checkOptions(options, REDIS_OPTIONS, 'RedisBackend')
  const { client, cluster, url } = options
  if (options.batch !== undefined && typeof options.batch !== 'boolean') {
    throw new TypeError(`[oniocache] [redis] batch must be true or false; got ${describe(options.batch)}`)
  }
  if (client !== undefined && !isClient(client)) {
    throw new TypeError(
      `[oniocache] [redis] client must be a node-redis client or cluster (createClient() / createCluster() from ` +
        `@redis/client); got ${describe(client)}`,
    )
  }
  if (cluster !== undefined && (!Array.isArray(cluster) || cluster.length === 0)) {
    throw new TypeError(
      "[oniocache] [redis] cluster must be a non-empty list of root nodes: [{ url }] or ['host:port']",
    )
  }
  if (cluster !== undefined) {
    // The nodes come from the cluster; these would be silently dropped.
    const stray = (['host', 'port', 'db', 'url'] as const).filter((name) => options[name] !== undefined)
    if (stray.length > 0) {
      throw new TypeError(
        `[oniocache] [redis] cluster takes its nodes from its root nodes (and always uses database 0): ` +
          `${stray.join(', ')} cannot be given with it; put each node's address in cluster`,
      )
    }
  }
  for (const [i, node] of (cluster ?? []).entries()) {
    try {
      if (typeof node === 'string') hostPort(node, 'the node')
      else if (node !== null && typeof node === 'object' && typeof node.url === 'string') locationOf(node.url)
      else throw new TypeError(`[oniocache] a node is { url } or 'host:port'; got ${describe(node)}`)
    } catch (error) {
      throw new TypeError(
        `[oniocache] [redis] cluster[${i}]: ${(error as Error).message.replace(/^\[oniocache\] (\[redis\] )?/, '')}`,
      )
    }
  }
  if (options.connectTimeout !== undefined) toSeconds(options.connectTimeout, 'connectTimeout')
  if (url === undefined) return {}
  if (typeof url !== 'string') throw new TypeError(`[oniocache] [redis] url must be a string; got ${describe(url)}`)
  return locationOf(url)
}

/** Where a backend's url points; its query may set `connectTimeout` and `batch`, the rest being a cache's options. */
function locationOf(url: string): RedisLocation & { connectTimeout?: Duration; batch?: boolean } {
  const { namespace, ttl, timeout, ...location } = parseRedisUrl(url)
  const cacheOptions = Object.entries({ namespace, ttl, timeout }).flatMap(([name, value]) =>
    value === undefined ? [] : [name],
  )
  if (cacheOptions.length > 0) {
    throw new TypeError(
      `[oniocache] [redis] ${cacheOptions.join(', ')} in the url's query ` +
        `${cacheOptions.length === 1 ? 'is a cache option' : 'are cache options'}: ` +
        'give the url to RedisCache or Cache.fromUrl, or set them on the cache',
    )
  }
  return location
}

/**
 * The server a backend with these (checked) options talks to, for its name: `127.0.0.1:6379`, `cluster a:1,b:2`,
 * `client`.
 * @internal
 */
export function serverLabel(options: RedisBackendOptions): string {
  if (options.cluster !== undefined) {
    return `cluster ${options.cluster.map((node) => (typeof node === 'string' ? node : hostOf(node.url))).join(',')}`
  }
  if (options.client !== undefined && options.host === undefined) return 'client'
  const fromUrl = options.url !== undefined ? parseRedisUrl(options.url) : {}
  return `${options.host ?? fromUrl.host ?? '127.0.0.1'}:${options.port ?? fromUrl.port ?? 6379}`
}

function hostOf(url: string): string {
  const { host = '127.0.0.1', port = 6379 } = parseRedisUrl(url)
  return `${host}:${port}`
}

function isClient(value: unknown): boolean {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as { sendCommand?: unknown }).sendCommand === 'function' &&
    typeof (value as { on?: unknown }).on === 'function'
  )
}

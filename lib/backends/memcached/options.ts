/**
 * The Memcached backend's options and their checks, apart from the backend itself
 * so that a cache built from a URL or a config is checked at once without loading it.
 */
import { describe } from '../../util/describe.js'
import { type Duration, toSeconds } from '../../util/duration.js'
import { checkOptions } from '../../util/options.js'
import { DEFAULT_PORT, parseServer } from './servers.js'

/** Where the Memcached backend connects, and how. Durations are seconds. */
export interface MemcachedBackendOptions {
  /** `'host:port'` of every server; keys are spread over them by consistent hashing. Default `['127.0.0.1:11211']`. */
  servers?: readonly string[]
  /** Connections per server, requests pipelined over them. Default 2. */
  connectionsPerServer?: number
  /** How long one connection attempt may take. Default `2` (seconds). */
  connectTimeout?: Duration
  /**
   * Batched reads: the `get`s issued in the same tick reach each connection in one write (a key on the connection
   * its other commands use). Each get still answers, fails and times out on its own. Default `false`.
   */
  batch?: boolean
}

/** @internal */
export const MEMCACHED_OPTIONS: ReadonlyArray<keyof MemcachedBackendOptions> = [
  'servers',
  'connectionsPerServer',
  'connectTimeout',
  'batch',
]

/** Checks the options; answers the servers (the default one when none are given). @internal */
export function checkMemcachedOptions(options: MemcachedBackendOptions): readonly string[] {
  checkOptions(options, MEMCACHED_OPTIONS, 'MemcachedBackend')
  const { servers = [`127.0.0.1:${DEFAULT_PORT}`], connectionsPerServer, connectTimeout } = options
  if (!Array.isArray(servers) || servers.length === 0) {
    throw new TypeError(
      `[oniocache] [memcached] servers must be a non-empty list of 'host:port' strings; got ${describe(servers)}`,
    )
  }
  for (const server of servers) parseServer(server)
  if (
    connectionsPerServer !== undefined &&
    !(Number.isSafeInteger(connectionsPerServer) && connectionsPerServer >= 1)
  ) {
    throw new TypeError(
      `[oniocache] [memcached] connectionsPerServer must be an integer >= 1; got ${describe(connectionsPerServer)}`,
    )
  }
  if (connectTimeout !== undefined) toSeconds(connectTimeout, 'connectTimeout')
  if (options.batch !== undefined && typeof options.batch !== 'boolean') {
    throw new TypeError(`[oniocache] [memcached] batch must be true or false; got ${describe(options.batch)}`)
  }
  return servers
}

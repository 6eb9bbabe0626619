import { describe } from '../../util/describe.js'
import { hostPort } from '../../util/url.js'

/** memcached's port when a memcached:// URL leaves it out. @internal */
export const DEFAULT_PORT = 11211

/** A server: `'host:port'` as given (a key's server depends on these exact strings), its host and port. */
export interface Server {
  name: string
  host: string
  port: number
}

/**
 * Reads a `'host:port'` server (IPv6: `'[::1]:11211'`); the host grammar is the one
 * of every cache URL. A TypeError names what is wrong, never more of the text.
 * @internal
 */
export function parseServer(text: unknown): Server {
  const example = "a memcached server must be a 'host:port' string such as '127.0.0.1:11211'"
  if (typeof text !== 'string') throw new TypeError(`[oniocache] ${example}; got ${describe(text)}`)
  let server: { host: string; port?: number }
  try {
    server = hostPort(text, 'a memcached server')
  } catch {
    server = { host: '' }
  }
  const { host, port } = server
  if (host === '' || port === undefined) throw new TypeError(`[oniocache] ${example}; got ${describe(text)}`)
  return { name: text, host, port }
}

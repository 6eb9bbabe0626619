/**
 * The Memcached URL grammar: `memcached://host:port[,host:port…][?query]` — no user
 * or path; a server without a port is on 11211; the query takes the cache's options.
 */
import { hostPort, type UrlParts } from '../../util/url.js'
import { DEFAULT_PORT } from './servers.js'

/** What the part of a memcached:// URL before its query says: the servers, if any. @internal */
export function memcachedLocation(parts: UrlParts): { servers?: string[] } {
  if (parts.userinfo !== undefined) {
    throw new TypeError(
      '[oniocache] a memcached:// URL takes no user or password: the meta protocol has no authentication',
    )
  }
  if (parts.path !== '' && parts.path !== '/') {
    throw new TypeError('[oniocache] a memcached:// URL takes no path: servers are host:port pairs separated by commas')
  }
  if (parts.hosts === '') return {}
  const servers = parts.hosts.split(',').map((server) => {
    const { host, port = DEFAULT_PORT } = hostPort(server, 'a memcached:// URL')
    if (host === '') {
      throw new TypeError(
        '[oniocache] every server of a memcached:// URL needs a host, such as ' +
          'memcached://10.0.0.1:11211,10.0.0.2:11211',
      )
    }
    return `${host.includes(':') ? `[${host}]` : host}:${port}`
  })
  return { servers }
}

/**
 * The common grammar of cache URLs: `scheme://[userinfo@]hosts[/path][?query]`.
 * Each backend reads its own hosts, path and query options on top of it (see its
 * `url.ts`); the options every cache takes (`namespace`, `ttl`, `timeout`) are read
 * here. Errors never repeat the URL: it may hold a password.
 */
import { describe } from './describe.js'
import { type Duration, toSeconds } from './duration.js'

/** A URL split into its parts; `scheme` lower-cased, nothing decoded yet. */
export interface UrlParts {
  scheme: string
  userinfo: string | undefined
  hosts: string
  path: string
  query: URLSearchParams
}

/** How a query value is read: as text, a duration (`5`, `0.25`, `'250ms'`), a whole number, or `true`/`false`. */
export type QueryKind = 'string' | 'duration' | 'integer' | 'boolean'

/** The query options of every cache URL, whatever its scheme. @internal */
export const CACHE_QUERY = { namespace: 'string', ttl: 'duration', timeout: 'duration' } as const satisfies Record<
  string,
  QueryKind
>

/** The cache options a URL's query sets. */
export interface CacheQuery {
  /** `?namespace=app`: the cache's namespace. */
  namespace?: string
  /** `?ttl=60` or `?ttl=5m`: the cache's default ttl, as written (a number of seconds or a string with a unit). */
  ttl?: Duration
  /** `?timeout=1` or `?timeout=250ms`: the cache's timeout, as written. */
  timeout?: Duration
}

/** @internal */
export const ENCODE_HINT = 'characters such as / ? # @ : in a user or password must be percent-encoded'

/** Splits a cache URL; a TypeError that does not echo the input when it is not one. @internal */
export function splitUrl(url: unknown): UrlParts {
  if (typeof url !== 'string') {
    throw new TypeError(
      `[oniocache] a cache URL must be a string such as redis://127.0.0.1:6379/0; got ${describe(url)}`,
    )
  }
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)(?:\?([^#]*))?(#.*)?$/s.exec(url)
  if (m === null) {
    throw new TypeError(
      '[oniocache] not a cache URL: it must start with a scheme and "://", such as redis://127.0.0.1:6379/0',
    )
  }
  const [, rawScheme = '', authority = '', path = '', query = '', fragment] = m
  const scheme = rawScheme.toLowerCase()
  // An @ past the host means a / ? or # in the user info cut the URL short: reading on could echo part of a password.
  if ((path + query + (fragment ?? '')).includes('@')) {
    throw new TypeError(
      `[oniocache] a ${scheme}:// URL has an "@" after its host: ${ENCODE_HINT} (and an @ in a query value as %40)`,
    )
  }
  if (fragment !== undefined) throw new TypeError(`[oniocache] a ${scheme}:// URL takes no #fragment`)
  const at = authority.lastIndexOf('@')
  return {
    scheme,
    userinfo: at === -1 ? undefined : authority.slice(0, at),
    hosts: authority.slice(at + 1),
    path,
    query: new URLSearchParams(query),
  }
}

/**
 * The query's options, each read by its kind in `table`; an option not in the
 * table, or given twice, is a TypeError.
 * @internal
 */
export function readQuery(
  query: URLSearchParams,
  table: Readonly<Record<string, QueryKind>>,
  scheme: string,
): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const name of new Set(query.keys())) {
    const kind = Object.hasOwn(table, name) ? table[name] : undefined
    if (kind === undefined) {
      throw new TypeError(
        `[oniocache] unknown option ${JSON.stringify(name)} in a ${scheme}:// URL; the query takes: ` +
          `${Object.keys(table).join(', ')}`,
      )
    }
    const values = query.getAll(name)
    if (values.length > 1) {
      throw new TypeError(
        `[oniocache] option ${JSON.stringify(name)} is given ${values.length} times in a ${scheme}:// URL`,
      )
    }
    out[name] = queryValue(name, values[0]!, kind, scheme)
  }
  return out
}

function queryValue(name: string, text: string, kind: QueryKind, scheme: string): unknown {
  switch (kind) {
    case 'string':
      return text
    case 'integer':
      if (!/^\d+$/.test(text)) {
        throw new TypeError(
          `[oniocache] option ${JSON.stringify(name)} in a ${scheme}:// URL must be an integer; got ${describe(text)}`,
        )
      }
      return Number(text)
    case 'boolean':
      if (text !== 'true' && text !== 'false') {
        throw new TypeError(
          `[oniocache] option ${JSON.stringify(name)} in a ${scheme}:// URL must be true or false; ` +
            `got ${describe(text)}`,
        )
      }
      return text === 'true'
    case 'duration': {
      const value = /^(\d+(\.\d*)?|\.\d+)$/.test(text) ? Number(text) : text
      toSeconds(value, `${name} in a ${scheme}:// URL`)
      return value
    }
  }
}

/**
 * `host`, `host:port`, `[v6]` or `[v6]:port`, the host coming back without brackets.
 * A host holds no white space, and none of `/ ? # @ [ ] ,`; a port is 1 to 65535.
 * @internal
 */
export function hostPort(text: string, where: string): { host: string; port?: number } {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:/?#@[\],]*))(?::(\d*))?$/.exec(text)
  if (m === null) {
    throw new TypeError(
      `[oniocache] ${where} has a host that cannot be read (expected host:port or [IPv6]:port; ${ENCODE_HINT})`,
    )
  }
  const host = m[1] ?? m[2]!
  if (m[3] === undefined || m[3] === '') return { host }
  const port = Number(m[3])
  if (port < 1 || port > 65535) throw new TypeError(`[oniocache] ${where} has a port out of range (1 to 65535)`)
  return { host, port }
}

/** A percent-encoded user or password. @internal */
export function decodeUserinfo(text: string, scheme: string): string {
  try {
    return decodeURIComponent(text)
  } catch {
    throw new TypeError(`[oniocache] a ${scheme}:// URL has a user or password with a malformed %-escape`)
  }
}

/** The memory backend's URL grammar: `memory://?maxSize=1000&ttl=60` — no host, user or path; options in the query. */
import type { QueryKind, UrlParts } from '../../util/url.js'
import type { MemoryBackendOptions } from './backend.js'

/** The backend options a memory:// query may set. @internal */
export const MEMORY_QUERY = {
  maxSize: 'integer',
  maxBytes: 'integer',
  policy: 'string',
  sweepInterval: 'duration',
  sweepBatch: 'integer',
} as const satisfies Record<keyof Omit<MemoryBackendOptions, 'clock' | 'sizeOf'>, QueryKind>

/** What the part of a memory:// URL before its query says: nothing, or a TypeError. @internal */
export function memoryLocation(parts: UrlParts): MemoryBackendOptions {
  if (parts.userinfo !== undefined || parts.hosts !== '' || (parts.path !== '' && parts.path !== '/')) {
    throw new TypeError(
      '[oniocache] a memory:// URL takes no host, user, password or path: options go in the query, such as ' +
        'memory://?maxSize=1000&ttl=60',
    )
  }
  return {}
}

/**
 * Reads of a backend that does I/O, shared: concurrent reads of one built key send one request, and every caller
 * gets its answer (each deserializes it on its own); `getOrSet` reads this way. A write issued through the core
 * forgets the key's reads in flight, so that a read issued after it never joins one issued before it.
 */
import type { Backend } from './backend.js'

/** Per backend, per variant (what else must match to share: the encoding…), the reads in flight by built key. */
const inFlight = new WeakMap<Backend, Map<string, Map<string, Promise<unknown>>>>()

/**
 * The answer of a read of `key` on `backend` in flight with the same `variant`, or of the one `start` begins.
 * @internal
 */
export function sharedRead(
  backend: Backend,
  key: string,
  variant: string,
  start: () => Promise<unknown>,
): Promise<unknown> {
  let variants = inFlight.get(backend)
  if (variants === undefined) inFlight.set(backend, (variants = new Map()))
  let reads = variants.get(variant)
  if (reads === undefined) variants.set(variant, (reads = new Map()))
  const found = reads.get(key)
  if (found !== undefined) return found
  const started = start()
  reads.set(key, started)
  const held = reads
  const done = (): void => {
    if (held.get(key) === started) held.delete(key)
  }
  started.then(done, done)
  return started
}

/** A write of `key` (`null`: of any key) was issued: later reads start afresh. @internal */
export function forgetReads(backend: Backend, key: string | null): void {
  if (backend.synchronous === true) return
  const variants = inFlight.get(backend)
  if (variants === undefined) return
  for (const reads of variants.values()) {
    if (key === null) reads.clear()
    else reads.delete(key)
  }
}

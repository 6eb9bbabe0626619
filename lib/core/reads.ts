/**
 * Reads of a backend that does I/O, shared: concurrent reads of one built key send one request, and every caller
 * gets its answer (each deserializes it on its own). `get` and `getOrSet` read this way. A write issued through the
 * core forgets the key's reads in flight, so that a read issued after it never joins one issued before it.
 *
 * `get` pays for this on its hot path, so its reads cost no promise reaction of their own (the core step forgets a
 * read in the reaction each caller already has: `settledRead`, from the command's `done` or its failure path) and
 * no allocation (a fixed table of slots, see `SLOTS`).
 */
import type { Backend, Receiver } from './backend.js'

/**
 * `get`'s reads of one encoding in flight on one backend: a table of `SLOTS` slots, a key's read in the slot its
 * hash picks. Two keys in flight on one slot only cost the first its sharing: the second takes the slot.
 */
interface Table {
  readonly keys: Array<string | undefined>
  readonly reads: Array<Promise<unknown> | SharedReceiver | undefined>
}

/**
 * The command a read started with `Backend.getInto` answers: the commands that join its read get the same answer
 * from it (`join`), after it has its own. @internal
 */
export interface SharedReceiver extends Receiver {
  join(other: Receiver): void
}

/** The reads in flight on one backend. */
interface Reads {
  /** `get`'s reads of text (serializer encoding `'utf8'`) and of bytes (`null`), each made by its first read. */
  text: Table | undefined
  bytes: Table | undefined
  /** `getOrSet`'s reads, bounded by their call's timeout: by variant (timeout and encoding), then by built key. */
  readonly bounded: Map<string, Map<string, Promise<unknown>>>
}

/**
 * Slots per table. A fixed table costs a hash and two stores per read, and nothing else: a Map that the reads
 * enter and leave cost a get on Redis, with a thousand in flight, about 30 % more CPU time (measured against the
 * raw client in the same process), and a table measured the same as no sharing at all.
 */
const SLOTS = 4096

const inFlight = new WeakMap<Backend, Reads>()
// The backend of the last read: a cache talks to one backend, so the WeakMap is rarely asked.
let lastBackend: Backend | undefined
let lastReads: Reads | undefined

function table(): Table {
  return {
    keys: new Array<string | undefined>(SLOTS).fill(undefined),
    reads: new Array<Promise<unknown> | SharedReceiver | undefined>(SLOTS).fill(undefined),
  }
}

function readsOf(backend: Backend): Reads {
  if (backend === lastBackend) return lastReads!
  let reads = inFlight.get(backend)
  if (reads === undefined) {
    reads = { text: undefined, bytes: undefined, bounded: new Map() }
    inFlight.set(backend, reads)
  }
  lastBackend = backend
  lastReads = reads
  return reads
}

/** `get`'s reads of `encoding` in flight on `backend`. */
function tableOf(backend: Backend, encoding: 'utf8' | null): Table {
  const reads = readsOf(backend)
  return encoding === null ? (reads.bytes ??= table()) : (reads.text ??= table())
}

/** The slot of `key`: FNV-1a over its UTF-16 code units. */
function slotOf(key: string): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193)
  return hash & (SLOTS - 1)
}

/**
 * `get`'s read of `key`: the backend's answer, or the promise of a read of the same key and encoding already in
 * flight. A synchronous backend (memory) is asked every time. The caller must tell `settledRead` once the promise
 * has settled, in the reaction it has anyway: that is what ends the read's sharing, at the cost of no reaction of
 * its own.
 * @internal
 */
export function sharedGet(backend: Backend, key: string, encoding: 'utf8' | null): unknown {
  if (backend.synchronous === true) return backend.get(key, encoding)
  const t = tableOf(backend, encoding)
  const slot = slotOf(key)
  if (t.keys[slot] === key) {
    const read = t.reads[slot]!
    if (read instanceof Promise) return read
    // A read started by `sharedGetInto` (another cache on this backend, without plugins): joined with a promise.
    return new Promise((resolve, reject) => read.join({ succeed: resolve, failed: reject }))
  }
  const started = backend.get(key, encoding)
  // A backend that answers a plain value (it may: the interface allows it) has nothing in flight to share.
  if (started instanceof Promise) {
    t.keys[slot] = key
    t.reads[slot] = started
  }
  return started
}

/**
 * `sharedGet` answering into `receiver` (see `Backend.getInto`), for a backend that has `getInto`: the read of `key`
 * in flight is joined, else `receiver` starts one. As with `sharedGet`, the caller must tell `settledRead` once
 * answered.
 * @internal
 */
export function sharedGetInto(
  backend: Backend,
  getInto: NonNullable<Backend['getInto']>,
  key: string,
  encoding: 'utf8' | null,
  receiver: SharedReceiver,
): void {
  const t = tableOf(backend, encoding)
  const slot = slotOf(key)
  if (t.keys[slot] === key) {
    const read = t.reads[slot]!
    if (read instanceof Promise) {
      read.then(
        (value) => receiver.succeed(value),
        (error: unknown) => receiver.failed(error),
      )
    } else read.join(receiver)
    return
  }
  // In the table before the backend is asked: an answer given at once still ends the read's sharing.
  t.keys[slot] = key
  t.reads[slot] = receiver
  getInto.call(backend, key, encoding, receiver)
}

/**
 * A read of `sharedGet` settled: later reads of `key` start afresh. Each caller calls it (the first one removes the
 * read; removing a later read of the same key, started after a write, only costs that one a share).
 * @internal
 */
export function settledRead(backend: Backend, key: string, encoding: 'utf8' | null): void {
  const reads = readsOf(backend)
  const slot = slotOf(key)
  // The serializer (and so the encoding) is writable: a read started under the other one is removed too.
  if (!clear(encoding === null ? reads.bytes : reads.text, slot, key)) {
    clear(encoding === null ? reads.text : reads.bytes, slot, key)
  }
}

function clear(t: Table | undefined, slot: number, key: string): boolean {
  if (t === undefined || t.keys[slot] !== key) return false
  t.keys[slot] = undefined
  t.reads[slot] = undefined
  return true
}

/**
 * The answer of a read of `key` on `backend` in flight with the same `variant`, or of the one `start` begins:
 * `getOrSet`'s reads, each bounded by its call's timeout, so shared only among calls bounded alike.
 * @internal
 */
export function sharedRead(
  backend: Backend,
  key: string,
  variant: string,
  start: () => Promise<unknown>,
): Promise<unknown> {
  const { bounded } = readsOf(backend)
  let reads = bounded.get(variant)
  if (reads === undefined) bounded.set(variant, (reads = new Map()))
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
  const reads = backend === lastBackend ? lastReads : inFlight.get(backend)
  if (reads === undefined) return
  if (key === null) {
    for (const t of [reads.text, reads.bytes]) {
      t?.keys.fill(undefined)
      t?.reads.fill(undefined)
    }
    for (const variant of reads.bounded.values()) variant.clear()
    return
  }
  const slot = slotOf(key)
  clear(reads.text, slot, key)
  clear(reads.bytes, slot, key)
  // Most caches never ran a getOrSet: no iterator made on every write for nothing.
  if (reads.bounded.size !== 0) for (const variant of reads.bounded.values()) variant.delete(key)
}

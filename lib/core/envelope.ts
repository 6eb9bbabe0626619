/**
 * The envelope: how an entry written with grace, eager refresh or tags is stored,
 * around the serializer's output. Version 1 is the magic `"\0oniocache:1\0"`, a
 * one-line JSON header, a newline, then the serialized value unchanged:
 *
 *     \0oniocache:1\0{"e":1767225600000,"c":1767225000000}\n{"name":"Ada"}
 *
 * `e` is the logical expiry and `c` the creation time, both in milliseconds since
 * the epoch (`e` 0: never stale), `t` the tags when there are any, `g` 1 when it
 * was written with grace. A string stored
 * value gives a string envelope, bytes give bytes (the same layout in UTF-8), and
 * any other stored value (the memory backend's `NullSerializer`) an `Envelope`
 * object. Plain writes stay plain; one whose stored form happens to start with the
 * magic is wrapped (with no expiry) so that it reads back as written.
 */

/** The magic that starts every envelope: NUL, `oniocache:1`, NUL. @internal */
export const MAGIC = '\u0000oniocache:1\u0000'
const MAGIC_BYTES = Buffer.from(MAGIC, 'latin1')
const NEWLINE = 0x0a

/** What an envelope says about its value. @internal */
export interface EnvelopeHeader {
  /** Logical expiry, ms since the epoch; 0 for never. */
  readonly e: number
  /** Creation time, ms since the epoch. */
  readonly c: number
  /** Tags, when the entry has any. */
  readonly t?: readonly string[]
  /** 1 when the entry was written with grace: once invalidated by a tag it is stale, not gone. */
  readonly g?: 1
}

/** An envelope kept as an object, for backends that store values as they are (memory). @internal */
export class Envelope implements EnvelopeHeader {
  readonly e: number
  readonly c: number
  readonly t?: readonly string[]
  readonly g?: 1
  readonly inner: unknown
  constructor(header: EnvelopeHeader, inner: unknown) {
    this.e = header.e
    this.c = header.c
    if (header.t !== undefined) this.t = header.t
    if (header.g !== undefined) this.g = header.g
    this.inner = inner
  }
}

/** An opened envelope: its header and the serialized value inside. @internal */
export interface Opened {
  readonly header: EnvelopeHeader
  readonly inner: unknown
}

/** Puts a serialized value in an envelope of the same kind (string, bytes or object). @internal */
export function wrap(stored: unknown, header: EnvelopeHeader): unknown {
  const text = JSON.stringify(header)
  if (typeof stored === 'string') return `${MAGIC}${text}\n${stored}`
  if (stored instanceof Uint8Array) {
    return Buffer.concat([MAGIC_BYTES, Buffer.from(`${text}\n`, 'utf8'), stored])
  }
  return new Envelope(header, stored)
}

/**
 * Whether a stored value may be an envelope: the cheap test every read makes
 * (a first character or byte of NUL, or an `Envelope`). @internal
 */
export function mayBeWrapped(stored: unknown): boolean {
  if (typeof stored === 'string') return stored.charCodeAt(0) === 0
  if (stored instanceof Uint8Array) return stored[0] === 0
  return stored instanceof Envelope
}

/** The envelope's header and contents, or `undefined` for a plain stored value. @internal */
export function unwrap(stored: unknown): Opened | undefined {
  if (stored instanceof Envelope) return { header: stored, inner: stored.inner }
  if (typeof stored === 'string') {
    if (!stored.startsWith(MAGIC)) return undefined
    const end = stored.indexOf('\n', MAGIC.length)
    if (end === -1) return undefined
    const header = parseHeader(stored.slice(MAGIC.length, end))
    return header === undefined ? undefined : { header, inner: stored.slice(end + 1) }
  }
  if (stored instanceof Uint8Array) {
    if (stored.byteLength < MAGIC_BYTES.byteLength) return undefined
    const bytes = Buffer.isBuffer(stored) ? stored : Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength)
    if (!bytes.subarray(0, MAGIC_BYTES.byteLength).equals(MAGIC_BYTES)) return undefined
    const end = bytes.indexOf(NEWLINE, MAGIC_BYTES.byteLength)
    if (end === -1) return undefined
    const header = parseHeader(bytes.toString('utf8', MAGIC_BYTES.byteLength, end))
    return header === undefined ? undefined : { header, inner: bytes.subarray(end + 1) }
  }
  return undefined
}

/** A plain write's stored form, wrapped when it would otherwise read as an envelope. @internal */
export function plain(stored: unknown, now: number): unknown {
  return mayBeWrapped(stored) && unwrap(stored) !== undefined ? wrap(stored, { e: 0, c: now }) : stored
}

function parseHeader(text: string): EnvelopeHeader | undefined {
  let header: unknown
  try {
    header = JSON.parse(text)
  } catch {
    return undefined
  }
  if (header === null || typeof header !== 'object') return undefined
  const { e, c, t, g } = header as Record<string, unknown>
  if (typeof e !== 'number' || typeof c !== 'number') return undefined
  if (t !== undefined && !(Array.isArray(t) && t.every((tag) => typeof tag === 'string'))) return undefined
  return { e, c, ...(t !== undefined ? { t: t as string[] } : {}), ...(g === 1 ? { g: 1 as const } : {}) }
}

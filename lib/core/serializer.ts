/**
 * Turns values into what a backend stores and back. `encoding: null` means the
 * serializer works in bytes (`Uint8Array`), `'utf8'` that it works in strings.
 * `loads(undefined)` is `undefined`: a miss stays a miss. Every shipped
 * serializer also reads a plain number as that number (as text for
 * `StringSerializer`): that is how the memory backend keeps a counter that
 * `increment` created.
 */
export interface Serializer<Stored = string | Uint8Array> {
  /** `'utf8'`: `dumps` answers strings; `null`: bytes. Backends hand stored values back in the same form. */
  readonly encoding: 'utf8' | null
  /**
   * Encodes a value for the backend. Throws for a value it cannot represent; a cache command then rejects with a
   * `SerializationError` whose `cause` is that error, and writes nothing.
   */
  dumps(value: unknown): Stored
  /**
   * Decodes what the backend stored; `undefined` (a miss) stays `undefined`. A throw becomes the command's
   * `SerializationError`.
   */
  loads(stored: Stored | undefined): unknown
}

/** Any serializer a cache accepts, NullSerializer included. */
export type AnySerializer = Serializer<unknown>

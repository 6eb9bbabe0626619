/**
 * Turns values into what a backend stores and back. `encoding: null` means the
 * serializer works in bytes (`Uint8Array`), `'utf8'` that it works in strings.
 * `loads(undefined)` is `undefined`: a miss stays a miss. Every shipped
 * serializer also reads a plain number as that number (as text for
 * `StringSerializer`): that is how the memory backend keeps a counter that
 * `increment` created.
 */
export interface Serializer<Stored = string | Uint8Array> {
  readonly encoding: 'utf8' | null
  dumps(value: unknown): Stored
  loads(stored: Stored | undefined): unknown
}

/** Any serializer a cache accepts, NullSerializer included. */
export type AnySerializer = Serializer<unknown>

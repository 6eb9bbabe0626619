/**
 * memcached's key rules, the one home of them: 1 to 250 bytes, no white space or
 * control characters (either would end the command line early). The backend turns
 * spaces into `_` first, as aiocache does.
 */
import { InvalidKeyError } from '../../util/errors.js'

/** @internal */
export const MAX_KEY_BYTES = 250
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this pattern is about
const FORBIDDEN = /[\u0000-\u0020\u007f]/

/** Which rule `key` breaks, or `undefined` when memcached can take it as it is. @internal */
export function keyProblem(key: unknown): 'not a string' | 'empty' | 'character' | 'length' | undefined {
  if (typeof key !== 'string') return 'not a string'
  if (key === '') return 'empty'
  if (FORBIDDEN.test(key)) return 'character'
  // A UTF-16 code unit takes at most 3 bytes in UTF-8: only long keys need counting.
  if (key.length > MAX_KEY_BYTES / 3 && Buffer.byteLength(key) > MAX_KEY_BYTES) return 'length'
  return undefined
}

/**
 * A key as the backend sends it: spaces become `_` (as in aiocache); anything
 * else memcached cannot hold is an `InvalidKeyError`, before any I/O.
 *
 * @throws {InvalidKeyError} for an empty key, a key longer than 250 bytes (UTF-8) or one with a control
 *   character.
 */
export function checkKey(key: string): string {
  const k = key.includes(' ') ? key.replaceAll(' ', '_') : key
  switch (keyProblem(k)) {
    case undefined:
      return k
    case 'length':
      throw new InvalidKeyError(
        `[oniocache] [memcached] the key ${JSON.stringify(k.slice(0, 40) + '…')} is ${Buffer.byteLength(k)} bytes; ` +
          `memcached keys hold at most ${MAX_KEY_BYTES} (namespace included)`,
      )
    case 'empty':
      throw new InvalidKeyError(
        `[oniocache] [memcached] the key is empty (an empty key with namespace ''), which memcached keys cannot be`,
      )
    default:
      throw new InvalidKeyError(
        `[oniocache] [memcached] the key ${JSON.stringify(k)} has a control character (\\r, \\n, \\0, tab…), which ` +
          `memcached keys cannot hold`,
      )
  }
}

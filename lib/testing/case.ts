import type { Session } from './harness.js'
import type { SerializerName } from './options.js'

/** One test of the suite: its body gets a session whose caches are closed after it. */
export interface Case {
  readonly name: string
  body(session: Session): Promise<void>
}

/**
 * A test that waits for ttls (through `session.timeline()`): on an injected clock
 * it runs alone, on real time side by side with the other ttl cases.
 */
export type TtlCase = Case

/** Stored falsy values: each must read back as itself (a hit), never as a miss or the default. @internal */
export function falsyValues(
  serializer: SerializerName,
): ReadonlyArray<readonly [label: string, value: unknown, expected: unknown]> {
  const texts = [
    ['empty string', '', ''],
    ['"0"', '0', '0'],
  ] as const
  if (serializer === 'string')
    return [...texts, ['0 (stored as "0")', 0, '0'], ['false (stored as "false")', false, 'false']]
  return [...texts, ['0', 0, 0], ['false', false, false], ['null', null, null]]
}

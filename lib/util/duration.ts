import { describe } from './describe.js'

/**
 * Durations are seconds, as in aiocache. A string may carry a unit instead:
 * '250ms', '10s', '5m', '1h', '1d'.
 */
export type Duration = number | `${number}${DurationUnit}`
/** The units a duration string may carry: milliseconds, seconds, minutes, hours, days. */
export type DurationUnit = 'ms' | 's' | 'm' | 'h' | 'd'

const UNIT_SECONDS: Record<DurationUnit, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86_400 }
// A number as String(n) writes it (exponent included: '1e-7s'), then a unit.
const DURATION = /^\s*((?:\d+(?:\.\d+)?|\.\d+)(?:e[+-]?\d+)?)\s*(ms|s|m|h|d)\s*$/

/**
 * Parses a duration into seconds. `null` and `0` mean "none" and come back as 0.
 * Anything negative, NaN, infinite or unparsable is a RangeError that names `what`.
 *
 * @param value - Seconds (fractions allowed) or a string such as `'250ms'`, `'10s'`, `'5m'`, `'1h'`, `'1d'`.
 * @param what - The option's name, for the error message.
 * @throws {RangeError} for anything that is not a duration.
 */
export function toSeconds(value: unknown, what: string): number {
  if (typeof value === 'number') {
    if (value >= 0 && value !== Infinity) return value
  } else if (value === null) {
    return 0
  } else if (typeof value === 'string') {
    const m = DURATION.exec(value)
    if (m !== null) {
      const seconds = Number(m[1]) * UNIT_SECONDS[m[2] as DurationUnit]
      if (seconds !== Infinity) return seconds
    }
  }
  throw new RangeError(
    `[oniocache] ${what} must be a number of seconds >= 0 or a string such as '250ms', '10s', '5m', '1h', '1d'` +
      ` (0 or null for none); got ${describe(value)}`,
  )
}

/**
 * A lock's lease in seconds: a duration above 0 (a lock without a lease could be
 * held forever, so 0 and `null` are refused too). The one lease rule of locks and
 * `cachedStampede`.
 * @internal
 */
export function toLease(value: unknown, what: string): number {
  const seconds = typeof value === 'number' || typeof value === 'string' ? toSecondsOrNaN(value) : Number.NaN
  if (!(seconds > 0)) {
    throw new RangeError(
      `[oniocache] ${what} must be a number of seconds above 0 or a string such as '500ms', '2s' (a lock without ` +
        `a lease could be held forever); got ${describe(value)}`,
    )
  }
  return seconds
}

function toSecondsOrNaN(value: number | string): number {
  try {
    return toSeconds(value, 'lease')
  } catch {
    return Number.NaN
  }
}

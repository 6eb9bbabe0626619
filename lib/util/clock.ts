import { performance } from 'node:perf_hooks'

/** A monotonic clock in milliseconds. Tests inject one they can move by hand. */
export interface Clock {
  /** The current time in milliseconds; it never goes backwards. Only differences between readings matter. */
  now(): number
}

/**
 * Milliseconds from a monotonic high-resolution clock. Bound once: a bare
 * `performance.now()` goes through a lazy global getter and a receiver check on
 * every call, which costs as much as a memory hit.
 * @internal
 */
export const now: () => number = performance.now.bind(performance)

/** The default clock: `performance.now`. @internal */
export const monotonic: Clock = { now }

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

/** How old a reading of `coarse` may be, in milliseconds. */
const COARSE_MS = 1
let reading: number | undefined
const forget = (): void => {
  reading = undefined
}

/**
 * `performance.now` read at most once a millisecond: lifetimes checked on every hit (the memory backend's ttls,
 * the near cache's copies) compare with a reading that is at most a millisecond old, kept until a timer forgets it.
 * A clock read costs tens of nanoseconds, as much as the rest of a memory hit. While the event loop is held by
 * synchronous work (or a loop of promises that never yields to timers) the reading stands still.
 * @internal
 */
export const coarse: Clock = {
  now(): number {
    if (reading !== undefined) return reading
    reading = now()
    setTimeout(forget, COARSE_MS).unref()
    return reading
  },
}

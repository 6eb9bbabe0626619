import { performance } from 'node:perf_hooks'

/**
 * Milliseconds from a monotonic high-resolution clock. Bound once: a bare
 * `performance.now()` goes through a lazy global getter and a receiver check on
 * every call, which costs as much as a memory hit.
 */
export const now: () => number = performance.now.bind(performance)

/** The default clock of the memory backend. */
export const monotonic = { now }

/**
 * One timer for every pending command of the process, instead of a `setTimeout`
 * per command (a per-command timer alone cut node-redis's throughput 6.7×), and
 * no clock read per command either (a clock read costs about as much as a memory
 * hit here).
 *
 * Pending commands sit in an intrusive doubly linked list: watching and
 * unwatching cost a few field writes. A single unref'd timer ticks while
 * anything is watched, every 1/20 of the shortest timeout (between 1 and 25 ms).
 * The first tick that sees a command stamps it with the time of that tick, which
 * is no earlier than the command started; a later tick expires it once its
 * timeout has passed since the stamp. So a command never times out early, and at
 * most two ticks late (1/10 of its timeout, 50 ms at the default 5 s).
 */
import { now } from '../util/clock.js'

export interface Due {
  /** Milliseconds after which it expires. */
  timeoutMs: number
  /** `now()` of the first tick that saw it; 0 until then. */
  stamp: number
  prevDue: Due | null
  nextDue: Due | null
  /** Called once when the timeout has passed. */
  expire(): void
}

const MIN_TICK_MS = 1
const MAX_TICK_MS = 25

let head: Due | null = null
let tail: Due | null = null
let timer: NodeJS.Timeout | undefined
let tickMs = Infinity

/** @internal */
export function watch(item: Due, timeoutMs: number): void {
  item.timeoutMs = timeoutMs
  item.stamp = 0
  item.prevDue = tail
  item.nextDue = null
  if (tail === null) head = item
  else tail.nextDue = item
  tail = item
  const needed = tickFor(timeoutMs)
  if (needed < tickMs) arm(needed)
}

/** @internal */
export function unwatch(item: Due): void {
  const { prevDue, nextDue } = item
  if (prevDue === null) {
    if (head !== item) return // not watched
    head = nextDue
  } else {
    prevDue.nextDue = nextDue
  }
  if (nextDue === null) tail = prevDue
  else nextDue.prevDue = prevDue
  item.prevDue = item.nextDue = null
}

/** How many commands are being watched (for tests and leak checks). @internal */
export function watching(): number {
  let n = 0
  for (let item = head; item !== null; item = item.nextDue) n++
  return n
}

function tickFor(timeoutMs: number): number {
  return Math.min(MAX_TICK_MS, Math.max(MIN_TICK_MS, timeoutMs / 20))
}

function arm(ms: number): void {
  if (timer !== undefined) clearTimeout(timer)
  tickMs = ms
  timer = setTimeout(tick, ms)
  timer.unref()
}

function tick(): void {
  timer = undefined
  tickMs = Infinity
  const time = now()
  let shortest = Infinity
  const due: Due[] = []
  for (let item = head; item !== null; ) {
    const following = item.nextDue
    if (item.stamp === 0) {
      item.stamp = time
    } else if (time - item.stamp >= item.timeoutMs) {
      unwatch(item)
      due.push(item)
      item = following
      continue
    }
    if (item.timeoutMs < shortest) shortest = item.timeoutMs
    item = following
  }
  if (shortest !== Infinity) arm(tickFor(shortest))
  // Expire after the walk: an expiry runs abort listeners, which may settle or start other commands.
  for (const item of due) item.expire()
}

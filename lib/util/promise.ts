/**
 * A promise and its settling functions without a closure per promise: `settleable()` answers a new promise, and
 * `resolveLast` and `rejectLast` are its resolve and reject until the next call. Read them at once, before anything
 * else can call `settleable()`.
 */

/** The resolve function of the promise `settleable()` made last. @internal */
export let resolveLast: (value: unknown) => void = () => {}
/** The reject function of the promise `settleable()` made last. @internal */
export let rejectLast: (reason: unknown) => void = () => {}

function capture(resolve: (value: unknown) => void, reject: (reason: unknown) => void): void {
  resolveLast = resolve
  rejectLast = reject
}

/** A new pending promise; `resolveLast` and `rejectLast` settle it. @internal */
export function settleable(): Promise<unknown> {
  return new Promise(capture)
}

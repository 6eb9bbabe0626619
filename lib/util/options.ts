import { describe } from './describe.js'

/**
 * The one option checker: `options` must be an object whose every own key is in
 * `known`; anything else is a TypeError that names `what`, the option and the known ones.
 * @internal
 */
export function checkOptions(options: unknown, known: Iterable<string>, what: string): asserts options is object {
  const names = known instanceof Set ? (known as ReadonlySet<string>) : new Set(known)
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`[oniocache] ${what}: options must be an object; got ${describe(options)}`)
  }
  for (const name of Object.keys(options)) {
    if (!names.has(name)) {
      throw new TypeError(
        `[oniocache] ${what}: unknown option ${JSON.stringify(name)}; known: ${[...names].join(', ')}`,
      )
    }
  }
}

/**
 * Checks `options` against `own` and `rest` together, then splits them: the ones
 * named in `own` (a backend's) and the others (the cache's).
 * @internal
 */
export function splitOptions<Own, Rest>(
  options: unknown,
  own: readonly string[],
  rest: readonly string[],
  what: string,
): [Own, Rest] {
  checkOptions(options, [...rest, ...own], what)
  const mine: Record<string, unknown> = {}
  const others: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(options)) {
    if (own.includes(name)) mine[name] = value
    else others[name] = value
  }
  return [mine as Own, others as Rest]
}

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

import type { BaseCache } from '../../lib/index.js'

/** Every kind of write of key `k` through `cache`, each as a function that issues it. */
export function writesOfK(cache: BaseCache): Array<() => Promise<unknown>> {
  return [
    () => cache.set('k', 'new'),
    () => cache.delete('k'),
    () => cache.add('k', 'added'),
    () => cache.increment('k'), // refused (not an integer), but issued all the same
    () => cache.expire('k', 60),
    () => cache.multiSet([['k', 'many']]),
    () => cache.clear(),
    () => cache.raw('set', 'k', '"raw"'),
  ]
}

/**
 * Tags: entries written with `tags` carry them in their envelope, with their
 * creation time. `invalidateTags` writes, per tag, one key holding the time of the
 * invalidation — one write per tag, never a scan — and a read of a tagged entry
 * reads those keys (one multiGet) and treats the entry as invalidated when one of
 * its tags was invalidated at or after its creation. Every process sharing the
 * store sees the same tag keys.
 */
import { describe } from '../util/describe.js'
import type { CommandContext } from './context.js'

/** What the key of a tag starts with, before the cache's key builder adds the namespace. @internal */
export const TAG_KEY_PREFIX = '__oniocache_tag:'

/** The tags of a call, checked: an array of non-empty strings. @internal */
export function checkTags(command: string, tags: unknown): readonly string[] {
  if (!Array.isArray(tags) || !tags.every((tag) => typeof tag === 'string' && tag !== '')) {
    throw new TypeError(`[oniocache] ${command}: tags must be an array of non-empty strings; got ${describe(tags)}`)
  }
  return tags
}

/** The keys that hold the invalidation times of `tags`, in the command's namespace. @internal */
export function tagKeys(ctx: CommandContext, tags: readonly string[]): string[] {
  return tags.map((tag) => ctx.cache.buildKey(TAG_KEY_PREFIX + tag, ctx.args.namespace))
}

/** Whether an entry created at `created` (ms) was invalidated by one of these stored times. @internal */
export function invalidated(created: number, times: readonly unknown[]): boolean {
  for (const time of times) {
    if (time === undefined) continue
    const at = Number(typeof time === 'string' ? time : String(time))
    // The same millisecond counts as after: a spurious miss is safer than a stale read.
    if (at >= created) return true
  }
  return false
}

/**
 * The invalidation times of `tags`, read from the backend as it stores them (text):
 * directly from a synchronous backend, else a promise. @internal
 */
export function tagTimes(
  ctx: CommandContext,
  tags: readonly string[],
): readonly unknown[] | Promise<readonly unknown[]> {
  const answer = ctx.cache.backend.multiGet(tagKeys(ctx, tags), 'utf8')
  return ctx.cache.backend.synchronous === true ? (answer as readonly unknown[]) : Promise.resolve(answer)
}

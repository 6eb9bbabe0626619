/**
 * Streams of invalidations: how an in-process copy of a shared store learns that
 * entries changed elsewhere. A backend may offer one (Redis: server-assisted
 * client-side caching) through `Backend.watchChanges`; a bus (`RedisBus`) offers one
 * for any backend, carried by the writers themselves.
 */

/** What a stream of invalidations tells whoever listens to it. */
export interface InvalidationListener {
  /** These keys (built, namespace applied) changed; `null`: any key may have changed (a flush). */
  invalidate(keys: readonly string[] | null): void
  /** Every key starting with `prefix` was removed (`clear` of a namespace). */
  invalidatePrefix(prefix: string): void
  /**
   * The stream is down or was interrupted: changes made meanwhile may never be
   * told. Called once per interruption, with what went wrong.
   */
  lost(error: unknown): void
  /** The stream carries every change from now on: at the start and after each interruption. */
  live(): void
}

/** What a bus carries: keys that changed, or the prefix of keys that were all removed (`clear`). */
export type InvalidationChange =
  | {
      /** The keys (built) that changed. */
      readonly keys: readonly string[]
    }
  | {
      /** What the keys that were all removed start with (built); `''`: every key. */
      readonly prefix: string
    }

/** Stops listening; never rejects. */
export type StopListening = () => Promise<void>

/**
 * A channel that writers tell their changes on and every process sharing a store
 * listens to. Messages carry keys, never values.
 */
export interface InvalidationBus {
  /**
   * Starts telling `listener` the changes published by everyone else: other
   * processes, and other listeners of this bus in this process. Resolves once
   * subscribed; `listener.live()` says when the stream is known to work.
   */
  listen(listener: InvalidationListener): Promise<StopListening>
  /**
   * Tells everyone but `from` that `keys` changed (or, with `prefix`, every key
   * starting with it). Never rejects: a publish that fails is retried a bounded
   * number of times, then `failed` is told why.
   */
  publish(from: InvalidationListener, change: InvalidationChange, failed: (error: unknown) => void): void
}

/**
 * What oniocache publishes on `node:diagnostics_channel`: every command on the
 * tracing channel `oniocache:command`, and the failures it deliberately does not
 * throw at a caller on `oniocache:error`. Publishing is skipped entirely while
 * nobody subscribes, so an untraced command pays one check.
 */
import { channel, tracingChannel } from 'node:diagnostics_channel'
import { type Backend, identify } from './backend.js'
import type { ContextCache } from './context.js'
import type { CommandName } from './options.js'

/**
 * The message of one command on the `oniocache:command` tracing channel, the same
 * object at `start`, `end`, `asyncStart`, `asyncEnd` and `error`. `keys` are the
 * keys as the backend sees them (namespace applied), known at `start` from the
 * arguments and updated once the command has built them; `hit` and `hits` are set
 * before `asyncStart`. Node's tracing channel adds `result` or `error`.
 */
export interface CommandMessage {
  /** The cache the command ran on. */
  readonly cache: ContextCache
  /** The command: `'get'`, `'multiGet'`, `'set'`, …, `'close'`. */
  readonly command: CommandName
  /** The namespace the keys were built with (`''` for none). */
  readonly namespace: string
  /** The built keys; `['prefix*']` for `clear`, `[]` for `raw`, `close` and bad arguments. */
  keys: string[]
  /** `'memory'`, `'redis'`, `'memcached'`, or a custom backend's name (its first word). */
  readonly backend: string
  /** `'host:port'` (several joined by `,`) where the backend has servers; `undefined` otherwise. */
  readonly server: string | undefined
  /**
   * `get`: whether the key was found; `getOrSet`: whether a fresh entry answered. `undefined` when a middleware
   * answered without the store.
   */
  hit?: boolean
  /** `multiGet`: how many of the keys were found; `undefined` when a middleware answered. */
  hits?: number
  /** Set by the tracing channel when the command succeeds. */
  result?: unknown
  /** Set by the tracing channel when the command fails. */
  error?: unknown
}

/**
 * The message on `oniocache:error`: a failure oniocache handled without throwing
 * at the caller (a `cached` call that fell back to its function because the cache
 * failed, a cache write after it that failed).
 */
export interface ErrorMessage {
  /** What failed: the cache command (`'get'`, `'set'`, …) or the decorator's step. */
  readonly command: string
  /** The namespace of the failed step: the decorator's `namespace` option, else the cache's (`''` for none). */
  readonly namespace: string
  /** The error that was handled instead of thrown. */
  readonly error: unknown
  /** The cache it happened on, when there is one. */
  readonly cache?: ContextCache
}

/** The tracing channel of every command: `oniocache:command`. */
export const commandChannel = tracingChannel<unknown, CommandMessage>('oniocache:command')

/** The channel of failures oniocache handles without throwing at the caller: `oniocache:error`. */
export const errorChannel = channel('oniocache:error')

const { start, end, asyncStart, asyncEnd, error: errorSub } = commandChannel
/**
 * Whether anyone listens on `oniocache:command`: what the tracing channel's own
 * `hasSubscribers` answers (Node 20.13+), asked of its five channels directly, which
 * V8 reduces to a few checks of their shape. @internal
 */
export function traced(): boolean {
  return (
    start.hasSubscribers ||
    end.hasSubscribers ||
    asyncStart.hasSubscribers ||
    asyncEnd.hasSubscribers ||
    errorSub.hasSubscribers
  )
}

/** Publishes a handled failure on `oniocache:error`, if anyone listens. @internal */
export function reportError(command: string, namespace: string, error: unknown, cache?: ContextCache): void {
  if (!errorChannel.hasSubscribers) return
  const message: ErrorMessage =
    cache === undefined ? { command, namespace, error } : { command, namespace, error, cache }
  errorChannel.publish(message)
}

/** The message for a command about to run on a cache with this backend. @internal */
export function commandMessage(
  cache: ContextCache,
  command: CommandName,
  namespace: string,
  keys: string[],
  backend: Backend,
): CommandMessage {
  const { system, server } = identify(backend)
  return { cache, command, namespace, keys, backend: system, server }
}

import { describe } from './describe.js'

/**
 * Every error class oniocache throws. Each has a `name` equal to its class name,
 * so that logs and `err.name` checks work across module copies, and errors that
 * wrap another one keep it as `cause`.
 */

/** Base class of oniocache's own errors: `err instanceof CacheError` tells them from any other. */
export class CacheError extends Error {
  /**
   * An error whose `name` is the class's name.
   * @param message - What went wrong and what to do about it.
   * @param options - `cause`: the error this one wraps.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = new.target.name
  }
}

/** `add` was called for a key that already exists. */
export class KeyExistsError extends CacheError {
  /** The key as the caller gave it, before `buildKey`. */
  readonly key: string
  /**
   * Says that `key` exists and that `set()` overwrites it.
   * @param key - The caller's key.
   */
  constructor(key: string) {
    super(`[oniocache] key ${describe(key)} already exists: use set() to overwrite it`)
    this.key = key
  }
}

/** A command did not finish within its timeout (seconds). */
export class TimeoutError extends CacheError {
  /** What timed out: the command's name (`'get'`, …), or `'RedLock release'` / `'RedLock wait'` for a lock. */
  readonly command: string
  /** The timeout that passed, in seconds. */
  readonly timeout: number
  /**
   * Says what timed out, after how long, and what to raise.
   * @param command - What timed out.
   * @param timeout - The timeout in seconds.
   */
  constructor(command: string, timeout: number) {
    super(
      `[oniocache] ${command} timed out after ${timeout}s: raise the cache's or the call's timeout, or check the ` +
        `backend`,
    )
    this.command = command
    this.timeout = timeout
  }
}

/**
 * The factory of `getOrSet` outlasted its `hardTimeout` and there was no stale value
 * to answer instead. Its `signal` was aborted with this error.
 */
export class FactoryTimeoutError extends CacheError {
  /** The key as given to `getOrSet`. */
  readonly key: string
  /** The hard timeout that passed, in seconds. */
  readonly timeout: number
  /**
   * Names the key and the timeout.
   * @param key - The key as given to `getOrSet`.
   * @param timeout - The hard timeout in seconds.
   */
  constructor(key: string, timeout: number) {
    super(
      `[oniocache] getOrSet ${describe(key)}: the factory took longer than its hardTimeout (${timeout}s) and ` +
        `no stale value was kept (give grace to answer one instead)`,
    )
    this.key = key
    this.timeout = timeout
  }
}

/** The serializer could not encode or decode a value; `cause` is its error. */
export class SerializationError extends CacheError {}

/** A key the backend cannot store (too long, control characters, ...). */
export class InvalidKeyError extends CacheError {}

/** An unknown cache alias, cache type, serializer, plugin or URL scheme. */
export class InvalidCacheTypeError extends CacheError {}

/** `OptimisticLock.cas` found that the value changed since it was read. */
export class OptimisticLockError extends CacheError {}

/**
 * A backend failed or could not be reached. The message names the backend and
 * the server (`[oniocache] [redis 127.0.0.1:6379] ...`); `cause` is the client's error.
 */
export class BackendError extends CacheError {
  /** The backend and its server, as in the message: `'redis 127.0.0.1:6379'`, `'memcached 10.0.0.5:11211'`. */
  readonly backend: string
  /**
   * An error whose message starts with `[oniocache] [<backend>]`.
   * @param backend - The backend's name (see `Backend.name`).
   * @param message - What happened, after that prefix.
   * @param options - `cause`: the client's error.
   */
  constructor(backend: string, message: string, options?: ErrorOptions) {
    super(`[oniocache] [${backend}] ${message}`, options)
    this.backend = backend
  }
}

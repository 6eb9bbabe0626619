import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { inspect } from 'node:util'
import type { BaseCache as Cache } from '../core/cache.js'
import type { AnySerializer } from '../core/serializer.js'
import { JsonSerializer, MsgPackSerializer, NullSerializer, StringSerializer, V8Serializer } from '../serializers.js'
import { describe } from '../util/describe.js'
import type { ConformanceClock, ConformanceFactoryOptions, SerializerName, Settings } from './options.js'

/** @internal */
export function serializerFor(name: SerializerName): AnySerializer {
  switch (name) {
    case 'null':
      return new NullSerializer()
    case 'string':
      return new StringSerializer()
    case 'json':
      return new JsonSerializer()
    case 'msgpack':
      return new MsgPackSerializer()
    case 'v8':
      return new V8Serializer()
  }
}

/** Namespaces of one run start with this, so that runs sharing a server never meet. */
const RUN = `oc${randomBytes(4).toString('hex')}`
let tests = 0

export interface CacheRequest {
  serializer?: SerializerName
  /** The cache's default ttl; left out, the cache has none. */
  ttl?: number | null
  /** Default: the test's own namespace, `session.ns`. */
  namespace?: string
}

/**
 * Everything one test made: its namespace and its caches, closed when the test
 * ends. A test derives further namespaces from `ns` (`${ns}-user`), so they are
 * unique too.
 */
export class Session {
  readonly ns = `${RUN}-${++tests}`
  readonly #settings: Settings
  readonly #caches: Cache[] = []

  constructor(settings: Settings) {
    this.#settings = settings
  }

  /** A fresh cache from the factory, checked to be bound as asked. */
  async cache(request: CacheRequest = {}): Promise<Cache> {
    const name = request.serializer ?? this.#settings.main
    const namespace = request.namespace ?? this.ns
    const serializer = serializerFor(name)
    const options: ConformanceFactoryOptions = { namespace, serializer }
    if (request.ttl !== undefined) options.ttl = request.ttl
    const made: unknown = await this.#settings.factory(options)
    if (
      made === null ||
      typeof made !== 'object' ||
      typeof (made as Cache).get !== 'function' ||
      typeof (made as Cache).close !== 'function'
    ) {
      throw new TypeError(
        `[oniocache/testing] the factory must answer a Cache (or a promise of one); it answered ${describe(made)}`,
      )
    }
    const cache = made as Cache
    this.#caches.push(cache)
    const how = 'new Cache({ backend, namespace, serializer, ttl }) with the options the factory is given'
    if (cache.namespace !== namespace) {
      throw new Error(
        `[oniocache/testing] the factory was asked for namespace ${JSON.stringify(namespace)} but its cache has ` +
          `${JSON.stringify(cache.namespace)}: build it as ${how}`,
      )
    }
    if (cache.serializer !== serializer) {
      throw new Error(
        `[oniocache/testing] the factory was given a ${serializer.constructor.name} but its cache uses ` +
          `${describe(cache.serializer)}: build it as ${how}`,
      )
    }
    const ttl = request.ttl === undefined || request.ttl === 0 ? null : request.ttl
    // A factory may leave the ttl out (the backend sees the same seconds either way): then the suite sets it.
    if (ttl !== null && cache.ttl === null) cache.ttl = ttl
    if (cache.ttl !== ttl) {
      throw new Error(
        `[oniocache/testing] the factory was asked for a default ttl of ${String(ttl)} but its cache has ` +
          `${String(cache.ttl)}: build it as ${how}, and set no default ttl of its own`,
      )
    }
    return cache
  }

  /** A timeline starting now: the clock is moved, or real time is waited out. */
  timeline(): Timeline {
    const clock = this.#settings.clock
    return clock === undefined ? new RealTimeline() : new ClockTimeline(clock)
  }

  /** Closes every cache the test made; the first failure wins, after all were tried. */
  async close(): Promise<void> {
    const failures: unknown[] = []
    for (const cache of this.#caches.splice(0)) {
      try {
        await cache.close()
      } catch (error) {
        failures.push(error)
      }
    }
    if (failures.length > 0) throw failures[0]
  }
}

/**
 * Time as the ttl tests see it. Every ttl they use lies between 1.5 and 2
 * seconds (or far beyond the late point), which gives two checkpoints:
 * - `early`: every such key is still there. With an injected clock 1.4 s, which
 *   tells a ttl truncated to whole seconds from one honoured. On real servers
 *   0.5 s, since a server counting whole seconds (Memcached) may drop a key up
 *   to one second before its rounded-up ttl is over.
 * - `late`: every such key is gone, even where 1.5 was rounded up to 2: 2.05 s
 *   on a clock, 2.6 s on real servers.
 */
export interface Timeline {
  /** Whether time is moved by hand, so checkpoints are exact. */
  readonly precise: boolean
  readonly early: number
  readonly late: number
  /** Resolves once `seconds` have passed since the timeline started. */
  at(seconds: number): Promise<void>
}

class ClockTimeline implements Timeline {
  readonly precise = true
  readonly early = 1.4
  readonly late = 2.05
  readonly #clock: ConformanceClock
  #elapsed = 0

  constructor(clock: ConformanceClock) {
    this.#clock = clock
  }

  async at(seconds: number): Promise<void> {
    if (seconds <= this.#elapsed) return
    const step = seconds - this.#elapsed
    this.#elapsed = seconds
    await this.#clock.advance(step)
  }
}

class RealTimeline implements Timeline {
  readonly precise = false
  readonly early = 0.5
  readonly late = 2.6
  readonly #start = performance.now()

  async at(seconds: number): Promise<void> {
    const wait = this.#start + seconds * 1000 - performance.now()
    if (wait > 0) await sleep(wait)
  }
}

// ---------------------------------------------------------------------------
// Assertions

/** Short enough for a failure message, even for a 1 MB value. @internal */
export function show(value: unknown): string {
  return inspect(value, { depth: 4, maxArrayLength: 16, maxStringLength: 80, breakLength: Infinity })
}

/** Fails the test with a message (typed as never returning). @internal */
export function fail(message: string): never {
  throw new assert.AssertionError({ message, operator: 'conformance' })
}

export type Expected = 'Error' | 'TypeError' | 'RangeError' | 'KeyExistsError' | 'SerializationError'

/**
 * Calls a command that must fail: it must answer a promise (never throw), and
 * the promise must reject with the expected error. Library errors are told by
 * `name`, as the SPEC promises, so two copies of oniocache still agree.
 * @internal
 */
export async function rejects(call: () => Promise<unknown>, expected: Expected, label: string): Promise<Error> {
  let promise: Promise<unknown>
  try {
    promise = call()
  } catch (error) {
    fail(`${label}: threw synchronously instead of answering a rejected promise: ${show(error)}`)
  }
  let outcome: { resolved: true; value: unknown } | { resolved: false; error: unknown }
  try {
    outcome = { resolved: true, value: await promise }
  } catch (error) {
    outcome = { resolved: false, error }
  }
  if (outcome.resolved)
    fail(`${label}: expected a rejection with ${expected}, but it resolved to ${show(outcome.value)}`)
  const error = outcome.error
  const ok =
    error instanceof Error &&
    (expected === 'Error' ||
      (expected === 'TypeError' && error instanceof TypeError) ||
      (expected === 'RangeError' && error instanceof RangeError) ||
      error.name === expected)
  if (!ok) fail(`${label}: expected a rejection with ${expected}, got ${show(error)}`)
  return error as Error
}

/**
 * Byte arrays in any flavour (Buffer included) become plain `Uint8Array`s, deeply, so that equal bytes compare equal.
 * @internal
 */
export function plain(value: unknown, seen = new Map<object, unknown>()): unknown {
  if (value === null || typeof value !== 'object') return value
  if (seen.has(value)) return seen.get(value)
  if (value instanceof Uint8Array) return new Uint8Array(value)
  if (Array.isArray(value)) {
    const out: unknown[] = []
    seen.set(value, out)
    for (const item of value) out.push(plain(item, seen))
    return out
  }
  if (value instanceof Map) {
    const out = new Map<unknown, unknown>()
    seen.set(value, out)
    for (const [k, v] of value) out.set(plain(k, seen), plain(v, seen))
    return out
  }
  if (value instanceof Set) {
    const out = new Set<unknown>()
    seen.set(value, out)
    for (const item of value) out.add(plain(item, seen))
    return out
  }
  const proto: unknown = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) return value
  const out: Record<string, unknown> = {}
  seen.set(value, out)
  for (const [k, v] of Object.entries(value)) out[k] = plain(v, seen)
  return out
}

/** Deep equality where a `Buffer` equals a `Uint8Array` of the same bytes. @internal */
export function same(actual: unknown, expected: unknown, label: string): void {
  assert.deepEqual(plain(actual), plain(expected), label)
}

/** Exact byte equality, with the first difference in the message. @internal */
export function sameBytes(actual: unknown, expected: Uint8Array, label: string): void {
  if (!(actual instanceof Uint8Array)) fail(`${label}: expected bytes (a Uint8Array), got ${show(actual)}`)
  if (actual.length !== expected.length) fail(`${label}: expected ${expected.length} bytes, got ${actual.length}`)
  for (let i = 0; i < expected.length; i++) {
    if (actual[i] !== expected[i])
      fail(`${label}: byte ${i} is 0x${(actual[i] ?? 0).toString(16)}, expected 0x${(expected[i] ?? 0).toString(16)}`)
  }
}

/** Strict equality of long strings without a diff of a megabyte. @internal */
export function sameString(actual: unknown, expected: string, label: string): void {
  if (actual === expected) return
  if (typeof actual !== 'string')
    fail(`${label}: expected a string of ${expected.length} characters, got ${show(actual)}`)
  let i = 0
  while (i < actual.length && actual[i] === expected[i]) i++
  fail(
    `${label}: expected ${expected.length} characters, got ${actual.length}; first difference at ${i}: ` +
      `${show(actual.slice(i, i + 20))} instead of ${show(expected.slice(i, i + 20))}`,
  )
}

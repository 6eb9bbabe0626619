import type { BaseCache as Cache } from '../core/cache.js'
import type { AnySerializer } from '../core/serializer.js'
import { describe } from '../util/describe.js'
import { checkOptions } from '../util/options.js'

/** The serializers the suite knows, by the name a backend lists them under. */
export type SerializerName = 'null' | 'string' | 'json' | 'msgpack' | 'v8'

/** What the suite hands the factory for every cache it asks for. */
export interface ConformanceFactoryOptions {
  /**
   * Unique to one test (and to this run), so tests never see each other's keys
   * and may share a server with anything else. Bind the cache to it.
   */
  namespace: string
  /** A fresh serializer instance: give it to the cache as is. */
  serializer: AnySerializer
  /**
   * Present only when a test needs a default ttl: the cache's `ttl` option. A
   * factory that leaves it out still passes: the suite then sets `cache.ttl`.
   */
  ttl?: number | null
}

/**
 * Makes a fresh `Cache` on the backend under test, bound to the namespace,
 * serializer and ttl it is given. The suite closes every cache it asked for.
 */
export type ConformanceFactory = (options: ConformanceFactoryOptions) => Cache | Promise<Cache>

/** How the suite makes time pass for ttl tests when the backend reads an injected clock. */
export interface ConformanceClock {
  /** Moves the clock the backend reads forward by `seconds` (fractions included). */
  advance(seconds: number): Promise<void> | void
}

/** What the backend can do; the suite checks the other side of every `false`. */
export interface ConformanceCapabilities {
  /**
   * `clear({ namespace })` removes one namespace. Default `true`. With `false`
   * (Memcached) the suite checks that clearing by namespace rejects and removes nothing.
   */
  clearNamespace?: boolean
  /**
   * The suite may empty the whole store with `clear()` on a cache whose namespace
   * is `''`. Default `false`: turn it on only when every cache the factory makes
   * has a store of its own (memory) or the server is a throwaway one.
   */
  clearAll?: boolean
  /** `set(…, { casToken })` is supported. Default `true`. */
  casToken?: boolean
  /** A backend-specific check of `cache.raw(…)`, run as a test of its own on a fresh cache. */
  raw?: (cache: Cache) => Promise<void> | void
}

/** What a backend tells the suite about itself; every field is optional. */
export interface ConformanceOptions {
  /**
   * The serializers the backend supports. Default `['string', 'json', 'msgpack', 'v8']`;
   * `'null'` (NullSerializer, values kept as they are) makes sense for in-process stores only.
   */
  serializers?: readonly SerializerName[]
  /**
   * The clock the backend reads, when it can be injected: ttl tests then move it
   * and never sleep. Without one (real servers) ttl tests use real ttls of 1.5–2 s,
   * run side by side, and wait about 2.6 s in all.
   */
  clock?: ConformanceClock
  /**
   * What the backend can do. Default: clearing by namespace and `casToken` supported, the whole store never
   * cleared, no `raw` check.
   */
  capabilities?: ConformanceCapabilities
  /** How many calls the atomicity tests (add, increment, casToken) make at once. Default 20. */
  concurrency?: number
}

/** @internal */
export const SERIALIZER_NAMES: readonly SerializerName[] = ['null', 'string', 'json', 'msgpack', 'v8']
const DEFAULT_SERIALIZERS: readonly SerializerName[] = ['string', 'json', 'msgpack', 'v8']
/** Which serializer runs the tests that are not about serializers: text first, so counters read back. */
const MAIN_PREFERENCE: readonly SerializerName[] = ['json', 'string', 'null', 'msgpack', 'v8']

/** The options with every default filled in and checked. */
export interface Settings {
  readonly factory: ConformanceFactory
  readonly serializers: readonly SerializerName[]
  /** The serializer of the tests that are not about serializers. */
  readonly main: SerializerName
  readonly clock: ConformanceClock | undefined
  readonly clearNamespace: boolean
  readonly clearAll: boolean
  readonly casToken: boolean
  readonly raw: ((cache: Cache) => Promise<void> | void) | undefined
  readonly concurrency: number
}

const OPTIONS = new Set(['serializers', 'clock', 'capabilities', 'concurrency'])
const CAPABILITIES = new Set(['clearNamespace', 'clearAll', 'casToken', 'raw'])

/** @internal */
export function settle(factory: ConformanceFactory, options: ConformanceOptions = {}): Settings {
  if (typeof factory !== 'function') {
    throw new TypeError(
      `[oniocache/testing] the factory must be a function ({ namespace, serializer, ttl }) => Cache; got ` +
        `${describe(factory)}`,
    )
  }
  checkOptions(options, OPTIONS, 'conformance options')
  const { serializers = DEFAULT_SERIALIZERS, clock, capabilities = {}, concurrency = 20 } = options
  if (
    !Array.isArray(serializers) ||
    serializers.length === 0 ||
    !serializers.every((s) => SERIALIZER_NAMES.includes(s))
  ) {
    throw new TypeError(
      `[oniocache/testing] serializers must be a non-empty array of ` +
        `${SERIALIZER_NAMES.map((s) => `'${s}'`).join(', ')}; got ${describe(serializers)}`,
    )
  }
  if (clock !== undefined && typeof clock?.advance !== 'function') {
    throw new TypeError(
      '[oniocache/testing] clock must be an object with an advance(seconds) method that moves the clock the backend ' +
        'reads',
    )
  }
  checkOptions(capabilities, CAPABILITIES, 'conformance capabilities')
  const { clearNamespace = true, clearAll = false, casToken = true, raw } = capabilities
  for (const [name, value] of Object.entries({ clearNamespace, clearAll, casToken })) {
    if (typeof value !== 'boolean')
      throw new TypeError(`[oniocache/testing] capabilities.${name} must be a boolean; got ${describe(value)}`)
  }
  if (raw !== undefined && typeof raw !== 'function')
    throw new TypeError(
      `[oniocache/testing] capabilities.raw must be a function (cache) => Promise<void>; got ${describe(raw)}`,
    )
  if (!(Number.isSafeInteger(concurrency) && concurrency >= 2)) {
    throw new TypeError(
      `[oniocache/testing] concurrency must be an integer >= 2 (calls made at once by the atomicity tests); got ` +
        `${describe(concurrency)}`,
    )
  }
  const unique = [...new Set(serializers)]
  const main = MAIN_PREFERENCE.find((s) => unique.includes(s))!
  return { factory, serializers: unique, main, clock, clearNamespace, clearAll, casToken, raw, concurrency }
}

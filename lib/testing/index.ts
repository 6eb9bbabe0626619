/**
 * `oniocache/testing`: the backend conformance suite. A backend proves it keeps
 * oniocache's contract by running it against a factory of caches. The cases use
 * `node:assert`; runners get thin adapters, and none is needed to load this module.
 *
 * `registerConformance(test, factory)` declares the tests through any runner's `test` / `it`,
 * `conformance(name, factory)` registers a uvu suite, `conformanceNodeTest(name, factory)`
 * a `node:test` suite, and `conformanceTests` gives the tests as plain functions.
 *
 * @example
 * ```ts
 * import { test } from 'node:test' // or vitest's / jest's `it`, or a uvu suite
 * import { Cache, MemoryBackend } from 'oniocache'
 * import { registerConformance } from 'oniocache/testing'
 *
 * registerConformance(test, ({ namespace, serializer, ttl }) =>
 *   new Cache({ backend: new MemoryBackend(), namespace, serializer, ttl }),
 * )
 * ```
 * @module
 */
import type { Case, TtlCase } from './case.js'
import { commandCases } from './commands.js'
import { Session } from './harness.js'
import { namespaceCases } from './namespaces.js'
import { type ConformanceFactory, type ConformanceOptions, type Settings, settle } from './options.js'
import { ttlCases } from './ttl.js'
import { valueCases } from './values.js'

export type {
  ConformanceCapabilities,
  ConformanceClock,
  ConformanceFactory,
  ConformanceFactoryOptions,
  ConformanceOptions,
  SerializerName,
} from './options.js'

/** One test of the suite, for runners other than uvu: `run()` rejects when the backend fails it. */
export interface ConformanceTest {
  /** What the test checks, as a sentence: the name to register it under. */
  readonly name: string
  /** Runs the test on fresh caches from the factory and closes them; rejects when the backend fails it. */
  run(): Promise<void>
}

/**
 * The conformance tests for a backend, in order, as plain async functions. Run
 * them one at a time, in this order: with real time (no `clock`) the ttl tests
 * start together when the first of them runs and each one awaits its own result.
 *
 * @throws {TypeError} when `factory` is not a function or an option is unknown or of the wrong kind.
 */
export function conformanceTests(factory: ConformanceFactory, options?: ConformanceOptions): ConformanceTest[] {
  const settings = settle(factory, options)
  const plain = [...commandCases(settings), ...namespaceCases(settings), ...valueCases(settings)]
  return [
    ...plain.map((c) => ({ name: c.name, run: () => runCase(settings, c) })),
    ...ttlTests(settings, ttlCases(settings)),
  ]
}

/** Any runner's way to declare a test: node:test's `test`, vitest's or jest's `it`, a uvu suite. */
export type TestFunction = (name: string, run: () => Promise<void>) => unknown

/**
 * Declares every conformance test through `test`, in order. `factory` makes a
 * fresh `Cache` on the backend for the namespace, serializer and ttl it is given;
 * each test closes its caches when it ends.
 *
 * @param test - The runner's way to declare a test: `node:test`'s `test`, vitest's or jest's `it`, a uvu suite.
 * @param factory - Makes a cache on the backend under test from `{ namespace, serializer, ttl }`.
 * @param options - What the backend supports (`serializers`, `capabilities`), an injectable `clock`, `concurrency`.
 * @throws {TypeError} when `test` or `factory` is not a function, or an option is unknown or of the wrong kind.
 *
 * @example
 * ```ts
 * import { test } from 'node:test'
 * import { Cache, MemoryBackend } from 'oniocache'
 * import { registerConformance } from 'oniocache/testing'
 *
 * registerConformance(
 *   test,
 *   ({ namespace, serializer, ttl }) => new Cache({ backend: new MemoryBackend(), namespace, serializer, ttl }),
 *   { serializers: ['null', 'json', 'v8'], capabilities: { clearAll: true } },
 * )
 * ```
 */
export function registerConformance(
  test: TestFunction,
  factory: ConformanceFactory,
  options?: ConformanceOptions,
): void {
  if (typeof test !== 'function') {
    throw new TypeError(
      '[oniocache/testing] registerConformance(test, factory, options?): test must be a function (name, run) => ' +
        'unknown',
    )
  }
  for (const t of conformanceTests(factory, options)) test(t.name, () => t.run())
}

/**
 * Registers the conformance suite as one uvu suite named `name` and runs it;
 * `await` it at the top of the test file. Needs `uvu` installed.
 *
 * @throws {TypeError} (as a rejection) for an empty `name`, and as {@link conformanceTests} throws.
 * @throws {Error} (as a rejection) when `uvu` is not installed.
 */
export async function conformance(
  name: string,
  factory: ConformanceFactory,
  options?: ConformanceOptions,
): Promise<void> {
  checkName('conformance', name)
  const tests = conformanceTests(factory, options)
  const { suite } = await importRunner<typeof import('uvu')>('uvu')
  const s = suite(name)
  for (const t of tests) s(t.name, () => t.run())
  s.run()
}

/**
 * Registers the conformance suite as one `node:test` suite named `name`; `await` it at the top of the test file.
 *
 * @throws {TypeError} (as a rejection) for an empty `name`, and as {@link conformanceTests} throws.
 */
export async function conformanceNodeTest(
  name: string,
  factory: ConformanceFactory,
  options?: ConformanceOptions,
): Promise<void> {
  checkName('conformanceNodeTest', name)
  const tests = conformanceTests(factory, options)
  const { describe, it } = await import('node:test')
  await describe(name, () => {
    for (const t of tests) it(t.name, () => t.run())
  })
}

function checkName(what: string, name: unknown): void {
  if (typeof name !== 'string' || name === '') {
    throw new TypeError(`[oniocache/testing] ${what}(name, factory, options?): name must be a non-empty string`)
  }
}

async function importRunner<T>(name: string): Promise<T> {
  try {
    return (await import(name)) as T
  } catch (error) {
    throw new Error(
      `[oniocache/testing] ${name} is not installed: install it, or declare the tests with ` +
        `registerConformance(test, factory) for your runner`,
      { cause: error },
    )
  }
}

/** Runs one case in a session of its own, then closes the session's caches (a failing test still closes them). */
async function runCase(settings: Settings, c: Case): Promise<void> {
  const session = new Session(settings)
  let failure: { error: unknown } | undefined
  try {
    await c.body(session)
  } catch (error) {
    failure = { error }
  }
  try {
    await session.close()
  } catch (error) {
    failure ??= { error }
  }
  if (failure !== undefined) throw failure.error
}

type Outcome = { ok: true } | { ok: false; error: unknown }

/**
 * With an injected clock, each ttl case runs alone when its turn comes (they
 * move the same clock). With real time, the first ttl test to run starts all of
 * them side by side, so a run waits about `late` seconds once, not once per case.
 */
function ttlTests(settings: Settings, cases: TtlCase[]): ConformanceTest[] {
  if (settings.clock !== undefined) return cases.map((c) => ({ name: c.name, run: () => runCase(settings, c) }))
  const start = (): Map<string, Promise<Outcome>> =>
    new Map(
      cases.map((c) => [
        c.name,
        runCase(settings, c).then(
          (): Outcome => ({ ok: true }),
          (error: unknown): Outcome => ({ ok: false, error }),
        ),
      ]),
    )
  // Each outcome is handed out once; a test run again (or alone) starts a new batch.
  let batch = new Map<string, Promise<Outcome>>()
  return cases.map((c) => ({
    name: c.name,
    async run() {
      if (!batch.has(c.name)) batch = start()
      const pending = batch.get(c.name)!
      batch.delete(c.name)
      const outcome = await pending
      if (!outcome.ok) throw outcome.error
    },
  }))
}

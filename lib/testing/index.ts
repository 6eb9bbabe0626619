/**
 * `oniocache/testing`: the backend conformance suite. A backend proves it keeps
 * the SPEC's contract by running it against a factory of caches:
 *
 *     import { conformance } from 'oniocache/testing'
 *     conformance('my backend', ({ namespace, serializer }) => new Cache({ backend: new MyBackend(), namespace, serializer }))
 *
 * Needs `uvu` (an optional peer dependency); `conformanceTests` gives the same
 * tests as plain functions for any other runner.
 */
import { suite } from 'uvu'
import type { Case, TtlCase } from './case.js'
import { commandCases } from './commands.js'
import { Session } from './harness.js'
import { namespaceCases } from './namespaces.js'
import { settle, type ConformanceFactory, type ConformanceOptions, type Settings } from './options.js'
import { ttlCases } from './ttl.js'
import { valueCases } from './values.js'

export type {
  ConformanceCapabilities, ConformanceClock, ConformanceFactory, ConformanceFactoryOptions, ConformanceOptions, SerializerName,
} from './options.js'

/** One test of the suite, for runners other than uvu: `run()` rejects when the backend fails it. */
export interface ConformanceTest {
  readonly name: string
  run(): Promise<void>
}

/**
 * The conformance tests for a backend, in order, as plain async functions. Run
 * them one at a time, in this order: with real time (no `clock`) the ttl tests
 * start together when the first of them runs and each one awaits its own result.
 */
export function conformanceTests(factory: ConformanceFactory, options?: ConformanceOptions): ConformanceTest[] {
  const settings = settle(factory, options)
  const plain = [...commandCases(settings), ...namespaceCases(settings), ...valueCases(settings)]
  return [...plain.map((c) => ({ name: c.name, run: () => runCase(settings, c) })), ...ttlTests(settings, ttlCases(settings))]
}

/**
 * Registers the conformance suite for a backend as one uvu suite named `name`,
 * and runs it (`uvu` picks it up like any suite of the test file). `factory`
 * makes a fresh `Cache` on the backend for the namespace, serializer and ttl it
 * is given; the suite closes every cache after its test.
 */
export function conformance(name: string, factory: ConformanceFactory, options?: ConformanceOptions): void {
  if (typeof name !== 'string' || name === '') throw new TypeError('[oniocache/testing] conformance(name, factory, options?): name must be a non-empty string')
  const tests = conformanceTests(factory, options)
  const s = suite(name)
  for (const t of tests) s(t.name, () => t.run())
  s.run()
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
    new Map(cases.map((c) => [c.name, runCase(settings, c).then((): Outcome => ({ ok: true }), (error: unknown): Outcome => ({ ok: false, error }))]))
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

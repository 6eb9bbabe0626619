/**
 * The workload the fault specs (spec/faults-*.spec.ts) run while they pause, kill and
 * restart real servers: `concurrency` workers issue a mix of get / set / add / delete /
 * exists / increment / multiGet / multiSet over a few hundred keys of ONE cache object,
 * and every answer is checked against what was written.
 *
 *  - Values encode their key and a write number (`v17#4711`). Every value is added to the
 *    key's allowed set BEFORE its write is issued, so a write that timed out (and may or may
 *    not have landed) is allowed, and a read is wrong only if it answers a value that was
 *    never written for that key — a reply delivered to the wrong request, a stale buffer, a
 *    value of another key. A miss is never wrong: a restarted server lost its data.
 *  - Counters only ever go up by 1: a read or an increment answering anything but an integer
 *    between 1 and the number of increments issued for that key is wrong.
 *  - Every other answer must have its command's shape (set → true, exists → boolean, ...).
 *  - A failure must be a `BackendError` or a `TimeoutError` (add's `KeyExistsError` is an
 *    answer, not a failure); anything else is recorded as a non-SPEC error.
 *  - `unhandledRejection` and `uncaughtException` are recorded from `start()` until `dispose()`.
 *
 * Every operation is recorded (command, start, end, outcome, the server group of its keys),
 * so a spec can count failures per phase of its fault schedule and measure recovery.
 */
import { BackendError, type Cache, KeyExistsError, TimeoutError } from '../../lib/index.js'
import { prng } from './fc-config.js'
import { sleep } from './fixtures/backends.js'
import type { ServerControls } from './servers.js'

export type Outcome = 'ok' | 'KeyExistsError' | 'TimeoutError' | 'BackendError' | `other:${string}`

export interface OpRecord {
  command: string
  /** performance.now() when the command was called, and when it settled. */
  start: number
  end: number
  outcome: Outcome
  /** The `owner` of every key it touched, or `'mixed'` when they differ. */
  group: string
  /** A failure's message. */
  message?: string
}

export interface WorkloadOptions {
  cache: Cache
  /** Workers issuing commands at the same time. Default 100. */
  concurrency?: number
  /** Keys holding `key#n` strings. Default 300. */
  valueKeys?: number
  /** Keys only ever incremented by 1. Default 20. */
  counterKeys?: number
  /** The server (or shard) holding a built key; operations are grouped by it. Default: one group `'all'`. */
  owner?: (builtKey: string) => string
  /** How long a worker waits after a failure before its next command (a client's backoff). Default 10 ms. */
  failureBackoffMs?: number
  /** Seed of the operation mix. */
  seed?: number
}

export interface PhaseCounts {
  ops: number
  ok: number
  failures: Record<string, number>
}

/** The relative weight of each command in the mix. */
const MIX = [
  ['get', 24],
  ['set', 18],
  ['multiGet', 10],
  ['multiSet', 6],
  ['add', 8],
  ['delete', 6],
  ['exists', 8],
  ['increment', 12],
  ['getCounter', 8],
] as const
type Op = (typeof MIX)[number][0]
const MIX_TOTAL = MIX.reduce((sum, [, weight]) => sum + weight, 0)

function outcomeOf(error: unknown): Outcome {
  if (error instanceof TimeoutError) return 'TimeoutError'
  if (error instanceof BackendError) return 'BackendError'
  if (error instanceof KeyExistsError) return 'KeyExistsError'
  return `other:${error instanceof Error ? error.name : typeof error}`
}

export class FaultWorkload {
  readonly records: OpRecord[] = []
  /** Reads or answers that could not be right, with what was wrong. */
  readonly wrong: string[] = []
  /** Errors that are not a SPEC class (or a KeyExistsError from anything but add). */
  readonly nonSpec: unknown[] = []
  readonly unhandled: unknown[] = []
  readonly uncaught: unknown[] = []
  readonly valueKeys: readonly string[]
  readonly counterKeys: readonly string[]
  readonly #cache: Cache
  readonly #concurrency: number
  readonly #owner: (builtKey: string) => string
  readonly #backoffMs: number
  readonly #random: () => number
  /** Every value ever written (or attempted) per value key. */
  readonly #written = new Map<string, Set<string>>()
  /** Increments issued per counter key. */
  readonly #increments = new Map<string, number>()
  /** Commands in flight: their start time, to name the stuck ones if the workload hangs. */
  readonly #inFlight = new Map<number, { command: string; start: number }>()
  #nextId = 0
  #sequence = 0
  #stopping = false
  #workers: Promise<void>[] = []
  readonly #onUnhandled = (reason: unknown): void => {
    this.unhandled.push(reason)
  }
  readonly #onUncaught = (error: unknown): void => {
    this.uncaught.push(error)
  }

  constructor(options: WorkloadOptions) {
    this.#cache = options.cache
    this.#concurrency = options.concurrency ?? 100
    this.#owner = options.owner ?? (() => 'all')
    this.#backoffMs = options.failureBackoffMs ?? 10
    this.#random = prng(options.seed ?? 0x5eed)
    this.valueKeys = Array.from({ length: options.valueKeys ?? 300 }, (_, i) => `v${i}`)
    this.counterKeys = Array.from({ length: options.counterKeys ?? 20 }, (_, i) => `n${i}`)
    for (const key of this.valueKeys) this.#written.set(key, new Set())
    for (const key of this.counterKeys) this.#increments.set(key, 0)
  }

  get ops(): number {
    return this.records.length
  }

  /** Starts the workers (and the unhandled / uncaught watch). */
  start(): void {
    process.on('unhandledRejection', this.#onUnhandled)
    process.on('uncaughtException', this.#onUncaught)
    this.#workers = Array.from({ length: this.#concurrency }, () => this.#worker())
  }

  /**
   * Waits until at least `minOps` operations were recorded, then stops the workers and waits
   * for every command in flight. Fails (instead of hanging the suite) when that takes longer
   * than `deadlineMs`: a command that never settles is a bug.
   */
  async finish(minOps: number, deadlineMs = 60_000): Promise<void> {
    const until = performance.now() + deadlineMs
    while (this.records.length < minOps && performance.now() < until) await sleep(20)
    this.#stopping = true
    let timer: NodeJS.Timeout | undefined
    const settled = await Promise.race([
      Promise.all(this.#workers).then(() => true),
      new Promise<false>(
        (resolve) => (timer = setTimeout(() => resolve(false), Math.max(0, until - performance.now()))),
      ),
    ])
    clearTimeout(timer)
    if (!settled || this.records.length < minOps) {
      const now = performance.now()
      const stuck = [...this.#inFlight.values()]
        .slice(0, 10)
        .map((op) => `${op.command} pending for ${(now - op.start).toFixed(0)} ms`)
      throw new Error(
        `the workload did not finish within ${deadlineMs} ms (${this.records.length}/${minOps} ops); stuck: ` +
          `${stuck.join(', ') || 'none'}`,
      )
    }
  }

  /** Stops the workers (if a fault step threw before `finish`) and the unhandled / uncaught watch. */
  dispose(): void {
    this.#stopping = true
    process.off('unhandledRejection', this.#onUnhandled)
    process.off('uncaughtException', this.#onUncaught)
  }

  /** Operations that started in [from, to) and match `filter`: how many, and their outcomes. */
  phase(from: number, to = Infinity, filter: (record: OpRecord) => boolean = () => true): PhaseCounts {
    const counts: PhaseCounts = { ops: 0, ok: 0, failures: {} }
    for (const record of this.records) {
      if (record.start < from || record.start >= to || !filter(record)) continue
      counts.ops++
      // add's KeyExistsError is the answer "the key exists", not a failure.
      if (record.outcome === 'ok' || record.outcome === 'KeyExistsError') counts.ok++
      else counts.failures[record.outcome] = (counts.failures[record.outcome] ?? 0) + 1
    }
    return counts
  }

  /**
   * Milliseconds from `from` until the start of the first run of `run` consecutive successful
   * operations (by start time) among those matching `filter`; undefined if there is none.
   */
  recovery(from: number, filter: (record: OpRecord) => boolean = () => true, run = 50): number | undefined {
    const after = this.records.filter((r) => r.start >= from && filter(r)).sort((a, b) => a.start - b.start)
    let streak = 0
    for (let i = 0; i < after.length; i++) {
      const record = after[i] as OpRecord
      streak = record.outcome === 'ok' || record.outcome === 'KeyExistsError' ? streak + 1 : 0
      if (streak === run) return (after[i - run + 1] as OpRecord).start - from
    }
    return undefined
  }

  /** The longest time any command took to settle (ms): bounded by the timeout, or something hung. */
  maxLatency(): number {
    let max = 0
    for (const record of this.records) max = Math.max(max, record.end - record.start)
    return max
  }

  /** Totals over the whole run: ops, ok, failures by class. */
  totals(): PhaseCounts {
    return this.phase(-Infinity)
  }

  /**
   * After the faults, on the same cache object: reads every key (multiGet in chunks and get one
   * by one) and checks what it finds, then writes a fresh value to every key and reads it back
   * exactly. Any failure here throws: by now the cache must have recovered.
   */
  async verify(): Promise<{ reads: number; hits: number }> {
    const cache = this.#cache
    let reads = 0
    let hits = 0
    const all = [...this.valueKeys, ...this.counterKeys]
    for (let i = 0; i < all.length; i += 50) {
      const chunk = all.slice(i, i + 50)
      const values = await cache.multiGet(chunk)
      chunk.forEach((key, j) => {
        reads++
        if (values[j] !== undefined) hits++
        this.#check(key, values[j], 'verify multiGet')
      })
    }
    await Promise.all(
      all.map(async (key) => {
        reads++
        const value = await cache.get(key)
        if (value !== undefined) hits++
        this.#check(key, value, 'verify get')
      }),
    )
    const fresh = this.valueKeys.map((key) => [key, this.#value(key)] as const)
    await Promise.all(fresh.map(([key, value]) => cache.set(key, value)))
    const back = await cache.multiGet(fresh.map(([key]) => key))
    fresh.forEach(([key, value], i) => {
      reads++
      if (back[i] !== value)
        this.wrong.push(`verify: ${key} read ${JSON.stringify(back[i])} right after writing ${JSON.stringify(value)}`)
    })
    return { reads, hits }
  }

  /** Failures by class as `TimeoutError 12, BackendError 3` (or `none`). */
  static describeFailures(counts: PhaseCounts): string {
    const entries = Object.entries(counts.failures)
    return entries.length === 0 ? 'none' : entries.map(([name, n]) => `${name} ${n}`).join(', ')
  }

  #value(key: string): string {
    const value = `${key}#${++this.#sequence}`
    this.#written.get(key)!.add(value)
    return value
  }

  #pickOp(): Op {
    let x = this.#random() * MIX_TOTAL
    for (const [op, weight] of MIX) {
      x -= weight
      if (x < 0) return op
    }
    return 'get'
  }

  #pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.#random() * list.length)] as T
  }

  /** `count` distinct value keys. */
  #distinct(count: number): string[] {
    const keys = new Set<string>()
    while (keys.size < count) keys.add(this.#pick(this.valueKeys))
    return [...keys]
  }

  #group(keys: readonly string[]): string {
    let group: string | undefined
    for (const key of keys) {
      const owner = this.#owner(this.#cache.buildKey(key))
      if (group === undefined) group = owner
      else if (group !== owner) return 'mixed'
    }
    return group ?? 'none'
  }

  /** A value read for `key`: a miss, or something that was written for it. */
  #check(key: string, value: unknown, where: string): void {
    if (value === undefined) return
    if (this.#increments.has(key)) {
      const issued = this.#increments.get(key)!
      if (!Number.isSafeInteger(value) || (value as number) < 1 || (value as number) > issued) {
        this.wrong.push(`${where}: counter ${key} read ${JSON.stringify(value)} after ${issued} increments`)
      }
      return
    }
    if (typeof value !== 'string' || !this.#written.get(key)!.has(value)) {
      this.wrong.push(`${where}: ${key} read ${JSON.stringify(value)}, never written for it`)
    }
  }

  #expect(ok: boolean, what: string): void {
    if (!ok) this.wrong.push(what)
  }

  async #worker(): Promise<void> {
    while (!this.#stopping) {
      const op = this.#pickOp()
      const id = this.#nextId++
      const keys: string[] = []
      const start = performance.now()
      let outcome: Outcome = 'ok'
      let message: string | undefined
      this.#inFlight.set(id, { command: op, start })
      try {
        await this.#run(op, keys)
      } catch (error) {
        outcome = outcomeOf(error)
        message = error instanceof Error ? error.message : String(error)
        if (outcome.startsWith('other:') || (outcome === 'KeyExistsError' && op !== 'add')) this.nonSpec.push(error)
      }
      this.#inFlight.delete(id)
      this.records.push({
        command: op,
        start,
        end: performance.now(),
        outcome,
        group: this.#group(keys),
        ...(message === undefined ? {} : { message }),
      })
      if (outcome !== 'ok' && outcome !== 'KeyExistsError') await sleep(this.#backoffMs)
    }
  }

  /** Runs one operation and checks its answer; pushes the keys it touches to `keys` first. */
  async #run(op: Op, keys: string[]): Promise<void> {
    const cache = this.#cache
    switch (op) {
      case 'get': {
        const key = this.#pick(this.valueKeys)
        keys.push(key)
        this.#check(key, await cache.get(key), 'get')
        break
      }
      case 'set': {
        const key = this.#pick(this.valueKeys)
        keys.push(key)
        const result = await cache.set(key, this.#value(key))
        this.#expect(result === true, `set ${key} answered ${JSON.stringify(result)}`)
        break
      }
      case 'add': {
        const key = this.#pick(this.valueKeys)
        keys.push(key)
        const result = await cache.add(key, this.#value(key))
        this.#expect(result === true, `add ${key} answered ${JSON.stringify(result)}`)
        break
      }
      case 'delete': {
        const key = this.#pick(this.valueKeys)
        keys.push(key)
        const result = await cache.delete(key)
        this.#expect(result === 0 || result === 1, `delete ${key} answered ${JSON.stringify(result)}`)
        break
      }
      case 'exists': {
        const key = this.#pick(this.valueKeys)
        keys.push(key)
        const result = await cache.exists(key)
        this.#expect(typeof result === 'boolean', `exists ${key} answered ${JSON.stringify(result)}`)
        break
      }
      case 'multiGet': {
        keys.push(...this.#distinct(2 + Math.floor(this.#random() * 7)))
        const values = await cache.multiGet(keys)
        if (!Array.isArray(values) || values.length !== keys.length) {
          this.wrong.push(`multiGet of ${keys.length} keys answered ${JSON.stringify(values)}`)
        } else {
          keys.forEach((key, i) => {
            this.#check(key, values[i], 'multiGet')
          })
        }
        break
      }
      case 'multiSet': {
        keys.push(...this.#distinct(2 + Math.floor(this.#random() * 4)))
        const result = await cache.multiSet(keys.map((key) => [key, this.#value(key)] as const))
        this.#expect(result === true, `multiSet answered ${JSON.stringify(result)}`)
        break
      }
      case 'increment': {
        const key = this.#pick(this.counterKeys)
        keys.push(key)
        const issued = this.#increments.get(key)! + 1
        this.#increments.set(key, issued)
        const result = await cache.increment(key)
        // Other increments of the key may land between this one and its answer, so the bound is read afterwards.
        const bound = this.#increments.get(key)!
        this.#expect(
          Number.isSafeInteger(result) && result >= 1 && result <= bound,
          `increment ${key} answered ${JSON.stringify(result)} after ${bound} increments`,
        )
        break
      }
      case 'getCounter': {
        const key = this.#pick(this.counterKeys)
        keys.push(key)
        this.#check(key, await cache.get(key), 'get counter')
        break
      }
    }
  }
}

/** When each step of `pauseKillRestart` happened (performance.now()). */
export interface FaultTimes {
  pausedAt: number
  resumedAt: number
  killedAt: number
  restartAt: number
  backAt: number
}

/**
 * The fault schedule of the single-server specs, with the workload already running:
 * SIGSTOP for 2 s (several timeouts long, so ops start and time out inside the window even
 * on a loaded machine), SIGCONT, 600 ms of normal traffic, SIGKILL, 1 s down, restart.
 */
export async function pauseKillRestart(server: ServerControls): Promise<FaultTimes> {
  const pausedAt = performance.now()
  await server.pause()
  await sleep(2000)
  await server.resume()
  const resumedAt = performance.now()
  await sleep(600)
  const killedAt = performance.now()
  await server.kill('SIGKILL')
  await sleep(1000)
  const restartAt = performance.now()
  await server.restart()
  return { pausedAt, resumedAt, killedAt, restartAt, backAt: performance.now() }
}

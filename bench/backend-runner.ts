// Shared runner for the backend benchmarks (bench/redis.ts, bench/memcached.ts): our cache
// against a baseline client and peer libraries on the same private server, measured in the same run.
//
// The parent starts the server once (spec/support/servers.ts), passes it to the children
// through the environment, and stops it at the end, also on failure. Every case runs in a
// fresh child process (so JIT state does not leak between cases). A child builds its client,
// pre-fills the keys (get cases) and checks that they read back; then the parent has the
// children of one shape (every client) run their rounds in turn over IPC, one at a time, in
// forward order on even rounds and reverse order on odd ones (ABBA for two clients, ABCCBA…
// for more; a warm-up round, then 7 measured ones), so that drift in the machine's speed hits
// every client about the same. With 1000 in flight this is done five times, in fresh processes,
// and the rounds pooled (see PROCESSES).
//
// Sequential shapes are the exception: their rate is the loopback round trip, which on this VM
// swings 2× from one second to the next (per-round ratios of two clients run back to back
// ranged 0.66–2.0 within one run). So all the clients of a sequential shape share one child
// process and take turns op by op (the order rotating every op); a client's rate in a round is
// its ops over the time its own ops took. With `targets`, the table is followed by one PASS/FAIL
// line per shape for the target client (its median over the baseline's median). Every child runs with the flags of
// bench/support/in-flight-flags.ts, which says why.
import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { IN_FLIGHT_FLAGS, inFlightFlagsText } from './support/in-flight-flags.js'

export const smoke = process.argv.includes('--smoke')
/** Requests kept in flight by the concurrent shape. */
export const IN_FLIGHT = 1000
const KEYS = smoke ? 1000 : 10_000
/** Measured rounds per case (per process). */
const ROUNDS = smoke ? 1 : 7
/**
 * Fresh processes per client for a concurrent shape, their rounds pooled. A process with 1000
 * requests in flight kept one rate for its whole life: the raw client's median ranged 284k–657k
 * gets/s between runs on one tree while its rounds within a process stayed close. V8's
 * pretenuring decided most of that (bench/support/in-flight-flags.ts, whose flag every child now
 * runs with); what is left still differs between processes more than between rounds.
 */
const PROCESSES: Record<Concurrency, number> = smoke ? { 1: 1, [IN_FLIGHT]: 1 } : { 1: 1, [IN_FLIGHT]: 5 }
/**
 * Ops per round (per client). A loopback round trip takes 70–300 µs on the 2-core VM this runs
 * on, so a sequential round takes 0.3–1.5 s per client, a concurrent one about 0.1–0.3 s. Smoke:
 * one round, no warm-up.
 */
const OPS: Record<Concurrency, number> = smoke
  ? { 1: 200, [IN_FLIGHT]: 2 * IN_FLIGHT }
  : { 1: 5_000, [IN_FLIGHT]: 50_000 }
const WARM_UP = !smoke
/** A child that has not answered by then is killed (bounded in time, like its loops are in count). */
const CHILD_TIMEOUT_MS = smoke ? 60_000 : 300_000

type Concurrency = 1 | typeof IN_FLIGHT
type Command = 'get' | 'set'

/** One client under test: `get` reads a pre-filled key, `set` writes the benchmark's value. */
export interface BenchClient {
  get(key: string): Promise<unknown>
  set(key: string): Promise<unknown>
  /** What `get` resolves for a key that `set` wrote. */
  readonly expected: unknown
  close(): Promise<void>
}

export interface Server {
  /** Environment for the children (where the server is). */
  env: Record<string, string>
  /** e.g. `memcached 1.6.18`. */
  version: string
  stop(): Promise<void>
}

export interface Benchmark {
  title: string
  /** What is stored, for the header. */
  value: string
  /** The clients by name; the first one is the baseline. Each key prefix must be distinct. */
  clients: Record<string, { prefix: string; version: string; create(env: NodeJS.ProcessEnv): Promise<BenchClient> }>
  /** Minimum ratios of `client`'s median to the baseline's, per concurrency (PASS/FAIL lines). */
  targets?: { client: string; sequential: number; inFlight: number }
  startServer(): Promise<Server>
}

const SHAPES: ReadonlyArray<{ command: Command; concurrency: Concurrency; label: string }> = [
  { command: 'get', concurrency: 1, label: 'get (hit), sequential' },
  { command: 'get', concurrency: IN_FLIGHT, label: `get (hit), ${IN_FLIGHT} in flight` },
  { command: 'set', concurrency: 1, label: 'set, sequential' },
  { command: 'set', concurrency: IN_FLIGHT, label: `set, ${IN_FLIGHT} in flight` },
]

/** Runs `ops` calls of `op` over `keys` with `concurrency` of them in flight; resolves ops/s. */
async function round(
  op: (key: string) => Promise<unknown>,
  keys: readonly string[],
  ops: number,
  concurrency: number,
): Promise<number> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < ops) {
      const i = next++
      await op(keys[i % keys.length]!)
    }
  }
  const started = performance.now()
  await Promise.all(Array.from({ length: concurrency }, worker))
  return ops / ((performance.now() - started) / 1000)
}

/**
 * Runs `ops` calls per client, one call at a time, the clients taking turns call by call (who
 * goes first rotating every call); resolves each client's ops/s over the time of its own calls.
 */
async function interleavedRound(
  ops: Array<(key: string) => Promise<unknown>>,
  keys: ReadonlyArray<readonly string[]>,
  count: number,
): Promise<number[]> {
  const spent = ops.map(() => 0)
  for (let i = 0; i < count; i++) {
    for (let j = 0; j < ops.length; j++) {
      const c = (i + j) % ops.length
      const clientKeys = keys[c]!
      const started = performance.now()
      await ops[c]!(clientKeys[i % clientKeys.length]!)
      spent[c]! += performance.now() - started
    }
  }
  return spent.map((ms) => count / (ms / 1000))
}

async function verify(client: BenchClient, keys: readonly string[], what: string): Promise<void> {
  let wrong = 0
  let sample: unknown
  await round(
    async (key) => {
      const value = await client.get(key)
      if (value !== client.expected) {
        wrong++
        sample = value
      }
    },
    keys,
    keys.length,
    IN_FLIGHT,
  )
  if (wrong > 0)
    throw new Error(
      `${what}: ${wrong} of ${keys.length} keys did not read back the value (got ${JSON.stringify(sample)})`,
    )
}

type ParentMessage = { type: 'round' } | { type: 'done' }
type ChildMessage = { type: 'ready' } | { type: 'rates'; rates: number[] } | { type: 'done' }

/**
 * One case in this (child) process: set up, then one round per `round` message until `done`.
 * `name` is `client|command|concurrency`; a sequential case may name several clients joined
 * by `+`, which then take turns op by op (interleavedRound).
 */
async function child(bench: Benchmark, name: string): Promise<void> {
  const [clientNames, command, concurrencyText] = name.split('|') as [string, Command, string]
  const concurrency = Number(concurrencyText) as Concurrency
  const entries = clientNames.split('+').map((clientName) => {
    const entry = bench.clients[clientName]
    if (!entry) throw new Error(`unknown client ${clientName}`)
    return { clientName, ...entry }
  })
  if (entries.length > 1 && concurrency !== 1) throw new Error(`${name}: only a sequential case interleaves clients`)
  const inbox: ParentMessage[] = []
  let waiting: ((message: ParentMessage) => void) | undefined
  process.on('message', (message: ParentMessage) => {
    if (waiting) {
      const resolve = waiting
      waiting = undefined
      resolve(message)
    } else inbox.push(message)
  })
  const receive = (): Promise<ParentMessage> =>
    inbox.length > 0 ? Promise.resolve(inbox.shift()!) : new Promise((resolve) => (waiting = resolve))
  const send = (message: ChildMessage): void => void process.send!(message)
  // The parent is gone (killed): do not linger with open connections.
  let finished = false
  process.once('disconnect', () => finished || process.exit(1))

  const clients: BenchClient[] = []
  try {
    for (const entry of entries) clients.push(await entry.create(process.env))
    const keys = entries.map((entry) => Array.from({ length: KEYS }, (_, i) => `${entry.prefix}${i}`))
    if (command === 'get') {
      for (const [i, client] of clients.entries()) {
        await round((key) => client.set(key), keys[i]!, KEYS, IN_FLIGHT)
        await verify(client, keys[i]!, `${entries[i]!.clientName} after pre-fill`)
      }
    }
    const ops = clients.map((client) =>
      command === 'get' ? (key: string) => client.get(key) : (key: string) => client.set(key),
    )
    send({ type: 'ready' })
    while ((await receive()).type === 'round') {
      const rates =
        ops.length > 1
          ? await interleavedRound(ops, keys, OPS[concurrency])
          : [await round(ops[0]!, keys[0]!, OPS[concurrency], concurrency)]
      send({ type: 'rates', rates })
    }
    if (command === 'set') {
      for (const [i, client] of clients.entries())
        await verify(client, keys[i]!.slice(0, Math.min(KEYS, OPS[concurrency])), `${entries[i]!.clientName} after set`)
    }
  } finally {
    for (const client of clients) await client.close()
  }
  send({ type: 'done' })
  finished = true
  process.disconnect()
}

/** Children still running, killed if the parent exits early (an error, a signal). */
const running = new Set<ChildProcess>()
process.on('exit', () => {
  for (const proc of running) proc.kill('SIGKILL')
})

/** A child process running one case, driven by messages. */
class Case {
  readonly #proc: ChildProcess
  #pending: { resolve(message: ChildMessage): void; reject(error: Error): void; timer: NodeJS.Timeout } | undefined
  #exited: Error | undefined

  constructor(
    self: string,
    readonly name: string,
    env: Record<string, string>,
  ) {
    const args = [...IN_FLIGHT_FLAGS, '--import', 'tsx', self, `--case=${name}`, ...(smoke ? ['--smoke'] : [])]
    this.#proc = spawn(process.execPath, args, {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, ...env },
    })
    running.add(this.#proc)
    this.#proc.on('message', (message: ChildMessage) => {
      const pending = this.#pending
      this.#pending = undefined
      if (pending) {
        clearTimeout(pending.timer)
        pending.resolve(message)
      }
    })
    const fail = (error: Error): void => {
      running.delete(this.#proc)
      this.#exited ??= error
      const pending = this.#pending
      this.#pending = undefined
      if (pending) {
        clearTimeout(pending.timer)
        pending.reject(error)
      }
    }
    this.#proc.once('error', fail)
    this.#proc.once('exit', (code, signal) => fail(new Error(`case ${name} exited (${signal ?? `code ${code}`})`)))
  }

  /** The next message of the child, after sending `message` (if any). */
  next(message?: ParentMessage): Promise<ChildMessage> {
    if (this.#exited) return Promise.reject(this.#exited)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending = undefined
        this.kill()
        reject(new Error(`case ${this.name}: no answer within ${CHILD_TIMEOUT_MS} ms; killed`))
      }, CHILD_TIMEOUT_MS)
      this.#pending = { resolve, reject, timer }
      if (message) this.#proc.send(message)
    })
  }

  /** One round: the rate of each client of the case. */
  async round(): Promise<number[]> {
    const reply = await this.next({ type: 'round' })
    if (reply.type !== 'rates') throw new Error(`case ${this.name}: expected rates, got ${JSON.stringify(reply)}`)
    return reply.rates
  }

  kill(): void {
    if (this.#exited === undefined) this.#proc.kill('SIGKILL')
  }
}

/**
 * Runs one shape; resolves each client's rates, one per round. Concurrent: a child per client,
 * their rounds in ABBA order. Sequential: one child holding every client, interleaved op by op.
 */
async function runShape(
  self: string,
  clients: readonly string[],
  shape: string,
  concurrency: Concurrency,
  env: Record<string, string>,
): Promise<number[][]> {
  const names =
    concurrency === 1
      ? [`${clients.join('+')}|${shape}|1`]
      : clients.map((client) => `${client}|${shape}|${concurrency}`)
  const cases = names.map((name) => new Case(self, name, env))
  try {
    await Promise.all(
      cases.map(async (c) => {
        const reply = await c.next()
        if (reply.type !== 'ready') throw new Error(`case ${c.name}: expected ready, got ${JSON.stringify(reply)}`)
      }),
    )
    const rates = clients.map((): number[] => [])
    for (let r = WARM_UP ? -1 : 0; r < ROUNDS; r++) {
      const order = (r & 1) === 0 ? cases.keys() : [...cases.keys()].reverse()
      for (const i of order) {
        const got = await cases[i]!.round()
        if (r < 0) continue // round -1 is the warm-up
        if (cases.length === 1)
          got.forEach((rate, j) => {
            rates[j]!.push(rate)
          })
        else rates[i]!.push(got[0]!)
      }
    }
    for (const c of cases) {
      const reply = await c.next({ type: 'done' })
      if (reply.type !== 'done') throw new Error(`case ${c.name}: expected done, got ${JSON.stringify(reply)}`)
    }
    return rates
  } finally {
    for (const c of cases) c.kill()
  }
}

export const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
export const fmt = (n: number): string =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e5 ? `${(n / 1e3).toFixed(0)}k` : `${(n / 1e3).toFixed(1)}k`

/** The installed version of a package (from its package.json). */
export function packageVersion(name: string): string {
  const file = fileURLToPath(new URL(`../node_modules/${name}/package.json`, import.meta.url))
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version
}

/** Entry point of a benchmark file: the parent run, or one case in a child (`--case=`). */
export async function main(bench: Benchmark, self: string): Promise<void> {
  const only = process.argv.find((a) => a.startsWith('--case='))?.slice('--case='.length)
  if (only !== undefined) {
    await child(bench, only)
    return
  }
  const names = Object.keys(bench.clients)
  const baseline = names[0]!
  const prefixes = names.map((n) => bench.clients[n]!.prefix)
  if (new Set(prefixes).size !== prefixes.length)
    throw new Error(`key prefixes must be distinct: ${prefixes.join(', ')}`)
  const targets = bench.targets
  if (targets && (targets.client === baseline || !names.includes(targets.client))) {
    throw new Error(`targets.client ${targets.client} must be one of the clients other than the baseline`)
  }
  const started = performance.now()
  const loadBefore = loadavg()[0]!
  const server = await bench.startServer()
  const results: Array<{ shape: string; client: string; rates: number[] }> = []
  try {
    for (const shape of SHAPES) {
      // Round r of the k-th set of processes pairs with round r of the same set: pooled in step.
      const rates = names.map((): number[] => [])
      for (let k = 0; k < PROCESSES[shape.concurrency]; k++) {
        const got = await runShape(self, names, shape.command, shape.concurrency, server.env)
        got.forEach((clientRates, i) => {
          rates[i]!.push(...clientRates)
        })
      }
      names.forEach((client, i) => {
        results.push({ shape: shape.label, client, rates: rates[i]! })
      })
    }
  } finally {
    await server.stop()
  }
  const clients = names.map((n) => `${n} ${bench.clients[n]!.version}`).join(', ')
  console.log(`\n## ${bench.title}\n`)
  console.log(
    `node ${process.version}, ${server.version}, ${clients}; ${bench.value}; ${KEYS} keys; ` +
      `${WARM_UP ? 'warm-up + ' : ''}${ROUNDS} round(s) of ${OPS[1]} ops (sequential) / ${OPS[IN_FLIGHT]} ops ` +
      `(${IN_FLIGHT} in flight) per client and process; ` +
      `${IN_FLIGHT} in flight: each client in ${PROCESSES[IN_FLIGHT]} fresh process(es) one after another, the ` +
      `${names.length} of a shape taking turns round by round, rounds pooled ` +
      `(${names.length === 2 ? 'ABBA' : 'forward order on even rounds, reverse on odd'}); sequential: the ` +
      `${names.length} clients of a shape in one fresh process, taking turns op by op; ${inFlightFlagsText()}; ` +
      `${((performance.now() - started) / 1000).toFixed(1)} s; 1-min load average ${loadBefore.toFixed(2)} before, ` +
      `${loadavg()[0]!.toFixed(2)} after\n`,
  )
  // Paired: the ratio of each round to the baseline's round of the same turn (they ran back to
  // back), then the median of those. The loopback round trip drifts by 2–3× within a run on this
  // VM, which the ratio of the two medians feels and the paired ratio mostly cancels.
  const paired = (rates: readonly number[], base: readonly number[]): number =>
    median(rates.map((rate, i) => rate / base[i]!))
  console.log(
    `| shape | client | median ops/s | spread (min–max) | ratio of medians to ${baseline} | paired ratio (median of ` +
      `per-round ratios) |\n` +
      '| --- | --- | ---: | ---: | ---: | ---: |',
  )
  for (const shape of SHAPES) {
    const rows = results.filter((r) => r.shape === shape.label)
    const baseRates = rows.find((r) => r.client === baseline)!.rates
    const base = median(baseRates)
    for (const { client, rates } of rows) {
      const m = median(rates)
      console.log(
        `| ${shape.label} | ${client} | ${fmt(m)} | ${fmt(Math.min(...rates))}–${fmt(Math.max(...rates))} | ` +
          `${(m / base).toFixed(2)}× | ${paired(rates, baseRates).toFixed(2)}× |`,
      )
    }
  }
  if (targets) {
    console.log(
      `\n${targets.client} against the targets (paired ratio to ${baseline}; the ratio of medians in parentheses):\n`,
    )
    for (const shape of SHAPES) {
      const rows = results.filter((r) => r.shape === shape.label)
      const ours = rows.find((r) => r.client === targets.client)!.rates
      const base = rows.find((r) => r.client === baseline)!.rates
      const ratio = paired(ours, base)
      const target = shape.concurrency === 1 ? targets.sequential : targets.inFlight
      // Three decimals, so that a ratio just under the target never prints as the target.
      const verdict = ratio >= target ? 'PASS' : 'FAIL'
      console.log(
        `${verdict} ${shape.label}: ${ratio.toFixed(3)}× ${baseline} (ratio of medians ` +
          `${(median(ours) / median(base)).toFixed(3)}×; target ≥ ${target}×)` +
          (smoke ? ' (smoke: one short cold round, means nothing)' : ''),
      )
    }
  }
}

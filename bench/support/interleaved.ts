// The method of the benches that compare cases by ratios in one run: every case runs in
// `processes` fresh processes; in each, all cases are warmed up, then `rounds` rounds visit every
// case in a rotated order, so each ratio compares cases that met the machine at the same time. A
// ratio is the median over processes of the ratio of median rounds. Each case has a measuring loop
// of its own: a loop shared by every case would see all their call sites and slow each case by how
// V8 happened to handle that. With `smoke`, one short round per case, in this process.
import { execFileSync } from 'node:child_process'
import { loadavg } from 'node:os'

/** One operation of a case, on the i-th key. */
export type Op = (key: string) => Promise<unknown>

/** The rates (ops/s) of every round, by case. */
export type Rates = Record<string, number[]>

export interface Method {
  readonly keys: readonly string[]
  readonly rounds: number
  readonly roundMs: number
  readonly processes: number
  readonly smoke: boolean
  /** Ops per round in a smoke run. */
  readonly smokeOps: number
}

/**
 * `(key) => target.get(key)` as a function of its own (compiled anew per call): ops made from one shared
 * arrow would share its `get` call site across every case.
 */
export function getOp(target: { get(key: string): Promise<unknown> }): Op {
  return new Function('target', 'return (key) => target.get(key)')(target) as Op
}

type Loop = (op: Op, keys: readonly string[], ops: number) => Promise<void>
const AsyncFunction = (async () => {}).constructor as new (...source: string[]) => Loop

function loopOf(size: number): Loop {
  return new AsyncFunction('op', 'keys', 'ops', `for (let i = 0; i < ops; i++) await op(keys[i % ${size}])`)
}

async function rate(method: Method, op: Op, loop: Loop, ops: number): Promise<number> {
  const started = performance.now()
  await loop(op, method.keys, ops)
  return ops / ((performance.now() - started) / 1000)
}

/** Warms a case up (at least two rounds' time and three passes over the keys); answers the ops of a round. */
async function warmUp(method: Method, op: Op, loop: Loop): Promise<number> {
  if (method.smoke) return method.smokeOps
  const size = method.keys.length
  let ops = size
  let warm = 0
  for (let spent = 0; spent < 2 * method.roundMs || warm < 3 * size; ) {
    const started = performance.now()
    await loop(op, method.keys, ops)
    spent += performance.now() - started
    warm += ops
    ops *= 2
  }
  const measured = await rate(method, op, loop, size * 4)
  return Math.max(size, Math.round((measured * method.roundMs) / 1000))
}

/** The rounds of one process: every case warmed up, then the rounds in rotated order. */
export async function measureInterleaved(method: Method, cases: Record<string, Op>): Promise<Rates> {
  const names = Object.keys(cases)
  const loops = new Map(names.map((name) => [name, loopOf(method.keys.length)]))
  const perRound = new Map<string, number>()
  for (const name of names) perRound.set(name, await warmUp(method, cases[name]!, loops.get(name)!))
  const rates: Rates = Object.fromEntries(names.map((name) => [name, []]))
  for (let round = 0; round < method.rounds; round++) {
    for (let i = 0; i < names.length; i++) {
      const name = names[(i + round) % names.length]!
      rates[name]!.push(await rate(method, cases[name]!, loops.get(name)!, perRound.get(name)!))
    }
  }
  return rates
}

/**
 * The rates of every process: `measure` in this one for a smoke run, else in `method.processes` fresh
 * processes of `script` run with `--child` (which must print `measure`'s answer as JSON). Also says how
 * the run went, for the report's first line.
 */
export async function inProcesses(
  method: Method,
  script: string,
  measure: () => Promise<Rates>,
): Promise<{ processes: Rates[]; how: string }> {
  const startedAt = performance.now()
  const loadBefore = loadavg()[0]!.toFixed(2)
  const processes: Rates[] = []
  for (let p = 0; p < method.processes; p++) {
    processes.push(
      method.smoke
        ? await measure()
        : JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', script, '--child'], { encoding: 'utf8' })),
    )
  }
  const how = method.smoke
    ? '(smoke: checks that every case runs; the figures and PASS/FAIL mean nothing)'
    : `${method.processes} processes × ${method.rounds} interleaved rounds of ~${method.roundMs} ms per case; ` +
      `load average ${loadBefore} before, ${loadavg()[0]!.toFixed(2)} after; ` +
      `${((performance.now() - startedAt) / 1000).toFixed(0)} s`
  return { processes, how }
}

export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
export const fmt = (n: number): string => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1e3).toFixed(0)}k`)
export const pass = (ok: boolean): string => (ok ? '**PASS**' : '**FAIL**')

/** The table of median rates per process, by case. */
export function ratesTable(processes: Rates[]): string[] {
  const lines = ['| case | median ops/s per process |', '| --- | --- |']
  for (const name of Object.keys(processes[0]!)) {
    lines.push(`| ${name} | ${processes.map((rates) => fmt(median(rates[name]!))).join(', ')} |`)
  }
  return lines
}

/** One target's row: the ratio of `name` to `base` per process, its median, and the verdict against `min`. */
export function targetRow(
  processes: Rates[],
  what: string,
  name: string,
  base: string,
  min: number,
  digits = 3,
): string {
  const ratios = processes.map((rates) => median(rates[name]!) / median(rates[base]!))
  const verdict = median(ratios)
  return (
    `| ${what} ≥ ${min}× | ${ratios.map((r) => `${r.toFixed(digits)}×`).join(', ')} | ` +
    `${verdict.toFixed(digits)}× | ${pass(verdict >= min)} |`
  )
}

// The soak (spec/support/soak.ts) inside `npm test`: the flatness check on made-up
// series, the 20-second run on memory, a private Redis and a private Memcached, and
// the same workload with deliberately leaking middleware, which the check must catch.
// `npm run soak` is the long run.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import { childEnv } from './support/children.js'
import { checkFlatness, DEFAULT_TOLERANCES, type LeakKind, type Sample, type SoakReport } from './support/soak.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const MB = 1024 * 1024

interface Run {
  code: number | null
  stdout: string
  report: SoakReport
}

/**
 * Runs spec/support/fixtures/soak-run.ts with --expose-gc and --json. The child is kept
 * out of coverage (NODE_V8_COVERAGE set to '', which is off): under c8 its view of lib/
 * through another tsx hook would garble the merged figures, and collecting counts would
 * slow the soak down.
 */
function soak(args: readonly string[], killAfterMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', 'spec/support/fixtures/soak-run.ts', '--json', ...args],
      {
        cwd: root,
        env: childEnv({ NODE_DEBUG: '', ONIOCACHE_DISABLE: '' }),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs)
    child.once('error', reject)
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      const line = stdout.split('\n').find((l) => l.startsWith('SOAK-REPORT '))
      if (line === undefined) {
        reject(
          new Error(
            `soak ${args.join(' ')} ended (code ${code}, signal ${signal}) without a report\nstdout: ` +
              `${stdout.slice(-4000)}\nstderr: ${stderr.slice(-4000)}`,
          ),
        )
        return
      }
      resolve({
        code,
        stdout: stdout.replace(line, '').trimEnd(),
        report: JSON.parse(line.slice('SOAK-REPORT '.length)) as SoakReport,
      })
    })
  })
}

/** The summary lines of a run (not one line per sample). */
const summary = (stdout: string): string =>
  stdout
    .split('\n')
    .filter((line) => /^(commands|heap|handles|listeners|unhandled|soak:)/.test(line))
    .join('\n')

// ---------------------------------------------------------------------------

const check = suite('soak: checkFlatness')

/** A series: one sample a second, `opsPerSecond` commands, heap from `heap(i)`. */
function series(
  length: number,
  opsPerSecond: number,
  heap: (i: number) => number,
  extra: (i: number) => Partial<Sample> = () => ({}),
): Sample[] {
  return Array.from({ length }, (_, i) => ({
    at: i + 1,
    ops: (i + 1) * opsPerSecond,
    heapUsed: heap(i),
    external: 2 * MB,
    handles: { TCPSocketWrap: 4, fd: 30 },
    listeners: { 'process:exit': 2 },
    watching: 0,
    barrierMs: 50,
    ...extra(i),
  }))
}
/** ±0.4 MB of noise, the same every run. */
const noise = (i: number): number => Math.sin(i * 2.7) * 0.4 * MB

check('a flat, noisy series passes, and the report says how small a leak it could see', () => {
  const report = checkFlatness(
    series(20, 10_000, (i) => 20 * MB + noise(i)),
    2,
  )
  assert.equal(report.problems, [])
  assert.ok(
    report.detectableBytesPerOp < DEFAULT_TOLERANCES.leakBytesPerOp,
    `detectable ${report.detectableBytesPerOp}`,
  )
})

check('a 100-byte leak per command fails on heap, by the thirds and by the trend', () => {
  const report = checkFlatness(
    series(20, 10_000, (i) => 20 * MB + noise(i) + (i + 1) * 10_000 * 100),
    2,
  )
  assert.not.ok(report.ok)
  assert.ok(
    report.problems.some((p) => p.startsWith('heap: used + external grew')),
    report.problems.join('\n'),
  )
  assert.ok(
    report.problems.some((p) => p.startsWith('heap: the trend')),
    report.problems.join('\n'),
  )
  assert.ok(Math.abs(report.slopeBytesPerOp - 100) < 10, `slope ${report.slopeBytesPerOp}`)
})

check('one warm-up spike and one late outlier do not fail it', () => {
  const report = checkFlatness(
    series(20, 10_000, (i) => 20 * MB + noise(i) + (i === 0 ? 30 * MB : 0) + (i === 17 ? 3 * MB : 0)),
    2,
  )
  assert.equal(report.problems, [])
})

check('a run with too few commands fails as blind, not as flat', () => {
  const report = checkFlatness(
    series(20, 1_000, (i) => 20 * MB + noise(i)),
    2,
  )
  assert.ok(
    report.problems.some((p) => p.startsWith('too few commands')),
    report.problems.join('\n'),
  )
})

check('one more socket, timer or listener in the last third fails; a command left watched fails', () => {
  const grow = (i: number): Partial<Sample> =>
    i >= 14 ? { handles: { TCPSocketWrap: 5, fd: 31, Timeout: 1 }, listeners: { 'process:exit': 3 } } : {}
  const report = checkFlatness(
    series(20, 10_000, (i) => 20 * MB + noise(i), grow),
    2,
  )
  for (const expected of [
    'handles: TCPSocketWrap went from 4 to 5',
    'handles: fd went from 30 to 31',
    'handles: Timeout went from 0 to 1',
    'listeners: process:exit went from 2 to 3',
  ]) {
    assert.ok(
      report.problems.some((p) => p.startsWith(expected)),
      `${expected}\n${report.problems.join('\n')}`,
    )
  }
  const watched = checkFlatness(
    series(
      20,
      10_000,
      (i) => 20 * MB + noise(i),
      (i) => (i === 9 ? { watching: 1 } : {}),
    ),
    2,
  )
  assert.ok(
    watched.problems.some((p) => p.startsWith('timeouts: 1 command(s) still watched')),
    watched.problems.join('\n'),
  )
})

check.run()

// ---------------------------------------------------------------------------

const run = suite('soak: 20 seconds')

run(
  'memory, Redis and Memcached with plugins, decorators, locks, timeouts, bad input and churn: heap, handles and ' +
    'listeners stay flat',
  async () => {
    const { code, stdout, report } = await soak(['--seconds', '20', '--max-seconds', '60'], 150_000)
    console.log(`\n${summary(stdout)}`)
    assert.equal(report.problems, [], report.problems.join('\n'))
    assert.is(code, 0)
    assert.equal(report.backends, ['memory', 'redis', 'memcached'])
    assert.is(report.unhandledRejections.length, 0)
    assert.is(report.uncaughtExceptions.length, 0)
    assert.is(report.unexpectedCount, 0)
    // The workload did what it says: every kind of call ran, and some of them failed as they should.
    for (const outcome of [
      'get ok',
      'set ok',
      'add ok',
      'add KeyExistsError',
      'delete ok',
      'exists ok',
      'increment ok',
      'multiGet ok',
      'multiSet ok',
      'expire ok',
      'clear ok',
      'clear Error',
      'cached ok',
      'multiCached ok',
      'cachedStampede ok',
      'RedLock ok',
      'OptimisticLock ok',
      'OptimisticLock OptimisticLockError',
      'timeout TimeoutError',
      'blocking TimeoutError',
      'bad-input TypeError',
      'bad-input RangeError',
      'bad-input SerializationError',
      'bad-input InvalidKeyError',
      'churn ok',
    ]) {
      assert.ok((report.outcomes[outcome] ?? 0) > 0, `no "${outcome}" in ${JSON.stringify(report.outcomes)}`)
    }
    assert.ok(report.ops > 50_000, `only ${report.ops} commands`)
    assert.ok(report.seconds >= 20, `ran ${report.seconds}s`)
    assert.ok(report.samples.length >= 10, `${report.samples.length} samples`)
  },
)

run.run()

// ---------------------------------------------------------------------------

const leaks = suite('soak: the check catches a leak')

const LEAK_PROBLEM: Record<LeakKind, RegExp> = {
  heap: /^heap: /,
  timer: /^handles: Timeout went from/,
  listener: /^listeners: process:exit went from/,
}

leaks(
  'a middleware keeping 100 bytes per command, one leaking a timer and one a process listener per 2000 commands: ' +
    'each fails its own check',
  async () => {
    const kinds: LeakKind[] = ['heap', 'timer', 'listener']
    const runs = await Promise.all(
      kinds.map((kind) =>
        soak(['--seconds', '3', '--max-seconds', '60', '--backends', 'memory', '--leak', kind], 120_000),
      ),
    )
    runs.forEach(({ code, report }, i) => {
      const kind = kinds[i]!
      const problems = report.problems.join('\n')
      assert.is(code, 1, `--leak ${kind}: exit code ${code}\n${problems}`)
      assert.not.ok(report.ok)
      assert.ok(
        report.problems.some((p) => LEAK_PROBLEM[kind].test(p)),
        `--leak ${kind} was not reported:\n${problems}`,
      )
      // Only that check: the others still see flat figures, and nothing went wrong elsewhere.
      for (const other of kinds.filter((k) => k !== kind)) {
        assert.not.ok(
          report.problems.some((p) => LEAK_PROBLEM[other].test(p)),
          `--leak ${kind} also failed the ${other} check:\n${problems}`,
        )
      }
      assert.is(
        report.unexpectedCount + report.unhandledRejections.length + report.uncaughtExceptions.length,
        0,
        problems,
      )
    })
    const [heap, timer, listener] = runs.map((r) => r.report)
    console.log(
      `\n--leak heap: +${(heap!.flatness.heapGrowth / MB).toFixed(2)} MB, trend ` +
        `${heap!.flatness.slopeBytesPerOp.toFixed(0)} B/command (${heap!.ops} commands, ` +
        `${heap!.seconds.toFixed(1)}s); ` +
        `--leak timer: Timeout ${timer!.flatness.handlesFirst.Timeout ?? 0} → ` +
        `${timer!.flatness.handlesLast.Timeout ?? 0} (${timer!.seconds.toFixed(1)}s); ` +
        `--leak listener: process:exit ${listener!.flatness.listenersFirst['process:exit']} → ` +
        `${listener!.flatness.listenersLast['process:exit']} (${listener!.seconds.toFixed(1)}s)`,
    )
  },
)

leaks.run()

// Faults under load on a real single redis-server: 10k+ mixed commands at concurrency 100
// from one RedisCache while the server is paused (SIGSTOP/SIGCONT), then killed (SIGKILL)
// and restarted. Counts wrong values, unhandled rejections, uncaught exceptions and
// failure classes, and measures how long the same cache object takes to recover.
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import { BackendError } from '../lib/index.js'
import { RedisCache } from '../lib/redis.js'
import { FaultWorkload, pauseKillRestart } from './support/fault-workload.js'
import { sleep } from './support/fixtures/backends.js'
import { type RedisServer, redisCommand, startRedis } from './support/servers.js'

/** Per-command timeout: a paused server turns into TimeoutErrors this fast. */
const TIMEOUT_S = 0.3
const MIN_OPS = 10_000
/** Bounds on recovery, from the moment the server is back (SIGCONT sent / restart answered PING). */
const RESUME_BOUND_MS = 2000
/** node-redis reconnects with a backoff capped at 1 s, so up to ~1 s passes before it tries again. */
const RESTART_BOUND_MS = 3000
/** A command settles by its timeout; beyond that (plus event-loop slack on a loaded machine) it hung. */
const LATENCY_BOUND_MS = TIMEOUT_S * 1000 + 2500

const faults = suite<{ server: RedisServer }>('faults: redis single node')

faults.before(async (ctx) => {
  ctx.server = await startRedis()
})
faults.after(async ({ server }) => {
  await server.stop()
})

faults(
  '10k mixed commands at concurrency 100 through SIGSTOP/SIGCONT and SIGKILL/restart: 0 wrong values, 0 unhandled, ' +
    'only BackendError/TimeoutError, recovery without a new client',
  async ({ server }) => {
    const cache = new RedisCache({ port: server.port, namespace: 'faults', timeout: TIMEOUT_S })
    const workload = new FaultWorkload({ cache })
    try {
      await cache.set('warm', 1, { timeout: 10 }) // client loaded and connected before the clock starts
      workload.start()
      await sleep(400)

      const { pausedAt, resumedAt, killedAt, restartAt, backAt } = await pauseKillRestart(server)
      // Keep the load on until the cache has recovered (bounded), then until MIN_OPS.
      while (workload.recovery(backAt) === undefined && performance.now() - backAt < RESTART_BOUND_MS + 2000)
        await sleep(50)
      await sleep(300)
      await workload.finish(MIN_OPS)

      const verified = await workload.verify()
      await sleep(50) // let late rejections of timed-out commands surface
      const totals = workload.totals()
      const paused = workload.phase(pausedAt + 50, resumedAt)
      const down = workload.phase(killedAt + 300, restartAt)
      const afterResume = workload.recovery(resumedAt)
      const afterRestart = workload.recovery(backAt)
      const maxLatency = workload.maxLatency()
      console.log(
        `[faults] redis single node: ${totals.ops} ops at concurrency 100, ok ${totals.ok}, failures: ` +
          `${FaultWorkload.describeFailures(totals)}; ` +
          `wrong values ${workload.wrong.length}, non-SPEC errors ${workload.nonSpec.length}, unhandled ` +
          `${workload.unhandled.length}, uncaught ${workload.uncaught.length}; ` +
          `paused 2 s: ${paused.ops} ops (${FaultWorkload.describeFailures(paused)}), killed 1 s: ${down.ops} ops ` +
          `(${FaultWorkload.describeFailures(down)}); ` +
          `recovery after SIGCONT ${afterResume?.toFixed(0)} ms, after restart ${afterRestart?.toFixed(0)} ms; max ` +
          `latency ${maxLatency.toFixed(0)} ms; verify ${verified.reads} reads`,
      )

      assert.equal(
        workload.wrong.slice(0, 5),
        [],
        'every value read was written for its key, every answer has its shape',
      )
      assert.equal(workload.nonSpec.slice(0, 5), [], 'every failure is a BackendError or a TimeoutError')
      assert.equal(workload.unhandled, [], 'no unhandled rejection')
      assert.equal(workload.uncaught, [], 'no uncaught exception')
      assert.ok(totals.ops >= MIN_OPS, `${totals.ops} ops`)

      // The faults happened, and each showed the way docs/reliability-and-security.md says it does.
      assert.ok((paused.failures.TimeoutError ?? 0) > 0, 'a paused server gives TimeoutError')
      assert.equal(Object.keys(paused.failures), ['TimeoutError'], 'a paused server gives TimeoutError only')
      assert.ok(down.ops > 0 && down.ok === 0, `a killed server answers nothing (${down.ok}/${down.ops} ok)`)
      assert.equal(
        Object.keys(down.failures),
        ['BackendError'],
        'a killed server gives BackendError at once, not a TimeoutError',
      )

      assert.ok(
        afterResume !== undefined && afterResume < RESUME_BOUND_MS,
        `recovered ${afterResume?.toFixed(0)} ms after SIGCONT (bound ${RESUME_BOUND_MS} ms)`,
      )
      assert.ok(
        afterRestart !== undefined && afterRestart < RESTART_BOUND_MS,
        `recovered ${afterRestart?.toFixed(0)} ms after the restart (bound ${RESTART_BOUND_MS} ms)`,
      )
      assert.ok(
        maxLatency < LATENCY_BOUND_MS,
        `every command settled within ${LATENCY_BOUND_MS} ms (max ${maxLatency.toFixed(0)} ms)`,
      )
      assert.ok(
        verified.reads >= 2 * (workload.valueKeys.length + workload.counterKeys.length),
        'the final pass read every key',
      )
    } finally {
      workload.dispose()
      await cache.close()
    }
  },
)

faults.run()

// close() while the first connection is still being made: nothing may stay connected or retrying afterwards, which
// would keep the process alive (a process whose only cache was closed must exit by itself).
const closing = suite<{ server: RedisServer }>('faults: redis close() while connecting')

closing.before(async (ctx) => {
  ctx.server = await startRedis()
})
closing.after(async ({ server }) => {
  if (server.paused) await server.resume()
  await server.stop()
})

/** The server's INFO field `name`, read on a one-shot connection of the harness. */
async function info(server: RedisServer, name: string): Promise<number> {
  const text = String(await redisCommand(server.port, 'INFO'))
  const match = new RegExp(`^${name}:(\\d+)`, 'm').exec(text)
  if (match === null) throw new Error(`no ${name} in INFO`)
  return Number(match[1])
}

/**
 * Against the paused server (the kernel still accepts the connection; the server says nothing): a cache's first get,
 * then `close()` after `waitMs`. Once the server is back and has had time to take any connection left behind, asserts
 * that none was; answers how the get ended and how long close() took.
 */
async function closeWhileConnecting(
  server: RedisServer,
  timeout: number,
  waitMs: number,
): Promise<{ outcome: unknown; closeMs: number }> {
  await server.pause()
  const cache = new RedisCache({ port: server.port, timeout })
  const get = cache.get('k').then(
    () => 'answered',
    (error: unknown) => error,
  )
  if (waitMs > 0) await sleep(waitMs)
  const started = performance.now()
  await cache.close()
  const closeMs = performance.now() - started
  const outcome = await get
  await server.resume()
  await sleep(500)
  // Only the info() call's connection: the cache's was dropped, so it never became a client of the server.
  assert.is(await info(server, 'connected_clients'), 1)
  return { outcome, closeMs }
}

const CLOSE_CASES = [
  {
    // close() finds the client module still loading, waits its second for the connection, and returns without it.
    title: 'close() in the tick of the first command, the server silent: that connection is not kept',
    timeout: 5,
    waitMs: 0,
    closeBoundMs: 3000,
    fails: BackendError,
  },
  {
    title: 'close() while the server has not answered the first connection: it is dropped, not kept',
    timeout: 0.2,
    waitMs: 300,
    closeBoundMs: 2000,
    fails: Error,
  },
]

for (const { title, timeout, waitMs, closeBoundMs, fails } of CLOSE_CASES) {
  closing(title, async ({ server }) => {
    const { outcome, closeMs } = await closeWhileConnecting(server, timeout, waitMs)
    assert.ok(closeMs < closeBoundMs, `close() took ${closeMs} ms`)
    assert.instance(outcome, fails)
  })
}

closing.run()

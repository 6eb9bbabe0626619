// Scenario 7: `clear({ namespace })` over 1M Redis keys. One private redis-server (test harness,
// free port, stopped at the end, also on failure) is filled with 1M keys under namespace `bulk`
// and 100k under `other` (pipelined MSET batches through `cache.raw`), then
// `await cache.clear({ namespace: 'bulk' })` runs on a `RedisCache` with no namespace of its own.
// The longest single server call is read from Redis itself: `slowlog-log-slower-than 0` logs every
// command with its execution time, `SLOWLOG GET -1` afterwards; `INFO commandstats` cross-checks
// the call counts. Checks that exactly the `other` keys remain. PASS if no command ran > 10 ms.
// `--smoke`: 10k keys under `bulk`, 1k under `other`.
import { RedisCache } from '../lib/redis.js'
import { redisCommand, serverVersions, startRedis, type RespValue } from '../spec/support/servers.js'

const smoke = process.argv.includes('--smoke')
const BULK = smoke ? 10_000 : 1_000_000
const OTHER = smoke ? 1_000 : 100_000
const BATCH = 1000 // keys per MSET
const IN_FLIGHT = 32 // MSETs pipelined at once
const LIMIT_MS = 10

interface SlowEntry {
  command: string
  micros: number
}

function slowEntries(reply: RespValue): SlowEntry[] {
  if (!Array.isArray(reply)) throw new Error(`SLOWLOG GET: unexpected reply ${JSON.stringify(reply)}`)
  return reply.map((entry) => {
    if (!Array.isArray(entry) || typeof entry[2] !== 'number' || !Array.isArray(entry[3])) {
      throw new Error(`SLOWLOG GET: unexpected entry ${JSON.stringify(entry)}`)
    }
    return { command: String(entry[3][0]).toUpperCase(), micros: entry[2] }
  })
}

function commandStats(info: RespValue): Map<string, { calls: number; usecPerCall: number }> {
  const stats = new Map<string, { calls: number; usecPerCall: number }>()
  for (const line of String(info).split('\r\n')) {
    const match = /^cmdstat_([^:]+):calls=(\d+),usec=\d+,usec_per_call=([\d.]+)/.exec(line)
    if (match) stats.set(match[1]!.toUpperCase(), { calls: Number(match[2]), usecPerCall: Number(match[3]) })
  }
  return stats
}

async function fill(cache: RedisCache, namespace: string, count: number): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < count) {
      const from = next
      next = Math.min(count, next + BATCH)
      const args: string[] = []
      for (let i = from; i < next; i++) args.push(`${namespace}:k${i}`, `v${i}`)
      await cache.raw('MSET', ...args)
    }
  }
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker))
}

const versions = await serverVersions()
const redis = await startRedis()
const cache = new RedisCache({ host: '127.0.0.1', port: redis.port })
try {
  const admin = (...args: string[]): Promise<RespValue> => redisCommand({ port: redis.port, timeoutMs: 30_000 }, ...args)

  const filling = performance.now()
  await Promise.all([fill(cache, 'bulk', BULK), fill(cache, 'other', OTHER)])
  const fillMs = performance.now() - filling
  const size = await admin('DBSIZE')
  if (size !== BULK + OTHER) throw new Error(`filled ${String(size)} keys, expected ${BULK + OTHER}`)

  await admin('CONFIG', 'SET', 'slowlog-max-len', '1000000')
  await admin('CONFIG', 'SET', 'slowlog-log-slower-than', '0')
  await admin('SLOWLOG', 'RESET')
  await admin('CONFIG', 'RESETSTAT')

  const started = performance.now()
  await cache.clear({ namespace: 'bulk', timeout: null })
  const clearMs = performance.now() - started

  const entries = slowEntries(await admin('SLOWLOG', 'GET', '-1'))
  await admin('CONFIG', 'SET', 'slowlog-log-slower-than', '10000')
  const stats = commandStats(await admin('INFO', 'commandstats'))
  const remaining = await admin('DBSIZE')
  const otherLeft = await admin('EXISTS', 'other:k0', `other:k${OTHER - 1}`, `other:k${OTHER >> 1}`)
  const bulkLeft = await admin('EXISTS', 'bulk:k0', `bulk:k${BULK - 1}`, `bulk:k${BULK >> 1}`)

  const clearing = entries.filter((e) => e.command === 'SCAN' || e.command === 'UNLINK')
  const count = (command: string): number => clearing.filter((e) => e.command === command).length
  const maxOf = (command: string): number => Math.max(0, ...clearing.filter((e) => e.command === command).map((e) => e.micros)) / 1000
  const maxMs = Math.max(maxOf('SCAN'), maxOf('UNLINK'))
  const sorted = clearing.map((e) => e.micros / 1000).sort((a, b) => a - b)
  const p99 = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] ?? 0
  const over = sorted.filter((ms) => ms > LIMIT_MS).length
  const others = entries.filter((e) => e.command !== 'SCAN' && e.command !== 'UNLINK' && e.command !== 'SLOWLOG' && e.command !== 'CONFIG')
  const keptOk = remaining === OTHER && otherLeft === 3 && bulkLeft === 0

  console.log(`node ${process.version}, redis-server ${versions.redis}, ${BULK} keys under bulk + ${OTHER} under other (filled in ${(fillMs / 1000).toFixed(1)} s)`)
  console.log('| measure | value |\n| --- | ---: |')
  console.log(`| clear({ namespace: 'bulk' }) total | ${clearMs.toFixed(0)} ms |`)
  console.log(`| SCAN calls (slowlog / commandstats) | ${count('SCAN')} / ${stats.get('SCAN')?.calls ?? 0} |`)
  console.log(`| UNLINK calls (slowlog / commandstats) | ${count('UNLINK')} / ${stats.get('UNLINK')?.calls ?? 0} |`)
  console.log(`| longest SCAN | ${maxOf('SCAN').toFixed(2)} ms (mean ${((stats.get('SCAN')?.usecPerCall ?? 0) / 1000).toFixed(2)} ms) |`)
  console.log(`| longest UNLINK | ${maxOf('UNLINK').toFixed(2)} ms (mean ${((stats.get('UNLINK')?.usecPerCall ?? 0) / 1000).toFixed(2)} ms) |`)
  console.log(`| SCAN+UNLINK p99 / commands over ${LIMIT_MS} ms | ${p99.toFixed(2)} ms / ${over} of ${sorted.length} |`)
  console.log(`| other commands during clear | ${others.length === 0 ? 'none' : [...new Set(others.map((e) => e.command))].join(', ')} |`)
  console.log(`| keys left | ${String(remaining)} (expected ${OTHER}; samples of other present: ${String(otherLeft)}/3, of bulk: ${String(bulkLeft)}/3) |`)
  console.log(`${keptOk ? 'PASS' : 'FAIL'} exactly the ${OTHER} other keys remain`)
  console.log(`${maxMs <= LIMIT_MS ? 'PASS' : 'FAIL'} longest single command ${maxMs.toFixed(2)} ms (target ≤ ${LIMIT_MS} ms)${smoke ? ' (smoke: not the 1M figures)' : ''}`)
  if (clearMs > 5000) console.log(`note: the clear took longer than the default 5 s command timeout; it ran with timeout: null`)
} finally {
  await cache.close().catch(() => undefined)
  await redis.stop()
}

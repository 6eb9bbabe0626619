// RedLock and OptimisticLock on the memory backend: `npx tsx examples/locks.ts`.
// The same code works on RedisCache and MemcachedCache, across processes too.
import assert from 'node:assert/strict'
import { MemoryCache, OptimisticLock, OptimisticLockError, RedLock } from '../lib/index.js'

await using cache = new MemoryCache({ namespace: 'example' })
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

// Dog-pile protection: five callers miss at once, one computes, the others wait and read.
let computed = 0
async function report(): Promise<string> {
  const hit = await cache.get<string>('report')
  if (hit !== undefined) return hit
  return RedLock.run(cache, 'report', { lease: 2 }, async () => {
    // Waiters get here too once the holder is done: read again before computing.
    const again = await cache.get<string>('report')
    if (again !== undefined) return again
    computed++
    await sleep(100) // the expensive part
    await cache.set('report', 'the report', { ttl: 60 })
    return 'the report'
  })
}
const reports = await Promise.all([report(), report(), report(), report(), report()])
console.log(reports, `computed ${computed} time(s)`)
assert.equal(computed, 1)

// The lock by hand: `held` tells the holder from a caller that waited for it.
{
  await using lock = await RedLock.acquire(cache, 'job', { lease: '500ms' })
  console.log('holding example:job-lock:', lock.held, await cache.exists('job-lock'))
} // released here
assert.equal(await cache.exists('job-lock'), false)

// Optimistic locking: write only if nobody wrote since we read.
await cache.set('counter', 1)
{
  await using opt = await OptimisticLock.acquire(cache, 'counter')
  await opt.cas(2)
}
const stale = await OptimisticLock.acquire(cache, 'counter')
await cache.set('counter', 10) // someone else writes in between
try {
  await stale.cas(3)
} catch (error) {
  assert.ok(error instanceof OptimisticLockError)
  console.log('conflict:', error.name)
}
console.log('counter:', await cache.get('counter')) // 10

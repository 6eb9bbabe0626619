// Caching functions and methods: cached, multiCached and the @Cached /
// @MultiCached method decorators on the in-process memory backend.
// Run it with `npx tsx examples/decorators.ts`.
import assert from 'node:assert/strict'
import { type Cache, Cached, cached, MemoryCache, MultiCached, multiCached } from '../lib/index.js'

const cache = new MemoryCache({ namespace: 'example' })
const keys = async (c: Cache): Promise<string[]> => [...((await c.raw('keys')) as Iterable<string>)].sort()

// --- cached: one result per argument list --------------------------------
let loads = 0
async function getUser(id: string): Promise<{ id: string; name: string }> {
  loads++
  return { id, name: `user ${id}` }
}
const cachedGetUser = cached(getUser, { cache, ttl: '5m' })

await cachedGetUser('42') // miss: getUser runs
await cachedGetUser('42') // hit: getUser does not run
console.log(`cached getUser('42') twice -> loads: ${loads}`)
assert.equal(loads, 1)

// Per-call switches: refresh the entry, or answer without waiting for the store.
await cachedGetUser.options({ cacheRead: false })('42')
await cachedGetUser.options({ waitForWrite: false })('43')
console.log(`after a forced refresh and a background store -> loads: ${loads}`)
assert.equal(loads, 3)

// --- multiCached: only the missing keys are asked for ----------------------
async function pricesFor(skus: string[]): Promise<Record<string, number>> {
  console.log(`  pricesFor asked for: ${skus.join(', ')}`)
  return Object.fromEntries(skus.map((sku) => [sku, sku.charCodeAt(0)]))
}
const prices = multiCached(pricesFor, { cache, keysFrom: 0, keyBuilder: (sku) => `price:${sku}` })
console.log('prices(a, b):', await prices(['a', 'b']))
console.log('prices(a, b, c):', await prices(['a', 'b', 'c'])) // asks for c only
console.log('prices(c, a):', await prices(['c', 'a'])) // every key cached: pricesFor does not run

// --- method decorators ----------------------------------------------------
class UserRepository {
  queries = 0
  readonly local = new MemoryCache()

  @Cached({ cache, ttl: 60 })
  async find(id: number): Promise<string> {
    this.queries++ // `this` is the instance
    return `row ${id}`
  }

  // Each instance its own cache: a function of the instance.
  @MultiCached({ cache: (self: UserRepository) => self.local, keysFrom: 'ids', returns: 'map' })
  async findMany(query: { ids: string[]; columns: string[] }): Promise<Map<string, string>> {
    this.queries++
    return new Map(query.ids.map((id) => [id, `row ${id} (${query.columns.join(',')})`]))
  }
}

const repo = new UserRepository()
await repo.find(7)
await repo.find(7)
await repo.findMany({ ids: ['1', '2'], columns: ['name'] })
const rows = await repo.findMany({ ids: ['2', '1'], columns: ['name'] })
console.log(`repository queries: ${repo.queries}`, rows)
assert.equal(repo.queries, 2)

// --- a broken cache never breaks the caller -------------------------------
const broken = new MemoryCache({
  plugins: [
    () => {
      throw new Error('the cache is down')
    },
  ],
})
const resilient = cached(getUser, { cache: broken })
console.log('through a broken cache:', await resilient('99'))

console.log('keys in the shared cache:')
for (const key of await keys(cache)) console.log(`  ${key}`)

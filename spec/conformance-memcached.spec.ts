// The backend conformance suite on real memcached: one server, and two servers
// with keys spread by consistent hashing. Servers start on the first test that
// needs them and the last suite of this file stops them.
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import { MemcachedCache } from '../lib/memcached.js'
import { conformance } from '../lib/testing/index.js'
import { startMemcached, type MemcachedServer } from './support/servers.js'

let one: Promise<MemcachedServer[]> | undefined
let two: Promise<MemcachedServer[]> | undefined
const servers = (count: 1 | 2): Promise<MemcachedServer[]> =>
  count === 1 ? (one ??= Promise.all([startMemcached()])) : (two ??= Promise.all([startMemcached(), startMemcached()]))

// Memcached cannot clear by namespace: the suite checks that such a clear rejects and removes nothing.
const capabilities = { clearNamespace: false, clearAll: true }

conformance(
  'conformance: Memcached, one server',
  async ({ namespace, serializer, ttl }) => new MemcachedCache({ servers: (await servers(1)).map((s) => s.server), namespace, serializer, ttl }),
  { capabilities },
)

conformance(
  'conformance: Memcached, two servers',
  async ({ namespace, serializer, ttl }) => new MemcachedCache({ servers: (await servers(2)).map((s) => s.server), namespace, serializer, ttl }),
  { capabilities },
)

const cleanup = suite('conformance: Memcached servers stop')
cleanup('the servers this file started are stopped', async () => {
  const started = (await Promise.all([one, two])).flatMap((group) => group ?? [])
  await Promise.all(started.map((s) => s.stop()))
  assert.is(started.length, 3, 'both suites ran against their servers')
})
cleanup.run()

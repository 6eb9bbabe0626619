// The backend conformance suite on real memcached: one server, and two servers
// with keys spread by consistent hashing. Servers start on the first test that
// needs them and the last suite of this file stops them.
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import { CacheHandler } from '../lib/index.js'
import { MemcachedCache } from '../lib/memcached.js'
import { registerConformance } from '../lib/testing/index.js'
import { type MemcachedServer, startMemcached } from './support/servers.js'

let one: Promise<MemcachedServer[]> | undefined
let two: Promise<MemcachedServer[]> | undefined
const servers = (count: 1 | 2): Promise<MemcachedServer[]> =>
  count === 1 ? (one ??= Promise.all([startMemcached()])) : (two ??= Promise.all([startMemcached(), startMemcached()]))

// Memcached cannot clear by namespace: the suite checks that such a clear rejects and removes nothing.
const capabilities = { clearNamespace: false, clearAll: true }

// Declared through the runner-agnostic adapter, with uvu suites as the runner.
const oneServer = suite('conformance: Memcached, one server')
registerConformance(
  oneServer,
  async ({ namespace, serializer, ttl }) =>
    new MemcachedCache({ servers: (await servers(1)).map((s) => s.server), namespace, serializer, ttl }),
  { capabilities },
)
oneServer.run()

const twoServers = suite('conformance: Memcached, two servers')
registerConformance(
  twoServers,
  async ({ namespace, serializer, ttl }) =>
    new MemcachedCache({ servers: (await servers(2)).map((s) => s.server), namespace, serializer, ttl }),
  { capabilities },
)
twoServers.run()

// A cache built from a config holds a backend loaded on its first command: it conforms the same.
const fromConfig = suite('conformance: Memcached, two servers, a cache from caches.create')
registerConformance(
  fromConfig,
  async ({ namespace, serializer, ttl }) => {
    const handler = new CacheHandler()
    handler.setConfig({
      default: { cache: 'memory' },
      shared: { cache: 'memcached', servers: (await servers(2)).map((s) => s.server) },
    })
    return handler.create('shared', { namespace, serializer, ttl })
  },
  { capabilities },
)
fromConfig.run()

const cleanup = suite('conformance: Memcached servers stop')
cleanup('the servers this file started are stopped', async () => {
  const started = (await Promise.all([one, two])).flatMap((group) => group ?? [])
  await Promise.all(started.map((s) => s.stop()))
  assert.is(started.length, 3, 'both suites ran against their servers')
})
cleanup.run()

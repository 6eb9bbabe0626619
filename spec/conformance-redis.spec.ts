// The backend conformance suite on real Redis: a single node and a 3-master
// Cluster, both started by the harness on the first test that needs them and
// stopped by the last suite of this file.
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import { Cache } from '../lib/index.js'
import { RedisCache } from '../lib/redis.js'
import { conformance } from '../lib/testing/index.js'
import { type RedisCluster, type RedisServer, startRedis, startRedisCluster } from './support/servers.js'

let server: Promise<RedisServer> | undefined
let cluster: Promise<RedisCluster> | undefined
const redis = (): Promise<RedisServer> => (server ??= startRedis())
const redisCluster = (): Promise<RedisCluster> => (cluster ??= startRedisCluster({ masters: 3 }))

await conformance(
  'conformance: Redis, single node',
  async ({ namespace, serializer, ttl }) => new RedisCache({ port: (await redis()).port, namespace, serializer, ttl }),
  { capabilities: { clearAll: true } },
)

await conformance(
  'conformance: Redis Cluster, 3 masters',
  async ({ namespace, serializer, ttl }) =>
    new RedisCache({ cluster: (await redisCluster()).rootNodes, namespace, serializer, ttl }),
  { capabilities: { clearAll: true } },
)

// A cache built from a URL holds a backend loaded on its first command: it conforms the same.
await conformance(
  'conformance: Redis, a cache from Cache.fromUrl',
  async ({ namespace, serializer, ttl }) => Cache.fromUrl((await redis()).url, { namespace, serializer, ttl }),
  { capabilities: { clearAll: true } },
)

const cleanup = suite('conformance: Redis servers stop')
cleanup('the servers this file started are stopped', async () => {
  const started = await Promise.all([server, cluster])
  for (const s of started) await s?.stop()
  assert.ok(
    started.every((s) => s !== undefined),
    'both suites ran against a server',
  )
})
cleanup.run()

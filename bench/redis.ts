// Redis: `RedisCache` (default options: JsonSerializer, timeout on, no plugins) against the raw
// @redis/client (`createClient` with `commandOptions: { timeout: 0 }`, its own per-command timer
// off like ours) on one private redis-server started by the test harness, get (hit) and set of
// 100-byte JSON strings (the JSON encoding of a 98-char string), sequential and with 1000 requests
// in flight. Baseline: the raw client. `npm run bench` runs it; `--smoke` runs every case briefly.
import { fileURLToPath } from 'node:url'
import { createClient } from '@redis/client'
import { RedisCache } from '../lib/redis.js'
import { serverVersions, startRedis } from '../spec/support/servers.js'
import { main, packageVersion, type BenchClient } from './backend-runner.js'

const STRING = 'x'.repeat(98)
const JSON_VALUE = JSON.stringify(STRING) // 100 bytes
const ENV = 'ONIOCACHE_BENCH_REDIS_PORT'

function port(env: NodeJS.ProcessEnv): number {
  const value = env[ENV]
  if (value === undefined) throw new Error(`${ENV} is not set (run the file without --case=)`)
  return Number(value)
}

await main(
  {
    title: 'Redis: RedisCache vs raw @redis/client',
    value: `100-byte JSON strings (RedisCache stores a 98-char string as its JSON; the raw client SETs/GETs the 100-byte JSON text, not parsed)`,
    clients: {
      '@redis/client': {
        prefix: 'bench:raw:',
        version: packageVersion('@redis/client'),
        async create(env): Promise<BenchClient> {
          const client = createClient({ socket: { host: '127.0.0.1', port: port(env) }, commandOptions: { timeout: 0 } })
          await client.connect()
          return {
            get: (key) => client.get(key),
            set: (key) => client.set(key, JSON_VALUE),
            expected: JSON_VALUE,
            close: () => client.close(),
          }
        },
      },
      RedisCache: {
        prefix: 'bench:onio:',
        version: '(this tree)',
        async create(env): Promise<BenchClient> {
          const cache = new RedisCache({ host: '127.0.0.1', port: port(env) })
          return {
            get: (key) => cache.get(key),
            set: (key) => cache.set(key, STRING),
            expected: STRING,
            close: () => cache.close(),
          }
        },
      },
    },
    async startServer() {
      const versions = await serverVersions()
      const redis = await startRedis()
      return { env: { [ENV]: String(redis.port) }, version: `redis-server ${versions.redis}`, stop: () => redis.stop() }
    },
  },
  fileURLToPath(import.meta.url),
)

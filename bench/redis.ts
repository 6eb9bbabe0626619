// Redis: `RedisCache` (default options: JsonSerializer, timeout on, no plugins) against the raw
// @redis/client (`createClient` with `commandOptions: { timeout: 0 }`, its own per-command timer
// off like ours) on one private redis-server started by the test harness, get (hit) and set of
// 100-byte JSON strings (the JSON encoding of a 98-char string), sequential and with 1000 requests
// in flight. Baseline: the raw client. Peers on the same server, each with its users' usual API:
// keyv 5 over @keyv/redis, cache-manager 7 over such a Keyv store, bentocache 1.6 with only an L2
// Redis layer (ioredis 5). Issue #6 scenario 5: RedisCache ≥ 0.9× the raw client sequential,
// ≥ 0.8× with 1000 in flight. `npm run bench` runs it; `--smoke` runs every case briefly.
import { fileURLToPath } from 'node:url'
import KeyvRedis from '@keyv/redis'
import { createClient } from '@redis/client'
import { BentoCache, bentostore } from 'bentocache'
import { redisDriver } from 'bentocache/drivers/redis'
import { createCache } from 'cache-manager'
import { Keyv } from 'keyv'
import { RedisCache } from '../lib/redis.js'
import { serverVersions, startRedis } from '../spec/support/servers.js'
import { type BenchClient, main, packageVersion } from './backend-runner.js'

const STRING = 'x'.repeat(98)
const JSON_VALUE = JSON.stringify(STRING) // 100 bytes
const ENV = 'ONIOCACHE_BENCH_REDIS_PORT'

function port(env: NodeJS.ProcessEnv): number {
  const value = env[ENV]
  if (value === undefined) throw new Error(`${ENV} is not set (run the file without --case=)`)
  return Number(value)
}

/** keyv 5 over @keyv/redis (its documented `new Keyv(new KeyvRedis(url))`), errors thrown, not only emitted. */
function keyvRedis(env: NodeJS.ProcessEnv): Keyv<string> {
  const keyv = new Keyv<string>(new KeyvRedis(`redis://127.0.0.1:${port(env)}`, { throwOnConnectError: true }), {
    throwOnErrors: true,
  })
  keyv.on('error', () => {}) // thrown to the caller as well (throwOnErrors); no unhandled 'error' event
  return keyv
}

await main(
  {
    title: 'Redis: RedisCache vs raw @redis/client, keyv, cache-manager, bentocache (L2 only)',
    value:
      `100-byte JSON strings (RedisCache and the peers store a 98-char string, whose JSON is 100 bytes, and return ` +
      `the parsed string; ` +
      `keyv and cache-manager store it in Keyv's {"value":…,"expires":null} JSON envelope, bentocache in its own ` +
      `entry envelope; ` +
      `the raw client SETs/GETs the 100-byte JSON text, not parsed)`,
    clients: {
      '@redis/client': {
        prefix: 'bench:raw:',
        version: packageVersion('@redis/client'),
        async create(env): Promise<BenchClient> {
          const client = createClient({
            socket: { host: '127.0.0.1', port: port(env) },
            commandOptions: { timeout: 0 },
          })
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
      keyv: {
        prefix: 'bench:keyv:',
        version: `${packageVersion('keyv')} + @keyv/redis ${packageVersion('@keyv/redis')}`,
        async create(env): Promise<BenchClient> {
          const keyv = keyvRedis(env)
          return {
            get: (key) => keyv.get(key),
            set: (key) => keyv.set(key, STRING),
            expected: STRING,
            close: () => keyv.disconnect(),
          }
        },
      },
      'cache-manager': {
        prefix: 'bench:cm:',
        version: `${packageVersion('cache-manager')} (over keyv + @keyv/redis)`,
        async create(env): Promise<BenchClient> {
          const cache = createCache({ stores: [keyvRedis(env)] })
          return {
            get: (key) => cache.get<string>(key),
            set: (key) => cache.set(key, STRING),
            expected: STRING,
            close: async () => void (await cache.disconnect()),
          }
        },
      },
      bentocache: {
        prefix: 'bench:bento:',
        version: `${packageVersion('bentocache')} (L2 only, ioredis ${packageVersion('ioredis')})`,
        async create(env): Promise<BenchClient> {
          const bento = new BentoCache({
            default: 'redis',
            ttl: null, // no expiry, like the others (its default is 30 min)
            stores: {
              redis: bentostore().useL2Layer(redisDriver({ connection: { host: '127.0.0.1', port: port(env) } })),
            },
          })
          return {
            get: (key) => bento.get<string>({ key }),
            set: (key) => bento.set({ key, value: STRING }),
            expected: STRING,
            close: () => bento.disconnectAll(),
          }
        },
      },
    },
    targets: { client: 'RedisCache', sequential: 0.9, inFlight: 0.8 },
    async startServer() {
      const versions = await serverVersions()
      const redis = await startRedis()
      return { env: { [ENV]: String(redis.port) }, version: `redis-server ${versions.redis}`, stop: () => redis.stop() }
    },
  },
  fileURLToPath(import.meta.url),
)

// Memcached: `MemcachedCache` (default options: JsonSerializer, timeout on, no plugins) against
// memjs 1.3.x (default options) on one private memcached (`-t 1`, started by the test harness),
// get (hit) and set of 100-byte string values, sequential and with 1000 requests in flight.
// Baseline: memjs. Issue #6 scenario 6: MemcachedCache ≥ 0.9× memjs sequential, ≥ 1.5× with
// 1000 in flight. `npm run bench` runs it; `--smoke` runs every case briefly.
import { fileURLToPath } from 'node:url'
import memjs from 'memjs'
import { MemcachedCache } from '../lib/memcached.js'
import { serverVersions, startMemcached } from '../spec/support/servers.js'
import { type BenchClient, main, packageVersion } from './backend-runner.js'

const VALUE = 'x'.repeat(100)
const ENV = 'ONIOCACHE_BENCH_MEMCACHED'

function server(env: NodeJS.ProcessEnv): string {
  const address = env[ENV]
  if (address === undefined) throw new Error(`${ENV} is not set (run the file without --case=)`)
  return address
}

await main(
  {
    title: 'Memcached: MemcachedCache vs memjs',
    value:
      `100-byte string values (memjs stores them raw and its get returns value.toString(); MemcachedCache ` +
      `stores their JSON, 102 bytes)`,
    clients: {
      memjs: {
        prefix: 'bench:memjs:',
        version: packageVersion('memjs'),
        async create(env): Promise<BenchClient> {
          const client = memjs.Client.create(server(env))
          return {
            get: async (key) => (await client.get(key)).value?.toString(),
            set: (key) => client.set(key, VALUE),
            expected: VALUE,
            close: async () => client.close(),
          }
        },
      },
      MemcachedCache: {
        prefix: 'bench:onio:',
        version: '(this tree)',
        async create(env): Promise<BenchClient> {
          const cache = new MemcachedCache({ servers: [server(env)] })
          return {
            get: (key) => cache.get(key),
            set: (key) => cache.set(key, VALUE),
            expected: VALUE,
            close: () => cache.close(),
          }
        },
      },
    },
    targets: { client: 'MemcachedCache', sequential: 0.9, inFlight: 1.5 },
    async startServer() {
      const versions = await serverVersions()
      const memcached = await startMemcached()
      return {
        env: { [ENV]: memcached.server },
        version: `memcached ${versions.memcached} (-t 1)`,
        stop: () => memcached.stop(),
      }
    },
  },
  fileURLToPath(import.meta.url),
)

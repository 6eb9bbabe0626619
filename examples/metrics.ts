// Prometheus metrics of a memory cache, served at /metrics with node:http: `npm run example:metrics`.
// The program scrapes its own endpoint once, prints the oniocache lines of the scrape, and exits.
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Registry } from 'prom-client'
import { MemoryCache } from '../lib/index.js'
import { PrometheusPlugin } from '../lib/prometheus.js'

// A registry of its own; leave `registry` out to use prom-client's global one.
const registry = new Registry()
const cache = new MemoryCache({ namespace: 'shop', plugins: [new PrometheusPlugin({ registry })] })

await cache.set('product:1', { name: 'tea', price: 4 })
await cache.multiSet([
  ['product:2', { name: 'coffee', price: 6 }],
  ['product:3', { name: 'cocoa', price: 5 }],
])
for (const id of [1, 2, 3, 4, 1, 5]) await cache.get(`product:${id}`) // 4 hits, 2 misses
await cache.multiGet(['product:1', 'product:2', 'product:9']) // 2 hits, 1 miss
await cache.add('product:1', { name: 'again' }).catch((error: Error) => console.log(`add failed: ${error.name}`))

const server = createServer((request, response) => {
  if (request.url !== '/metrics') {
    response.writeHead(404).end()
    return
  }
  registry.metrics().then(
    (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text),
    (error: Error) => response.writeHead(500).end(error.message),
  )
})
server.listen(0, '127.0.0.1')
await once(server, 'listening')
const { port } = server.address() as AddressInfo
console.log(`serving http://127.0.0.1:${port}/metrics`)

const scrape = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
// The sample: every series but the histogram's buckets, which add a line per bound.
const sample = scrape.split('\n').filter((line) => line.startsWith('oniocache_') && !line.includes('_bucket{'))
console.log(sample.join('\n'))

server.close()
await once(server, 'close')
await cache.close()

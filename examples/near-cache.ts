// NearCachePlugin in two processes sharing one Redis:
// `REDIS_URL=redis://127.0.0.1:6379 npx tsx examples/near-cache.ts`
// The parent starts a copy of this file as a child. The child keeps a key in its process memory; the parent changes
// the key in Redis; Redis tells the child, which drops its copy, so the child's next read sees the new value.
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { NearCachePlugin } from '../lib/index.js'
import { RedisCache } from '../lib/redis.js'

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

// Each process has its own plugin, that is its own copy, in front of the same Redis.
const near = new NearCachePlugin({ maxSize: 10_000, ttl: '1m' })
await using cache = new RedisCache({ url, namespace: 'near-example', plugins: [near] })

/** Sends `message` to the other process and waits for its answer. */
async function ask(other: NodeJS.EventEmitter & { send?(message: string): unknown }, message: string): Promise<void> {
  other.send!(message)
  await once(other, 'message')
}

if (process.argv[2] === 'child') {
  /** Reads the key and says where the answer came from: the copy in this process, or Redis. */
  const read = async (what: string): Promise<void> => {
    const hits = near.stats.hits
    const value = await cache.get('config')
    const from = near.stats.hits > hits ? 'the copy in this process' : 'Redis'
    console.log(`child:  ${what}: ${JSON.stringify(value)} from ${from}`)
  }

  // The plugin keeps copies only while Redis streams invalidations to this process. That stream starts with the
  // cache's first command and is live a few ms later: a long-running service never notices, this short demo waits.
  await read('first read')
  await sleep(100)
  await ask(process, 'ready') // the parent sets the key, then answers
  await read('read') // a value found in Redis is kept…
  await read('read again') // …and answered from process memory until it changes
  await ask(process, 'kept') // the parent changes the key, then answers
  // Invalidations travel on their own connection: they arrive moments after the write, not with its reply.
  await sleep(20)
  await read('after the change')
  console.log('child:  stats', near.stats)
  process.disconnect() // the IPC channel would keep this process alive
} else {
  await cache.delete('config') // start from a missing key
  // Run the child as this file is run: TypeScript, through the tsx loader.
  const child = fork(fileURLToPath(import.meta.url), ['child'], { execArgv: ['--import', 'tsx'] })
  child.on('exit', (code) => code === 0 || process.exit(code ?? 1)) // a child that fails ends the demo
  await once(child, 'message') // the child has read the key once: its invalidation stream is live

  await cache.set('config', { theme: 'light' })
  console.log('parent: set config to light')
  await ask(child, 'set') // the child reads it, twice

  // Any change of the key in Redis drops the child's copy: this write, but also one from redis-cli or another
  // language's client, or the key's expiry.
  await cache.set('config', { theme: 'dark' })
  console.log('parent: set config to dark')
  child.send('changed')
  await once(child, 'exit')
  await cache.delete('config')
}

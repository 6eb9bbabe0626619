// The Redis backend on real redis-server processes started by the harness:
// storage format, commands, clear, scripts, clients passed in, and faults.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import { BackendError, MsgPackSerializer, StringSerializer, TimeoutError, V8Serializer } from '../lib/index.js'
import { RedisCache } from '../lib/redis.js'
import { childEnv } from './support/children.js'
import { rejection, sleep, watchUnhandled } from './support/fixtures/backends.js'
import { type RedisCluster, type RedisServer, redisCommand, startRedis, startRedisCluster } from './support/servers.js'

// ---------------------------------------------------------------------------
const single = suite<{ server: RedisServer }>('redis: single node')

single.before(async (ctx) => {
  ctx.server = await startRedis()
})
single.after(async ({ server }) => {
  await server.stop()
})

single(
  'values are plain Redis strings: JSON as text, strings as strings, bytes as raw bytes (no base64)',
  async ({ server }) => {
    await using json = new RedisCache({ port: server.port, namespace: 'fmt' })
    await json.set('obj', { a: 1, b: 'é' })
    assert.is(await redisCommand(server.port, 'GET', 'fmt:obj'), '{"a":1,"b":"é"}')

    await using text = new RedisCache({ port: server.port, serializer: new StringSerializer() })
    await text.set('s', 'plain')
    assert.is(await redisCommand(server.port, 'GET', 's'), 'plain')

    await using bytes = new RedisCache({ port: server.port, serializer: new V8Serializer() })
    const value = new Map<string, unknown>([
      ['when', new Date(0)],
      ['big', 2n ** 70n],
    ])
    await bytes.set('v8', value)
    const stored = await bytes.raw('STRLEN', 'v8')
    assert.is(
      stored,
      (bytes.serializer.dumps(value) as Uint8Array).byteLength,
      'the stored length is the raw byte length',
    )
    assert.equal(await bytes.get('v8'), value)

    await using pack = new RedisCache({ port: server.port, serializer: new MsgPackSerializer() })
    const blob = Uint8Array.from([0, 255, 0xc3, 0x28, 10, 13])
    await pack.set('bin', blob)
    assert.equal([...((await pack.get('bin')) as Uint8Array)], [...blob])
  },
)

single('add is SET NX; a ttl is EX for whole seconds and PX for fractions', async ({ server }) => {
  await using cache = new RedisCache({ port: server.port, namespace: 'add' })
  assert.is(await cache.add('k', 1, { ttl: 100 }), true)
  const error = await rejection(cache.add('k', 2))
  assert.is((error as Error).name, 'KeyExistsError')
  assert.is(await cache.get('k'), 1)
  const ttl = (await redisCommand(server.port, 'TTL', 'add:k')) as number
  assert.ok(ttl > 95 && ttl <= 100, `TTL ${ttl}`)
  await cache.set('f', 1, { ttl: 2.5 })
  const pttl = (await redisCommand(server.port, 'PTTL', 'add:f')) as number
  assert.ok(pttl > 2000 && pttl <= 2500, `PTTL ${pttl}`)
})

single(
  'increment is INCRBY and keeps the ttl; a non-integer value is a TypeError, an unsafe one a RangeError',
  async ({ server }) => {
    await using cache = new RedisCache({ port: server.port, namespace: 'inc' })
    assert.is(await cache.increment('n'), 1)
    assert.is(await cache.increment('n', 41), 42)
    assert.is(await cache.increment('n', -50), -8)
    assert.is(await cache.get('n'), -8)
    await cache.expire('n', 100)
    await cache.increment('n')
    assert.ok(((await redisCommand(server.port, 'TTL', 'inc:n')) as number) > 90)
    await cache.set('s', 'text')
    const error = await rejection(cache.increment('s'))
    assert.instance(error, TypeError)
    assert.match((error as Error).message, /cannot increment "inc:s"/)
    assert.is(await cache.get('s'), 'text')
    // Past Number.MAX_SAFE_INTEGER a RangeError, as on the other backends, and the stored count is unchanged.
    await cache.set('big', Number.MAX_SAFE_INTEGER - 10)
    assert.is(await cache.increment('big'), Number.MAX_SAFE_INTEGER - 9)
    const unsafe = await rejection(cache.increment('big', 20))
    assert.instance(unsafe, RangeError)
    assert.match((unsafe as Error).message, /MAX_SAFE_INTEGER; the increment was undone/)
    assert.is(await redisCommand(server.port, 'GET', 'inc:big'), String(Number.MAX_SAFE_INTEGER - 9))
    // Redis's own 64-bit overflow is a RangeError too, with nothing written.
    await redisCommand(server.port, 'SET', 'inc:max', '9223372036854775807')
    const overflow = await rejection(cache.increment('max'))
    assert.instance(overflow, RangeError)
    assert.match((overflow as Error).message, /64-bit integers; nothing was written/)
    assert.is(await redisCommand(server.port, 'GET', 'inc:max'), '9223372036854775807')
  },
)

single(
  'expire: EXPIRE for seconds, PEXPIRE for fractions, PERSIST for 0; false for a missing key',
  async ({ server }) => {
    await using cache = new RedisCache({ port: server.port, namespace: 'exp' })
    await cache.set('k', 1)
    assert.is(await cache.expire('k', 50), true)
    assert.ok(((await redisCommand(server.port, 'TTL', 'exp:k')) as number) > 45)
    assert.is(await cache.expire('k', 0.75), true)
    const pttl = (await redisCommand(server.port, 'PTTL', 'exp:k')) as number
    assert.ok(pttl > 500 && pttl <= 750, `PTTL ${pttl}`)
    assert.is(await cache.expire('k', 0), true)
    assert.is(await redisCommand(server.port, 'TTL', 'exp:k'), -1)
    assert.is(await cache.expire('k', null), true, 'a key without a ttl still exists: true')
    assert.is(await cache.expire('missing', 0), false)
    assert.is(await cache.expire('missing', 10), false)
  },
)

single('multiSet with a ttl writes every key with that ttl in one script; multiGet is one MGET', async ({ server }) => {
  await using cache = new RedisCache({ port: server.port, namespace: 'ms' })
  await redisCommand(server.port, 'CONFIG', 'RESETSTAT')
  await cache.multiSet(
    [
      ['a', 1],
      ['b', 2],
      ['c', 3],
    ],
    { ttl: 30 },
  )
  for (const key of ['ms:a', 'ms:b', 'ms:c'])
    assert.ok(((await redisCommand(server.port, 'TTL', key)) as number) > 25, key)
  assert.equal(await cache.multiGet(['a', 'x', 'c', 'a']), [1, undefined, 3, 1])
  const stats = (await redisCommand(server.port, 'INFO', 'commandstats')) as string
  assert.match(stats, /cmdstat_mget:calls=1,/)
  assert.match(stats, /cmdstat_(evalsha|eval):calls=1,/)
})

single(
  'clear({ namespace }) removes exactly that namespace with SCAN + UNLINK, glob characters escaped',
  async ({ server }) => {
    await using cache = new RedisCache({ port: server.port, namespace: '' })
    const pairs: Array<[string, number]> = []
    for (let i = 0; i < 2500; i++) pairs.push([`user:${i}`, i])
    await cache.multiSet(pairs)
    await cache.multiSet([
      ['users:1', 1],
      ['a*:1', 1],
      ['ab:1', 1],
      ['a?:1', 1],
      ['a[b]:1', 1],
      ['other', 1],
    ])
    await redisCommand(server.port, 'CONFIG', 'RESETSTAT')
    await cache.clear({ namespace: 'user' })
    assert.is(await redisCommand(server.port, 'EXISTS', 'user:0', 'user:2499'), 0)
    assert.is(await redisCommand(server.port, 'EXISTS', 'users:1'), 1, 'namespace user never touches users:…')
    const stats = (await redisCommand(server.port, 'INFO', 'commandstats')) as string
    assert.match(stats, /cmdstat_scan:calls=\d+/)
    assert.match(stats, /cmdstat_unlink:calls=\d+/)
    assert.not.match(stats, /cmdstat_keys:/, 'never KEYS')
    await cache.clear({ namespace: 'a*' })
    assert.is(await redisCommand(server.port, 'EXISTS', 'a*:1'), 0)
    assert.is(await redisCommand(server.port, 'EXISTS', 'ab:1', 'a?:1', 'a[b]:1', 'other'), 4, "'a*' is not a pattern")
    await cache.clear({ namespace: 'a[b]' })
    assert.is(await redisCommand(server.port, 'EXISTS', 'a[b]:1', 'ab:1'), 1)
  },
)

single('clear() with namespace "" empties only the cache\'s own db', async ({ server }) => {
  await using db1 = new RedisCache({ port: server.port, db: 1 })
  await using db2 = new RedisCache({ url: `redis://127.0.0.1:${server.port}/2` })
  await db1.set('k', 1)
  await db2.set('k', 2)
  await db1.clear()
  assert.is(await db1.get('k'), undefined)
  assert.is(await db2.get('k'), 2)
})

single('set with a casToken runs a Lua script by EVALSHA and loads it again after SCRIPT FLUSH', async ({ server }) => {
  await using cache = new RedisCache({ port: server.port, namespace: 'cas' })
  await cache.set('k', 'v1')
  const token = await cache.backend.get('cas:k')
  assert.is(token, '"v1"')
  assert.is(await cache.set('k', 'v2', { casToken: token }), true)
  assert.is(await cache.set('k', 'v3', { casToken: token }), false, 'the stored value changed')
  assert.is(await cache.get('k'), 'v2')
  await redisCommand(server.port, 'SCRIPT', 'FLUSH')
  assert.is(await cache.set('k', 'v4', { casToken: '"v2"', ttl: 20 }), true)
  assert.ok(((await redisCommand(server.port, 'TTL', 'cas:k')) as number) > 15)
})

single('raw sends the command as given', async ({ server }) => {
  await using cache = new RedisCache({ port: server.port })
  assert.is(await cache.raw('SET', 'rawkey', 'x'), 'OK')
  assert.is(await cache.raw('APPEND', 'rawkey', 'yz'), 3)
  assert.is(await cache.raw('GET', 'rawkey'), 'xyz')
  const error = await rejection(cache.raw('NOSUCHCOMMAND'))
  assert.instance(error, BackendError)
})

single('a client passed in belongs to the caller: close() leaves it open', async ({ server }) => {
  const { createClient } = await import('@redis/client')
  const client = createClient({ socket: { port: server.port, host: '127.0.0.1' } })
  client.on('error', () => {})
  await client.connect()
  try {
    const cache = new RedisCache({ client, namespace: 'given' })
    await cache.set('k', 'v')
    await cache.close()
    assert.is(client.isOpen, true)
    assert.is(await client.get('given:k'), '"v"')
    assert.is(await cache.get('k'), 'v', 'the cache works again after close')
  } finally {
    await client.close()
  }
})

single('close() releases the connection and the next command reconnects', async ({ server }) => {
  const cache = new RedisCache({ port: server.port })
  await cache.set('k', 1)
  const before = (await redisCommand(server.port, 'INFO', 'clients')) as string
  await cache.close()
  await sleep(50)
  const after = (await redisCommand(server.port, 'INFO', 'clients')) as string
  const count = (info: string): number => Number(/connected_clients:(\d+)/.exec(info)![1])
  assert.ok(count(after) < count(before), `connected clients ${count(before)} → ${count(after)}`)
  assert.is(await cache.get('k'), 1)
  await cache.close()
})

single('a password and a db from the URL are used, and the password never appears in errors', async () => {
  const secured = await startRedis()
  await redisCommand(secured.port, 'CONFIG', 'SET', 'requirepass', 's3cr3t-pw')
  try {
    await using good = new RedisCache({ url: `redis://:s3cr3t-pw@127.0.0.1:${secured.port}/3` })
    await good.set('k', 'v')
    assert.is(await good.get('k'), 'v')
    await using bad = new RedisCache({ url: `redis://:wrong-pw@127.0.0.1:${secured.port}/3`, timeout: 2 })
    const error = await rejection(bad.get('k'))
    assert.instance(error, BackendError)
    const text = `${(error as Error).message} ${String((error as Error).cause)}`
    assert.not.match(text, /wrong-pw|s3cr3t/)
    assert.match((error as Error).message, new RegExp(`^\\[oniocache\\] \\[redis 127\\.0\\.0\\.1:${secured.port}\\]`))
  } finally {
    await secured.stop()
  }
})

single(
  'down is down: SIGTERM mid-traffic → BackendError at once, restart → works again, no unhandled rejection',
  async ({ server }) => {
    const unhandled = watchUnhandled()
    const cache = new RedisCache({ port: server.port, namespace: 'fault', timeout: 2 })
    try {
      await cache.set('k', 'v')
      const traffic = Array.from({ length: 200 }, (_, i) =>
        cache.set(`k${i}`, i).then(
          () => 'ok',
          (e: unknown) => e,
        ),
      )
      await server.kill('SIGTERM')
      const outcomes = await Promise.all(traffic)
      for (const outcome of outcomes) assert.ok(outcome === 'ok' || outcome instanceof BackendError, String(outcome))

      for (let i = 0; i < 3; i++) {
        const started = performance.now()
        const error = await rejection(cache.get('k'))
        const took = performance.now() - started
        assert.instance(error, BackendError)
        assert.ok(took < 100, `rejected after ${took.toFixed(1)} ms, not at once`)
      }

      await server.restart()
      const restarted = performance.now()
      let value: unknown
      for (;;) {
        try {
          value = await cache.set('k', 'again')
          break
        } catch (error) {
          assert.instance(error, BackendError)
          assert.ok(performance.now() - restarted < 3000, 'recovered within 3 s of the restart')
          await sleep(20)
        }
      }
      assert.is(value, true)
      assert.is(await cache.get('k'), 'again')
      await sleep(20)
      unhandled.check()
    } finally {
      unhandled.stop()
      await cache.close()
    }
  },
)

single('SIGSTOP → TimeoutError at the command timeout; SIGCONT → works again', async ({ server }) => {
  const unhandled = watchUnhandled()
  const cache = new RedisCache({ port: server.port, namespace: 'pause', timeout: 0.3 })
  try {
    await cache.set('k', 'v')
    await server.pause()
    const started = performance.now()
    const error = await rejection(cache.get('k'))
    const took = performance.now() - started
    assert.instance(error, TimeoutError)
    assert.ok(took >= 295 && took < 700, `timed out after ${took.toFixed(0)} ms`)
    await server.resume()
    assert.is(await cache.get('k'), 'v')
    await sleep(20)
    unhandled.check()
  } finally {
    unhandled.stop()
    await cache.close()
  }
})

single('a server that was never up: BackendError at once, then it works once the server starts', async () => {
  const server = await startRedis()
  const port = server.port
  await server.kill('SIGKILL')
  const cache = new RedisCache({ port, timeout: 2 })
  try {
    const first = await rejection(cache.get('k'))
    assert.instance(first, BackendError)
    assert.match((first as Error).message, /ECONNREFUSED/)
    const started = performance.now()
    assert.instance(await rejection(cache.get('k')), BackendError)
    assert.ok(performance.now() - started < 50)
    await server.restart()
    let ok = false
    for (let i = 0; i < 150 && !ok; i++) {
      ok = await cache.set('k', 1).then(
        () => true,
        () => false,
      )
      if (!ok) await sleep(20)
    }
    assert.ok(ok, 'the cache connected once the server was up')
  } finally {
    await cache.close()
    await server.stop()
  }
})

single('examples/redis.ts runs against a server and prints what it says', async ({ server }) => {
  const root = new URL('..', import.meta.url).pathname
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'examples/redis.ts'], {
    cwd: root,
    // A child's coverage would distort the merged report (see spec/package.spec.ts).
    env: childEnv({ REDIS_URL: server.url, NO_COLOR: '1', FORCE_COLOR: '0' }),
  })
  assert.match(stdout, /name: 'Ada'/)
  assert.match(stdout, /\{"name":"Ada","langs":\["en","fr"\]\}/)
  assert.match(stdout, /\[ 1, 2, undefined \]/)
  assert.match(stdout, /hitRatio/)
  assert.is(await redisCommand(server.port, 'EXISTS', 'example:a'), 0, 'the example cleared its namespace')
})

single(
  'a clear that times out stops walking: the keys deleted so far stay deleted, the rest stay, nothing else is touched',
  async ({ server }) => {
    const n = 60_000
    for (let start = 0; start < n; start += 10_000) {
      const args: string[] = []
      for (let i = start; i < start + 10_000; i++) args.push(`walk:k${i}`, 'v')
      await redisCommand(server.port, 'MSET', ...args)
    }
    await redisCommand(server.port, 'SET', 'walkers:keep', 'kept')
    const count = async (): Promise<number> =>
      (await redisCommand(server.port, 'EVAL', "return #redis.call('KEYS', 'walk:*')", '0')) as number
    assert.is(await count(), n)
    await using cache = new RedisCache({ port: server.port, namespace: 'walk' })
    await cache.exists('k0') // connected: the timeout below is spent walking
    const error = await rejection(cache.clear({ timeout: 0.02 }))
    assert.instance(error, TimeoutError)
    await sleep(300)
    const left = await count()
    assert.ok(left > 0 && left < n, `the walk had started and stopped: ${left} of ${n} left`)
    await sleep(300)
    assert.is(await count(), left, 'nothing was deleted after the timeout')
    assert.is(await cache.clear({ timeout: null }), true)
    assert.is(await count(), 0)
    assert.is(await redisCommand(server.port, 'GET', 'walkers:keep'), 'kept')
  },
)

single.run()

// ---------------------------------------------------------------------------
const cluster = suite<{ cluster: RedisCluster }>('redis: cluster')

cluster.before(async (ctx) => {
  ctx.cluster = await startRedisCluster({ masters: 3 })
})
cluster.after(async ({ cluster: c }) => {
  await c.stop()
})

cluster(
  'multiGet and multiSet span hash slots: MGET grouped by slot, not one request per key',
  async ({ cluster: c }) => {
    await using cache = new RedisCache({ cluster: c.rootNodes, namespace: 'c' })
    const keys = Array.from({ length: 30 }, (_, i) => `k${i}`)
    await cache.multiSet(keys.map((k, i) => [k, i] as const))
    for (const node of c.nodes) await redisCommand(node.port, 'CONFIG', 'RESETSTAT')
    assert.equal(await cache.multiGet([...keys, 'missing']), [...keys.map((_, i) => i), undefined])
    let mgets = 0
    for (const node of c.nodes) {
      const stats = (await redisCommand(node.port, 'INFO', 'commandstats')) as string
      mgets += Number(/cmdstat_mget:calls=(\d+)/.exec(stats)?.[1] ?? 0)
      assert.not.match(stats, /cmdstat_get:/, 'no GET per key')
    }
    assert.ok(mgets > 0 && mgets <= 31, `${mgets} MGET calls for 31 keys`)
  },
)

cluster(
  'tls reaches every node of a cluster; host, port, db and url beside cluster are refused',
  async ({ cluster: c }) => {
    // These nodes speak plain TCP: a cluster that really asks for TLS cannot talk to them.
    await using secure = new RedisCache({ cluster: c.rootNodes, tls: true, timeout: 2 })
    const error = await rejection(secure.get('k'))
    assert.ok(error instanceof BackendError || error instanceof TimeoutError, String(error))
    await using plain = new RedisCache({ cluster: c.rootNodes, namespace: 'tls' })
    await plain.set('k', 1)
    assert.is(await plain.get('k'), 1, 'the same nodes without tls answer')
    for (const stray of [{ host: '10.0.0.1' }, { port: 7000 }, { db: 2 }, { url: 'redis://127.0.0.1:7000' }]) {
      assert.throws(
        () => new RedisCache({ cluster: c.rootNodes, ...stray }),
        (e: Error) => e instanceof TypeError && /cannot be given with it/.test(e.message),
        JSON.stringify(stray),
      )
    }
  },
)

cluster('multiSet with a ttl is atomic per slot and sets the ttl on every key', async ({ cluster: c }) => {
  await using cache = new RedisCache({ cluster: c.rootNodes, namespace: 't' })
  const pairs = Array.from({ length: 20 }, (_, i) => [`k${i}`, i] as const)
  await cache.multiSet(pairs, { ttl: 40 })
  for (const [key] of pairs) {
    const ttl = (await cache.raw('TTL', `t:${key}`)) as number
    assert.ok(ttl > 35 && ttl <= 40, `${key}: ${ttl}`)
  }
})

cluster(
  'clear({ namespace }) walks every master; clear() of namespace "" empties every master',
  async ({ cluster: c }) => {
    await using cache = new RedisCache({ cluster: c.rootNodes })
    const pairs: Array<[string, number]> = []
    for (let i = 0; i < 300; i++) pairs.push([`user:${i}`, i], [`users:${i}`, i])
    await cache.multiSet(pairs)
    await cache.clear({ namespace: 'user' })
    const left = await cache.multiGet(pairs.map(([k]) => k))
    pairs.forEach(([key], i) => {
      assert.is(left[i] === undefined, key.startsWith('user:'), key)
    })
    await cache.clear()
    let total = 0
    for (const node of c.nodes) total += (await redisCommand(node.port, 'DBSIZE')) as number
    assert.is(total, 0)
  },
)

cluster('every command works on a cluster, scripts included', async ({ cluster: c }) => {
  await using cache = new RedisCache({ cluster: c.rootNodes, namespace: 'cmd' })
  assert.is(await cache.add('a', 1), true)
  assert.is(await cache.exists('a'), true)
  assert.is(await cache.increment('n', 3), 3)
  assert.is(await cache.expire('a', 10), true)
  assert.is(await cache.set('a', 2, { casToken: '1' }), true)
  assert.is(await cache.get('a'), 2)
  assert.is(await cache.delete('a'), 1)
  assert.is(await cache.raw('GET', 'cmd:n'), '3')
})

cluster.run()

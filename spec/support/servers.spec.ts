import * as fs from 'node:fs'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  HOST,
  liveServerCount,
  memcachedCommand,
  parseResp,
  RedisReplyError,
  redisCommand,
  serverVersions,
  startMemcached,
  startRedis,
  startRedisCluster,
  stopAll,
} from './servers.js'

/** Resolves the error code a promise rejects with (fails the test when it resolves). */
async function rejectionCode(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise
  } catch (err) {
    return (err as NodeJS.ErrnoException).code
  }
  assert.unreachable('expected a rejection')
  return undefined
}

test.after(async () => {
  await stopAll()
  assert.is(liveServerCount(), 0)
})

test('binaries are available (installed once if needed) and report versions', async () => {
  const versions = await serverVersions()
  process.stderr.write(`[servers.spec] redis ${versions.redis}, memcached ${versions.memcached}\n`)
  assert.match(versions.redis, /^\d+\.\d+\.\d+$/)
  assert.match(versions.memcached, /^\d+\.\d+\.\d+$/)
})

test('RESP parser: partial input, nested arrays, nil, integers, errors', () => {
  assert.is(parseResp(Buffer.from('$5\r\nhel')), undefined)
  assert.is(parseResp(Buffer.from('*2\r\n:1\r\n')), undefined)
  const parsed = parseResp(Buffer.from('*4\r\n+OK\r\n:-7\r\n$-1\r\n*2\r\n$0\r\n\r\n-ERR nope\r\n'))
  assert.ok(parsed)
  const [ok, int, nil, nested] = parsed.value as unknown[]
  assert.is(ok, 'OK')
  assert.is(int, -7)
  assert.is(nil, null)
  assert.ok(Array.isArray(nested))
  assert.is(nested[0], '')
  assert.instance(nested[1], RedisReplyError)
})

test('redis: start, commands, pause/resume, kill/restart on the same port, stop', async () => {
  const redis = await startRedis()
  try {
    assert.is(redis.host, HOST)
    assert.not.ok([6379, 11211].includes(redis.port))
    assert.is(redis.url, `redis://127.0.0.1:${redis.port}`)
    assert.ok(fs.existsSync(redis.dir))
    assert.ok(redis.pid > 0)

    assert.is(await redisCommand(redis.port, 'SET', 'k', 'v'), 'OK')
    assert.is(await redisCommand(redis.port, 'GET', 'k'), 'v')
    assert.is(await redisCommand(redis.port, 'GET', 'missing'), null)
    assert.is(await redisCommand(redis.port, 'INCRBY', 'n', 41), 41)
    await redisCommand(redis.port, 'RPUSH', 'l', 'a', 'b')
    assert.equal(await redisCommand(redis.port, 'LRANGE', 'l', 0, -1), ['a', 'b'])
    try {
      await redisCommand(redis.port, 'INCR', 'k')
      assert.unreachable('INCR of a string must fail')
    } catch (err) {
      assert.instance(err, RedisReplyError)
    }
    const config = await redisCommand(redis.port, 'CONFIG', 'GET', 'save')
    assert.equal(config, ['save', ''])
    assert.is(await redisCommand(redis.port, 'DEBUG', 'SLEEP', 0), 'OK') // --enable-debug-command local

    await redis.pause()
    assert.ok(redis.paused)
    assert.is(await rejectionCode(redisCommand({ port: redis.port, timeoutMs: 200 }, 'PING')), 'ETIMEDOUT')
    await redis.resume()
    assert.is(await redisCommand(redis.port, 'PING'), 'PONG')

    const { port, pid } = redis
    await redis.kill('SIGKILL')
    assert.not.ok(redis.running)
    assert.is(await rejectionCode(redisCommand(port, 'PING')), 'ECONNREFUSED')
    await redis.restart()
    assert.is(redis.port, port)
    assert.is.not(redis.pid, pid)
    assert.is(await redisCommand(port, 'PING'), 'PONG')
    assert.is(await redisCommand(port, 'GET', 'k'), null) // no persistence

    // SIGTERM of a paused server still ends it (the harness continues it)
    await redis.pause()
    await redis.kill()
    assert.not.ok(redis.running)
    await redis.restart()
    assert.is(await redisCommand(port, 'PING'), 'PONG')

    const dir = redis.dir
    await redis.stop()
    await redis.stop() // idempotent
    assert.is(await rejectionCode(redisCommand(port, 'PING')), 'ECONNREFUSED')
    assert.not.ok(fs.existsSync(dir))
  } finally {
    await redis.stop()
  }
})

test('redis cluster: 3 masters, cluster_state:ok, CLUSTER NODES', async () => {
  const cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 0 })
  try {
    assert.is(cluster.nodes.length, 3)
    assert.equal(
      cluster.rootNodes,
      cluster.nodes.map((node) => ({ url: `redis://127.0.0.1:${node.port}` })),
    )
    for (const node of cluster.nodes) {
      const info = await redisCommand(node.port, 'CLUSTER', 'INFO')
      assert.type(info, 'string')
      assert.match(String(info), /cluster_state:ok/)
    }
    const text = await redisCommand(cluster.nodes[0]?.port ?? 0, 'CLUSTER', 'NODES')
    const lines = String(text).trim().split('\n')
    assert.is(lines.length, 3)
    assert.is(lines.filter((line) => /\bmaster\b/.test(line.split(' ')[2] ?? '')).length, 3)
    const parsed = await cluster.clusterNodes()
    assert.equal(parsed.map((n) => n.port).sort(), cluster.nodes.map((n) => n.port).sort())
    assert.ok(parsed.every((n) => n.role === 'master' && n.slots.length > 0))

    // A key routes to exactly one master; the others answer MOVED.
    const answers = await Promise.allSettled(cluster.nodes.map((node) => redisCommand(node.port, 'SET', 'foo', 'bar')))
    assert.is(answers.filter((a) => a.status === 'fulfilled').length, 1)
    const moved = answers.filter((a): a is PromiseRejectedResult => a.status === 'rejected')
    assert.ok(moved.every((a) => /^MOVED \d+ 127\.0\.0\.1:\d+$/.test((a.reason as Error).message)))
  } finally {
    await cluster.stop()
  }
  for (const node of cluster.nodes) assert.not.ok(fs.existsSync(node.dir))
})

test('redis cluster: 3 masters + 3 replicas in sync; a killed master fails over and rejoins', async () => {
  const cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 1 })
  try {
    assert.is(cluster.nodes.length, 6)
    const view = await cluster.clusterNodes()
    assert.is(view.filter((n) => n.role === 'master').length, 3)
    assert.is(view.filter((n) => n.role === 'replica').length, 3)
    for (const node of cluster.nodes) {
      const me = view.find((n) => n.port === node.port)
      if (me?.role !== 'replica') continue
      assert.match(String(await redisCommand(node.port, 'INFO', 'replication')), /master_link_status:up/)
    }

    const master = cluster.nodes.find((node) => view.find((n) => n.port === node.port)?.role === 'master')
    assert.ok(master)
    await master.kill('SIGKILL')
    await cluster.waitUntilOk(15_000) // waits for the replica's promotion, not just cluster_state
    const afterFailover = await cluster.clusterNodes()
    assert.is(
      afterFailover.filter((n) => n.role === 'master' && n.slots.length > 0 && !n.flags.includes('fail')).length,
      3,
    )
    assert.not.ok(afterFailover.some((n) => n.port === master.port && n.slots.length > 0))

    await master.restart() // same port and nodes.conf: rejoins as a replica
    await cluster.waitUntilOk(15_000)
    const rejoined = (await cluster.clusterNodes()).find((n) => n.port === master.port)
    assert.is(rejoined?.role, 'replica')
  } finally {
    await cluster.stop()
  }
})

test('memcached: version, set/get, kill + restart, stop', async () => {
  const mc = await startMemcached()
  try {
    assert.is(mc.server, `127.0.0.1:${mc.port}`)
    assert.not.ok([6379, 11211].includes(mc.port))
    assert.match(await memcachedCommand(mc.port, 'version'), /^VERSION \d+\.\d+\.\d+\r\n$/)
    assert.is(await memcachedCommand(mc.port, 'set k 0 0 5\r\nhello'), 'STORED\r\n')
    assert.is(await memcachedCommand(mc.port, 'get k'), 'VALUE k 0 5\r\nhello\r\nEND\r\n')
    assert.is(await memcachedCommand(mc.port, 'get nope'), 'END\r\n')

    await mc.pause()
    assert.is(await rejectionCode(memcachedCommand({ port: mc.port, timeoutMs: 200 }, 'version')), 'ETIMEDOUT')
    await mc.resume()

    const { port } = mc
    await mc.kill()
    assert.is(await rejectionCode(memcachedCommand(port, 'version')), 'ECONNREFUSED')
    await mc.restart()
    assert.is(mc.port, port)
    assert.match(await memcachedCommand(port, 'version'), /^VERSION /)
    assert.is(await memcachedCommand(port, 'get k'), 'END\r\n')

    const dir = mc.dir
    await mc.stop()
    assert.is(await rejectionCode(memcachedCommand(port, 'version')), 'ECONNREFUSED')
    assert.not.ok(fs.existsSync(dir))
  } finally {
    await mc.stop()
  }
})

test.run()

// The Memcached backend on real memcached processes started by the harness:
// keys, ttls, sizes, counters, CAS, clear, several servers and faults.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import { BackendError, InvalidKeyError, KeyExistsError, TimeoutError } from '../lib/index.js'
import { exptime, MemcachedCache } from '../lib/memcached.js'
import { childEnv } from './support/children.js'
import { rejection, sleep } from './support/fixtures/backends.js'
import { type MemcachedServer, memcachedCommand, startMemcached } from './support/servers.js'

/** `mg <key> <flags>` straight to the server, bypassing oniocache. */
async function mg(server: MemcachedServer, key: string, flags = 'v t'): Promise<string> {
  return memcachedCommand(server.port, `mg ${key} ${flags}`)
}

const one = suite<{ server: MemcachedServer }>('memcached: one server')

one.before(async (ctx) => {
  ctx.server = await startMemcached()
})
one.after(async ({ server }) => {
  await server.stop()
})

one('values are raw bytes: JSON text as text, with no encoding of our own', async ({ server }) => {
  await using cache = new MemcachedCache({ servers: [server.server], namespace: 'fmt' })
  await cache.set('obj', { a: 1, b: 'é' })
  assert.match(await mg(server, 'fmt:obj', 'v'), /^VA 16\r\n\{"a":1,"b":"é"\}\r\n/)
})

one(
  'spaces in keys become _ as in aiocache; control characters and keys over 250 bytes are InvalidKeyError before ' +
    'any I/O',
  async ({ server }) => {
    await using cache = new MemcachedCache({ servers: [server.server], namespace: 'keys' })
    await cache.set('with spaces', 1)
    assert.is(await cache.get('with_spaces'), 1)
    assert.match(await mg(server, 'keys:with_spaces', 'v'), /^VA 1\r\n1\r\n/)
    await cache.set('victim', 'safe')
    for (const bad of ['a\r\nflush_all', 'a\nmd keys:victim', 'tab\there', 'nul\u0000', 'del\u007f']) {
      assert.instance(await rejection(cache.set(bad, 'x')), InvalidKeyError, JSON.stringify(bad.slice(0, 20)))
      assert.instance(await rejection(cache.get(bad)), InvalidKeyError)
    }
    assert.is(await cache.get('victim'), 'safe', 'no command was injected')
    // Before any I/O: a cache whose server is down still answers InvalidKeyError, not BackendError.
    await using nowhere = new MemcachedCache({ servers: ['127.0.0.1:1'] })
    assert.instance(await rejection(nowhere.get('a\r\nb')), InvalidKeyError)
    assert.instance(await rejection(nowhere.get('ok')), BackendError)
    // An empty key (possible with namespace '') says so.
    const empty = await rejection(nowhere.get(''))
    assert.instance(empty, InvalidKeyError)
    assert.match(String(empty), /the key is empty/)
    // 250 bytes including the namespace is the limit.
    const longest = 'k'.repeat(250 - 'keys:'.length)
    await cache.set(longest, 1)
    assert.is(await cache.get(longest), 1)
    assert.instance(await rejection(cache.get(longest + 'k')), InvalidKeyError)
    assert.instance(await rejection(cache.get('é'.repeat(123))), InvalidKeyError, 'bytes, not characters, are counted')
  },
)

one('ttls: whole seconds rounded up; over 30 days sent as an absolute Unix time', async ({ server }) => {
  assert.is(exptime(0.2), 1)
  assert.is(exptime(59.01), 60)
  assert.is(exptime(30 * 86400), 30 * 86400, '30 days is still relative')
  const absolute = exptime(40 * 86400)
  assert.ok(Math.abs(absolute - (Date.now() / 1000 + 40 * 86400)) < 5, `40 days → ${absolute}`)
  await using cache = new MemcachedCache({ servers: [server.server], namespace: 'ttl' })
  await cache.set('short', 1, { ttl: 0.2 })
  assert.match(await mg(server, 'ttl:short', 't'), /^HD t1\r\n/)
  await cache.set('long', 1, { ttl: 40 * 86400 })
  const left = Number(/t(\d+)/.exec(await mg(server, 'ttl:long', 't'))![1])
  assert.ok(left > 39 * 86400 && left <= 40 * 86400 + 2, `remaining ${left}s: stored, not expired at once`)
  await cache.set('none', 1)
  assert.match(await mg(server, 'ttl:none', 't'), /^HD t-1\r\n/)
  assert.is(await cache.expire('none', 100), true, 'expire touches with mg T')
  assert.match(await mg(server, 'ttl:none', 't'), /^HD t(99|100)\r\n/)
  assert.is(await cache.expire('none', 0), true)
  assert.match(await mg(server, 'ttl:none', 't'), /^HD t-1\r\n/)
  assert.is(await cache.expire('missing', 5), false)
})

one('add stores only a missing key (ms mode E)', async ({ server }) => {
  await using cache = new MemcachedCache({ servers: [server.server], namespace: 'add' })
  assert.is(await cache.add('k', 1), true)
  assert.instance(await rejection(cache.add('k', 2)), KeyExistsError)
  assert.is(await cache.get('k'), 1)
})

one(
  'increment: ma for deltas >= 0, a missing key starts at the delta, negative counts through CAS, text is a TypeError',
  async ({ server }) => {
    await using cache = new MemcachedCache({ servers: [server.server], namespace: 'inc' })
    assert.is(await cache.increment('n', 5), 5)
    assert.is(await cache.increment('n'), 6)
    assert.is(await cache.increment('n', -10), -4)
    assert.is(await cache.increment('n', 1), -3, 'a negative counter keeps counting')
    assert.is(await cache.increment('n', 10), 7)
    assert.is(await cache.get('n'), 7)
    await cache.set('ttl', 1, { ttl: 100 })
    await cache.increment('ttl', -1)
    assert.match(await mg(server, 'inc:ttl', 't'), /^HD t(99|100)\r\n/, 'the ttl stays')
    await cache.set('text', 'abc')
    assert.instance(await rejection(cache.increment('text')), TypeError)
    assert.instance(await rejection(cache.increment('text', -1)), TypeError)
    assert.is(await cache.get('text'), 'abc')
    // memcached's own decrement pads a shorter number with spaces in place: still an integer to us.
    await cache.set('padded', 10)
    await cache.raw('ma', 'inc:padded', 'MD', 'D1')
    assert.match(await mg(server, 'inc:padded', 'v'), /^VA 2\r\n9 \r\n/)
    assert.is(await cache.increment('padded', 1), 10)
    assert.is(await cache.increment('padded', -3), 7)
    await Promise.all(Array.from({ length: 50 }, (_, i) => cache.increment('race', i % 2 === 0 ? 2 : -1)))
    assert.is(await cache.get('race'), 25, 'concurrent increments, mixed signs, lose nothing')
  },
)

one('set with a casToken (the stored value read earlier) writes only if it is still stored', async ({ server }) => {
  await using cache = new MemcachedCache({ servers: [server.server], namespace: 'cas' })
  await cache.set('k', 'v1')
  const token = await cache.backend.get('cas:k')
  assert.is(token, '"v1"')
  assert.is(await cache.set('k', 'v2', { casToken: token }), true)
  assert.is(await cache.set('k', 'v3', { casToken: token }), false)
  assert.is(await cache.get('k'), 'v2')
  assert.is(await cache.set('gone', 'x', { casToken: '"y"' }), false)
  const racers = await Promise.all(Array.from({ length: 10 }, (_, i) => cache.set('k', `r${i}`, { casToken: '"v2"' })))
  assert.is(racers.filter(Boolean).length, 1, 'exactly one of ten racers wins')
})

one('a value over the item size limit is a RangeError and nothing is written', async ({ server }) => {
  await using cache = new MemcachedCache({ servers: [server.server], namespace: 'big' })
  await cache.set('k', 'small')
  const error = await rejection(cache.set('k', 'x'.repeat(1024 * 1024)))
  assert.instance(error, RangeError)
  assert.match((error as Error).message, /item size limit \(1048576 bytes, memcached -I\); nothing was written/)
  assert.is(await cache.get('k'), 'small')
  assert.instance(
    await rejection(
      cache.multiSet([
        ['a', 1],
        ['b', 'x'.repeat(2_000_000)],
      ]),
    ),
    RangeError,
  )
  assert.is(await cache.exists('a'), false, 'multiSet wrote none of the pairs')
  await cache.set('fits', 'x'.repeat(1000 * 1000))
  assert.is(((await cache.get('fits')) as string).length, 1000 * 1000)
})

one(
  'clear({ namespace }) rejects: memcached cannot clear by namespace; clear() with namespace "" is flush_all',
  async ({ server }) => {
    await using cache = new MemcachedCache({ servers: [server.server], namespace: 'ns' })
    await cache.set('k', 1)
    const error = await rejection(cache.clear())
    assert.instance(error, BackendError)
    assert.match((error as Error).message, /Memcached cannot clear by namespace/)
    assert.is(await cache.get('k'), 1, 'nothing was removed')
    await using all = new MemcachedCache({ servers: [server.server] })
    assert.is(await all.clear(), true)
    assert.is(await cache.get('k'), undefined)
  },
)

one('raw sends meta commands, version and flush_all', async ({ server }) => {
  await using cache = new MemcachedCache({ servers: [server.server] })
  assert.match(String(await cache.raw('version')), /^1\.\d+\.\d+/)
  await cache.raw('ms', 'rawkey', 'abc', 'T50')
  const reply = (await cache.raw('mg', 'rawkey', 'v', 't')) as {
    code: string
    value: Buffer
    flags: Record<string, string>
  }
  assert.is(reply.code, 'VA')
  assert.is(reply.value.toString(), 'abc')
  assert.instance(await rejection(cache.raw('stats')), TypeError)
})

one('SIGSTOP → TimeoutError at the command timeout; SIGCONT → works again', async ({ server }) => {
  await using cache = new MemcachedCache({ servers: [server.server], namespace: 'pause', timeout: 0.3 })
  await cache.set('k', 'v')
  await server.pause()
  try {
    const started = performance.now()
    assert.instance(await rejection(cache.get('k')), TimeoutError)
    const took = performance.now() - started
    assert.ok(took >= 295 && took < 700, `timed out after ${took.toFixed(0)} ms`)
  } finally {
    await server.resume()
  }
  assert.is(await cache.get('k'), 'v')
})

one('examples/memcached.ts runs against a server', async ({ server }) => {
  const root = new URL('..', import.meta.url).pathname
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'examples/memcached.ts'], {
    cwd: root,
    env: childEnv({ MEMCACHED_SERVERS: server.server, NO_COLOR: '1', FORCE_COLOR: '0' }),
  })
  assert.match(stdout, /name: 'Ada'/)
  assert.match(stdout, /\[ 1, 2, undefined \]/)
  assert.match(stdout, /Memcached cannot clear by namespace/)
})

one.run()

// ---------------------------------------------------------------------------
const two = suite<{ a: MemcachedServer; b: MemcachedServer }>('memcached: two servers')

two.before(async (ctx) => {
  ;[ctx.a, ctx.b] = await Promise.all([startMemcached(), startMemcached()])
})
two.after(async ({ a, b }) => {
  await Promise.all([a.stop(), b.stop()])
})

two('keys are spread over both servers, each key on the server ketama names', async ({ a, b }) => {
  await using cache = new MemcachedCache({ servers: [a.server, b.server], namespace: 'spread' })
  const keys = Array.from({ length: 200 }, (_, i) => `k${i}`)
  await cache.multiSet(keys.map((k, i) => [k, i] as const))
  const client = await cache.backend.client
  let onA = 0
  for (const key of keys) {
    const owner = client.serverFor(`spread:${key}`)
    const other = owner === a.server ? b : a
    const here = owner === a.server ? a : b
    if (owner === a.server) onA++
    assert.match(await mg(here, `spread:${key}`, 'v'), /^VA /, `${key} is on ${owner}`)
    assert.match(await mg(other, `spread:${key}`, 'v'), /^EN\r\n/, `${key} is not on the other server`)
  }
  assert.ok(onA > 60 && onA < 140, `${onA}/200 keys on the first server`)
  assert.equal(
    await cache.multiGet(keys),
    keys.map((_, i) => i),
  )
})

two('clear() with namespace "" flushes every server', async ({ a, b }) => {
  await using cache = new MemcachedCache({ servers: [a.server, b.server] })
  await cache.multiSet(Array.from({ length: 50 }, (_, i) => [`f${i}`, i] as const))
  await cache.clear()
  assert.equal(
    await cache.multiGet(Array.from({ length: 50 }, (_, i) => `f${i}`)),
    Array.from({ length: 50 }, () => undefined),
  )
})

two('a server killed mid-traffic fails only its keys, at once; restarted, it is used again', async ({ a, b }) => {
  const unhandled: unknown[] = []
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason)
  }
  process.on('unhandledRejection', onUnhandled)
  const cache = new MemcachedCache({ servers: [a.server, b.server], namespace: 'fault', timeout: 2 })
  try {
    const client = await cache.backend.client
    const keys = Array.from({ length: 100 }, (_, i) => `k${i}`)
    await cache.multiSet(keys.map((k) => [k, k] as const))
    const onB = keys.filter((k) => client.serverFor(`fault:${k}`) === b.server)
    const onA = keys.filter((k) => client.serverFor(`fault:${k}`) === a.server)
    const traffic = Array.from({ length: 300 }, (_, i) =>
      cache.get(keys[i % keys.length]!).then(
        () => 'ok',
        (e: unknown) => e,
      ),
    )
    await b.kill('SIGKILL')
    for (const outcome of await Promise.all(traffic))
      assert.ok(outcome === 'ok' || outcome instanceof BackendError, String(outcome))

    for (const key of onB.slice(0, 5)) {
      const started = performance.now()
      const error = await rejection(cache.get(key))
      assert.instance(error, BackendError)
      assert.match((error as Error).message, new RegExp(`\\[memcached 127\\.0\\.0\\.1:${b.port}\\]`))
      assert.ok(performance.now() - started < 100, 'rejected at once')
    }
    for (const key of onA) assert.is(await cache.get(key), key, 'the other server is unaffected')

    await b.restart()
    const restarted = performance.now()
    let ok = false
    while (!ok && performance.now() - restarted < 3000) {
      ok = await cache.set(onB[0]!, 'back').then(
        () => true,
        () => false,
      )
      if (!ok) await sleep(20)
    }
    assert.ok(ok, 'recovered within 3 s of the restart')
    assert.is(await cache.get(onB[0]!), 'back')
    await sleep(20)
    assert.equal(unhandled, [])
  } finally {
    process.off('unhandledRejection', onUnhandled)
    await cache.close()
  }
})

two.run()

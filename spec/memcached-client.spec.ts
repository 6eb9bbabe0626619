// oniocache's memcached meta-protocol client: options and ketama hashing without a
// server; scripted fake servers for garbage, desynchronising replies and outages; and
// REAL memcached processes (started here, stopped here) for the protocol itself,
// pipelining, oversized values, kill / restart / pause, close() and process exit.
import { spawn } from 'node:child_process'
import * as net from 'node:net'
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import {
  MAX_FLAGS,
  MemcachedClient,
  MemcachedReplyError,
  type MetaReply,
  ProtocolError,
} from '../lib/backends/memcached/client.js'
import { BackendError, InvalidKeyError } from '../lib/util/errors.js'
import { childEnv } from './support/children.js'
import { rejectionError, sleep } from './support/fixtures/backends.js'
import { type MemcachedServer, memcachedCommand, startMemcached } from './support/servers.js'

const root = new URL('..', import.meta.url).pathname

// Nothing here may leave an unhandled rejection or an uncaught exception behind. Each
// suite watches while it runs (and only then: other spec files keep Node's defaults).
const unhandled: unknown[] = []
const recordUnhandled = (reason: unknown): void => {
  unhandled.push(reason)
}
function watchUnhandled(): void {
  unhandled.length = 0
  process.on('unhandledRejection', recordUnhandled)
  process.on('uncaughtExceptionMonitor', recordUnhandled)
}
function assertNothingUnhandled(): void {
  process.off('unhandledRejection', recordUnhandled)
  process.off('uncaughtExceptionMonitor', recordUnhandled)
  assert.equal(unhandled.map(String), [], 'unhandled rejections or uncaught exceptions')
}

/** Marks `promise` as handled now, for a test that awaits it later: a rejection in between is not "unhandled". */
function handled<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined)
  return promise
}

/** Rejects with a BackendError of `server` whose message matches `pattern`; answers it. */
async function backendError(promise: Promise<unknown>, server: string, pattern: RegExp): Promise<BackendError> {
  const error = await rejectionError(promise)
  assert.instance(error, BackendError, `not a BackendError: ${error.stack}`)
  assert.ok(error.message.startsWith(`[oniocache] [memcached ${server}] `), error.message)
  assert.match(error.message, pattern)
  return error as BackendError
}

function text(reply: MetaReply): string | undefined {
  return reply.value?.toString('latin1')
}

/**
 * 'rejected' / 'resolved' when `promise` settles without any I/O (before the next turn of the event loop), else
 * 'waiting'.
 */
function settledAtOnce(promise: Promise<unknown>): Promise<'resolved' | 'rejected' | 'waiting'> {
  return Promise.race([
    promise.then(
      () => 'resolved' as const,
      () => 'rejected' as const,
    ),
    new Promise<'waiting'>((resolve) => setImmediate(() => resolve('waiting'))),
  ])
}

// ---------------------------------------------------------------------------
// Scripted fake servers: answer each command line with whatever the test says.

interface FakeServer {
  port: number
  server: string
  /** Connections accepted so far. */
  accepted: number
  sockets: Set<net.Socket>
  /** Stops listening and resets every connection. */
  shutdown(): Promise<void>
  /** Listens again on the same port. */
  listen(): Promise<void>
}

type Script = (line: string, socket: net.Socket) => void

async function fakeServer(script: Script, port = 0): Promise<FakeServer> {
  const sockets = new Set<net.Socket>()
  const fake: FakeServer = {
    port,
    server: '',
    accepted: 0,
    sockets,
    shutdown: async () => {
      for (const socket of sockets) socket.resetAndDestroy()
      await new Promise<void>((resolve) => listener.close(() => resolve()))
    },
    listen: () =>
      new Promise<void>((resolve, reject) => {
        listener.once('error', reject)
        listener.listen(fake.port, '127.0.0.1', () => {
          listener.off('error', reject)
          fake.port = (listener.address() as net.AddressInfo).port
          fake.server = `127.0.0.1:${fake.port}`
          resolve()
        })
      }),
  }
  const listener = net.createServer((socket) => {
    fake.accepted++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    let buffered = ''
    socket.on('data', (chunk) => {
      buffered += chunk.toString('latin1')
      let end: number
      while ((end = buffered.indexOf('\r\n')) >= 0) {
        const line = buffered.slice(0, end)
        buffered = buffered.slice(end + 2)
        if (!socket.destroyed) script(line, socket)
      }
    })
  })
  await fake.listen()
  return fake
}

/** A loopback port with nothing listening on it (connections are refused). */
async function closedPort(): Promise<number> {
  const probe = net.createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', () => resolve()))
  const { port } = probe.address() as net.AddressInfo
  await new Promise<void>((resolve) => probe.close(() => resolve()))
  return port
}

// ---------------------------------------------------------------------------
const basics = suite('memcached client: options, requests refused before any I/O, ketama')

basics('invalid options are a TypeError / RangeError at construction; unknown options too', () => {
  const bad: [unknown, RegExp][] = [
    [undefined, /options must be an object/],
    [{}, /servers must be a non-empty array/],
    [{ servers: [] }, /non-empty array/],
    [{ servers: '127.0.0.1:11211' }, /non-empty array/],
    [{ servers: ['127.0.0.1'] }, /'host:port' string/],
    [{ servers: ['127.0.0.1:0'] }, /'host:port' string/],
    [{ servers: ['127.0.0.1:70000'] }, /'host:port' string/],
    [{ servers: ['a b:1'] }, /'host:port' string/],
    [{ servers: [11211] }, /'host:port' string/],
    [{ servers: ['h:1', 'h:1'] }, /listed twice/],
    [{ servers: ['h:1'], connectionsPerServer: 0 }, /connectionsPerServer must be an integer >= 1/],
    [{ servers: ['h:1'], connectTimeoutMs: 1.5 }, /connectTimeoutMs must be an integer/],
    [{ servers: ['h:1'], retryMinMs: '50' }, /retryMinMs must be an integer/],
    [{ servers: ['h:1'], closeTimeoutMs: -1 }, /closeTimeoutMs must be an integer >= 0/],
    [{ servers: ['h:1'], poolSize: 3 }, /MemcachedClient: unknown option "poolSize"/],
  ]
  for (const [options, message] of bad) {
    assert.throws(
      () => new MemcachedClient(options as never),
      (error: Error) => error instanceof TypeError && message.test(error.message),
      String(JSON.stringify(options)),
    )
  }
  assert.throws(() => new MemcachedClient({ servers: ['h:1'], retryMinMs: 100, retryMaxMs: 50 }), RangeError)
  const client = new MemcachedClient({ servers: ['[::1]:11211', 'cache-1.internal:11211'] })
  assert.equal(client.servers, ['[::1]:11211', 'cache-1.internal:11211'])
})

basics(
  'the constructor does not connect; requests that could desynchronise the stream reject before any I/O',
  async () => {
    const fake = await fakeServer((_line, socket) => socket.write('HD\r\n'))
    const client = new MemcachedClient({ servers: [fake.server] })
    try {
      await sleep(30)
      assert.is(fake.accepted, 0, 'no connection before the first request')
      const refused: [Promise<unknown>, new (...args: never[]) => Error, RegExp][] = [
        [client.meta('k', 'mx' as never, []), TypeError, /'mg', 'ms', 'md' or 'ma'/],
        [
          client.meta('a key', 'mg', []),
          InvalidKeyError,
          /invalid key "a key": memcached keys are 1 to 250 bytes without spaces or control characters/,
        ],
        [client.meta('', 'mg', []), InvalidKeyError, /invalid key ""/],
        [client.meta('tab\tkey', 'mg', []), InvalidKeyError, /invalid key/],
        [client.meta('k'.repeat(251), 'mg', []), InvalidKeyError, /invalid key/],
        [client.meta('€'.repeat(84), 'mg', []), InvalidKeyError, /invalid key/], // 252 bytes in 84 characters
        [client.meta(42 as never, 'mg', []), InvalidKeyError, /invalid key 42/],
        [client.meta('k', 'mg', ['q']), TypeError, /'q' \(quiet\) flag is not supported/],
        [client.meta('k', 'mg', ['v', 'qx']), TypeError, /quiet/],
        [client.meta('k', 'mg', ['v v']), TypeError, /not a memcached meta flag: "v v"/],
        [client.meta('k', 'mg', ['T\r\n']), TypeError, /not a memcached meta flag/],
        [client.meta('k', 'mg', ['1']), TypeError, /not a memcached meta flag/],
        [client.meta('k', 'mg', ['']), TypeError, /not a memcached meta flag/],
        [client.meta('k', 'mg', [`O${'x'.repeat(64)}`]), TypeError, /not a memcached meta flag/],
        [
          client.meta(
            'k',
            'mg',
            Array.from({ length: MAX_FLAGS + 1 }, () => 'v'),
          ),
          TypeError,
          /at most 16 tokens/,
        ],
        [client.meta('k', 'mg', 'v' as never), TypeError, /must be an array/],
        [client.meta('k', 'mg', [], Buffer.from('x')), TypeError, /only 'ms' takes a value/],
        [client.meta('k', 'ms', [], 'text' as never), TypeError, /as a Uint8Array/],
        [client.version('127.0.0.1:1'), TypeError, /is not one of this client's memcached servers/],
        [client.stats('127.0.0.1:1'), TypeError, /not one of/],
        [client.stats(fake.server, 'settings\r\nflush_all'), TypeError, /not a memcached stats group/],
        [client.itemSizeLimit('127.0.0.1:1'), TypeError, /not one of/],
      ]
      for (const [promise, type, message] of refused) {
        const error = await rejectionError(promise)
        assert.instance(error, type, error.message)
        assert.match(error.message, message)
      }
      await sleep(30)
      assert.is(fake.accepted, 0, 'nothing was sent')
      assert.is(client.isDown(fake.server), false)
      assert.is(client.isDown('elsewhere:1'), false)
      assert.equal(
        await client.meta(
          'k'.repeat(250),
          'mg',
          Array.from({ length: MAX_FLAGS }, () => 'v'),
        ),
        { code: 'HD', flags: {} },
      )
      assert.is(fake.accepted, 1, 'connected lazily, on the first request')
    } finally {
      await client.close()
      await fake.shutdown()
    }
  },
)

const THREE = ['10.0.0.1:11211', '10.0.0.2:11211', '10.0.0.3:11211']

basics(
  'ketama: fixed keys land where an independent implementation (Python hashlib, libketama layout) puts them',
  () => {
    const client = new MemcachedClient({ servers: THREE })
    // Computed outside this code base: md5("<server>-<i>") for i < 40, four little-endian words each.
    const expected: Record<string, string> = {
      foo: '10.0.0.3:11211',
      bar: '10.0.0.1:11211',
      'user:42': '10.0.0.1:11211',
      éà: '10.0.0.1:11211',
      key0: '10.0.0.3:11211',
      key1: '10.0.0.1:11211',
      key2: '10.0.0.3:11211',
      key3: '10.0.0.1:11211',
      key4: '10.0.0.2:11211',
      key5: '10.0.0.1:11211',
      key6: '10.0.0.3:11211',
      key7: '10.0.0.3:11211',
    }
    for (const [key, server] of Object.entries(expected)) assert.is(client.serverFor(key), server, key)
    const four = new MemcachedClient({ servers: [...THREE, '10.0.0.4:11211'] })
    assert.is(four.serverFor('éà'), '10.0.0.4:11211')
    assert.is(four.serverFor('key4'), '10.0.0.4:11211')
    assert.is(new MemcachedClient({ servers: ['only:1'] }).serverFor('anything'), 'only:1')
  },
)

basics('ketama: the mapping ignores the order servers are listed in and survives re-creating the client', () => {
  const a = new MemcachedClient({ servers: THREE })
  const b = new MemcachedClient({ servers: [...THREE].reverse() })
  const c = new MemcachedClient({ servers: THREE })
  for (let i = 0; i < 2000; i++) {
    const key = `order:${i}`
    assert.is(b.serverFor(key), a.serverFor(key), key)
    assert.is(c.serverFor(key), a.serverFor(key), key)
  }
})

basics('ketama: 10k keys spread evenly, and adding a 5th server moves about 1/5 of them, all to the new server', () => {
  const servers = ['10.1.0.1:11211', '10.1.0.2:11211', '10.1.0.3:11211', '10.1.0.4:11211']
  const before = new MemcachedClient({ servers })
  const after = new MemcachedClient({ servers: [...servers, '10.1.0.5:11211'] })
  const owned = new Map<string, number>()
  let moved = 0
  const total = 10_000
  for (let i = 0; i < total; i++) {
    const key = `user:${i}:profile`
    const from = before.serverFor(key)
    const to = after.serverFor(key)
    owned.set(from, (owned.get(from) ?? 0) + 1)
    if (from !== to) {
      moved++
      assert.is(to, '10.1.0.5:11211', `${key} moved between old servers`)
    }
  }
  const fraction = moved / total
  assert.ok(fraction > 0.2 - 0.07 && fraction < 0.2 + 0.07, `moved ${fraction}, expected about 0.2`)
  for (const server of servers) {
    const share = (owned.get(server) ?? 0) / total
    assert.ok(share > 0.25 - 0.1 && share < 0.25 + 0.1, `${server} owns ${share}`)
  }
})

basics.before(watchUnhandled)
basics.after(assertNothingUnhandled)
basics.run()

// ---------------------------------------------------------------------------
const fakes = suite('memcached client: scripted servers (garbage, desync, outages)')

fakes(
  'garbage from the server: its pending requests reject with a protocol error, the connection is dropped and reopened',
  async () => {
    let garbage = true
    const fake = await fakeServer((line, socket) => {
      if (!line.startsWith('mg')) return
      if (garbage && line.startsWith('mg k3')) {
        garbage = false
        socket.write('HD\r\nHD\r\nWHAT IS THIS\r\n')
      } else if (!line.startsWith('mg k1') && !line.startsWith('mg k2') && !line.startsWith('mg k4')) {
        socket.write('HD c7\r\n')
      }
    })
    const client = new MemcachedClient({ servers: [fake.server], connectionsPerServer: 1 })
    try {
      const requests = ['k1', 'k2', 'k3', 'k4'].map((key) => handled(client.meta(key, 'mg', ['c'])))
      const [r1, r2] = await Promise.all(requests.slice(0, 2))
      assert.equal(
        [r1, r2],
        [
          { code: 'HD', flags: {} },
          { code: 'HD', flags: {} },
        ],
      )
      for (const request of requests.slice(2)) {
        const error = await backendError(
          request,
          fake.server,
          /mg failed: protocol error: unexpected reply "WHAT IS THIS"; the connection was dropped and will be reopened/,
        )
        assert.instance(error.cause, ProtocolError)
      }
      assert.is(client.isDown(fake.server), false, 'garbage is not an outage')
      assert.equal(await client.meta('k5', 'mg', ['c']), { code: 'HD', flags: { c: '7' } })
      assert.is(fake.accepted, 2, 'a fresh connection')
    } finally {
      await client.close()
      await fake.shutdown()
    }
  },
)

fakes('a reply nobody asked for, or of the wrong kind, is a protocol error too', async () => {
  const fake = await fakeServer((line, socket) => {
    if (line.startsWith('mg twice')) socket.write('EN\r\nEN\r\n')
    else if (line.startsWith('mg text')) socket.write('OK\r\n')
    else if (line.startsWith('mg old')) socket.write('ERROR\r\n')
    else if (line === 'version') socket.write('HD\r\n')
    else if (line === 'stats') socket.write('STAT a 1\r\nVERSION 1\r\n')
    else if (line === 'stats settings') socket.write('STAT item_size_max lots\r\nEND\r\n')
    else if (line.startsWith('mg')) socket.write('EN\r\n')
  })
  const client = new MemcachedClient({ servers: [fake.server], connectionsPerServer: 1 })
  try {
    assert.equal(await client.meta('twice', 'mg', []), { code: 'EN', flags: {} })
    await sleep(20) // the second EN arrives with no request waiting: the connection is dropped
    assert.equal(await client.meta('other', 'mg', []), { code: 'EN', flags: {} })
    assert.is(fake.accepted, 2, 'answered on a new connection')
    await backendError(
      client.meta('old', 'mg', []),
      fake.server,
      new RegExp(
        'mg failed: the server answered "ERROR": the server does not know this command ' +
          '\\(the meta protocol needs memcached >= 1\\.6\\)',
      ),
    )
    await backendError(client.meta('text', 'mg', []), fake.server, /mg failed: protocol error: mg got the reply "OK"/)
    await backendError(client.version(), fake.server, /version failed: protocol error: version got the meta reply "HD"/)
    await backendError(
      client.stats(fake.server),
      fake.server,
      /stats failed: protocol error: stats got the reply "VERSION 1"/,
    )
    await backendError(
      client.itemSizeLimit(fake.server),
      fake.server,
      /stats settings has no usable item_size_max \("lots"\)/,
    )
    assert.is(client.isDown(fake.server), false)
  } finally {
    await client.close()
    await fake.shutdown()
  }
})

fakes(
  'an ms error after which memcached would read the data block as commands drops the connection (safety net)',
  async () => {
    const fake = await fakeServer((line, socket) => {
      if (line.startsWith('ms ')) socket.write('CLIENT_ERROR bad command line format\r\n')
      else if (line === 'abc')
        socket.write('ERROR\r\n') // what memcached makes of the data block
      else if (line.startsWith('mg')) socket.write('EN\r\n')
    })
    const client = new MemcachedClient({ servers: [fake.server], connectionsPerServer: 1 })
    try {
      const set = handled(client.meta('k', 'ms', [], Buffer.from('abc')))
      const get = handled(client.meta('k', 'mg', ['v']))
      const error = await backendError(
        set,
        fake.server,
        /ms failed: the server answered "CLIENT_ERROR bad command line format"/,
      )
      assert.instance(error.cause, MemcachedReplyError)
      assert.is((error.cause as MemcachedReplyError).reply, 'CLIENT_ERROR bad command line format')
      await backendError(get, fake.server, /mg failed: protocol error: the server could not read an ms command line/)
      assert.equal(await client.meta('k', 'mg', ['v']), { code: 'EN', flags: {} }, 'a new connection is in sync')
      assert.is(fake.accepted, 2)
    } finally {
      await client.close()
      await fake.shutdown()
    }
  },
)

fakes('replies split into single bytes across TCP segments are reassembled', async () => {
  const fake = await fakeServer((line, socket) => {
    if (!line.startsWith('mg')) return
    const reply = Buffer.from('VA 6 s6\r\nab\r\ncd\r\n')
    let i = 0
    const timer = setInterval(() => {
      if (i >= reply.length || socket.destroyed) return clearInterval(timer)
      socket.write(reply.subarray(i, ++i))
    }, 1)
  })
  const client = new MemcachedClient({ servers: [fake.server] })
  try {
    const reply = await client.meta('k', 'mg', ['v', 's'])
    assert.is(reply.code, 'VA')
    assert.equal(reply.flags, { s: '6' })
    assert.is(text(reply), 'ab\r\ncd')
  } finally {
    await client.close()
    await fake.shutdown()
  }
})

fakes(
  'an outage: pending requests reject promptly, new ones at once while down, and the server is used again once back',
  async () => {
    let hang = false
    const fake = await fakeServer((line, socket) => {
      if (!line.startsWith('mg')) return
      if (hang)
        socket.write('VA 10\r\npart') // a truncated reply, then the server goes away
      else socket.write('HD\r\n')
    })
    const client = new MemcachedClient({ servers: [fake.server], retryMinMs: 20, retryMaxMs: 40 })
    try {
      assert.equal(await client.meta('a', 'mg', []), { code: 'HD', flags: {} })
      hang = true
      const pending = [handled(client.meta('a', 'mg', ['v'])), handled(client.meta('b', 'mg', ['v']))]
      await sleep(30)
      const shutdown = fake.shutdown()
      for (const request of pending) {
        const error = await backendError(
          request,
          fake.server,
          /mg failed: connection lost before the reply \(.*\); reconnecting in the background/,
        )
        assert.instance(error.cause, Error)
      }
      await shutdown
      assert.ok(client.isDown(fake.server))
      const request = handled(client.meta('c', 'mg', []))
      assert.is(await settledAtOnce(request), 'rejected', 'rejected at once, not after a timeout')
      await backendError(request, fake.server, /mg failed: not connected \(.*\); reconnecting in the background/)
      await sleep(100) // a few retries fail (connection refused)
      await backendError(client.meta('c', 'mg', []), fake.server, /not connected \(connect ECONNREFUSED/)
      hang = false
      await fake.listen()
      const deadline = Date.now() + 2000
      while (client.isDown(fake.server) && Date.now() < deadline) await sleep(5)
      assert.is(client.isDown(fake.server), false, 'reconnected in the background')
      assert.equal(await client.meta('d', 'mg', []), { code: 'HD', flags: {} })
    } finally {
      await client.close()
      await fake.shutdown().catch(() => undefined)
    }
  },
)

fakes(
  'nothing listening: requests made before the first attempt finished wait for it, then reject; later ones reject ' +
    'at once',
  async () => {
    const port = await closedPort()
    const server = `127.0.0.1:${port}`
    const client = new MemcachedClient({ servers: [server] })
    try {
      const first = Array.from({ length: 20 }, (_, i) => handled(client.meta(`k${i}`, 'mg', ['v'])))
      for (const request of first)
        await backendError(
          request,
          server,
          /mg failed: not connected \(connect ECONNREFUSED 127\.0\.0\.1:\d+\); reconnecting in the background/,
        )
      assert.ok(client.isDown(server))
      assert.is(await settledAtOnce(handled(client.meta('k', 'mg', []))), 'rejected')
      await backendError(client.version(), server, /version failed: not connected/)
      await backendError(client.flushAll(), server, /flush_all failed: not connected/)
    } finally {
      await client.close()
    }
    assert.is(client.isDown(server), false, 'close() forgets the outage: the next request tries again')
  },
)

fakes.before(watchUnhandled)
fakes.after(assertNothingUnhandled)
fakes.run()

// ---------------------------------------------------------------------------
const one = suite<{ mc: MemcachedServer; client: MemcachedClient }>('memcached client: one real memcached')

one.before(async (context) => {
  watchUnhandled()
  context.mc = await startMemcached()
  context.client = new MemcachedClient({ servers: [context.mc.server] })
})
one.after(async ({ mc, client }) => {
  await client.close()
  await mc.stop()
  assertNothingUnhandled()
})

one(
  'ms then mg with v c t s f k: the value, its cas, ttl, size, client flags and key; mg without v answers HD',
  async ({ client }) => {
    const set = await client.meta('rt:a', 'ms', ['T10', 'F5', 'c'], Buffer.from('hello'))
    assert.is(set.code, 'HD')
    assert.match(set.flags.c ?? '', /^\d+$/)
    const got = await client.meta('rt:a', 'mg', ['v', 'c', 't', 's', 'f', 'k'])
    assert.is(got.code, 'VA')
    assert.is(text(got), 'hello')
    assert.is(got.flags.c, set.flags.c, 'the cas ms returned')
    assert.ok(Number(got.flags.t) >= 9 && Number(got.flags.t) <= 10, `ttl ${got.flags.t}`)
    assert.equal({ s: got.flags.s, f: got.flags.f, k: got.flags.k }, { s: '5', f: '5', k: 'rt:a' })
    assert.equal(await client.meta('rt:a', 'mg', []), { code: 'HD', flags: {} })
    await client.meta('rt:forever', 'ms', [], Buffer.from('x'))
    assert.is((await client.meta('rt:forever', 'mg', ['t'])).flags.t, '-1', 'no T: never expires')
    assert.equal(await client.meta('rt:missing', 'mg', ['v', 'c']), { code: 'EN', flags: {} })
    await client.meta('rt:clé:日本', 'ms', [], Buffer.from('utf-8 key'))
    const utf8 = await client.meta('rt:clé:日本', 'mg', ['v', 'k'])
    assert.equal([utf8.flags.k, text(utf8)], ['rt:clé:日本', 'utf-8 key'])
    const touched = await client.meta('rt:a', 'mg', ['T100', 't'])
    assert.is(touched.flags.t, '100', 'T updates the ttl')
  },
)

one('ms modes: ME adds, MA appends, MP prepends, MR replaces only existing keys, MS sets', async ({ client }) => {
  const ms = (key: string, value: string, ...flags: string[]): Promise<string> =>
    client.meta(key, 'ms', flags, Buffer.from(value)).then((r) => r.code)
  assert.equal(await Promise.all([ms('mode:a', 'x', 'ME'), ms('mode:a', 'y', 'ME')]), ['HD', 'NS'])
  assert.equal(await Promise.all([ms('mode:a', 'z', 'MA'), ms('mode:a', 'w', 'MP')]), ['HD', 'HD'])
  assert.is(text(await client.meta('mode:a', 'mg', ['v'])), 'wxz')
  assert.equal(await Promise.all([ms('mode:none', 'q', 'MR'), ms('mode:none', 'q', 'MA'), ms('mode:a', 'r', 'MR')]), [
    'NS',
    'NS',
    'HD',
  ])
  assert.is(text(await client.meta('mode:a', 'mg', ['v'])), 'r')
  assert.is(await ms('mode:a', 's', 'MS', 'T5'), 'HD')
  assert.is(text(await client.meta('mode:a', 'mg', ['v'])), 's')
  assert.is(await ms('mode:empty', ''), 'HD')
  assert.equal(await client.meta('mode:empty', 'mg', ['v', 's']), {
    code: 'VA',
    flags: { s: '0' },
    value: Buffer.alloc(0),
  })
  await backendError(
    client.meta('mode:a', 'ms', ['MX'], Buffer.from('v')),
    client.servers[0] as string,
    /ms failed: the server answered "CLIENT_ERROR invalid mode for ms M token"/,
  )
})

one(
  'CAS: mg c, then ms C<cas> stores once; the stale cas is EX, a missing key NF; md C<cas> likewise',
  async ({ client }) => {
    await client.meta('cas:k', 'ms', [], Buffer.from('v1'))
    const cas = (await client.meta('cas:k', 'mg', ['c'])).flags.c as string
    const stored = await client.meta('cas:k', 'ms', [`C${cas}`, 'c'], Buffer.from('v2'))
    assert.is(stored.code, 'HD')
    assert.is.not(stored.flags.c, cas, 'a new cas')
    assert.is((await client.meta('cas:k', 'ms', [`C${cas}`], Buffer.from('v3'))).code, 'EX')
    assert.is(text(await client.meta('cas:k', 'mg', ['v'])), 'v2')
    assert.is((await client.meta('cas:missing', 'ms', [`C${cas}`], Buffer.from('v'))).code, 'NF')
    assert.is((await client.meta('cas:k', 'md', [`C${cas}`])).code, 'EX')
    assert.is((await client.meta('cas:k', 'md', [`C${stored.flags.c}`])).code, 'HD')
    assert.is((await client.meta('cas:k', 'md', [])).code, 'NF')
    assert.is((await client.meta('cas:k', 'mg', ['v'])).code, 'EN')
  },
)

one(
  'ma: NF on a miss, N<ttl>/J<initial> to create, D<delta>, MD decrements down to 0, v/t/c return value, ttl, cas',
  async ({ client }) => {
    assert.equal(await client.meta('n:missing', 'ma', ['v']), { code: 'NF', flags: {} })
    const created = await client.meta('n:k', 'ma', ['N0', 'J10', 'v'])
    assert.equal([created.code, text(created)], ['VA', '10'])
    assert.is(text(await client.meta('n:k', 'ma', ['D5', 'v'])), '15')
    assert.is((await client.meta('n:k', 'ma', [])).code, 'HD')
    const down = await client.meta('n:k', 'ma', ['MD', 'D100', 'v', 't', 'c'])
    assert.is(text(down), '0')
    assert.is(down.flags.t, '-1')
    assert.match(down.flags.c ?? '', /^\d+$/)
    const withTtl = await client.meta('n:ttl', 'ma', ['N30', 'J7', 'v', 't'])
    assert.equal([text(withTtl), withTtl.flags.t], ['7', '30'])
    await client.meta('n:text', 'ms', [], Buffer.from('abc'))
    const error = await backendError(
      client.meta('n:text', 'ma', ['v']),
      client.servers[0] as string,
      /ma failed: the server answered "CLIENT_ERROR cannot increment or decrement non-numeric value"/,
    )
    assert.instance(error.cause, MemcachedReplyError)
  },
)

one(
  'binary values round-trip byte for byte: all 256 byte values, \\r\\n and reply-like lines inside, large values',
  async ({ client }) => {
    const values = [
      Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
      Buffer.from('\r\n'),
      Buffer.from('VA 5\r\nHD\r\nEN\r\nEND\r\n\r\n'),
      Buffer.from('\r\nSERVER_ERROR nope\r\n'),
      Buffer.from(Array.from({ length: 700_000 }, (_, i) => (i * 7919) % 256)),
      new Uint8Array([13, 10, 0, 13, 10]),
    ]
    await Promise.all(values.map((value, i) => client.meta(`bin:${i}`, 'ms', [], value)))
    const got = await Promise.all(values.map((_, i) => client.meta(`bin:${i}`, 'mg', ['v'])))
    got.forEach((reply, i) => {
      assert.ok(reply.value?.equals(values[i] as Uint8Array), `value ${i}`)
    })
  },
)

one(
  '1000 requests in flight at once (sets and gets interleaved) are matched to their replies in order',
  async ({ client }) => {
    const requests: Promise<MetaReply>[] = []
    for (let i = 0; i < 500; i++) {
      requests.push(client.meta(`pipe:${i}`, 'ms', ['T60'], Buffer.from(`value-${i}-${'x'.repeat(i % 50)}`)))
      // same key right after: the same connection, so in order
      requests.push(client.meta(`pipe:${i}`, 'mg', ['v', 'k']))
    }
    const replies = await Promise.all(requests)
    for (let i = 0; i < 500; i++) {
      assert.is(replies[2 * i]?.code, 'HD')
      const got = replies[2 * i + 1] as MetaReply
      assert.is(got.flags.k, `pipe:${i}`)
      assert.is(text(got), `value-${i}-${'x'.repeat(i % 50)}`)
    }
    const gets = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => client.meta(`pipe:${i % 500}`, 'mg', ['k', 's'])),
    )
    gets.forEach((reply, i) => {
      assert.is(reply.flags.k, `pipe:${i % 500}`)
    })
  },
)

one('20000 requests in flight on ONE connection: replies arrive in many chunks and still line up', async ({ mc }) => {
  const single = new MemcachedClient({ servers: [mc.server], connectionsPerServer: 1 })
  try {
    const replies = await Promise.all(
      Array.from({ length: 20_000 }, (_, i) => single.meta(`pipe:${i % 500}`, 'mg', ['k', 'v'])),
    )
    replies.forEach((reply, i) => {
      assert.is(reply.flags.k, `pipe:${i % 500}`)
    })
  } finally {
    await single.close()
  }
})

one(
  'an oversized value rejects quoting SERVER_ERROR; memcached swallows its data block, so the connection stays in sync',
  async ({ mc, client }) => {
    const single = new MemcachedClient({ servers: [mc.server], connectionsPerServer: 1 })
    try {
      const limit = await single.itemSizeLimit(mc.server)
      assert.is(limit, 1024 * 1024)
      await single.version()
      const before = Number((await single.stats(mc.server)).total_connections)
      // One tick, one connection: a set, the oversized set, and requests behind it.
      const ok = single.meta('big:ok', 'ms', [], Buffer.from('small'))
      const big = handled(single.meta('big:too', 'ms', ['T0'], Buffer.alloc(limit + 1, 0x61)))
      const after = single.meta('big:ok', 'mg', ['v'])
      // newlines that must not be read as commands
      const huge = handled(single.meta('big:huge', 'ms', [], Buffer.alloc(3 * limit, 0x0a)))
      const last = single.meta('big:last', 'ms', [], Buffer.from('last'))
      const error = await backendError(
        big,
        mc.server,
        new RegExp(
          'ms failed: the server answered "SERVER_ERROR object too large for cache": ' +
            "the 1048577-byte value is larger than the server's item size limit; " +
            'store a smaller value or raise the limit \\(memcached -I\\)',
        ),
      )
      assert.instance(error.cause, MemcachedReplyError)
      await backendError(huge, mc.server, /object too large/)
      assert.is((await ok).code, 'HD')
      assert.is(text(await after), 'small')
      assert.is((await last).code, 'HD')
      assert.is((await single.meta('big:too', 'mg', [])).code, 'EN')
      const stats = await single.stats(mc.server)
      assert.is(Number(stats.total_connections), before, 'no reconnection happened')
      assert.is(await single.itemSizeLimit(mc.server), limit)
    } finally {
      await single.close()
    }
    assert.is((await client.meta('big:last', 'mg', ['v'])).value?.toString(), 'last')
  },
)

one('other error replies keep the connection in sync too', async ({ mc }) => {
  const single = new MemcachedClient({ servers: [mc.server], connectionsPerServer: 1 })
  try {
    await single.meta('sync:text', 'ms', [], Buffer.from('abc'))
    const results = await Promise.allSettled([
      single.meta('sync:text', 'ma', []),
      single.meta('sync:text', 'ms', ['Tnope'], Buffer.from('data\r\nmn\r\n')),
      single.meta('sync:text', 'ms', ['MZ'], Buffer.from('x')),
      single.meta('sync:text', 'mg', [`O${'o'.repeat(40)}`]),
      // The longest request the client sends: a 250-byte key and MAX_FLAGS long flags (memcached reads the block).
      single.meta(
        'k'.repeat(250),
        'ms',
        Array.from({ length: MAX_FLAGS }, () => `P${'p'.repeat(63)}`),
        Buffer.from('x\r\nmn\r\n'),
      ),
      single.meta('sync:text', 'mg', ['v']),
    ])
    assert.equal(
      results.map((r) => r.status),
      ['rejected', 'rejected', 'rejected', 'rejected', 'rejected', 'fulfilled'],
    )
    assert.match(String((results[4] as PromiseRejectedResult).reason), /CLIENT_ERROR duplicate flag/)
    const last = results[5] as PromiseFulfilledResult<MetaReply>
    assert.is(text(last.value), 'abc')
    await single.meta(
      'k'.repeat(250),
      'ms',
      ['T60', 'F3', 'c', 'k', 'Oopaque', 'MS', 'Lpath/', 'P'],
      Buffer.from('long key'),
    )
    assert.is(text(await single.meta('k'.repeat(250), 'mg', ['v'])), 'long key')
  } finally {
    await single.close()
  }
})

one('version, stats, flushAll', async ({ mc, client }) => {
  assert.is(await client.version(), '1.6.18')
  assert.is(await client.version(mc.server), '1.6.18')
  const stats = await client.stats(mc.server)
  assert.is(stats.pid, String(mc.pid))
  assert.is((await client.stats(mc.server, 'settings')).item_size_max, '1048576')
  await client.meta('flush:k', 'ms', [], Buffer.from('v'))
  await client.flushAll()
  assert.is((await client.meta('flush:k', 'mg', [])).code, 'EN')
})

one(
  'close(): requests already sent still get their replies, every socket is closed, and the client reconnects when ' +
    'used again',
  async ({ mc }) => {
    const client = new MemcachedClient({ servers: [mc.server], connectionsPerServer: 3 })
    const connections = async (): Promise<number> =>
      Number(/STAT curr_connections (\d+)/.exec(await memcachedCommand(mc.port, 'stats'))?.[1])
    const baseline = await connections()
    await Promise.all(Array.from({ length: 30 }, (_, i) => client.meta(`close:${i}`, 'ms', [], Buffer.from(String(i)))))
    assert.is(await connections(), baseline + 3)
    const inFlight = Array.from({ length: 30 }, (_, i) => client.meta(`close:${i}`, 'mg', ['v']))
    await client.close()
    const replies = await Promise.all(inFlight)
    replies.forEach((reply, i) => {
      assert.is(text(reply), String(i))
    })
    assert.is(await connections(), baseline)
    assert.is(text(await client.meta('close:7', 'mg', ['v'])), '7', 'usable again')
    await client.close()
    await client.close()
  },
)

one(
  'close() does not wait forever for a server that stopped answering: past closeTimeoutMs the rest reject',
  async ({ mc }) => {
    const client = new MemcachedClient({ servers: [mc.server], closeTimeoutMs: 100 })
    await client.version()
    await mc.pause()
    try {
      const stuck = handled(client.meta('stuck', 'mg', ['v']))
      await sleep(20)
      const started = performance.now()
      await client.close()
      assert.ok(performance.now() - started < 1000)
      await backendError(stuck, mc.server, /mg failed: the client was closed before the reply came/)
    } finally {
      await mc.resume()
    }
  },
)

one('a connect that does not complete within connectTimeoutMs fails the requests waiting for it', async () => {
  // A stopped memcached with a backlog of 1: once two connections fill its accept queue,
  // the kernel drops further SYNs, so a connect hangs (an unrouted address may not: proxies answer).
  const mc = await startMemcached({ args: ['-b', '1'] })
  const fillers: net.Socket[] = []
  const client = new MemcachedClient({ servers: [mc.server], connectTimeoutMs: 100 })
  try {
    await mc.pause()
    for (let i = 0; i < 3; i++)
      fillers.push(net.connect({ host: '127.0.0.1', port: mc.port }).on('error', () => undefined))
    await sleep(50)
    const started = performance.now()
    await backendError(
      client.meta('k', 'mg', []),
      mc.server,
      /mg failed: not connected \(connect timed out after 100 ms\); reconnecting in the background/,
    )
    const took = performance.now() - started
    assert.ok(took >= 90 && took < 1000, `${took} ms`)
    assert.ok(client.isDown(mc.server))
  } finally {
    for (const socket of fillers) socket.destroy()
    await client.close()
    await mc.stop()
  }
})

/** Runs the exit fixture; answers how long the child lived after printing `done`. */
async function exitDelay(mode: 'close' | 'idle' | 'down', server: string): Promise<number> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'spec/support/fixtures/memcached-client-exit.ts', mode, server],
    {
      cwd: root,
      env: childEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const killer = setTimeout(() => child.kill('SIGKILL'), 10_000)
  const code = await new Promise<number | null>((resolve) => child.once('exit', (exitCode) => resolve(exitCode)))
  const exitedAt = Date.now()
  clearTimeout(killer)
  assert.is(code, 0, `the child failed or was killed (it did not exit by itself): ${stderr}`)
  const done = /done (\d+)/.exec(stdout)
  assert.ok(done, `no "done" from the child: ${stdout} ${stderr}`)
  return exitedAt - Number(done[1])
}

one(
  'a process that used the client exits by itself: after close(), while idle without close(), and while ' +
    'reconnecting to a dead server',
  async ({ mc }) => {
    // One at a time: three tsx children at once on a busy machine make the timing meaningless.
    for (const [mode, server] of [
      ['close', mc.server],
      ['idle', mc.server],
      ['down', `127.0.0.1:${await closedPort()}`],
    ] as const) {
      const delay = await exitDelay(mode, server)
      assert.ok(delay < 1000, `${mode}: exited ${delay} ms after its last step`)
    }
  },
)

one.run()

// ---------------------------------------------------------------------------
const two = suite<{ a: MemcachedServer; b: MemcachedServer }>('memcached client: two real memcached, faults')

two.before(async (context) => {
  watchUnhandled()
  ;[context.a, context.b] = await Promise.all([startMemcached(), startMemcached()])
})
two.after(async ({ a, b }) => {
  await Promise.all([a.stop(), b.stop()])
  assertNothingUnhandled()
})

two('keys are spread over both servers, each stored on the server serverFor names', async ({ a, b }) => {
  const client = new MemcachedClient({ servers: [a.server, b.server] })
  try {
    const keys = Array.from({ length: 200 }, (_, i) => `spread:${i}`)
    await Promise.all(keys.map((key) => client.meta(key, 'ms', [], Buffer.from(key))))
    const owners = new Map([
      [a.server, a],
      [b.server, b],
    ])
    const counts = new Map<string, number>()
    for (const key of keys.slice(0, 40)) {
      const owner = client.serverFor(key)
      const other = owner === a.server ? b : a
      assert.match(
        await memcachedCommand((owners.get(owner) as MemcachedServer).port, `mg ${key} v`),
        new RegExp(`^VA ${key.length}\\r\\n${key}\\r\\n`),
      )
      assert.match(await memcachedCommand(other.port, `mg ${key} v`), /^EN\r\n/)
    }
    for (const key of keys) counts.set(client.serverFor(key), (counts.get(client.serverFor(key)) ?? 0) + 1)
    assert.ok((counts.get(a.server) ?? 0) > 50 && (counts.get(b.server) ?? 0) > 50, JSON.stringify([...counts]))
  } finally {
    await client.close()
  }
})

two(
  'a killed server: its pending and new requests reject promptly, the other keeps serving; after a restart it is ' +
    'used again',
  async ({ a, b }) => {
    const client = new MemcachedClient({ servers: [a.server, b.server] })
    const keysOf = (server: string): string[] =>
      Array.from({ length: 400 }, (_, i) => `fault:${i}`).filter((key) => client.serverFor(key) === server)
    const aKeys = keysOf(a.server)
    const bKeys = keysOf(b.server)
    try {
      await Promise.all([...aKeys, ...bKeys].map((key) => client.meta(key, 'ms', [], Buffer.from(key))))
      // Traffic on both servers while A dies.
      let running = true
      const failures: Error[] = []
      let bServed = 0
      const traffic = (async () => {
        while (running) {
          const round = await Promise.allSettled(bKeys.slice(0, 50).map((key) => client.meta(key, 'mg', ['v'])))
          for (const result of round) {
            if (result.status === 'fulfilled') bServed++
            else failures.push(result.reason as Error)
          }
        }
      })()
      const pending = aKeys.slice(0, 100).map((key) => handled(client.meta(key, 'mg', ['v'])))
      await a.pause() // make sure A's requests are still in flight when it dies
      const stuck = aKeys.slice(0, 100).map((key) => handled(client.meta(key, 'mg', ['v'])))
      await a.kill('SIGKILL')
      const killedAt = performance.now()
      const outcomes = await Promise.allSettled([...pending, ...stuck])
      const rejectedWithin = performance.now() - killedAt
      assert.ok(rejectedWithin < 1000, `pending requests settled ${rejectedWithin} ms after the kill`)
      const rejected = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected')
      assert.ok(rejected.length >= stuck.length, `${rejected.length} rejected`)
      for (const { reason } of rejected) {
        assert.instance(reason, BackendError)
        assert.match(
          (reason as Error).message,
          new RegExp(
            `^\\[oniocache\\] \\[memcached ${a.server}\\] mg failed: (connection lost before the reply|not connected)`,
          ),
        )
      }
      for (const outcome of outcomes.slice(pending.length)) {
        assert.match(
          String((outcome as PromiseRejectedResult).reason),
          /connection lost before the reply/,
          'sent to the stopped server, lost with it',
        )
      }
      assert.ok(client.isDown(a.server))
      assert.is(client.isDown(b.server), false)
      const request = handled(client.meta(aKeys[0] as string, 'mg', ['v']))
      assert.is(await settledAtOnce(request), 'rejected', 'a down server fails at once')
      await backendError(request, a.server, /not connected/)
      const bServedBefore = bServed
      await sleep(150)
      assert.ok(bServed > bServedBefore, 'B kept serving while A was down')

      await a.restart()
      const deadline = Date.now() + 3000
      let recovered: MetaReply | undefined
      while (!recovered && Date.now() < deadline) {
        recovered = await client.meta(aKeys[0] as string, 'mg', []).catch(() => undefined)
        if (!recovered) await sleep(20)
      }
      assert.ok(recovered, 'A is served again after its restart')
      assert.is(recovered.code, 'EN', 'a fresh memcached: the old data is gone')
      running = false
      await traffic
      assert.equal(failures.map(String), [], 'no request for B failed')
    } finally {
      await client.close()
    }
  },
)

two(
  'a paused server (SIGSTOP): requests simply wait — the client has no timer of its own — and complete on resume',
  async ({ a, b }) => {
    const client = new MemcachedClient({ servers: [a.server, b.server] })
    try {
      const bKey = Array.from({ length: 50 }, (_, i) => `pause:${i}`).find(
        (key) => client.serverFor(key) === b.server,
      ) as string
      const aKey = Array.from({ length: 50 }, (_, i) => `pause:${i}`).find(
        (key) => client.serverFor(key) === a.server,
      ) as string
      await client.meta(bKey, 'ms', [], Buffer.from('waited'))
      await b.pause()
      let settled = false
      const waiting = client.meta(bKey, 'mg', ['v']).finally(() => (settled = true))
      await sleep(300)
      assert.is(settled, false, 'still waiting')
      assert.is(client.isDown(b.server), false, 'a slow server is not a down server')
      assert.is((await client.meta(aKey, 'ms', [], Buffer.from('a'))).code, 'HD', 'A is unaffected')
      await b.resume()
      assert.is(text(await waiting), 'waited')
    } finally {
      if (b.paused) await b.resume()
      await client.close()
    }
  },
)

two.run()

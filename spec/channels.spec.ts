// What the core publishes on node:diagnostics_channel: every command on the tracing
// channel `oniocache:command` (on memory, Redis and Memcached), handled failures on
// `oniocache:error`, and a traced command that behaves exactly like an untraced one.
import { AsyncLocalStorage } from 'node:async_hooks'
import fc from 'fast-check'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  type Backend,
  BackendError,
  Cache,
  type CommandMessage,
  type Context,
  cached,
  cachedStampede,
  commandChannel,
  type ErrorMessage,
  errorChannel,
  identify,
  KeyExistsError,
  MemoryBackend,
  type Next,
  TimeoutError,
} from '../lib/index.js'
import { MemcachedCache } from '../lib/memcached.js'
import { RedisCache } from '../lib/redis.js'
import { checkAsync } from './support/fc-config.js'
import { AsyncBackend, rejection, watchUnhandled } from './support/fixtures/backends.js'
import { startMemcached, startRedis } from './support/servers.js'

type Phase = 'start' | 'end' | 'asyncStart' | 'asyncEnd' | 'error'

interface Seen {
  phase: Phase
  command: string
  keys: string[]
  hit: boolean | undefined
  hits: number | undefined
  result: unknown
  error: unknown
  message: CommandMessage
}

/** Subscribes to every phase of `oniocache:command` until `stop()`; what each phase saw, copied at the time. */
function record(): { seen: Seen[]; stop(): void } {
  const seen: Seen[] = []
  const at = (phase: Phase) => (message: CommandMessage) => {
    const { command, keys, hit, hits, result, error } = message
    seen.push({ phase, command, keys: [...keys], hit, hits, result, error, message })
  }
  const handlers = {
    start: at('start'),
    end: at('end'),
    asyncStart: at('asyncStart'),
    asyncEnd: at('asyncEnd'),
    error: at('error'),
  }
  commandChannel.subscribe(handlers)
  return { seen, stop: () => commandChannel.unsubscribe(handlers) }
}

const phases = (seen: Seen[]) => seen.map((s) => `${s.phase} ${s.command}`)
const SUCCESS: Phase[] = ['start', 'end', 'asyncStart', 'asyncEnd']
const FAILURE: Phase[] = ['start', 'end', 'error', 'asyncStart', 'asyncEnd']

test('identify reads the system and the server(s) from a backend name', () => {
  const named = (name: string) => identify({ name } as Backend)
  assert.equal(named('memory'), { system: 'memory', server: undefined })
  assert.equal(named('redis 127.0.0.1:6380'), { system: 'redis', server: '127.0.0.1:6380' })
  assert.equal(named('redis cluster h1:7000,h2:7001'), { system: 'redis', server: 'h1:7000,h2:7001' })
  assert.equal(named('redis client'), { system: 'redis', server: undefined })
  assert.equal(named('memcached a:1,b:2'), { system: 'memcached', server: 'a:1,b:2' })
  assert.equal(named('my store'), { system: 'my', server: undefined })
  assert.equal(identify(new MemoryBackend()), { system: 'memory', server: undefined })
})

test('memory: every command publishes start, end, asyncStart, asyncEnd with its keys, hit and result', async () => {
  const cache = new Cache({ namespace: 'ch' })
  const rec = record()
  try {
    await cache.set('a', 1)
    await cache.get('a')
    await cache.get('nope', { namespace: 'other' })
    await cache.multiGet(['a', 'b'])
    await cache.multiSet(new Map([['c', 3]]))
    await cache.clear()
  } finally {
    rec.stop()
  }
  assert.equal(
    phases(rec.seen),
    ['set', 'get', 'get', 'multiGet', 'multiSet', 'clear'].flatMap((c) => SUCCESS.map((p) => `${p} ${c}`)),
  )
  const starts = rec.seen.filter((s) => s.phase === 'start')
  assert.equal(
    starts.map((s) => [s.command, s.message.namespace, s.keys, s.message.backend, s.message.server]),
    [
      ['set', 'ch', ['ch:a'], 'memory', undefined],
      ['get', 'ch', ['ch:a'], 'memory', undefined],
      ['get', 'other', ['other:nope'], 'memory', undefined],
      ['multiGet', 'ch', ['ch:a', 'ch:b'], 'memory', undefined],
      ['multiSet', 'ch', ['ch:c'], 'memory', undefined],
      ['clear', 'ch', ['ch:*'], 'memory', undefined],
    ],
  )
  const ends = rec.seen.filter((s) => s.phase === 'asyncEnd')
  assert.equal(
    ends.map((s) => [s.command, s.hit, s.hits, s.result]),
    [
      ['set', undefined, undefined, true],
      ['get', true, undefined, 1],
      ['get', false, undefined, undefined],
      ['multiGet', undefined, 1, [1, undefined]],
      ['multiSet', undefined, undefined, true],
      ['clear', undefined, undefined, true],
    ],
  )
  // One message per command, the same object through its phases.
  for (let i = 0; i < rec.seen.length; i += 4) {
    const [first, ...rest] = rec.seen.slice(i, i + 4)
    for (const s of rest) assert.ok(s.message === first!.message)
    assert.ok(first!.message.cache === cache)
  }
})

test('failures publish error with the error, and the caller still gets it', async () => {
  const cache = new Cache({ namespace: 'ch' })
  await cache.set('taken', 1)
  const slow = new Cache({
    timeout: 0.02,
    plugins: [
      async (ctx: Context, next: Next) => {
        if (ctx.command === 'get') await new Promise((resolve) => setTimeout(resolve, 100))
        await next()
      },
    ],
  })
  const rec = record()
  let caught: unknown[]
  try {
    caught = [
      await rejection(cache.add('taken', 2)),
      await rejection(cache.get(42 as unknown as string)),
      await rejection(slow.get('k')),
    ]
  } finally {
    rec.stop()
  }
  assert.equal(phases(rec.seen), [
    ...FAILURE.map((p) => `${p} add`),
    ...FAILURE.map((p) => `${p} get`),
    ...FAILURE.map((p) => `${p} get`),
  ])
  const errors = rec.seen.filter((s) => s.phase === 'error')
  assert.ok(errors[0]!.error instanceof KeyExistsError && errors[0]!.error === caught[0])
  assert.ok(errors[1]!.error instanceof TypeError && errors[1]!.error === caught[1])
  assert.equal(errors[1]!.keys, [], 'a key that cannot be built is not listed')
  assert.ok(errors[2]!.error instanceof TimeoutError && errors[2]!.error === caught[2])
  await slow.close()
})

test('a generator of keys is read once: the traced multiGet answers what the untraced one does', async () => {
  const cache = new Cache()
  await cache.multiSet([
    ['x', 1],
    ['y', 2],
  ])
  function* keys() {
    yield 'x'
    yield 'z'
    yield 'y'
  }
  const plain = await cache.multiGet(keys())
  const rec = record()
  let traced: unknown
  try {
    traced = await cache.multiGet(keys())
  } finally {
    rec.stop()
  }
  assert.equal(traced, plain)
  assert.equal(traced, [1, undefined, 2])
  const end = rec.seen.find((s) => s.phase === 'asyncEnd')!
  assert.equal(end.keys, ['x', 'z', 'y'], 'the keys are learnt once the command has built them')
  assert.is(end.hits, 2)
})

test('a store bound to the start channel is the active context inside the middleware and the backend', async () => {
  const als = new AsyncLocalStorage<CommandMessage>()
  commandChannel.start.bindStore(als, (message) => message)
  const seenInMiddleware: (string | undefined)[] = []
  const backend = new AsyncBackend()
  const seenInBackend: (string | undefined)[] = []
  const get = backend.get.bind(backend)
  backend.get = (key: string) => {
    seenInBackend.push(als.getStore()?.command)
    return get(key)
  }
  const cache = new Cache({
    backend,
    plugins: [
      async (ctx: Context, next: Next) => {
        await next()
        seenInMiddleware.push(`${ctx.command}:${als.getStore()?.command}`)
      },
    ],
  })
  try {
    await cache.set('k', 1)
    await cache.get('k')
  } finally {
    commandChannel.start.unbindStore(als)
  }
  assert.equal(seenInMiddleware, ['set:set', 'get:get'])
  assert.equal(seenInBackend, ['get'])
  assert.is(als.getStore(), undefined, 'the caller is outside the store again')
})

test('with nobody subscribed, nothing is published and the check follows subscriptions', async () => {
  const cache = new Cache()
  let count = 0
  const onStart = () => {
    count++
  }
  await cache.get('k')
  commandChannel.start.subscribe(onStart)
  await cache.get('k')
  commandChannel.start.unsubscribe(onStart)
  await cache.get('k')
  assert.is(count, 1)
  // Subscribing to one phase alone is enough.
  commandChannel.asyncEnd.subscribe(onStart)
  await cache.get('k')
  commandChannel.asyncEnd.unsubscribe(onStart)
  assert.is(count, 2)
})

test('Redis and Memcached: backend and server name the store; hits are reported', async () => {
  const [redis, memcached] = await Promise.all([startRedis(), startMemcached()])
  const caches = [
    new RedisCache({ port: redis.port, namespace: 'chan' }),
    new MemcachedCache({ servers: [memcached.server], namespace: 'chan' }),
  ]
  const rec = record()
  try {
    for (const cache of caches) {
      await cache.set('k', 'v')
      await cache.get('k')
      await cache.get('missing')
    }
  } finally {
    rec.stop()
    for (const cache of caches) await cache.close()
    await Promise.all([redis.stop(), memcached.stop()])
  }
  const ends = rec.seen.filter((s) => s.phase === 'asyncEnd')
  assert.equal(
    ends.map((s) => [s.message.backend, s.message.server, s.command, s.keys, s.hit]),
    [
      ['redis', `127.0.0.1:${redis.port}`, 'set', ['chan:k'], undefined],
      ['redis', `127.0.0.1:${redis.port}`, 'get', ['chan:k'], true],
      ['redis', `127.0.0.1:${redis.port}`, 'get', ['chan:missing'], false],
      ['memcached', memcached.server, 'set', ['chan:k'], undefined],
      ['memcached', memcached.server, 'get', ['chan:k'], true],
      ['memcached', memcached.server, 'get', ['chan:missing'], false],
    ],
  )
})

test('a Redis server that is down: the error phase carries the BackendError', async () => {
  const redis = await startRedis()
  const cache = new RedisCache({ port: redis.port, timeout: 2 })
  await cache.set('k', 1)
  await redis.kill('SIGKILL')
  const rec = record()
  let caught: unknown
  try {
    caught = await rejection(cache.get('k'))
  } finally {
    rec.stop()
    await cache.close()
    await redis.stop()
  }
  const error = rec.seen.find((s) => s.phase === 'error')
  assert.ok(caught instanceof BackendError || caught instanceof TimeoutError, String(caught))
  assert.ok(error !== undefined && error.error === caught)
  assert.is(error.message.server, `127.0.0.1:${redis.port}`)
})

/** A backend whose every method rejects: a cache that is down. */
function downBackend(): Backend {
  const fail = () => Promise.reject(new BackendError('down 127.0.0.1:1', 'connection refused'))
  return {
    name: 'down 127.0.0.1:1',
    get: fail,
    multiGet: fail,
    set: fail,
    add: fail,
    multiSet: fail,
    delete: fail,
    deleteIf: fail,
    exists: fail,
    increment: fail,
    expire: fail,
    clear: fail,
    raw: fail,
    close: () => undefined,
  }
}

test('oniocache:error: a cached call that falls back to its function reports the read and the write', async () => {
  const reports: ErrorMessage[] = []
  const listen = (message: unknown) => reports.push(message as ErrorMessage)
  const unhandled = watchUnhandled()
  const cache = new Cache({ backend: downBackend(), namespace: 'fallback' })
  errorChannel.subscribe(listen)
  try {
    const double = cached(async (n: number) => n * 2, { cache })
    assert.is(await double(21), 42, "the function's own result comes back")
    const stampede = cachedStampede(async (n: number) => n + 1, { cache, lease: 1 })
    assert.is(await stampede(1), 2)
  } finally {
    errorChannel.unsubscribe(listen)
    unhandled.stop()
  }
  unhandled.check()
  const seen = reports.map((r) => [r.command, r.namespace, r.error instanceof BackendError, r.cache === cache])
  // A cached call is a getOrSet, which reports the failed read and the failed write itself.
  assert.equal(seen.slice(0, 2), [
    ['getOrSet', 'fallback', true, true],
    ['getOrSet', 'fallback', true, true],
  ])
  // cachedStampede's getOrSet also reports the lock it could not take: read, lock and the read sent with it, write.
  assert.equal(seen.slice(2), [
    ['getOrSet', 'fallback', true, true],
    ['getOrSet', 'fallback', true, true],
    ['getOrSet', 'fallback', true, true],
    ['getOrSet', 'fallback', true, true],
  ])
  // Nobody listening: nothing is built or published, and the call still works.
  const double = cached(async (n: number) => n * 2, { cache })
  assert.is(await double(2), 4)
  assert.is(reports.length, seen.length)
})

// ---------------------------------------------------------------------------
// Differential: the same commands, traced and untraced, answer alike.

type Op =
  | { op: 'get' | 'delete' | 'exists'; key: string }
  | { op: 'set' | 'add'; key: string; value: number }
  | { op: 'multiGet'; keys: string[]; generator: boolean }
  | { op: 'multiSet'; pairs: [string, number][] }
  | { op: 'increment'; key: string; delta: number }
  | { op: 'expire'; key: string; ttl: number }
  | { op: 'clear'; namespace: string | undefined }
  | { op: 'bad'; which: 'key' | 'ttl' | 'undefined' }

const key = fc.constantFrom('a', 'b', 'c', 'n')
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constantFrom('get', 'delete', 'exists' as const), key }),
  fc.record({ op: fc.constantFrom('set', 'add' as const), key, value: fc.integer({ min: -5, max: 5 }) }),
  fc.record({ op: fc.constant('multiGet' as const), keys: fc.array(key, { maxLength: 4 }), generator: fc.boolean() }),
  fc.record({ op: fc.constant('multiSet' as const), pairs: fc.array(fc.tuple(key, fc.integer()), { maxLength: 3 }) }),
  fc.record({ op: fc.constant('increment' as const), key, delta: fc.integer({ min: -3, max: 3 }) }),
  fc.record({ op: fc.constant('expire' as const), key, ttl: fc.constantFrom(0, 10) }),
  fc.record({ op: fc.constant('clear' as const), namespace: fc.constantFrom(undefined, 'x', '') }),
  fc.record({ op: fc.constant('bad' as const), which: fc.constantFrom('key', 'ttl', 'undefined' as const) }),
)

function apply(cache: Cache, op: Op): Promise<unknown> {
  switch (op.op) {
    case 'get':
    case 'delete':
    case 'exists':
      return cache[op.op](op.key)
    case 'set':
    case 'add':
      return cache[op.op](op.key, op.value)
    case 'multiGet':
      return cache.multiGet(
        op.generator
          ? (function* () {
              yield* op.keys
            })()
          : op.keys,
      )
    case 'multiSet':
      return cache.multiSet(op.pairs)
    case 'increment':
      return cache.increment(op.key, op.delta)
    case 'expire':
      return cache.expire(op.key, op.ttl)
    case 'clear':
      return cache.clear(op.namespace === undefined ? {} : { namespace: op.namespace })
    case 'bad':
      if (op.which === 'key') return cache.get(null as unknown as string)
      if (op.which === 'ttl') return cache.set('a', 1, { ttl: -1 })
      return cache.set('a', undefined)
  }
}

async function outcomes(ops: Op[], asyncBackend: boolean): Promise<unknown[]> {
  const cache = new Cache({ namespace: 'd', ...(asyncBackend ? { backend: new AsyncBackend() } : {}) })
  const out: unknown[] = []
  for (const op of ops) {
    try {
      out.push(['ok', await apply(cache, op)])
    } catch (error) {
      out.push(['error', (error as Error).name, (error as Error).message])
    }
  }
  await cache.close()
  return out
}

test('differential: traced and untraced runs answer the same results and errors', async () => {
  let commands = 0
  await checkAsync(
    'traced = untraced',
    fc.asyncProperty(fc.array(opArb, { maxLength: 12 }), fc.boolean(), async (ops, asyncBackend) => {
      const plain = await outcomes(ops, asyncBackend)
      const rec = record()
      let traced: unknown[]
      try {
        traced = await outcomes(ops, asyncBackend)
      } finally {
        rec.stop()
      }
      assert.equal(traced, plain)
      // Every command (close included) was published exactly once, each phase in order.
      const starts = rec.seen.filter((s) => s.phase === 'start').length
      assert.is(starts, ops.length + 1)
      assert.is(rec.seen.filter((s) => s.phase === 'asyncEnd').length, starts)
      commands += starts
    }),
    { numRuns: 200 },
  )
  assert.ok(commands > 200)
})

test.run()

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import * as oniocache from '../lib/index.js'
import {
  type Backend,
  BackendError,
  CacheError,
  FactoryTimeoutError,
  InvalidCacheTypeError,
  InvalidKeyError,
  JsonSerializer,
  KeyExistsError,
  MemoryBackend,
  MemoryCache,
  type Middleware,
  OptimisticLockError,
  SerializationError,
  TimeoutError,
} from '../lib/index.js'
import { rejectionError as rejection } from './support/fixtures/backends.js'

const cause = new Error('the original error')

/** A slow step (a referenced 2 s timer, like a socket that keeps the process alive) that stops early on abort. */
function slowUntilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const slow = setTimeout(resolve, 2_000)
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(slow)
        resolve()
      },
      { once: true },
    )
  })
}

/** One instance of every exported error class, built as the library builds it. */
const INSTANCES: Array<[string, Error]> = [
  ['CacheError', new CacheError('[oniocache] something', { cause })],
  ['KeyExistsError', new KeyExistsError('user:1')],
  ['TimeoutError', new TimeoutError('get', 0.25)],
  ['FactoryTimeoutError', new FactoryTimeoutError('user:1', 2)],
  ['SerializationError', new SerializationError('[oniocache] set: cannot encode', { cause })],
  ['InvalidKeyError', new InvalidKeyError('[oniocache] [memcached] key too long', { cause })],
  [
    'InvalidCacheTypeError',
    new InvalidCacheTypeError('[oniocache] unknown cache "nope"; available: memory', { cause }),
  ],
  ['OptimisticLockError', new OptimisticLockError('[oniocache] the value changed', { cause })],
  ['BackendError', new BackendError('redis 127.0.0.1:6379', 'connection refused', { cause })],
]

test('the error classes exported are exactly the ones tested here', () => {
  const exported = Object.entries(oniocache)
    .filter(([, value]) => typeof value === 'function' && value.prototype instanceof Error)
    .map(([name]) => name)
    .sort()
  assert.equal(exported, INSTANCES.map(([name]) => name).sort())
})

for (const [name, error] of INSTANCES) {
  test(`${name}: an Error and a CacheError, with name equal to its class name`, () => {
    const ctor = (oniocache as Record<string, unknown>)[name] as new (...args: never[]) => Error
    assert.instance(error, Error)
    assert.instance(error, CacheError)
    assert.instance(error, ctor)
    assert.is(error.constructor, ctor)
    assert.is(error.name, name)
    assert.is(ctor.name, name)
    assert.ok(String(error).startsWith(`${name}: `), String(error))
    assert.ok(error.stack?.startsWith(`${name}: `), 'the stack names the class too')
    assert.match(error.message, /^\[oniocache\] /)
  })
}

test('errors of one class are not instances of the others', () => {
  for (const [name, error] of INSTANCES) {
    for (const [otherName] of INSTANCES) {
      if (otherName === name || otherName === 'CacheError') continue
      const other = (oniocache as Record<string, unknown>)[otherName] as new (...args: never[]) => Error
      assert.not.instance(error, other, `${name} is not a ${otherName}`)
    }
  }
})

test('cause is kept where given, absent where not', () => {
  for (const [name, error] of INSTANCES) {
    if (name === 'KeyExistsError' || name === 'TimeoutError' || name === 'FactoryTimeoutError') {
      assert.is(error.cause, undefined, name)
    } else assert.is(error.cause, cause, name)
  }
  assert.is(new SerializationError('[oniocache] x').cause, undefined)
  assert.not.ok('cause' in new BackendError('memory', 'x'))
})

test('a subclass gets its own class name', () => {
  class FailSafeError extends BackendError {}
  const error = new FailSafeError('redis 10.0.0.1:6379', 'gave up')
  assert.is(error.name, 'FailSafeError')
  assert.instance(error, BackendError)
  assert.is(error.message, '[oniocache] [redis 10.0.0.1:6379] gave up')
})

test('KeyExistsError names the key and says to use set()', () => {
  const error = new KeyExistsError('user:42')
  assert.is(error.key, 'user:42')
  assert.match(error.message, '"user:42"')
  assert.match(error.message, 'already exists')
  assert.match(error.message, 'set()')
})

test('KeyExistsError quotes odd keys safely', () => {
  const error = new KeyExistsError('a "quoted"\nkey')
  assert.match(error.message, JSON.stringify('a "quoted"\nkey'))
  assert.not.match(error.message, '\n')
})

test('TimeoutError names the command and the timeout, and says what to raise', () => {
  const error = new TimeoutError('multiGet', 0.25)
  assert.is(error.command, 'multiGet')
  assert.is(error.timeout, 0.25)
  assert.match(error.message, 'multiGet')
  assert.match(error.message, '0.25s')
  assert.match(error.message, /raise the cache's or the call's timeout/)
})

test('BackendError message: [oniocache] [backend server] message, with backend and cause', () => {
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' })
  const error = new BackendError('redis 127.0.0.1:6379', 'cannot reach the server: connect ECONNREFUSED', {
    cause: refused,
  })
  assert.is(error.message, '[oniocache] [redis 127.0.0.1:6379] cannot reach the server: connect ECONNREFUSED')
  assert.is(error.backend, 'redis 127.0.0.1:6379')
  assert.is(error.cause, refused)
  const memcached = new BackendError('memcached 10.0.0.2:11211', 'server closed the connection')
  assert.is(memcached.message, '[oniocache] [memcached 10.0.0.2:11211] server closed the connection')
})

// ---------------------------------------------------------------------------
// The errors as commands produce them

test('add of an existing key rejects with KeyExistsError naming the caller’s key', async () => {
  const cache = new MemoryCache({ namespace: 'ns' })
  await cache.add('k', 1)
  const error = await rejection(cache.add('k', 2))
  assert.instance(error, KeyExistsError)
  assert.is((error as KeyExistsError).key, 'k')
  assert.is(error.name, 'KeyExistsError')
  assert.is(await cache.get('k'), 1)
})

test('a command past its timeout rejects with TimeoutError, and ctx.signal is aborted with it', async () => {
  let signal: AbortSignal | undefined
  const stall: Middleware = async (ctx, next) => {
    signal = ctx.signal
    await slowUntilAborted(ctx.signal)
    await next()
  }
  const cache = new MemoryCache({ plugins: [stall], timeout: '20ms' })
  const started = performance.now()
  const error = await rejection(cache.get('k'))
  const took = performance.now() - started
  assert.instance(error, TimeoutError)
  assert.is((error as TimeoutError).command, 'get')
  assert.is((error as TimeoutError).timeout, 0.02)
  assert.ok(took >= 19, `rejected after ${took.toFixed(1)} ms, before its timeout`)
  assert.ok(signal?.aborted)
  assert.is(signal?.reason, error)
})

test('a per-call timeout overrides the cache’s and is named in the TimeoutError', async () => {
  const stall: Middleware = async (ctx, next) => {
    await slowUntilAborted(ctx.signal)
    await next()
  }
  const cache = new MemoryCache({ plugins: [stall], timeout: 60 })
  const error = await rejection(cache.set('k', 1, { timeout: 0.01 }))
  assert.instance(error, TimeoutError)
  assert.is((error as TimeoutError).command, 'set')
  assert.is((error as TimeoutError).timeout, 0.01)
  assert.match(error.message, '0.01s')
})

test('a value that cannot be encoded rejects with SerializationError, cause kept', async () => {
  const cache = new MemoryCache({ serializer: new JsonSerializer() })
  const error = await rejection(cache.set('k', 10n))
  assert.instance(error, SerializationError)
  assert.instance(error.cause, TypeError)
  assert.match(error.message, 'JsonSerializer')
  assert.match(error.message, 'nothing was written')
})

test('a BackendError from a backend reaches the caller as it is', async () => {
  const memory = new MemoryBackend()
  const down = new BackendError('redis 127.0.0.1:6379', 'cannot reach the server', { cause: new Error('ECONNREFUSED') })
  const failing: Backend = {
    name: 'redis 127.0.0.1:6379',
    get: () => Promise.reject(down),
    multiGet: (keys) => memory.multiGet(keys),
    set: (key, value, ttl, casToken) => memory.set(key, value, ttl, casToken),
    add: (key, value, ttl) => memory.add(key, value, ttl),
    multiSet: (pairs, ttl) => memory.multiSet(pairs, ttl),
    delete: (key) => memory.delete(key),
    exists: (key) => memory.exists(key),
    increment: (key, delta) => memory.increment(key, delta),
    expire: (key, ttl) => memory.expire(key, ttl),
    clear: (prefix) => memory.clear(prefix),
    raw: (command, args) => memory.raw(command, args),
    close: () => memory.close(),
  }
  const cache = new oniocache.Cache({ backend: failing })
  const error = await rejection(cache.get('k'))
  assert.is(error, down)
  assert.match(error.message, '[oniocache] [redis 127.0.0.1:6379] ')
})

test('a backend’s own TypeError for a bad increment reaches the caller as a TypeError, not wrapped', async () => {
  const cache = new MemoryCache()
  await cache.set('k', 'text')
  const error = await rejection(cache.increment('k'))
  assert.instance(error, TypeError)
  assert.not.instance(error, CacheError)
  assert.match(error.message, '[oniocache] [memory]')
})

test.run()

import { execFile } from 'node:child_process'
import { createServer, type Server, type Socket } from 'node:net'
import { promisify } from 'node:util'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  BackendError,
  BasePlugin,
  Cache,
  CacheHandler,
  type CacheOptions,
  type CachesConfig,
  type Context,
  caches,
  HitMissRatioPlugin,
  InvalidCacheTypeError,
  JsonSerializer,
  MemoryBackend,
  MemoryCache,
  MsgPackSerializer,
  type Next,
  NullSerializer,
  parseCacheUrl,
  StringSerializer,
  TimingPlugin,
  V8Serializer,
} from '../lib/index.js'
import { type MemcachedBackend, MemcachedCache } from '../lib/memcached.js'
import { RedisBackend, RedisCache } from '../lib/redis.js'
import { childEnv as sharedChildEnv } from './support/children.js'
import { rejectionError } from './support/fixtures/backends.js'
import { redisCommand, startRedis } from './support/servers.js'

const run = promisify(execFile)
const root = new URL('..', import.meta.url).pathname

/** The error `fn` throws (synchronously); fails the test when it returns. */
function thrown(fn: () => unknown): Error {
  try {
    fn()
  } catch (error) {
    assert.instance(error, Error)
    return error as Error
  }
  assert.unreachable('expected a synchronous throw')
  throw new Error('unreachable')
}

/** Every text an error carries: its string, message and stack, and the same for each cause. */
function allText(error: unknown): string {
  const parts: string[] = []
  for (let e: unknown = error, depth = 0; e !== undefined && depth < 10; depth++) {
    if (e instanceof Error) {
      parts.push(String(e), e.message, e.stack ?? '', JSON.stringify(Object.entries(e)))
      e = e.cause
    } else {
      parts.push(String(e))
      e = undefined
    }
  }
  return parts.join('\n')
}

/** A server that counts the connections it receives and drops them. */
async function countingServer(): Promise<{ server: Server; port: number; connections: () => number }> {
  let connections = 0
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    connections++
    sockets.add(socket)
    socket.destroy()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return { server, port: address.port, connections: () => connections }
}

/**
 * c8 merges a child's coverage into the report, and a tsx child's partial view lowers it (see package.spec.ts):
 * children write theirs where nobody reads it.
 */
function childEnv(): NodeJS.ProcessEnv {
  return sharedChildEnv()
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** A cache class of our own: keeps the options it was given. */
class RecordingCache extends Cache {
  readonly given: Record<string, unknown>
  constructor(options: Record<string, unknown> = {}) {
    const { servers, ...rest } = options
    super(rest as CacheOptions)
    this.given = { servers }
  }
}

/** A serializer of our own that takes options. */
class PrefixSerializer extends StringSerializer {
  readonly prefix: string
  constructor(options: { prefix?: string } = {}) {
    super()
    this.prefix = options.prefix ?? ''
  }
  override dumps(value: unknown): string {
    return this.prefix + String(value)
  }
}

/** A plugin of our own that takes options. */
class TagPlugin extends BasePlugin {
  readonly tag: string
  constructor(options: { tag?: string } = {}) {
    super()
    this.tag = options.tag ?? 'none'
  }
  override postGet(ctx: Context): void {
    ctx.result = `${this.tag}:${String(ctx.result)}`
  }
}

// ---------------------------------------------------------------------------
// Aliases: setConfig, get, create, getConfig

test('out of the box, alias "default" is a memory cache with MemoryCache\'s defaults', () => {
  const handler = new CacheHandler()
  const cache = handler.get('default')
  assert.instance(cache, Cache)
  assert.instance(cache.backend, MemoryBackend)
  assert.instance(cache.serializer, NullSerializer)
  assert.is(handler.get('default'), cache, 'built on the first get, then the same instance')
  assert.equal(handler.getConfig(), { default: { cache: 'memory' } })
})

test(
  'the SPEC example: get answers the same instance every time, create a new one each call with the overrides ' +
    'merged',
  async () => {
    const before = caches.getConfig()
    try {
      caches.setConfig({
        default: { cache: 'memory', serializer: { class: 'StringSerializer' } },
        redis_alt: {
          cache: 'redis',
          host: '127.0.0.1',
          port: 6379,
          timeout: 1,
          serializer: { class: 'JsonSerializer' },
          plugins: [{ class: 'HitMissRatioPlugin' }, { class: 'TimingPlugin' }],
        },
      })
      const cache = caches.get('default')
      assert.is(caches.get('default'), cache, 'same instance')
      assert.instance(cache.backend, MemoryBackend)
      assert.instance(cache.serializer, StringSerializer)
      await cache.set('n', 42)
      assert.is(await cache.get('n'), '42', 'StringSerializer is in use')

      const a = caches.create('redis_alt', { namespace: 'x' })
      const b = caches.create('redis_alt', { namespace: 'x' })
      assert.is(a.backend.name, 'redis 127.0.0.1:6379')
      assert.is.not(a, b, 'a new instance each call')
      assert.is(a.namespace, 'x')
      assert.is(a.timeout, 1)
      assert.instance(a.serializer, JsonSerializer)
      assert.is(a.plugins.length, 2)
      assert.instance(a.plugins[0], HitMissRatioPlugin)
      assert.instance(a.plugins[1], TimingPlugin)
      assert.is.not(a.plugins[0], b.plugins[0], 'plugin specs are built anew for every cache')
      assert.is(caches.get('redis_alt').namespace, '', 'create does not touch the alias config')
    } finally {
      caches.setConfig(before)
    }
  },
)

test(
  'setConfig again: get answers instances of the new config; instances handed out before are left working, not ' +
    'closed',
  async () => {
    const handler = new CacheHandler()
    handler.setConfig({ default: { cache: 'memory', namespace: 'one' } })
    const old = handler.get('default')
    await old.set('k', 'v')
    handler.setConfig({ default: { cache: 'memory', namespace: 'two' } })
    const fresh = handler.get('default')
    assert.is.not(fresh, old)
    assert.is(fresh.namespace, 'two')
    assert.is(handler.get('default'), fresh)
    assert.is(await old.get('k'), 'v', 'the old instance still holds its entries')
    assert.is(await fresh.get('k'), undefined, 'the new instance is a different store')
  },
)

test('setConfig without "default" is a TypeError naming the aliases given, and changes nothing', () => {
  const handler = new CacheHandler()
  handler.setConfig({ default: { cache: 'memory', namespace: 'kept' } })
  const cache = handler.get('default')
  const error = thrown(() => handler.setConfig({ other: { cache: 'memory' } } as unknown as CachesConfig))
  assert.instance(error, TypeError)
  assert.match(error.message, /"default" alias/)
  assert.match(error.message, /"other"/)
  assert.is(handler.get('default'), cache)
  assert.equal(handler.getConfig(), { default: { cache: 'memory', namespace: 'kept' } })
  assert.instance(
    thrown(() => handler.setConfig(null as unknown as CachesConfig)),
    TypeError,
  )
  assert.instance(
    thrown(() => handler.setConfig([] as unknown as CachesConfig)),
    TypeError,
  )
})

test('setConfig checks every alias up front: a bad one anywhere throws and nothing changes', () => {
  const handler = new CacheHandler()
  handler.setConfig({ default: { cache: 'memory', namespace: 'kept' }, extra: { cache: 'memory' } })
  const cache = handler.get('default')
  const before = handler.getConfig()
  const bad: Array<[CachesConfig, new (...args: never[]) => Error, RegExp]> = [
    [
      { default: { cache: 'memory' }, b: { cache: 'nope' } },
      InvalidCacheTypeError,
      /alias "b": unknown cache "nope"; available caches: memory, redis/,
    ],
    [
      { default: { cache: 'memory' }, b: { cache: 'memory', serializer: { class: 'Pickle' } } },
      InvalidCacheTypeError,
      new RegExp(
        'alias "b": serializer: unknown serializer "Pickle"; available serializers: ' +
          'NullSerializer, StringSerializer, JsonSerializer, MsgPackSerializer, V8Serializer',
      ),
    ],
    [
      { default: { cache: 'memory' }, b: { cache: 'memory', plugins: [{ class: 'TimingPlugin' }, { class: 'Nope' }] } },
      InvalidCacheTypeError,
      /alias "b": plugins\[1\]: unknown plugin "Nope"; available plugins: HitMissRatioPlugin, TimingPlugin/,
    ],
    [
      { default: { cache: 'memory' }, b: { cache: 'memory', maxSise: 10 } },
      TypeError,
      /alias "b": MemoryCache: unknown option "maxSise"/,
    ],
    [{ default: { cache: 'redis', hots: 'x' } }, TypeError, /alias "default": RedisCache: unknown option "hots"/],
    [{ default: { cache: 'memory', ttl: -1 } }, RangeError, /alias "default": ttl must be/],
    [
      { default: { cache: 'memory', maxSize: 0 } },
      TypeError,
      /alias "default": \[memory\] maxSize must be a positive integer/,
    ],
  ]
  for (const [config, type, message] of bad) {
    const error = thrown(() => handler.setConfig(config))
    assert.instance(error, type, message.source)
    assert.match(error.message, message)
    assert.is(handler.get('default'), cache)
    assert.equal(handler.getConfig(), before)
  }
})

test('config shapes that are not configs are TypeErrors that say what is expected', () => {
  const handler = new CacheHandler()
  const bad: Array<[unknown, RegExp]> = [
    ['memory', /alias "default": must be an object such as \{ cache: 'memory' \}/],
    [{}, /alias "default": "cache" is required: available caches: memory, redis, memcached, or a Cache class/],
    [{ cache: 42 }, /alias "default": a cache is a registered name or a class; got 42/],
    [{ cache: 'memory', plugins: { class: 'TimingPlugin' } }, /plugins must be an array/],
    [{ cache: 'memory', plugins: [42] }, /plugins\[0\] must be \{ class: 'TimingPlugin' \}/],
    [{ cache: 'memory', serializer: 'JsonSerializer' }, /serializer must be \{ class: 'JsonSerializer' \}/],
    [{ cache: 'memory', serializer: { klass: 'JsonSerializer' } }, /serializer must be \{ class: 'JsonSerializer' \}/],
    [
      { cache: 'memory', serializer: { class: 'JsonSerializer', pretty: true } },
      /serializer: JsonSerializer takes no options; got pretty/,
    ],
    [
      { cache: 'memory', plugins: [{ class: 'TimingPlugin', every: 1 }] },
      /plugins\[0\]: TimingPlugin takes no options; got every/,
    ],
  ]
  for (const [entry, message] of bad) {
    const error = thrown(() => handler.setConfig({ default: entry } as CachesConfig))
    assert.instance(error, TypeError, message.source)
    assert.match(error.message, message)
  }
})

test('a missing alias is an InvalidCacheTypeError naming the aliases there are, for get and create', () => {
  const handler = new CacheHandler()
  handler.setConfig({ default: { cache: 'memory' }, sessions: { cache: 'memory' } })
  for (const call of [() => handler.get('users'), () => handler.create('users')]) {
    const error = thrown(call)
    assert.instance(error, InvalidCacheTypeError)
    assert.match(error.message, /no cache alias "users" in the config; aliases: default, sessions/)
  }
  assert.instance(
    thrown(() => handler.get('toString')),
    InvalidCacheTypeError,
    'inherited properties are not aliases',
  )
})

test(
  'create merges overrides one level deep over the alias config; undefined means "not given"; cache can be ' +
    'overridden',
  () => {
    const handler = new CacheHandler()
    handler.setConfig({
      default: {
        cache: 'memory',
        namespace: 'base',
        ttl: 60,
        serializer: { class: 'JsonSerializer' },
        plugins: [{ class: 'TimingPlugin' }],
      },
    })
    const cache = handler.create('default', {
      namespace: 'over',
      serializer: { class: 'StringSerializer' },
      timeout: undefined,
    })
    assert.is(cache.namespace, 'over')
    assert.is(cache.ttl, 60, 'options not overridden come from the alias')
    assert.is(cache.timeout, 5, 'timeout: undefined leaves the class default')
    assert.instance(cache.serializer, StringSerializer, 'serializer replaced as a whole')
    assert.instance(cache.plugins[0], TimingPlugin)
    const other = handler.create('default', { cache: RecordingCache, plugins: [] })
    assert.instance(other, RecordingCache)
    assert.is(other.plugins.length, 0)
    assert.instance(
      thrown(() => handler.create('default', 'x' as never)),
      TypeError,
    )
    assert.is(handler.get('default').namespace, 'base')
  },
)

test('getConfig answers a deep copy, and setConfig keeps its own: mutating either afterwards changes nothing', () => {
  const handler = new CacheHandler()
  const given: CachesConfig = {
    default: { cache: 'memory', serializer: { class: 'StringSerializer' }, plugins: [{ class: 'TimingPlugin' }] },
  }
  handler.setConfig(given)
  given.default.serializer = { class: 'JsonSerializer' }
  given.default.plugins!.push({ class: 'HitMissRatioPlugin' })
  const copy = handler.getConfig()
  ;(copy.default.serializer as { class: string }).class = 'V8Serializer'
  copy.default.plugins!.length = 0
  assert.equal(handler.getConfig(), {
    default: { cache: 'memory', serializer: { class: 'StringSerializer' }, plugins: [{ class: 'TimingPlugin' }] },
  })
  const cache = handler.create('default')
  assert.instance(cache.serializer, StringSerializer)
  assert.is(cache.plugins.length, 1)
})

// ---------------------------------------------------------------------------
// Names: built-in, aiocache's dotted paths, register

test('every built-in serializer and plugin name builds its class', () => {
  const handler = new CacheHandler()
  const serializers = { NullSerializer, StringSerializer, JsonSerializer, MsgPackSerializer, V8Serializer }
  for (const [name, ctor] of Object.entries(serializers)) {
    handler.setConfig({
      default: {
        cache: 'memory',
        serializer: { class: name },
        plugins: [{ class: 'HitMissRatioPlugin' }, { class: 'TimingPlugin' }],
      },
    })
    const cache = handler.get('default')
    assert.instance(cache.serializer, ctor, name)
    assert.instance(cache.plugins[0], HitMissRatioPlugin)
    assert.instance(cache.plugins[1], TimingPlugin)
  }
})

test("aiocache's dotted names resolve to ours", () => {
  const handler = new CacheHandler()
  handler.setConfig({
    default: {
      cache: 'aiocache.SimpleMemoryCache',
      serializer: { class: 'aiocache.serializers.JsonSerializer' },
      plugins: [{ class: 'aiocache.plugins.TimingPlugin' }],
    },
    long: {
      cache: 'aiocache.backends.memory.SimpleMemoryCache',
      plugins: [{ class: 'aiocache.plugins.HitMissRatioPlugin' }],
    },
    redis: { cache: 'aiocache.RedisCache', serializer: { class: 'aiocache.serializers.StringSerializer' } },
  })
  assert.instance(handler.get('default').backend, MemoryBackend)
  assert.instance(handler.get('default').serializer, JsonSerializer)
  assert.instance(handler.get('default').plugins[0], TimingPlugin)
  assert.instance(handler.get('long').backend, MemoryBackend)
  assert.instance(handler.get('long').plugins[0], HitMissRatioPlugin)
  assert.match(handler.get('redis').backend.name, /^redis /)
  assert.instance(handler.get('redis').serializer, StringSerializer)
  handler.setConfig({ default: { cache: 'aiocache.MemcachedCache', servers: ['127.0.0.1:11299'] } })
  assert.is(handler.get('default').backend.name, 'memcached 127.0.0.1:11299')
  const error = thrown(() => handler.setConfig({ default: { cache: 'aiocache.MongoCache' } }))
  assert.instance(error, InvalidCacheTypeError)
  assert.match(error.message, /unknown cache "aiocache.MongoCache"; available caches: memory, redis, memcached/)
})

test('"memcached" names a Memcached cache; an unknown cache name lists the available ones', () => {
  const handler = new CacheHandler()
  handler.setConfig({
    default: { cache: 'memcached', servers: ['127.0.0.1:11299', '127.0.0.1:11298'], namespace: 'm' },
  })
  const cache = handler.get('default')
  assert.instance(cache.serializer, JsonSerializer)
  assert.is(cache.backend.name, 'memcached 127.0.0.1:11299,127.0.0.1:11298')
  const error = thrown(() => new CacheHandler().setConfig({ default: { cache: 'mongo' } }))
  assert.instance(error, InvalidCacheTypeError)
  assert.match(error.message, /unknown cache "mongo"; available caches: memory, redis, memcached$/)
})

test('classes are accepted where names are, for caches, serializers and plugins', () => {
  const handler = new CacheHandler()
  handler.setConfig({
    default: {
      cache: RecordingCache,
      serializer: { class: PrefixSerializer, prefix: '>' },
      plugins: [{ class: TagPlugin, tag: 't' }],
    },
  })
  const cache = handler.get('default')
  assert.instance(cache, RecordingCache)
  assert.instance(cache.serializer, PrefixSerializer)
  assert.is(
    (cache.serializer as PrefixSerializer).prefix,
    '>',
    'spec keys other than class are the constructor options',
  )
  assert.is((cache.plugins[0] as TagPlugin).tag, 't')
  handler.setConfig({ default: { cache: Cache } })
  assert.is(handler.get('default').constructor, Cache, 'Cache itself is a cache class')
})

test('a class of the wrong kind is an InvalidCacheTypeError; names are looked up among their own kind only', () => {
  const handler = new CacheHandler()
  const cases: Array<[CachesConfig, RegExp]> = [
    [
      { default: { cache: JsonSerializer as never } },
      /a function \(JsonSerializer\) is not a cache class; available caches: memory, redis/,
    ],
    [
      { default: { cache: 'memory', serializer: { class: TimingPlugin as never } } },
      /\(TimingPlugin\) is not a serializer class/,
    ],
    [
      { default: { cache: 'memory', plugins: [{ class: MemoryCache as never }] } },
      /\(MemoryCache\) is not a plugin class/,
    ],
    [{ default: { cache: 'memory', serializer: { class: 'TimingPlugin' } } }, /unknown serializer "TimingPlugin"/],
    [{ default: { cache: 'JsonSerializer' } }, /unknown cache "JsonSerializer"/],
  ]
  for (const [config, message] of cases) {
    const error = thrown(() => handler.setConfig(config))
    assert.instance(error, InvalidCacheTypeError, message.source)
    assert.match(error.message, message)
  }
})

test('register names a cache, serializer or plugin class, told apart by the class, per handler', async () => {
  const handler = new CacheHandler()
  assert.is(
    handler.register('recording', RecordingCache).register('prefix', PrefixSerializer).register('tag', TagPlugin),
    handler,
    'register chains',
  )
  handler.setConfig({
    default: {
      cache: 'recording',
      serializer: { class: 'prefix', prefix: '#' },
      plugins: [{ class: 'tag', tag: 'seen' }],
    },
  })
  const cache = handler.get('default')
  assert.instance(cache, RecordingCache)
  await cache.set('k', 'v')
  assert.is(await cache.raw('get', 'k'), '#v', 'the registered serializer wrote the value')
  assert.is(await cache.get('k'), 'seen:#v', 'the registered plugin ran')
  const error = thrown(() => handler.setConfig({ default: { cache: 'nope' } }))
  assert.match(error.message, /available caches: memory, redis, memcached, recording/)
  assert.match(
    thrown(() => handler.setConfig({ default: { cache: 'memory', serializer: { class: 'nope' } } })).message,
    /available serializers: .*V8Serializer, prefix/,
  )
  assert.match(
    thrown(() => handler.setConfig({ default: { cache: 'memory', plugins: [{ class: 'nope' }] } })).message,
    /available plugins: HitMissRatioPlugin, TimingPlugin, tag/,
  )
  assert.instance(
    thrown(() => new CacheHandler().setConfig({ default: { cache: 'recording' } })),
    InvalidCacheTypeError,
    'another handler does not see the name',
  )
})

test('register replaces a name, built-in ones included', () => {
  const handler = new CacheHandler().register('memory', RecordingCache).register('JsonSerializer', PrefixSerializer)
  handler.setConfig({ default: { cache: 'memory', serializer: { class: 'JsonSerializer' } } })
  assert.instance(handler.get('default'), RecordingCache)
  assert.instance(handler.get('default').serializer, PrefixSerializer)
})

test('register refuses what is not a cache, serializer or plugin class, and an empty name', () => {
  const handler = new CacheHandler()
  const notClasses: unknown[] = [42, {}, () => undefined, class Nothing {}, new JsonSerializer()]
  for (const value of notClasses) {
    const error = thrown(() => handler.register('x', value as typeof MemoryCache))
    assert.instance(error, TypeError)
    assert.match(
      error.message,
      /expected a Cache subclass, a serializer class \(dumps\/loads methods\) or a plugin class/,
    )
  }
  assert.instance(
    thrown(() => handler.register('', MemoryCache)),
    TypeError,
  )
})

test(
  'serializer and plugin instances and middleware functions in a config are used as they are (shared by the ' +
    'caches built from it)',
  async () => {
    const handler = new CacheHandler()
    const serializer = new JsonSerializer()
    const timing = new TimingPlugin()
    const seen: string[] = []
    const middleware = async (ctx: Context, next: Next): Promise<void> => {
      seen.push(ctx.command)
      await next()
    }
    handler.setConfig({ default: { cache: 'memory', serializer, plugins: [timing, middleware] } })
    const a = handler.get('default')
    const b = handler.create('default')
    assert.is(a.serializer, serializer)
    assert.is(b.serializer, serializer)
    assert.is(a.plugins[0], timing)
    assert.is(b.plugins[1], middleware)
    await a.get('x')
    await b.get('x')
    assert.equal(seen, ['get', 'get'])
    assert.is(timing.profiling.get_total, 2)
  },
)

test('constructor errors name the alias and keep the original error as cause', () => {
  const handler = new CacheHandler()
  const error = thrown(() => handler.setConfig({ default: { cache: 'memory', namespace: 7 as never } }))
  assert.instance(error, TypeError)
  assert.match(error.message, /^\[oniocache\] alias "default": namespace must be a string; got 7$/)
  assert.instance(error.cause, TypeError)
  class Custom extends TypeError {}
  class Throwing extends Cache {
    constructor() {
      super()
      throw new Custom('mine')
    }
  }
  assert.instance(
    thrown(() => handler.setConfig({ default: { cache: Throwing } })),
    Custom,
    'subclasses of TypeError are passed through',
  )
  class Picky extends StringSerializer {
    constructor(options: { level?: number }) {
      super()
      if (options.level !== 1) throw new RangeError('[oniocache] level must be 1')
    }
  }
  const fromSerializer = thrown(() =>
    handler.setConfig({ default: { cache: 'memory', serializer: { class: Picky, level: 2 } } }),
  )
  assert.instance(fromSerializer, RangeError)
  assert.is(fromSerializer.message, '[oniocache] alias "default": serializer: level must be 1')
  assert.instance(fromSerializer.cause, RangeError)
})

// ---------------------------------------------------------------------------
// URLs: parseCacheUrl

test("parseCacheUrl: the SPEC's Redis URL as RedisCache options, query values typed by option", () => {
  assert.equal(parseCacheUrl('redis://:secret@127.0.0.1:6379/2?timeout=1&namespace=app'), {
    cache: 'redis',
    host: '127.0.0.1',
    port: 6379,
    db: 2,
    password: 'secret',
    timeout: 1,
    namespace: 'app',
  })
})

test(
  'parseCacheUrl: rediss is TLS; user and password are percent-decoded; IPv6 hosts lose their brackets; what is ' +
    'absent is left out',
  () => {
    assert.equal(parseCacheUrl('rediss://me%40corp:p%2Fw%3A%40@[::1]:6380/?ttl=250ms&connectTimeout=2'), {
      cache: 'redis',
      host: '::1',
      port: 6380,
      username: 'me@corp',
      password: 'p/w:@',
      tls: true,
      ttl: '250ms',
      connectTimeout: 2,
    })
    assert.equal(parseCacheUrl('redis://'), { cache: 'redis' })
    assert.equal(parseCacheUrl('redis://cache.local'), { cache: 'redis', host: 'cache.local' })
    assert.equal(parseCacheUrl('redis://user@h:7000/0'), {
      cache: 'redis',
      host: 'h',
      port: 7000,
      db: 0,
      username: 'user',
    })
    assert.equal(parseCacheUrl('REDIS://h'), { cache: 'redis', host: 'h' }, 'the scheme is case-insensitive')
    assert.equal(
      parseCacheUrl('redis://:p@ss@h'),
      { cache: 'redis', host: 'h', password: 'p@ss' },
      'the last @ ends the user info',
    )
  },
)

test('parseCacheUrl: memory:// takes its options in the query', () => {
  assert.equal(parseCacheUrl('memory://'), { cache: 'memory' })
  assert.equal(
    parseCacheUrl('memory:///?ttl=10&namespace=app&maxSize=100&timeout=0.5&sweepInterval=2s&sweepBatch=50'),
    {
      cache: 'memory',
      ttl: 10,
      namespace: 'app',
      maxSize: 100,
      timeout: 0.5,
      sweepInterval: '2s',
      sweepBatch: 50,
    },
  )
  assert.equal(parseCacheUrl('memory://?namespace=a%20b+c&ttl=.5'), { cache: 'memory', namespace: 'a b c', ttl: 0.5 })
})

test('parseCacheUrl: memcached:// lists servers, with the default port where none is given', () => {
  assert.equal(parseCacheUrl('memcached://10.0.0.1:11212,cache.local,[::1]:11213?namespace=app&ttl=5'), {
    cache: 'memcached',
    servers: ['10.0.0.1:11212', 'cache.local:11211', '[::1]:11213'],
    namespace: 'app',
    ttl: 5,
  })
  assert.equal(parseCacheUrl('memcached://'), { cache: 'memcached' })
})

test('parseCacheUrl: an unknown query option is a TypeError naming it and the ones the scheme takes', () => {
  const cases: Array<[string, RegExp]> = [
    [
      'memory://?ttl=1&maxsize=3',
      new RegExp(
        'unknown option "maxsize" in a memory:// URL; the query takes: ' +
          'namespace, ttl, timeout, maxSize, maxBytes, policy, sweepInterval, sweepBatch',
      ),
    ],
    [
      'redis://h?db=2',
      /unknown option "db" in a redis:\/\/ URL; the query takes: namespace, ttl, timeout, connectTimeout/,
    ],
    [
      'memcached://h?maxSize=1',
      /unknown option "maxSize" in a memcached:\/\/ URL; the query takes: namespace, ttl, timeout$/,
    ],
    ['redis://h?ttl=1&ttl=2', /option "ttl" is given 2 times/],
    ['memory://?maxSize=ten', /option "maxSize" in a memory:\/\/ URL must be an integer; got "ten"/],
    ['memory://?maxSize=1.5', /must be an integer/],
  ]
  for (const [url, message] of cases) {
    const error = thrown(() => parseCacheUrl(url))
    assert.instance(error, TypeError, url)
    assert.match(error.message, message)
  }
  const duration = thrown(() => parseCacheUrl('memory://?ttl=soon'))
  assert.instance(duration, RangeError)
  assert.match(duration.message, /ttl in a memory:\/\/ URL must be a number of seconds/)
})

test(
  'parseCacheUrl: an unknown scheme is an InvalidCacheTypeError naming the schemes; a string that is no URL is a ' +
    'TypeError',
  () => {
    const error = thrown(() => parseCacheUrl('mongodb://h'))
    assert.instance(error, InvalidCacheTypeError)
    assert.match(
      error.message,
      /unknown cache URL scheme "mongodb:\/\/"; available: memory:\/\/, redis:\/\/, rediss:\/\/, memcached:\/\//,
    )
    for (const bad of ['127.0.0.1:6379', 'redis:/h', '']) {
      const e = thrown(() => parseCacheUrl(bad))
      assert.instance(e, TypeError, bad)
      assert.match(e.message, /not a cache URL/)
    }
    assert.match(
      thrown(() => parseCacheUrl(42 as never)).message,
      /must be a string such as redis:\/\/127\.0\.0\.1:6379\/0; got 42/,
    )
  },
)

test('parseCacheUrl: parts a scheme does not take are TypeErrors', () => {
  const cases: Array<[string, RegExp]> = [
    ['memory://localhost', /memory:\/\/ URL takes no host/],
    ['memory://u:p@', /memory:\/\/ URL takes no host, user, password/],
    ['memory:///db', /memory:\/\/ URL takes no host, user, password or path/],
    ['redis://a:1,b:2', /takes one host; for a Redis Cluster pass the cluster option/],
    ['redis://h/two', /path of a redis:\/\/ URL is the database number/],
    ['redis://h:0', /port out of range/],
    ['redis://h:65536', /port out of range/],
    ['redis://h:abc', /host that cannot be read/],
    ['redis://h#frag', /takes no #fragment/],
    ['redis://:%E0%A4%A@h', /malformed %-escape/],
    ['memcached://u:p@h:1', /memcached:\/\/ URL takes no user or password/],
    ['memcached://h:1/x', /memcached:\/\/ URL takes no path/],
    ['memcached://h:1,,h:2', /every server of a memcached:\/\/ URL needs a host/],
    [
      'redis://:pa/ss@h',
      /has an "@" after its host: characters such as \/ \? # @ : in a user or password must be percent-encoded/,
    ],
    ['redis://h?namespace=a@b', /has an "@" after its host/],
  ]
  for (const [url, message] of cases) {
    const error = thrown(() => parseCacheUrl(url))
    assert.instance(error, TypeError, url)
    assert.match(error.message, message)
  }
})

// ---------------------------------------------------------------------------
// Cache.fromUrl

test('Cache.fromUrl("memory://…") builds a memory cache with the query options, which take effect', async () => {
  const cache = Cache.fromUrl('memory://?maxSize=2&namespace=app&ttl=10&timeout=1')
  assert.instance(cache.backend, MemoryBackend)
  assert.instance(cache.serializer, NullSerializer)
  assert.is(cache.namespace, 'app')
  assert.is(cache.ttl, 10)
  assert.is(cache.timeout, 1)
  await cache.set('a', 1)
  await cache.set('b', 2)
  await cache.set('c', 3)
  assert.equal(await cache.multiGet(['a', 'b', 'c']), [undefined, 2, 3], 'maxSize 2 evicted the oldest entry')
  assert.is(Cache.fromUrl('memory://?ttl=250ms').ttl, 0.25)
})

test('Cache.fromUrl("redis://…") answers a Redis cache at once, with the URL options, without connecting', async () => {
  // Load the client first: a connection attempt must not be hidden by the time the import takes.
  await import('@redis/client')
  const probe = await countingServer()
  try {
    const cache = Cache.fromUrl(`redis://:secret@127.0.0.1:${probe.port}/2?timeout=1&namespace=app&ttl=5`)
    assert.instance(cache, Cache, 'synchronous: a cache, not a promise')
    assert.is(cache.namespace, 'app')
    assert.is(cache.timeout, 1)
    assert.is(cache.ttl, 5)
    assert.instance(cache.serializer, JsonSerializer)
    assert.is(cache.backend.name, `redis 127.0.0.1:${probe.port}`)
    const handler = new CacheHandler()
    handler.setConfig({
      default: { cache: 'memory' },
      r: { cache: 'redis', host: '127.0.0.1', port: probe.port, timeout: 1 },
    })
    const fromConfig = [handler.get('r'), handler.create('r')]
    await sleep(200)
    assert.is(probe.connections(), 0, 'no connection before the first command')
    // The probe does see a connection when there is one: a command makes it.
    const error = await rejectionError(cache.get('k'))
    assert.instance(error, BackendError)
    assert.ok(probe.connections() >= 1, 'the first command connects')
    await Promise.all([cache, ...fromConfig].map((c) => c.close()))
  } finally {
    probe.server.close()
  }
})

test('Cache.fromUrl: options go over the URL options; the cache class cannot be overridden', () => {
  const cache = Cache.fromUrl('memory://?namespace=url&ttl=10', {
    namespace: 'override',
    serializer: new JsonSerializer(),
    plugins: [new TimingPlugin()],
    maxSize: 5,
    timeout: undefined,
  })
  assert.is(cache.namespace, 'override')
  assert.is(cache.ttl, 10)
  assert.is(cache.timeout, 5)
  assert.instance(cache.serializer, JsonSerializer)
  assert.instance(cache.plugins[0], TimingPlugin)
  assert.instance(cache.backend, MemoryBackend)
  const error = thrown(() => Cache.fromUrl('memory://', { cache: 'redis' } as never))
  assert.instance(error, TypeError)
  assert.match(error.message, /the URL picks the cache class/)
  assert.instance(
    thrown(() => Cache.fromUrl('memory://', 'x' as never)),
    TypeError,
  )
  const unknown = thrown(() => Cache.fromUrl('memory://', { bogus: 1 }))
  assert.instance(unknown, TypeError)
  assert.match(unknown.message, /^\[oniocache\] a memory:\/\/ URL: MemoryCache: unknown option "bogus"/)
})

test('caches.fromUrl: overrides may be specs, as in a config', () => {
  const cache = new CacheHandler().fromUrl('memory://?namespace=url&ttl=10', {
    namespace: 'override',
    serializer: { class: 'JsonSerializer' },
    plugins: [{ class: 'TimingPlugin' }],
    maxSize: 5,
    timeout: undefined,
  })
  assert.is(cache.namespace, 'override')
  assert.is(cache.ttl, 10)
  assert.instance(cache.serializer, JsonSerializer)
  assert.instance(cache.plugins[0], TimingPlugin)
  assert.instance(cache.backend, MemoryBackend)
  const error = thrown(() => new CacheHandler().fromUrl('memory://', { cache: 'redis' } as never))
  assert.match(error.message, /the URL picks the cache class/)
})

test(
  'Cache.fromUrl("memcached://…") builds a Memcached cache with the servers; a "memcached" cache registered with ' +
    'caches replaces it',
  () => {
    const built = Cache.fromUrl('memcached://127.0.0.1:11299,127.0.0.1?namespace=app&timeout=1')
    assert.instance(built.serializer, JsonSerializer)
    assert.is(built.backend.name, 'memcached 127.0.0.1:11299,127.0.0.1:11211')
    assert.is(built.namespace, 'app')
    assert.is(built.timeout, 1)
    const unknown = thrown(() => Cache.fromUrl('mongodb://h'))
    assert.instance(unknown, InvalidCacheTypeError)
    assert.match(unknown.message, /available: memory:\/\/, redis:\/\/, rediss:\/\/, memcached:\/\/$/)

    const handler = new CacheHandler().register('memcached', RecordingCache)
    const cache = handler.fromUrl('memcached://a:1,b?namespace=app')
    assert.instance(cache, RecordingCache)
    assert.equal((cache as RecordingCache).given, { servers: ['a:1', 'b:11211'] })
    assert.is(cache.namespace, 'app')
    handler.setConfig({ default: { cache: 'memcached' } })
    assert.instance(handler.get('default'), RecordingCache)
  },
)

test('a password in a URL never appears in an error, its cause or its stack', async () => {
  const password = 'hunter2'
  const urls = [
    'redis://:hunter2@h:1/x',
    'redis://:hunter2@h:99999',
    'redis://:hunter2@h?bogus=1',
    'redis://:hunter2@h?ttl=-1',
    'redis://:hunter2@h?ttl=1&ttl=2',
    'redis://:hunter2@a,b',
    'redis://:hunter2@h#x',
    'redis://:hun/ter2@h',
    'redis://:hun?ter2@h',
    'redis://:hunter2%zz@h',
    'rediss://u:hunter2@[::1',
    'redis://:12?ttl=hunter2@h',
    'redis://:12/hunter2@h',
    'redis://:12#hunter2@h',
    'redis://:12?hunter2@h',
    'redis:/:hunter2@h',
    ':hunter2@h',
    'hunter2',
    'mongodb://:hunter2@h',
    'memcached://:hunter2@h',
    'memory://:hunter2@',
  ]
  for (const url of urls) {
    for (const build of [() => Cache.fromUrl(url), () => parseCacheUrl(url)]) {
      const error = thrown(build)
      const text = allText(error)
      assert.not.ok(
        text.includes(password) || text.includes('hun'),
        `${error.name} for ${url.replace(/hun.*ter2/, '<password>')} shows the password: ${error.message}`,
      )
    }
  }
  const fromOptions = thrown(() => Cache.fromUrl('redis://:hunter2@h', { bogus: 1, timeout: -1 }))
  assert.not.ok(allText(fromOptions).includes(password), fromOptions.message)
})

test(
  'a URL password reaches Redis (AUTH), the db and query options apply, and a wrong password fails without ' +
    'showing either password',
  async () => {
    // The harness checks readiness with an unauthenticated PING: set the password once it is up.
    const server = await startRedis()
    assert.is(await redisCommand(server.port, 'CONFIG', 'SET', 'requirepass', 'hunter2'), 'OK')
    const cache = Cache.fromUrl(`redis://:hunter2@127.0.0.1:${server.port}/3?namespace=app&ttl=60&timeout=2`)
    try {
      await cache.set('k', { a: 1 })
      assert.equal(await cache.get('k'), { a: 1 })
      assert.equal(await cache.raw('KEYS', '*'), ['app:k'], 'the namespace applies')
      assert.match(String(await cache.raw('CLIENT', 'INFO')), /\bdb=3\b/, 'the db from the path is selected')
      const ttl = Number(await cache.raw('TTL', 'app:k'))
      assert.ok(ttl > 50 && ttl <= 60, `ttl from the query: ${ttl}`)
    } finally {
      await cache.close()
    }
    const wrong = Cache.fromUrl(`redis://:wrong-pw-123@127.0.0.1:${server.port}/0?timeout=2`)
    try {
      const error = await rejectionError(wrong.get('k'))
      assert.instance(error, BackendError)
      const text = allText(error)
      assert.not.ok(text.includes('wrong-pw-123') || text.includes('hunter2'), error.message)
    } finally {
      await wrong.close()
      await server.stop()
    }
  },
)

// ---------------------------------------------------------------------------
// One URL grammar per scheme

/** What building from `build` gives: the error's class and message, or what the cache says of itself. */
function outcomeOf(build: () => Cache | RedisBackend | MemcachedBackend): string {
  try {
    const built = build()
    if (built instanceof Cache)
      return `${built.backend.name} ns=${built.namespace} ttl=${built.ttl} timeout=${built.timeout}`
    return built.name
  } catch (error) {
    return (
      `${(error as Error).name}: ` +
      `${(error as Error).message.replace(/^\[oniocache\] (a rediss?:\/\/ URL: |RedisCache: )?/, '')}`
    )
  }
}

test(
  'one Redis URL grammar: Cache.fromUrl, caches, parseCacheUrl, new RedisCache({ url }) and new RedisBackend({ ' +
    'url }) agree on every input',
  () => {
    const urls = [
      'redis://h',
      'redis://h:0',
      'redis://h:70000',
      'redis://h,h2',
      'redis://ho st',
      'redis://h:6380/2',
      'redis://h/x',
      'rediss://h',
      'redis://:pw@h/1?namespace=app&ttl=5&timeout=1',
      'redis://u:p%40ss@h',
      'redis://h?connectTimeout=2',
      'redis://h?bogus=1',
      'redis://[::1]:7000/3',
      'redis://[::1',
      'REDIS://H:1',
      'redis://h?ttl=-1',
      'redis://h#frag',
      'redis://:pw/x@h',
    ]
    for (const url of urls) {
      const fromUrl = outcomeOf(() => Cache.fromUrl(url))
      assert.is(
        outcomeOf(() => new CacheHandler().fromUrl(url)),
        fromUrl,
        `caches.fromUrl(${url})`,
      )
      assert.is(
        outcomeOf(() => new RedisCache({ url })),
        fromUrl,
        `new RedisCache({ url: ${url} })`,
      )
      const parsed = (() => {
        try {
          parseCacheUrl(url)
          return 'ok'
        } catch (error) {
          return (error as Error).name
        }
      })()
      assert.is(parsed === 'ok', !fromUrl.includes('Error:'), `parseCacheUrl(${url}) agrees`)
      // The backend alone takes no cache options: the same outcome, or the refusal that says so.
      const backend = outcomeOf(() => new RedisBackend({ url }))
      if (/[?&](namespace|ttl|timeout)=/.test(url) && !fromUrl.includes('Error:')) assert.match(backend, /cache option/)
      else
        assert.is(
          backend,
          fromUrl.includes('Error:')
            ? fromUrl.replace(/^(\w+): .*/, '$1') + backend.slice(backend.indexOf(':'))
            : fromUrl.split(' ns=')[0]!,
        )
    }
  },
)

test('one Memcached server grammar: the servers option and memcached:// URLs agree', () => {
  for (const server of ['h:1', 'h:0', 'h:70000', 'ho st:1', '[::1]:11211', 'h', ':1', 'h:1/x']) {
    const viaUrl = outcomeOf(() => Cache.fromUrl(`memcached://${server}`))
    const viaOption = outcomeOf(() => new MemcachedCache({ servers: [server] }))
    assert.is(
      viaUrl.includes('Error:'),
      viaOption.includes('Error:') && server !== 'h',
      `${server}: ${viaUrl} / ${viaOption}`,
    )
  }
})

// ---------------------------------------------------------------------------
// Importing the core does not load the Redis client

test(
  'importing the core, then building Redis and Memcached caches from a URL and from a config, loads neither ' +
    'backend module nor a client (child process)',
  async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'spec/support/fixtures/redis-client-probe.ts'], {
      cwd: root,
      env: childEnv(),
    })
    const report = JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>
    assert.equal(
      report.built,
      ['redis 127.0.0.1:1', 'redis 127.0.0.1:1', 'redis 127.0.0.1:1', 'memcached 127.0.0.1:1'],
      'the caches were built',
    )
    assert.is(report.sawCore, true, 'the probe logs the modules the core loads')
    assert.equal(report.afterImport, [], 'importing the core loaded a Redis or Memcached module')
    assert.equal(report.afterBuild, [], 'building caches loaded a Redis or Memcached module')
    assert.ok((report.afterClientImport as string[]).length > 0, 'the probe detects @redis/client once it is loaded')
    assert.is(report.afterMemcachedCommand, true, 'the first Memcached command loads the protocol client')
  },
)

test.run()

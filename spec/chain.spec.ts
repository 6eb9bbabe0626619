import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { watching } from '../lib/core/deadline.js'
import {
  BasePlugin,
  Cache,
  COMMANDS,
  type CommandName,
  type Context,
  HitMissRatioPlugin,
  JsonSerializer,
  KeyExistsError,
  MemoryCache,
  type Middleware,
  type Next,
  type Plugin,
  TimeoutError,
  TimingPlugin,
} from '../lib/index.js'
import { AsyncBackend, HangingBackend, rejection, rejects, SpyBackend, sleep } from './support/fixtures/backends.js'

const passThrough: Middleware = (_ctx, next) => next()

/** Records every `unhandledRejection` while `body` runs and for a few turns after it. */
async function withUnhandledWatch(body: () => Promise<void>): Promise<unknown[]> {
  const unhandled: unknown[] = []
  const listener = (reason: unknown): void => {
    unhandled.push(reason)
  }
  process.on('unhandledRejection', listener)
  try {
    await body()
    // Unhandled rejections are reported after microtasks drain; give them a few macrotasks.
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve))
    await sleep(20)
  } finally {
    process.off('unhandledRejection', listener)
  }
  return unhandled
}

/** Runs every command once on a cache, with arguments that succeed on a fresh memory store. */
function everyCommand(cache: Cache): Record<CommandName, () => Promise<unknown>> {
  return {
    add: () => cache.add('added', 'a'),
    get: () => cache.get('added'),
    getOrSet: () => cache.getOrSet('computed', async () => 'c'),
    invalidateTags: () => cache.invalidateTags(['t']),
    multiGet: () => cache.multiGet(['added', 'missing']),
    set: () => cache.set('s', 1),
    multiSet: () =>
      cache.multiSet([
        ['m1', 1],
        ['m2', 2],
      ]),
    delete: () => cache.delete('m2'),
    exists: () => cache.exists('m1'),
    increment: () => cache.increment('counter', 3),
    expire: () => cache.expire('s', 10),
    clear: () => cache.clear(),
    raw: () => cache.raw('has', 'x'),
    close: () => cache.close(),
  }
}

// ---------------------------------------------------------------------------
// Order and what middleware may do

test('plugins run in the order given, the first outermost, the core step innermost', async () => {
  const log: string[] = []
  const layer =
    (name: string): Middleware =>
    async (ctx, next) => {
      log.push(`${name}:pre result=${String(ctx.result)}`)
      await next()
      log.push(`${name}:post result=${String(ctx.result)}`)
    }
  const cache = new MemoryCache({ plugins: [layer('a'), layer('b'), layer('c')] })
  await cache.set('k', 'v')
  log.length = 0
  assert.is(await cache.get('k'), 'v')
  assert.equal(log, [
    'a:pre result=undefined',
    'b:pre result=undefined',
    'c:pre result=undefined',
    'c:post result=v',
    'b:post result=v',
    'a:post result=v',
  ])
})

test('a middleware may rewrite ctx.args before next(): the core uses the rewritten key', async () => {
  const alias: Middleware = (ctx, next) => {
    if (ctx.args.key === 'alias') ctx.args.key = 'real'
    return next()
  }
  const cache = new MemoryCache({ namespace: 'n', plugins: [alias] })
  await cache.set('alias', 1)
  assert.equal([...((await cache.raw('keys')) as Iterable<string>)], ['n:real'])
  assert.is(await cache.get('alias'), 1)
  assert.is(await cache.get('real'), 1)

  // Replacing the whole args object works too.
  const elsewhere: Middleware = (ctx, next) => {
    ctx.args = { ...ctx.args, namespace: 'other', value: 'rewritten' }
    return next()
  }
  const other = new MemoryCache({ plugins: [elsewhere] })
  await other.set('k', 'original')
  assert.is(await other.raw('get', 'other:k'), 'rewritten')
})

test('a middleware may replace ctx.result after next(): the caller receives it', async () => {
  const fallback: Middleware = async (ctx, next) => {
    await next()
    if (ctx.command === 'get' && ctx.result === undefined) ctx.result = 'fallback'
    if (ctx.command === 'delete') ctx.result = (ctx.result as number) + 100
  }
  const cache = new MemoryCache({ plugins: [fallback] })
  assert.is(await cache.get('missing'), 'fallback')
  await cache.set('k', 'v')
  assert.is(await cache.get('k'), 'v')
  assert.is(await cache.delete('k'), 101)
})

test('a middleware may catch an error from next() and answer instead', async () => {
  const lenient: Middleware = async (ctx, next) => {
    try {
      await next()
    } catch (error) {
      if (!(error instanceof KeyExistsError)) throw error
      ctx.result = false
    }
  }
  const cache = new MemoryCache({ plugins: [lenient] })
  assert.is(await cache.add('k', 1), true)
  assert.is(await cache.add('k', 2), false)
  assert.is(await cache.get('k'), 1)
  // Other errors still reach the caller.
  await rejects(() => cache.set('k', undefined), TypeError, 'set undefined')
})

test('a middleware may answer alone without next(): the backend is not touched', async () => {
  const backend = new SpyBackend()
  const answer: Middleware = (ctx) => {
    ctx.result = ctx.command === 'get' ? `answered ${ctx.args.key}` : true
  }
  const cache = new Cache({ backend, plugins: [answer] })
  assert.is(await cache.get('k'), 'answered k')
  assert.is(await cache.set('k', 1), true)
  assert.is(await cache.clear(), true)
  assert.equal(backend.calls, [])

  const memory = new MemoryCache({ plugins: [answer] })
  await memory.set('k', 1)
  await memory.multiSet([['a', 1]])
  assert.is(memory.backend.size, 0)
})

test('ctx carries cache, command and the args exactly as the caller gave them', async () => {
  const seen: Array<{ command: CommandName; args: Context['args']; cache: Cache }> = []
  const record: Middleware = async (ctx, next) => {
    seen.push({ command: ctx.command, args: { ...ctx.args }, cache: ctx.cache })
    await next()
  }
  const cache = new Cache({ namespace: 'ns', plugins: [record], serializer: new JsonSerializer() })
  const value = { deep: { list: [1, 2] } }
  const keys = ['a', 'b']
  const pairs = new Map<string, unknown>([['p', value]])
  const dumps = (v: unknown): string => JSON.stringify(v)
  await cache.set('k', value, { ttl: '5m', dumps, timeout: 2 })
  await cache.get('k', { default: 'd', namespace: 'other' })
  await cache.multiGet(keys)
  await cache.multiSet(pairs, { ttl: 3 })
  await cache.increment('n', 4)
  await cache.expire('k', null)
  await cache.raw('has', 'ns:k')

  assert.ok(seen.every((s) => s.cache === cache))
  assert.equal(
    seen.map((s) => s.command),
    ['set', 'get', 'multiGet', 'multiSet', 'increment', 'expire', 'raw'],
  )
  const [set, get, multiGet, multiSet, increment, expire, raw] = seen.map((s) => s.args)
  assert.is(set!.key, 'k', 'the key is not built')
  assert.is(set!.value, value, 'the value is not serialized')
  assert.is(set!.ttl, '5m')
  assert.is(set!.dumps, dumps)
  assert.is(set!.timeout, 2)
  assert.is(set!.namespace, undefined)
  assert.is(get!.key, 'k')
  assert.is(get!.default, 'd')
  assert.is(get!.namespace, 'other')
  assert.is(multiGet!.keys, keys)
  assert.is(multiSet!.pairs, pairs)
  assert.is(multiSet!.ttl, 3)
  assert.is(increment!.key, 'n')
  assert.is(increment!.delta, 4)
  assert.is(expire!.ttl, null)
  assert.is(raw!.command, 'has')
  assert.equal(raw!.args, ['ns:k'])
  // The backend still received the built key and the serialized value.
  assert.is(await cache.raw('get', 'ns:k'), JSON.stringify(value))
})

test('ctx.result after next() is what the caller receives', async () => {
  const results: unknown[] = []
  const record: Middleware = async (ctx, next) => {
    await next()
    results.push(ctx.result)
  }
  const cache = new MemoryCache({ plugins: [record] })
  const value = { v: 1 }
  await cache.set('k', value)
  const got = await cache.get('k')
  const many = await cache.multiGet(['k', 'x'])
  assert.is(results[0], true)
  assert.is(results[1], got)
  assert.is(got, value)
  assert.is(results[2], many)
  assert.equal(many, [value, undefined])
})

test('ctx.state is a scratch object shared by the layers of one command, fresh for each command', async () => {
  const states: Array<Record<string, unknown>> = []
  const outer: Middleware = async (ctx, next) => {
    assert.equal(ctx.state, {}, 'fresh for each command')
    ctx.state.started = ctx.args.key
    await next()
    states.push(ctx.state)
  }
  const inner: Middleware = (ctx, next) => {
    ctx.state.seenByInner = ctx.state.started
    return next()
  }
  const cache = new MemoryCache({ plugins: [outer, inner] })
  await cache.get('one')
  await cache.get('two')
  assert.equal(states, [
    { started: 'one', seenByInner: 'one' },
    { started: 'two', seenByInner: 'two' },
  ])
  assert.is.not(states[0], states[1])
})

// ---------------------------------------------------------------------------
// Changing the plugin list

test('cache.use(p) answers the cache and takes effect from the next command', async () => {
  const seen: string[] = []
  const late: Middleware = (ctx, next) => {
    seen.push(`late:${ctx.args.key}`)
    return next()
  }
  const installer: Middleware = async (ctx, next) => {
    if (ctx.args.key === 'first') assert.is(ctx.cache.use(late), ctx.cache)
    await next()
  }
  const cache = new MemoryCache({ plugins: [installer] })
  await cache.get('first')
  assert.equal(seen, [], 'the command that installed it did not run it')
  await cache.get('second')
  assert.equal(seen, ['late:second'])
  assert.is(cache.plugins.length, 2)
  assert.is(cache.plugins[0], installer)
  assert.is(cache.plugins[1], late)
})

test('cache.use appends: each new plugin sits inside the earlier ones', async () => {
  const log: string[] = []
  const layer =
    (name: string): Middleware =>
    async (_ctx, next) => {
      log.push(name)
      await next()
      log.push(`/${name}`)
    }
  const cache = new MemoryCache()
  const a = layer('a')
  const b = layer('b')
  assert.is(cache.use(a).use(b), cache)
  await cache.get('k')
  assert.equal(log, ['a', 'b', '/b', '/a'])
  assert.equal([...cache.plugins], [a, b])
})

test('cache.plugins is readable and assigning [...cache.plugins, p] adds p from the next command', async () => {
  const timing = new TimingPlugin()
  const cache = new MemoryCache({ plugins: [timing] })
  assert.equal([...cache.plugins], [timing])
  let calls = 0
  const counter: Plugin = {
    middleware(_ctx, next) {
      calls++
      return next()
    },
  }
  await cache.get('k')
  cache.plugins = [...cache.plugins, counter]
  assert.equal([...cache.plugins], [timing, counter])
  await cache.get('k')
  assert.is(calls, 1)
  cache.plugins = []
  await cache.get('k')
  assert.is(calls, 1, 'removed plugins no longer run')
  assert.is(cache.plugins.length, 0)
})

test('the chain is composed when the plugin list changes, not on every command', async () => {
  let reads = 0
  const plugin: Plugin = {
    get middleware() {
      reads++
      return (_ctx: Context, next: Next) => next()
    },
  }
  const cache = new MemoryCache({ plugins: [plugin] })
  await cache.get('k')
  const afterFirst = reads
  for (let i = 0; i < 20; i++) await cache.get('k')
  assert.is(reads, afterFirst, 'no recomposition per command')
  cache.plugins = [plugin]
  await cache.get('k')
  assert.ok(reads > afterFirst, 'recomposed after the list changed')
})

test('plugins may be bare middleware functions or objects with a middleware method (called with this)', async () => {
  class Prefixer implements Plugin {
    constructor(readonly prefix: string) {}
    async middleware(ctx: Context, next: Next): Promise<void> {
      await next()
      if (typeof ctx.result === 'string') ctx.result = this.prefix + ctx.result
    }
  }
  const bare: Middleware = async (ctx, next) => {
    await next()
    if (typeof ctx.result === 'string') ctx.result = ctx.result + '!'
  }
  const cache = new MemoryCache({ plugins: [new Prefixer('>'), bare] })
  await cache.set('k', 'v')
  assert.is(await cache.get('k'), '>v!')
})

test('a value that is not a plugin is a TypeError, and the previous chain stays', async () => {
  for (const bad of [42, null, undefined, 'plugin', {}, { middleware: 'nope' }]) {
    assert.throws(
      () => new MemoryCache({ plugins: [bad as never] }),
      (e: unknown) => e instanceof TypeError,
      `constructor ${String(bad)}`,
    )
  }
  let calls = 0
  const counting: Middleware = (_ctx, next) => {
    calls++
    return next()
  }
  const cache = new MemoryCache({ plugins: [counting] })
  assert.throws(
    () => cache.use({} as never),
    (e: unknown) => e instanceof TypeError,
  )
  assert.throws(
    () => {
      cache.plugins = [counting, 7 as never]
    },
    (e: unknown) => e instanceof TypeError,
  )
  assert.throws(
    () => {
      cache.plugins = counting as never
    },
    (e: unknown) => e instanceof TypeError,
  )
  assert.equal([...cache.plugins], [counting])
  await cache.get('k')
  assert.is(calls, 1, 'the old chain still runs, once')
})

// ---------------------------------------------------------------------------
// Timeout

test('a slow middleware past the timeout: TimeoutError (not early, not late), ctx.signal aborted', async () => {
  let seen: Context | undefined
  let early: AbortSignal | undefined
  let finish!: () => void
  const finished = new Promise<void>((resolve) => (finish = resolve))
  const slow: Middleware = async (ctx, next) => {
    seen = ctx
    early = ctx.signal
    assert.is(early.aborted, false)
    await sleep(300)
    finish()
    await next()
  }
  const cache = new MemoryCache({ plugins: [slow], timeout: 0.05 })
  const started = performance.now()
  const error = await rejection(cache.set('k', 1))
  const elapsed = performance.now() - started
  assert.instance(error, TimeoutError)
  assert.ok(error instanceof TimeoutError)
  assert.is(error.name, 'TimeoutError')
  assert.instance(error, Error)
  assert.ok(elapsed >= 49, `not before the timeout (${elapsed.toFixed(1)} ms)`)
  assert.ok(elapsed < 200, `well before the middleware finished (${elapsed.toFixed(1)} ms)`)
  assert.ok(early !== undefined && seen !== undefined)
  assert.is(early.aborted, true, 'a signal read before the timeout is aborted')
  assert.is(early.reason, error, 'with the TimeoutError as reason')
  const late = seen.signal
  assert.is(late.aborted, true, 'a signal read after the timeout is aborted')
  assert.instance(late.reason, TimeoutError)
  await finished
})

test('a signal first read after the timeout carries the very TimeoutError the caller received', async () => {
  let seen: Context | undefined
  let finish!: () => void
  const finished = new Promise<void>((resolve) => (finish = resolve))
  const slow: Middleware = async (ctx) => {
    seen = ctx // the signal is not read before the timeout
    await sleep(100)
    finish()
  }
  const cache = new MemoryCache({ plugins: [slow], timeout: 0.02 })
  const error = await rejection(cache.get('k'))
  assert.instance(error, TimeoutError)
  assert.ok(seen !== undefined)
  assert.is(seen.signal.aborted, true)
  assert.is(seen.signal.reason, error)
  await finished
})

test('the timeout wraps the whole chain: a slow outermost plugin times out too', async () => {
  const slowOuter: Middleware = async (_ctx, next) => {
    await sleep(150)
    await next()
  }
  const cache = new MemoryCache({ plugins: [slowOuter, new TimingPlugin()], timeout: '40ms' })
  const started = performance.now()
  await rejects(() => cache.get('k'), TimeoutError, 'get')
  assert.ok(performance.now() - started < 140)
  await sleep(150)
})

test('the signal of a command that finished in time is never aborted', async () => {
  let signal: AbortSignal | undefined
  const grab: Middleware = (ctx, next) => {
    signal = ctx.signal
    return next()
  }
  const cache = new MemoryCache({ plugins: [grab], timeout: 0.03 })
  assert.is(await cache.set('k', 1), true)
  await sleep(80)
  assert.ok(signal !== undefined)
  assert.is(signal.aborted, false)
})

test('a per-call timeout overrides the cache timeout', async () => {
  const slow: Middleware = async (_ctx, next) => {
    await sleep(120)
    await next()
  }
  const lenient = new MemoryCache({ plugins: [slow], timeout: 0.03 })
  assert.is(await lenient.set('k', 1, { timeout: 1 }), true)
  assert.is(await lenient.get('k', { timeout: '1s' }), 1)

  const strict = new MemoryCache({ plugins: [slow], timeout: 5 })
  const started = performance.now()
  const error = await rejects(() => strict.get('k', { timeout: 0.03 }), TimeoutError, 'get')
  const elapsed = performance.now() - started
  assert.ok(elapsed >= 29 && elapsed < 110, `${elapsed.toFixed(1)} ms`)
  assert.is(error.timeout, 0.03)
  await rejects(() => strict.exists('k', { timeout: '30ms' }), TimeoutError, 'exists')
  await sleep(130)
})

test('timeout 0 or null disables it, per call and per cache', async () => {
  const slow: Middleware = async (_ctx, next) => {
    await sleep(80)
    await next()
  }
  const bounded = new MemoryCache({ plugins: [slow], timeout: 0.02 })
  assert.is(await bounded.set('a', 1, { timeout: 0 }), true)
  assert.is(await bounded.get('a', { timeout: null }), 1)
  for (const none of [0, null]) {
    const unbounded = new MemoryCache({ plugins: [slow], timeout: none })
    assert.is(await unbounded.set('b', 2), true)
    bounded.timeout = none
    assert.is(await bounded.get('a'), 1)
    bounded.timeout = 0.02
  }
})

test('many commands in flight, finishing in any order, are each bounded by their own timeout', async () => {
  const delays: Record<string, number> = { a: 250, b: 5, c: 250, d: 20, e: 170 }
  const slow: Middleware = async (ctx, next) => {
    await sleep(delays[ctx.args.key!] ?? 0)
    await next()
  }
  const cache = new MemoryCache({ plugins: [slow], timeout: 1 })
  await cache.multiSet(
    [
      ['a', 'A'],
      ['b', 'B'],
      ['c', 'C'],
      ['d', 'D'],
      ['e', 'E'],
    ],
    { timeout: 0 },
  )
  const settled: string[] = []
  const track = (key: string, promise: Promise<unknown>): Promise<unknown> =>
    promise.then(
      (value) => {
        settled.push(`${key}=${String(value)}`)
        return value
      },
      (error: unknown) => {
        settled.push(`${key}:${error instanceof TimeoutError ? 'timeout' : String(error)}`)
        return error
      },
    )
  const results = await Promise.all([
    track('a', cache.get('a', { timeout: 0.06 })),
    track('b', cache.get('b')),
    track('c', cache.get('c', { timeout: 0.11 })),
    track('d', cache.get('d')),
    track('e', cache.get('e', { timeout: 0 })),
  ])
  assert.instance(results[0], TimeoutError)
  assert.is(results[1], 'B')
  assert.instance(results[2], TimeoutError)
  assert.is(results[3], 'D')
  assert.is(results[4], 'E')
  assert.equal(settled, ['b=B', 'd=D', 'a:timeout', 'c:timeout', 'e=E'])
  await sleep(100) // a and c finish their late work
})

test('work finishing or failing after a timeout leaves no unhandled rejection', async () => {
  const unhandled = await withUnhandledWatch(async () => {
    // A middleware that throws once it wakes up.
    const throwsLate: Middleware = async () => {
      await sleep(60)
      throw new Error('late failure')
    }
    // A middleware that rejects with the signal's reason as soon as it is aborted.
    const abortAware: Middleware = (ctx) =>
      new Promise<void>((_resolve, reject) => {
        ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error))
      })
    // A core step that fails after the timeout: add on an existing key, slow backend.
    const slowBackend = new AsyncBackend({ delayMs: 60 })
    const backed = new Cache({ backend: slowBackend, timeout: 0.02 })
    const setup = new Cache({ backend: slowBackend })
    await setup.set('exists', 1)
    await setup.set('text', 'abc')

    const a = new MemoryCache({ plugins: [throwsLate], timeout: 0.02 })
    const b = new MemoryCache({ plugins: [abortAware], timeout: 0.02 })
    const errors = await Promise.all([
      rejection(a.get('k')),
      rejection(b.get('k')),
      rejection(backed.add('exists', 2)),
      rejection(backed.increment('text')),
    ])
    errors.forEach((error, i) => {
      assert.instance(error, TimeoutError, `command ${i}`)
    })
    await sleep(100) // the late work finishes and fails here
  })
  assert.equal(unhandled, [])
})

// ---------------------------------------------------------------------------
// Async backends

test('an async backend (promises, synchronous unset) works for every command, with or without plugins', async () => {
  for (const plugins of [[], [passThrough]]) {
    const backend = new AsyncBackend()
    const cache = new Cache({ backend, plugins, namespace: 'as' })
    assert.is(await cache.add('a', { v: 1 }), true)
    await rejects(() => cache.add('a', 2), KeyExistsError, 'add existing')
    assert.equal(await cache.get('a'), { v: 1 })
    assert.is(await cache.get('missing', { default: 'd' }), 'd')
    assert.is(await cache.set('s', 'str'), true)
    assert.is(
      await cache.multiSet([
        ['m1', 1],
        ['m2', null],
      ]),
      true,
    )
    assert.equal(await cache.multiGet(['s', 'nope', 'm1', 'm2']), ['str', undefined, 1, null])
    assert.is(await cache.exists('m1'), true)
    assert.is(await cache.delete('m1'), 1)
    assert.is(await cache.delete('m1'), 0)
    assert.is(await cache.exists('m1'), false)
    assert.is(await cache.increment('n'), 1)
    assert.is(await cache.increment('n', 9), 10)
    await rejects(() => cache.increment('s'), TypeError, 'increment a string')
    assert.is(await cache.expire('s', 5), true)
    assert.is(await cache.expire('nope', 5), false)
    assert.is(await cache.raw('has', 'as:s'), true)
    assert.is(await cache.clear(), true)
    assert.is(await cache.exists('s'), false)
    assert.is(await cache.close(), undefined)
    assert.is(await cache.set('after-close', 1), true)
    await rejects(() => cache.get(5 as never), TypeError, 'non-string key')

    const sets = backend.calls.filter(([method]) => method === 'set')
    assert.equal(sets[0], ['set', 'as:s', '"str"', 0, undefined], 'built key, JSON-serialized value')
    assert.ok(backend.calls.some(([method, prefix]) => method === 'clear' && prefix === 'as:'))
  }
})

test('a bare middleware reads ctx.took after next() in seconds', async () => {
  const took: number[] = []
  const read: Middleware = async (ctx, next) => {
    await next()
    took.push(ctx.took)
  }
  const cache = new Cache({ backend: new AsyncBackend({ delayMs: 30 }), plugins: [read] })
  await cache.get('k')
  assert.is(took.length, 1)
  assert.ok(took[0]! >= 0.025 && took[0]! < 1, `took ${took[0]} s`)
})

test('a hanging async backend call times out, for every command at once', async () => {
  const backend = new HangingBackend()
  try {
    const cache = new Cache({ backend, timeout: 0.03 })
    const started = performance.now()
    const calls = everyCommand(cache)
    // getOrSet bounds its reads and writes itself: a hung store is a failing one, and the factory answers.
    const bounded = COMMANDS.filter((command) => command !== 'getOrSet')
    const [computed, ...errors] = await Promise.all([
      calls.getOrSet(),
      ...bounded.map((command) => rejection(calls[command]())),
    ])
    const elapsed = performance.now() - started
    assert.is(computed, 'c')
    errors.forEach((error, i) => {
      assert.instance(error, TimeoutError, bounded[i])
      assert.is((error as TimeoutError).command, bounded[i])
    })
    assert.ok(elapsed >= 29 && elapsed < 500, `${elapsed.toFixed(1)} ms`)
    // getOrSet reaches the backend with its read and then its write; every other command with its namesake.
    const reached = [...bounded.map((command) => (command === 'invalidateTags' ? 'multiSet' : command)), 'get', 'set']
    assert.equal([...backend.calls].sort(), reached.sort(), 'every command reached the backend')
    // Through plugins too.
    cache.use(passThrough)
    await rejects(() => cache.get('k'), TimeoutError, 'get through a plugin')
  } finally {
    backend.release()
  }
})

// ---------------------------------------------------------------------------
// BasePlugin

const cap = (command: CommandName): string => command[0]!.toUpperCase() + command.slice(1)

class Recorder extends BasePlugin {
  readonly calls: string[] = []
  readonly posts: Array<{ command: CommandName; result: unknown; took: number }> = []
  override pre(ctx: Context): void {
    this.calls.push(`pre:${ctx.command}`)
  }
  override post(ctx: Context): void {
    this.calls.push(`post:${ctx.command}`)
    this.posts.push({ command: ctx.command, result: ctx.result, took: ctx.took })
  }
  override preAdd(): void {
    this.calls.push('preAdd')
  }
  override postAdd(): void {
    this.calls.push('postAdd')
  }
  override preGet(): void {
    this.calls.push('preGet')
  }
  override postGet(): void {
    this.calls.push('postGet')
  }
  override preInvalidateTags(): void {
    this.calls.push('preInvalidateTags')
  }
  override postInvalidateTags(): void {
    this.calls.push('postInvalidateTags')
  }
  override preGetOrSet(): void {
    this.calls.push('preGetOrSet')
  }
  override postGetOrSet(): void {
    this.calls.push('postGetOrSet')
  }
  override preMultiGet(): void {
    this.calls.push('preMultiGet')
  }
  override postMultiGet(): void {
    this.calls.push('postMultiGet')
  }
  override preSet(): void {
    this.calls.push('preSet')
  }
  override postSet(): void {
    this.calls.push('postSet')
  }
  override preMultiSet(): void {
    this.calls.push('preMultiSet')
  }
  override postMultiSet(): void {
    this.calls.push('postMultiSet')
  }
  override preDelete(): void {
    this.calls.push('preDelete')
  }
  override postDelete(): void {
    this.calls.push('postDelete')
  }
  override preExists(): void {
    this.calls.push('preExists')
  }
  override postExists(): void {
    this.calls.push('postExists')
  }
  override preIncrement(): void {
    this.calls.push('preIncrement')
  }
  override postIncrement(): void {
    this.calls.push('postIncrement')
  }
  override preExpire(): void {
    this.calls.push('preExpire')
  }
  override postExpire(): void {
    this.calls.push('postExpire')
  }
  override preClear(): void {
    this.calls.push('preClear')
  }
  override postClear(): void {
    this.calls.push('postClear')
  }
  override preRaw(): void {
    this.calls.push('preRaw')
  }
  override postRaw(): void {
    this.calls.push('postRaw')
  }
  override preClose(): void {
    this.calls.push('preClose')
  }
  override postClose(): void {
    this.calls.push('postClose')
  }
}

test('BasePlugin: pre, pre<Command>, inner layers, post<Command>, post — for every command', async () => {
  const recorder = new Recorder()
  const core: Middleware = async (ctx, next) => {
    recorder.calls.push(`inner:${ctx.command}`)
    await next()
  }
  const cache = new MemoryCache({ plugins: [recorder, core] })
  const calls = everyCommand(cache)
  for (const command of COMMANDS) {
    recorder.calls.length = 0
    await calls[command]()
    assert.equal(
      recorder.calls,
      [`pre:${command}`, `pre${cap(command)}`, `inner:${command}`, `post${cap(command)}`, `post:${command}`],
      command,
    )
  }
})

test('BasePlugin post hooks see ctx.result and ctx.took (seconds, > 0)', async () => {
  const recorder = new Recorder()
  const cache = new MemoryCache({ plugins: [recorder] })
  const calls = everyCommand(cache)
  const results = new Map<CommandName, unknown>()
  for (const command of COMMANDS) results.set(command, await calls[command]())
  assert.equal(
    recorder.posts.map((p) => p.command),
    [...COMMANDS],
  )
  for (const post of recorder.posts) {
    assert.equal(post.result, results.get(post.command), post.command)
    assert.ok(post.took > 0 && post.took < 1, `${post.command} took ${post.took}`)
  }
  assert.equal(recorder.posts.find((p) => p.command === 'multiGet')!.result, ['a', undefined])
  assert.is(recorder.posts.find((p) => p.command === 'increment')!.result, 3)

  // took is the seconds its own next() took.
  class Took extends BasePlugin {
    took = 0
    override postGet(ctx: Context): void {
      this.took = ctx.took
    }
  }
  const took = new Took()
  const slow = new MemoryCache({
    plugins: [
      took,
      async (_ctx: Context, next: Next) => {
        await sleep(30)
        await next()
      },
    ],
  })
  await slow.get('k')
  assert.ok(took.took >= 0.025 && took.took < 1, `took ${took.took}`)
})

test(
  'ctx.took is fixed when next() returns: a post hook after an async post<Command> hook sees ' + "next()'s time only",
  async () => {
    class LateReader extends BasePlugin {
      took = -1
      override async postGet(): Promise<void> {
        await sleep(50)
      }
      override post(ctx: Context): void {
        this.took = ctx.took
      }
    }
    const reader = new LateReader()
    await new MemoryCache({ plugins: [reader] }).get('k')
    assert.ok(reader.took >= 0 && reader.took < 0.03, `post saw took = ${reader.took} s, but next() took microseconds`)
  },
)

test('ctx.took is fixed when next() returns: a subclass with an async hook times next() only', async () => {
  class AuditedTiming extends TimingPlugin {
    override async postGet(): Promise<void> {
      await sleep(50)
    }
  }
  const timing = new AuditedTiming()
  await new MemoryCache({ plugins: [timing] }).get('k')
  assert.ok(timing.profiling.get_max < 0.03, `get_max = ${timing.profiling.get_max} s`)
})

test(
  "ctx.took is fixed when next() returns: a bare middleware reading it later (BasePlugin inside) sees next()'s " +
    'time only',
  async () => {
    let outerTook = -1
    const outer: Middleware = async (ctx, next) => {
      await next()
      await sleep(50)
      outerTook = ctx.took
    }
    class Inner extends BasePlugin {
      override postGet(): void {}
    }
    await new MemoryCache({ plugins: [outer, new Inner()] }).get('k')
    assert.ok(outerTook >= 0 && outerTook < 0.03, `outer middleware saw took = ${outerTook} s`)
  },
)

test(
  'a BasePlugin subclass with its own middleware reads ctx.took after next() as the ' + "inner layers' time",
  async () => {
    class Custom extends BasePlugin {
      took = -1
      override async middleware(ctx: Context, next: Next): Promise<void> {
        await next()
        this.took = ctx.took
      }
    }
    const custom = new Custom()
    const cache = new Cache({ backend: new AsyncBackend({ delayMs: 30 }), plugins: [custom] })
    await cache.get('k')
    assert.ok(custom.took >= 0.025 && custom.took < 1, `took ${custom.took} s around a 30 ms backend call`)
  },
)

test('BasePlugin awaits async hooks: pre may rewrite args late, post may rewrite the result', async () => {
  class Slow extends BasePlugin {
    override async preSet(ctx: Context): Promise<void> {
      await sleep(20)
      ctx.args.value = `${String(ctx.args.value)} (checked)`
    }
    override async postGet(ctx: Context): Promise<void> {
      await sleep(20)
      ctx.result = `${String(ctx.result)} (post)`
    }
  }
  const cache = new MemoryCache({ plugins: [new Slow()] })
  await cache.set('k', 'v')
  assert.is(await cache.raw('get', 'k'), 'v (checked)')
  assert.is(await cache.get('k'), 'v (checked) (post)')
})

test('a BasePlugin pre hook that throws rejects the command and the backend is untouched', async () => {
  class Guard extends BasePlugin {
    override preSet(ctx: Context): void {
      if (ctx.args.key === 'forbidden') throw new RangeError('forbidden key')
    }
    override async preDelete(): Promise<void> {
      await sleep(5)
      throw new Error('no deletes')
    }
  }
  const backend = new SpyBackend()
  const cache = new Cache({ backend, plugins: [new Guard()] })
  const error = await rejects(() => cache.set('forbidden', 1), RangeError, 'set')
  assert.is(error.message, 'forbidden key')
  await rejects(() => cache.delete('k'), Error, 'delete')
  assert.equal(backend.calls, [])
  assert.is(await cache.set('fine', 1), true)
  assert.is(backend.calls.length, 1)
})

test('consecutive BasePlugins and bare middleware keep the onion order, sync and async hooks mixed', async () => {
  const calls: string[] = []
  class Named extends BasePlugin {
    constructor(
      readonly label: string,
      readonly slow: boolean,
    ) {
      super()
    }
    override preGet(): void | Promise<void> {
      calls.push(`${this.label}:pre`)
      return this.slow ? sleep(5) : undefined
    }
    override postGet(): void | Promise<void> {
      calls.push(`${this.label}:post`)
      return this.slow ? sleep(5) : undefined
    }
  }
  const bare: Middleware = async (_ctx, next) => {
    calls.push('bare:pre')
    await next()
    calls.push('bare:post')
  }
  const want = ['a:pre', 'b:pre', 'bare:pre', 'c:pre', 'd:pre', 'd:post', 'c:post', 'bare:post', 'b:post', 'a:post']
  for (const backend of [undefined, new AsyncBackend({ delayMs: 2 })]) {
    const plugins = [new Named('a', false), new Named('b', true), bare, new Named('c', true), new Named('d', false)]
    const cache = backend === undefined ? new MemoryCache({ plugins }) : new Cache({ backend, plugins })
    calls.length = 0
    await cache.get('k')
    assert.equal(calls, want, backend === undefined ? 'memory' : 'async backend')
    calls.length = 0
    const only =
      backend === undefined
        ? new MemoryCache({ plugins: [plugins[0]!, plugins[1]!, plugins[3]!] })
        : new Cache({ backend, plugins: [plugins[0]!, plugins[1]!, plugins[3]!] })
    await only.get('k')
    assert.equal(calls, ['a:pre', 'b:pre', 'c:pre', 'c:post', 'b:post', 'a:post'], 'BasePlugins only')
  }
})

test(
  "BasePlugins with post hooks only: innermost post first, and each timed plugin's took includes the inner " +
    "plugins' post hooks",
  async () => {
    const calls: string[] = []
    class Post extends BasePlugin {
      took = -1
      constructor(
        readonly label: string,
        readonly delayMs: number,
        override readonly timesNext: boolean,
      ) {
        super()
      }
      override postGet(ctx: Context): void | Promise<void> {
        calls.push(`${this.label}:postGet`)
        this.took = ctx.took
        return this.delayMs > 0 ? sleep(this.delayMs) : undefined
      }
      override post(): void {
        calls.push(`${this.label}:post`)
      }
    }
    const bare: Middleware = async (_ctx, next) => {
      await next()
      calls.push('bare:after')
    }
    for (const [backend, withBare] of [
      [undefined, false],
      [new AsyncBackend({ delayMs: 2 }), false],
      [undefined, true],
      [new AsyncBackend({ delayMs: 2 }), true],
    ] as const) {
      const outer = new Post('outer', 0, true)
      const middle = new Post('middle', 30, true)
      const untimed = new Post('untimed', 0, false)
      const inner = new Post('inner', 0, true)
      // With a bare middleware between them the two groups sit in a koa-compose chain.
      const plugins = withBare ? [outer, middle, bare, untimed, inner] : [outer, middle, untimed, inner]
      const cache = backend === undefined ? new MemoryCache({ plugins }) : new Cache({ backend, plugins })
      calls.length = 0
      await cache.get('k')
      const where = backend === undefined ? 'memory' : 'async backend'
      const label = `${where}${withBare ? ', bare middleware between' : ''}`
      const want = [
        'inner:postGet',
        'inner:post',
        'untimed:postGet',
        'untimed:post',
        'middle:postGet',
        'middle:post',
        'outer:postGet',
        'outer:post',
      ]
      if (withBare) want.splice(4, 0, 'bare:after')
      assert.equal(calls, want, label)
      assert.ok(inner.took >= 0 && inner.took < 0.025, `${label}: inner took ${inner.took}`)
      assert.is(untimed.took, inner.took, `${label}: the untimed plugin sees the inner plugin's figure`)
      assert.ok(middle.took >= inner.took && middle.took < 0.025, `${label}: middle took ${middle.took}`)
      assert.ok(
        outer.took >= middle.took + 0.025,
        `${label}: outer's next() includes middle's 30 ms post hook: ${outer.took}`,
      )
    }
  },
)

test(
  'sync BasePlugin hooks on the memory backend finish the command before its promise is returned; nothing is ' +
    'watched',
  async () => {
    const seen: string[] = []
    class Sync extends BasePlugin {
      override preGet(): void {
        seen.push('pre')
      }
      override postGet(ctx: Context): void {
        seen.push(`post ${String(ctx.result)}`)
      }
    }
    const cache = new MemoryCache({ plugins: [new Sync(), new TimingPlugin(), new HitMissRatioPlugin()] })
    await cache.set('k', 'v')
    const promise = cache.get('k')
    assert.equal(seen, ['pre', 'post v'], 'the hooks ran synchronously')
    assert.is(watching(), 0, 'a command that already finished is not watched for its timeout')
    assert.is(await promise, 'v')
    assert.equal(cache.hitMissRatio, { hits: 1, total: 1, hitRatio: 1 })
    assert.is(cache.profiling!.get_total, 1)
  },
)

test('a BasePlugin hook that goes async after a sync one is still bounded by the timeout', async () => {
  class LateHang extends BasePlugin {
    override pre(): void {}
    override preGet(): Promise<void> {
      return new Promise(() => {})
    }
  }
  const cache = new MemoryCache({ plugins: [new TimingPlugin(), new LateHang()], timeout: 0.05 })
  const keepAlive = setTimeout(() => {}, 5_000) // the deadline timer is unref'd and the hung hook holds nothing
  const started = performance.now()
  await rejects(() => cache.get('k'), TimeoutError, 'get')
  clearTimeout(keepAlive)
  assert.ok(performance.now() - started >= 45, 'not early')
  assert.is(watching(), 0, 'the expired command left the deadline list')
})

test('a throwing sync hook rejects (never throws); a throwing post hook leaves the write done', async () => {
  class Throws extends BasePlugin {
    override preAdd(): void {
      throw new RangeError('no adds')
    }
    override postSet(): void {
      throw new Error('after set')
    }
  }
  const cache = new MemoryCache({ plugins: [new Throws()] })
  await rejects(() => cache.add('k', 1), RangeError, 'add')
  assert.is(await cache.raw('has', 'k'), false, 'the pre hook stopped the add')
  await rejects(() => cache.set('k', 2), Error, 'set')
  assert.is(await cache.raw('get', 'k'), 2, 'the post hook ran after the write')
})

test('timesNext = false: next() is not timed; post hooks see what the inner layers measured', async () => {
  const seen: number[] = []
  class Untimed extends BasePlugin {
    override readonly timesNext = false
    override postGet(ctx: Context): void {
      seen.push(ctx.took)
    }
  }
  class Timed extends BasePlugin {
    took = -1
    override postGet(ctx: Context): void {
      this.took = ctx.took
    }
  }
  const timed = new Timed()
  await new Cache({ backend: new AsyncBackend({ delayMs: 20 }), plugins: [new Untimed(), timed] }).get('k')
  assert.ok(timed.took >= 0.015, `inner plugin timed ${timed.took} s`)
  assert.equal(seen, [timed.took], "the outer, untimed plugin saw the inner plugin's figure")
  await new MemoryCache({ plugins: [new Untimed()] }).get('k')
  assert.is(seen[1], 0, 'alone, nothing measured: took stays 0')
  assert.is(new HitMissRatioPlugin().timesNext, false)
  assert.is(new TimingPlugin().timesNext, true)

  // Called directly (a subclass's own middleware around super's), BasePlugin.middleware honours it too.
  class Wrapped extends Untimed {
    override async middleware(ctx: Context, next: Next): Promise<void> {
      await super.middleware(ctx, next)
    }
  }
  await new Cache({ backend: new AsyncBackend({ delayMs: 20 }), plugins: [new Wrapped()] }).get('k')
  assert.ok(seen[2]! >= 0.015, `the core step measured itself for the bare layer: ${seen[2]}`)
})

// ---------------------------------------------------------------------------
// TimingPlugin

test('TimingPlugin: flat <command>_total/_avg/_min/_max on cache.profiling and plugin.profiling', async () => {
  const timing = new TimingPlugin()
  const cache = new MemoryCache({ plugins: [timing] })
  const calls = everyCommand(cache)
  for (const command of COMMANDS) await calls[command]()
  await cache.get('x')
  await cache.get('y')
  await cache.multiGet(['x'])

  const profiling = cache.profiling
  assert.ok(profiling !== undefined)
  assert.equal(profiling, timing.profiling)
  for (const command of COMMANDS) {
    const total = profiling[`${command}_total`]
    const avg = profiling[`${command}_avg`]
    const min = profiling[`${command}_min`]
    const max = profiling[`${command}_max`]
    assert.is(total, command === 'get' ? 3 : command === 'multiGet' ? 2 : 1, `${command}_total`)
    assert.ok(min > 0, `${command}_min > 0`)
    assert.ok(min <= avg && avg <= max, `${command}: min <= avg <= max`)
    assert.ok(max < 1, `${command}_max is seconds`)
  }
  assert.ok('multiGet_avg' in profiling && 'multiGet_min' in profiling && 'multiGet_max' in profiling)
})

test('TimingPlugin measures seconds around the inner layers; each instance keeps its own figures', async () => {
  const timing = new TimingPlugin()
  const delay: Middleware = async (ctx, next) => {
    if (ctx.args.key === 'slow') await sleep(40)
    await next()
  }
  const cache = new MemoryCache({ plugins: [timing, delay] })
  await cache.get('fast')
  await cache.get('slow')
  const p = timing.profiling
  assert.is(p.get_total, 2)
  assert.ok(p.get_max >= 0.035 && p.get_max < 1, `get_max ${p.get_max}`)
  assert.ok(p.get_min < p.get_max)
  assert.ok(Math.abs(p.get_avg - (p.get_min + p.get_max) / 2) < 1e-9, 'avg of two calls')

  const other = new TimingPlugin()
  const second = new MemoryCache({ plugins: [other] })
  await second.set('k', 1)
  assert.is(other.profiling.set_total, 1)
  assert.is(timing.profiling.set_total, undefined)
  assert.is(timing.profiling.get_total, 2)
})

test(
  'TimingPlugin: its layer written out keeps the figures its post hook keeps (sync, async, failed, other ' +
    'middleware)',
  async () => {
    /** A clock that moves 1 ms each time it is read: equal sequences of reads give equal figures. */
    class Stepped extends TimingPlugin {
      #ms = 0
      readonly #clock = { now: () => ++this.#ms }
      protected override get clock(): { now(): number } {
        return this.#clock
      }
    }
    // A hook of its own: the plugin runs the layer its hooks make (post included), not the one written out.
    class Hooked extends Stepped {
      override preGet(): void {}
    }
    const post = TimingPlugin.prototype.post
    let posts = 0
    TimingPlugin.prototype.post = function (this: TimingPlugin, ctx: Context): void {
      posts++
      post.call(this, ctx)
    }
    try {
      const boom: Middleware = async (ctx, next) => {
        if (ctx.args.key === 'boom') throw new Error('boom')
        await next()
      }
      // Synchronous hooks keep a memory chain synchronous: the layer's other branch.
      class Boom extends BasePlugin {
        override preGet(ctx: Context): void {
          if (ctx.args.key === 'boom') throw new Error('boom')
        }
      }
      const run = async (plugin: TimingPlugin): Promise<number> => {
        posts = 0
        for (const cache of [
          new MemoryCache({ plugins: [plugin, new Boom()] }),
          new Cache({ backend: new AsyncBackend({ delayMs: 1 }), plugins: [plugin, new Boom()] }),
          new MemoryCache({ plugins: [passThrough, plugin, boom] }),
        ]) {
          await cache.set('a', 1)
          await cache.get('a')
          await cache.get('missing')
          await cache.multiGet(['a', 'b'])
          await rejects(() => cache.get('boom'), Error)
          await cache.delete('a')
        }
        return posts
      }
      const written = new Stepped()
      const hooked = new Hooked()
      assert.is(await run(written), 0, 'the written layer calls no hook')
      assert.ok((await run(hooked)) > 0, "the hooks' layer calls post")
      assert.equal(written.profiling, hooked.profiling)
      assert.is(written.profiling.get_total, 6, 'the failed gets are not counted')
      assert.is(written.profiling.set_total, 3)
      assert.ok(written.profiling.get_min >= 0.001, 'took is in seconds of the stepping clock')
    } finally {
      TimingPlugin.prototype.post = post
    }
  },
)

// ---------------------------------------------------------------------------
// HitMissRatioPlugin

test('HitMissRatioPlugin counts get and multiGet lookups: { hits, total, hitRatio }', async () => {
  const ratio = new HitMissRatioPlugin()
  const cache = new MemoryCache({ plugins: [ratio] })
  assert.equal({ hits: ratio.hitMissRatio.hits, total: ratio.hitMissRatio.total }, { hits: 0, total: 0 })
  await cache.set('a', 1)
  await cache.get('a') // hit
  await cache.get('b') // miss
  assert.equal(cache.hitMissRatio, { hits: 1, total: 2, hitRatio: 0.5 })
  await cache.multiGet(['a', 'b', 'c', 'a']) // 2 hits of 4
  assert.equal(cache.hitMissRatio, { hits: 3, total: 6, hitRatio: 0.5 })
  assert.equal(ratio.hitMissRatio, cache.hitMissRatio)
  // Other commands are not lookups.
  await cache.exists('a')
  await cache.set('z', 1)
  await cache.delete('z')
  assert.is(ratio.hitMissRatio.total, 6)
})

test('HitMissRatioPlugin: a get with a default on a miss is a miss; stored falsy values are hits', async () => {
  const ratio = new HitMissRatioPlugin()
  const cache = new MemoryCache({ plugins: [ratio] })
  assert.is(await cache.get('missing', { default: 'dflt' }), 'dflt')
  assert.equal(ratio.hitMissRatio, { hits: 0, total: 1, hitRatio: 0 })
  await cache.multiSet([
    ['zero', 0],
    ['empty', ''],
    ['nul', null],
    ['no', false],
  ])
  for (const key of ['zero', 'empty', 'nul', 'no']) await cache.get(key, { default: 'dflt' })
  assert.equal(ratio.hitMissRatio, { hits: 4, total: 5, hitRatio: 4 / 5 })
  await cache.multiGet(['zero', 'nul', 'missing'])
  assert.equal(ratio.hitMissRatio, { hits: 6, total: 8, hitRatio: 6 / 8 })
})

test('HitMissRatioPlugin counts lookups a middleware answered alone by what they answered', async () => {
  const ratio = new HitMissRatioPlugin()
  const answer: Middleware = (ctx) => {
    ctx.result = ctx.command === 'multiGet' ? ['x', undefined, 0] : ctx.args.key === 'known' ? 'value' : undefined
  }
  const cache = new MemoryCache({ plugins: [ratio, answer] })
  assert.is(await cache.get('known'), 'value')
  assert.is(await cache.get('unknown'), undefined)
  assert.equal(await cache.multiGet(['a', 'b', 'c']), ['x', undefined, 0])
  assert.equal(ratio.hitMissRatio, { hits: 3, total: 5, hitRatio: 3 / 5 })
})

test('HitMissRatioPlugin.reset and TimingPlugin.reset forget every figure', async () => {
  const ratio = new HitMissRatioPlugin()
  const timing = new TimingPlugin()
  const cache = new MemoryCache({ plugins: [ratio, timing] })
  await cache.set('a', 1)
  await cache.get('a')
  assert.is(ratio.hitMissRatio.total, 1)
  assert.is(timing.profiling.get_total, 1)
  ratio.reset()
  timing.reset()
  assert.is(ratio.hitMissRatio.hits, 0)
  assert.is(ratio.hitMissRatio.total, 0)
  assert.is(timing.profiling.get_total, undefined)
  assert.is(timing.profiling.set_total, undefined)
  await cache.get('b')
  assert.equal(cache.hitMissRatio, { hits: 0, total: 1, hitRatio: 0 })
  assert.is(cache.profiling?.get_total, 1)
})

test('HitMissRatioPlugin counts through a JSON-serialized async backend too', async () => {
  const ratio = new HitMissRatioPlugin()
  const cache = new Cache({ backend: new AsyncBackend(), plugins: [ratio] })
  await cache.multiSet([
    ['zero', 0],
    ['nul', null],
  ])
  await cache.get('zero')
  await cache.get('nul')
  await cache.get('none', { default: 0 })
  await cache.multiGet(['zero', 'none'])
  assert.equal(cache.hitMissRatio, { hits: 3, total: 5, hitRatio: 3 / 5 })
})

test.run()

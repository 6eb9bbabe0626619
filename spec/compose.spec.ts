// The onion's fast composition (a chain per command, from each plugin's layer for that command, the plugins with
// nothing to do for it left out) against plain koa-compose of the plugins' own middleware: over
// random stacks of plugins (sync and async hooks, throwing hooks, short-circuits,
// errors caught, next() called twice, bare middleware mixed in) and backends
// (synchronous, asynchronous, failing), both must give the same result or error,
// the same order of events, the same ctx.took in every post hook and the same
// hit counts.
import fc from 'fast-check'
import koaCompose from 'koa-compose'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { chainLayers, chainsOf } from '../lib/core/cache.js'
import { CommandContext, hitsOf } from '../lib/core/context.js'
import {
  BasePlugin,
  Cache,
  type Context,
  HitMissRatioPlugin,
  MemoryBackend,
  type Middleware,
  type Next,
} from '../lib/index.js'
import type { Clock } from '../lib/util/clock.js'
import { checkAsync } from './support/fc-config.js'
import { AsyncBackend } from './support/fixtures/backends.js'

/** How many random stacks the property runs (each through both compositions). */
const RUNS = 1000

type HookKind = 'sync' | 'async' | 'throw' | 'async-throw'
interface PluginSpec {
  type: 'plugin'
  pre: HookKind | null
  preGet: HookKind | null
  postGet: HookKind | null
  post: HookKind | null
  timesNext: boolean
}
type BareMode =
  | 'await'
  | 'return-next'
  | 'short-circuit'
  | 'throw-before'
  | 'throw-after'
  | 'catch'
  | 'next-twice'
  | 'rewrite-args'
interface BareSpec {
  type: 'bare' | 'object'
  mode: BareMode
  async: boolean
}
interface Stack {
  layers: Array<PluginSpec | BareSpec | { type: 'hit-miss' }>
  /** `into…`: the backend also answers a command without a promise of its own (`getInto`), at once with `-now`. */
  backend: 'sync' | 'async' | 'throw' | 'reject' | 'into' | 'into-now' | 'into-throw' | 'into-reject'
  stored: boolean
}

const hook = fc.option(fc.constantFrom<HookKind>('sync', 'sync', 'async', 'throw', 'async-throw'), { freq: 2 })
const pluginSpec = fc.record<PluginSpec>({
  type: fc.constant('plugin'),
  pre: hook,
  preGet: hook,
  postGet: hook,
  post: hook,
  timesNext: fc.boolean(),
})
const bareSpec = fc.record<BareSpec>({
  type: fc.constantFrom('bare', 'object'),
  mode: fc.constantFrom<BareMode>(
    'await',
    'return-next',
    'short-circuit',
    'throw-before',
    'throw-after',
    'catch',
    'next-twice',
    'rewrite-args',
  ),
  async: fc.boolean(),
})
const stack = fc.record<Stack>({
  layers: fc.array(fc.oneof(pluginSpec, pluginSpec, pluginSpec, bareSpec, fc.constant({ type: 'hit-miss' as const })), {
    maxLength: 6,
  }),
  backend: fc.constantFrom(
    'sync',
    'sync',
    'sync',
    'sync',
    'sync',
    'sync',
    'sync',
    'async',
    'throw',
    'reject',
    'into',
    'into-now',
    'into-throw',
    'into-reject',
  ),
  stored: fc.boolean(),
})

/** A clock that moves 1 ms each time it is read: equal sequences of reads give equal `took`s. */
function steppingClock(): Clock {
  let ms = 0
  return { now: () => ++ms }
}

class Recording extends BasePlugin {
  override readonly timesNext: boolean
  readonly #clock = steppingClock()
  protected override get clock(): Clock {
    return this.#clock
  }
  constructor(label: string, spec: PluginSpec, events: string[]) {
    super()
    this.timesNext = spec.timesNext
    const make = (name: string, kind: HookKind | null): ((ctx: Context) => void | Promise<void>) | undefined => {
      if (kind === null) return undefined
      return (ctx) => {
        events.push(
          `${label}.${name} result=${String(ctx.result)}${name.startsWith('post') ? ` took=${ctx.took}` : ''}`,
        )
        if (kind === 'throw') throw new Error(`${label}.${name} threw`)
        if (kind === 'sync') return undefined
        return Promise.resolve().then(() => {
          events.push(`${label}.${name} resumed`)
          if (kind === 'async-throw') throw new Error(`${label}.${name} rejected`)
        })
      }
    }
    const hooks = this as unknown as Record<string, unknown>
    for (const [name, kind] of [
      ['pre', spec.pre],
      ['preGet', spec.preGet],
      ['postGet', spec.postGet],
      ['post', spec.post],
    ] as const) {
      const h = make(name, kind)
      if (h !== undefined) hooks[name] = h
    }
  }
}

function bare(label: string, spec: BareSpec, events: string[]): Middleware {
  const say = (what: string, ctx: Context): void => {
    events.push(`${label} ${what} result=${String(ctx.result)}`)
  }
  const tick = (): Promise<void> | undefined => (spec.async ? Promise.resolve() : undefined)
  const middleware = async (ctx: Context, next: Next): Promise<void> => {
    say('in', ctx)
    await tick()
    switch (spec.mode) {
      case 'await':
        await next()
        say(`out took=${ctx.took}`, ctx)
        return
      case 'short-circuit':
        ctx.result = `answered by ${label}`
        return
      case 'throw-before':
        throw new Error(`${label} threw before next`)
      case 'throw-after':
        await next()
        throw new Error(`${label} threw after next`)
      case 'catch':
        try {
          await next()
        } catch (error) {
          say(`caught ${(error as Error).message}`, ctx)
          ctx.result = `recovered by ${label}`
        }
        return
      case 'next-twice':
        await next()
        await next()
        return
      case 'rewrite-args':
        ctx.args = { ...ctx.args, key: 'other' }
        await next()
        say('out', ctx)
        return
      case 'return-next':
        return next()
    }
  }
  // A non-async function that returns next()'s promise as it is, or a plain async middleware.
  const fn: Middleware =
    spec.mode === 'return-next' && !spec.async
      ? (ctx, next) => {
          say('in', ctx)
          return next()
        }
      : middleware
  return fn
}

/** The layers of one stack, fresh (new plugin instances, new clocks), and what they record. */
function build(s: Stack): {
  plugins: Array<Middleware | BasePlugin | { middleware: Middleware }>
  events: string[]
  counters: HitMissRatioPlugin[]
} {
  const events: string[] = []
  const counters: HitMissRatioPlugin[] = []
  const plugins = s.layers.map((spec, i) => {
    if (spec.type === 'plugin') return new Recording(`p${i}`, spec, events)
    if (spec.type === 'hit-miss') {
      const counter = new HitMissRatioPlugin()
      counters.push(counter)
      return counter
    }
    const fn = bare(`m${i}`, spec, events)
    return spec.type === 'object' ? { middleware: fn } : fn
  })
  return { plugins, events, counters }
}

/** The asynchronous backends `cacheFor` made, to count the reads answered into a command. */
const backends: AsyncBackend[] = []

function cacheFor(s: Stack): Cache {
  const failing = (): never => {
    throw new Error('backend threw')
  }
  const memory = new MemoryBackend()
  if (s.stored) {
    memory.set('k', 'v', 0)
    memory.set('other', 'w', 0)
  }
  if (s.backend === 'sync') return new Cache({ backend: memory })
  const into = s.backend === 'async' || s.backend === 'throw' || s.backend === 'reject' ? undefined : s.backend
  const backend = new AsyncBackend({ into: into === 'into-now' ? 'now' : into === undefined ? undefined : 'later' })
  if (s.stored) {
    backend.store.set('k', 'v', 0)
    backend.store.set('other', 'w', 0)
  }
  if (s.backend === 'throw' || s.backend === 'into-throw') backend.get = failing
  if (s.backend === 'reject' || s.backend === 'into-reject') {
    backend.get = () => Promise.reject(new Error('backend rejected'))
  }
  backends.push(backend)
  return new Cache({ backend, serializer: new Cache().serializer })
}

interface Outcome {
  settled: string
  events: string[]
  took: number
  hits: number | undefined
  counts: unknown[]
}

async function outcome(
  promise: () => Promise<unknown>,
  ctx: CommandContext,
  built: ReturnType<typeof build>,
): Promise<Outcome> {
  let settled: string
  try {
    settled = `resolved ${String(await promise())}`
  } catch (error) {
    settled = `rejected ${(error as Error).message}`
  }
  // Let fire-and-forget work (a middleware that did not await next()) finish in both runs alike.
  await new Promise((resolve) => setImmediate(resolve))
  return {
    settled,
    events: built.events,
    took: ctx.took,
    hits: hitsOf(ctx),
    counts: built.counters.map((c) => c.hitMissRatio),
  }
}

test(`differential: the fast composition equals koa-compose of the same layers (${RUNS} random stacks)`, async () => {
  let withAsync = 0
  let finishedSync = 0
  await checkAsync(
    'fast composition = koa-compose',
    fc.asyncProperty(stack, async (s) => {
      const fastRun = build(s)
      const fastCache = cacheFor(s)
      const fastCtx = new CommandContext(fastCache, 'get', { key: 'k' })
      const fastChain = chainsOf(fastRun.plugins, steppingClock()).get
      let sync = false
      const fast = await outcome(
        () => {
          // What run() does, minus its debug lines: a chain that answers undefined has finished.
          const pending = fastChain(fastCtx)
          sync = pending === undefined
          return pending === undefined ? Promise.resolve(fastCtx.result) : pending
        },
        fastCtx,
        fastRun,
      )

      const koaRun = build(s)
      const koaCache = cacheFor(s)
      const koaCtx = new CommandContext(koaCache, 'get', { key: 'k' })
      const layers = chainLayers(koaRun.plugins, steppingClock()).map((layer) => layer.run)
      const koa = await outcome(() => koaCompose(layers)(koaCtx).then(() => koaCtx.result), koaCtx, koaRun)

      if (s.backend !== 'sync' || s.layers.some((l) => l.type !== 'plugin' && l.type !== 'hit-miss')) withAsync++
      if (sync) finishedSync++
      assert.equal(fast, koa)
    }),
    { numRuns: RUNS },
  )
  // The property covered both kinds of runs: some finished without a promise on the fast path.
  assert.ok(withAsync > RUNS / 10, `${withAsync} stacks had asynchronous layers`)
  assert.ok(finishedSync > RUNS / 20, `${finishedSync} stacks finished synchronously`)
  // And the backends' answers into the command (a stack without plugins on an `into` backend) on the fast path.
  const into = backends.reduce((sum, backend) => sum + backend.intoCalls, 0)
  assert.ok(into > RUNS / 100, `${into} reads answered into the command`)
})

test(`differential: getOrSet's chain equals koa-compose of the same layers (${RUNS / 2} random stacks)`, async () => {
  let bareRuns = 0
  const factory = async (): Promise<string> => 'computed'
  const failing = async (): Promise<string> => {
    throw new Error('factory failed')
  }
  await checkAsync(
    "getOrSet's chain = koa-compose",
    fc.asyncProperty(stack, fc.boolean(), async (s, fails) => {
      const fn = fails ? failing : factory
      const fastRun = build(s)
      const fastCtx = new CommandContext(cacheFor(s), 'getOrSet', { key: 'k', fn, ttl: undefined })
      const fastChain = chainsOf(fastRun.plugins, steppingClock()).getOrSet
      if (fastRun.plugins.length === 0) bareRuns++
      const fast = await outcome(
        () => {
          const pending = fastChain(fastCtx)
          return pending === undefined ? Promise.resolve(fastCtx.result) : pending
        },
        fastCtx,
        fastRun,
      )
      const koaRun = build(s)
      const koaCtx = new CommandContext(cacheFor(s), 'getOrSet', { key: 'k', fn, ttl: undefined })
      const layers = chainLayers(koaRun.plugins, steppingClock()).map((layer) => layer.run)
      const koa = await outcome(() => koaCompose(layers)(koaCtx).then(() => koaCtx.result), koaCtx, koaRun)
      assert.equal({ ...fast, outcome: fastCtx.state.outcome }, { ...koa, outcome: koaCtx.state.outcome })
    }),
    { numRuns: RUNS / 2 },
  )
  assert.ok(bareRuns > 10, `${bareRuns} stacks without plugins ran getOrSet's own bare chain`)
})

test('the fast path finishes a memory hit through synchronous BasePlugin hooks without a pending promise', async () => {
  const events: string[] = []
  const spec: PluginSpec = { type: 'plugin', pre: 'sync', preGet: null, postGet: 'sync', post: null, timesNext: true }
  const cache = new Cache({ plugins: [new Recording('p', spec, events)] })
  await cache.set('k', 'v')
  events.length = 0
  const promise = cache.get('k')
  // Everything ran before get() returned: nothing waits for a microtask.
  assert.equal(events, ['p.pre result=undefined', 'p.postGet result=v took=0.001'])
  assert.is(await promise, 'v')
})

test('next() called twice rejects as koa-compose does, in both compositions', async () => {
  const twice: Middleware = async (_ctx, next) => {
    await next()
    await next()
  }
  const cache = new Cache({ plugins: [twice] })
  const error = await cache.get('k').then(
    () => undefined,
    (e: unknown) => e as Error,
  )
  assert.instance(error, Error)
  assert.is(error!.message, 'next() called multiple times')
})

test('ctx shows only the fields of Context: the internals are private', async () => {
  let seen: Context | undefined
  const cache = new Cache({
    plugins: [
      async (ctx, next) => {
        seen = ctx
        await next()
      },
    ],
  })
  await cache.get('k')
  assert.equal(Object.keys(seen!).sort(), ['args', 'cache', 'command', 'result', 'took'])
  const proto = Object.getOwnPropertyNames(Object.getPrototypeOf(seen!)).sort()
  assert.equal(proto, ['constructor', 'signal', 'state'])
  for (const name of ['resolve', 'reject', 'prevDue', 'nextDue', 'hits', 'builtKey', 'timed'] as const) {
    assert.is((seen as unknown as Record<string, unknown>)[name], undefined, `ctx.${name} is not there`)
  }
})

test('only methods are hooks: a BasePlugin subclass may keep its own fields named pre, post or postGet', async () => {
  class Counting extends BasePlugin {
    constructor() {
      super()
      // Fields, as plain JavaScript would write them (typed code cannot redeclare the hooks' names).
      Object.assign(this, { pre: 0, post: [] as string[], preSet: 'not a hook' })
    }
    override postGet(ctx: Context): void {
      const self = this as unknown as { pre: number; post: string[] }
      self.pre++
      self.post.push(String(ctx.result))
    }
  }
  const plugin = new Counting()
  const cache = new Cache({ plugins: [plugin] })
  await cache.set('k', 'v')
  assert.is(await cache.get('k'), 'v')
  assert.is(await cache.get('missing'), undefined)
  const { pre, post, preSet } = plugin as unknown as Record<string, unknown>
  assert.equal({ pre, post, preSet }, { pre: 2, post: ['v', 'undefined'], preSet: 'not a hook' })
})

test.run()

import { createHash } from 'node:crypto'
import calculateSlot from 'cluster-key-slot'
import type { Backend, MessageListener, Receiver } from '../../core/backend.js'
import type { InvalidationListener, StopListening } from '../../core/invalidation.js'
import { debug } from '../../util/debug.js'
import { describe } from '../../util/describe.js'
import { type Duration, toSeconds } from '../../util/duration.js'
import { BackendError } from '../../util/errors.js'
import { rejectLast, resolveLast, settleable } from '../../util/promise.js'
import { checkRedisOptions, type RedisBackendOptions, serverLabel } from './options.js'
import type { RedisLocation } from './url.js'
import { closeClient, type FollowerClient, follow } from './watch.js'

export type { RedisBackendOptions } from './options.js'

type Arg = string | Buffer
type Reply = unknown

/** What oniocache uses of a node-redis client (`createClient`). */
interface NodeClient {
  readonly isOpen: boolean
  readonly isReady: boolean
  sendCommand(args: readonly Arg[], options?: object): Promise<Reply>
  connect(): Promise<unknown>
  close(): Promise<unknown>
  destroy(): void
  on(event: string, listener: (...args: never[]) => void): unknown
  off(event: string, listener: (...args: never[]) => void): unknown
}

/** What oniocache uses of a node-redis cluster (`createCluster`). */
interface ClusterClient {
  readonly isOpen: boolean
  readonly isReady: boolean
  readonly masters: readonly unknown[]
  sendCommand(
    firstKey: Arg | undefined,
    isReadonly: boolean | undefined,
    args: readonly Arg[],
    options?: object,
  ): Promise<Reply>
  nodeClient(node: unknown): Promise<NodeClient>
  connect(): Promise<unknown>
  close(): Promise<unknown>
  destroy(): void
  on(event: string, listener: (...args: never[]) => void): unknown
  off(event: string, listener: (...args: never[]) => void): unknown
}

type RedisModule = typeof import('@redis/client')

/** One connected client or cluster, and how to send to it. */
interface Link {
  readonly client: NodeClient | ClusterClient
  readonly cluster: boolean
  /** Options that make bulk strings come back as Buffers. */
  readonly binary: object
  send(key: Arg | undefined, readonly: boolean, args: readonly Arg[], options?: object): Promise<Reply>
}

/** A listener of `RedisBackend.subscribe`: the message and the channel it came on. */
export type RedisMessageListener = MessageListener

/** What oniocache uses of the duplicated client that carries subscriptions. */
interface SubscriberClient {
  readonly isOpen: boolean
  subscribe(channel: string, listener: RedisMessageListener): Promise<void>
  unsubscribe(channel: string, listener: RedisMessageListener): Promise<void>
  connect(): Promise<unknown>
  close(): Promise<unknown>
  destroy(): void
  on(event: string, listener: (...args: never[]) => void): unknown
  off(event: string, listener: (...args: never[]) => void): unknown
}

// Scripts run by EVALSHA; on NOSCRIPT they are sent with EVAL, which also loads them.
const CAS_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  if ARGV[3] == '0' then redis.call('SET', KEYS[1], ARGV[2]) else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
  return 1
end
return 0`
const DELETE_IF_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`
const MSET_PX_SCRIPT = `
local ms = ARGV[#ARGV]
for i = 1, #KEYS do redis.call('SET', KEYS[i], ARGV[i], 'PX', ms) end
return #KEYS`

interface Script {
  source: string
  sha: string
}
const script = (source: string): Script => ({ source, sha: createHash('sha1').update(source).digest('hex') })
const CAS = script(CAS_SCRIPT)
const MSET_PX = script(MSET_PX_SCRIPT)
const DELETE_IF = script(DELETE_IF_SCRIPT)

// Measured over 1M keys: COUNT 500 keeps every SCAN and UNLINK under ~4 ms (1000: up to ~7–11 ms) at the same total
// time.
const SCAN_COUNT = '500'
const GLOB = /[*?[\]\\]/g

/**
 * Redis through the official client, `@redis/client` (node-redis), single node or
 * Cluster. The client module is imported on the first command, so constructing a
 * RedisCache (and importing oniocache) never loads it.
 *
 * The client's own per-command timer is off — the cache's timeout layer bounds
 * every command with one shared timer — and so is its offline queue: while the
 * connection is known to be down, commands fail at once with `BackendError`
 * instead of queueing until their timeout, and the client reconnects in the
 * background with a capped backoff.
 */
export class RedisBackend implements Backend {
  readonly name: string
  readonly #options: RedisBackendOptions
  /** What the url option says, read once. */
  readonly #location: RedisLocation & { connectTimeout?: Duration; batch?: boolean }
  readonly #given: NodeClient | ClusterClient | undefined
  #link: Link | undefined
  #connecting: Promise<Link> | undefined
  /** The client of a first connection still in progress, which close() destroys rather than waits for. */
  #opening: NodeClient | ClusterClient | undefined
  /** Bumped by a close() that found the first connection still being made: that connection is not kept. */
  #epoch = 0
  #lastError: unknown
  readonly #onError = (error: Error): void => {
    this.#lastError = error
    debug('[%s] %s', this.name, error.message)
  }
  readonly #fail = (error: unknown): never => {
    throw this.#wrap(error)
  }
  /** The duplicated connection that carries subscriptions, created by the first `subscribe`. */
  #subscriber: Promise<SubscriberClient> | undefined
  /** `batch: true`: the gets of a tick go as one MGET per encoding (per slot on a cluster). */
  readonly #batching: boolean
  /** The gets of this tick not sent yet: of text, and of bytes (their replies are typed apart). */
  #text: Batch | undefined
  #bytes: Batch | undefined
  #flushQueued = false
  /** Batched GETs and MGETs sent and not answered yet. */
  #batchesInFlight = 0

  /**
   * Checks the options (the url included) without connecting or loading the client module.
   * @throws {TypeError} for an unknown option, a malformed url (the message never repeats it), a cache option
   *   (`namespace`, `ttl`, `timeout`) in the url's query, or a `client` or `cluster` of the wrong kind.
   * @throws {RangeError} for a `connectTimeout` that is not a valid duration.
   */
  constructor(options: RedisBackendOptions = {}) {
    this.#location = checkRedisOptions(options)
    this.#options = options
    this.#given = options.client as NodeClient | ClusterClient | undefined
    this.name = `redis ${serverLabel(options)}`
    this.#batching = (options.batch ?? this.#location.batch) === true
  }

  get(key: string, encoding?: 'utf8' | null): Promise<unknown> {
    if (this.#batching) {
      const promise = settleable()
      this.#batched(key, encoding === null, { succeed: resolveLast, failed: rejectLast })
      return promise
    }
    const link = this.#link
    if (link?.client.isReady) return sendGet(link, key, encoding).then(nullToUndefined, this.#fail)
    return this.#later((l) => sendGet(l, key, encoding)).then(nullToUndefined)
  }

  /** @internal */
  getInto(key: string, encoding: 'utf8' | null, receiver: Receiver): void {
    if (this.#batching) {
      this.#batched(key, encoding === null, receiver)
      return
    }
    const link = this.#link
    const reply = link?.client.isReady
      ? sendGet(link, key, encoding)
      : this.#ready().then((l) => sendGet(l, key, encoding))
    reply.then(
      (value) => receiver.succeed(nullToUndefined(value)),
      (error: unknown) => receiver.failed(this.#wrap(error)),
    )
  }

  multiGet(keys: readonly string[], encoding?: 'utf8' | null): Promise<unknown[]> {
    if (keys.length === 0) return Promise.resolve([])
    return this.#run((l) => l.send(keys[0], true, ['MGET', ...keys], encoding === null ? l.binary : undefined)).then(
      (values) => (values as unknown[]).map(nullToUndefined),
    )
  }

  set(key: string, value: unknown, ttl: number, casToken?: unknown): Promise<boolean> {
    this.#getsFirst()
    if (casToken !== undefined) {
      return this.#eval(CAS, [key], [arg(casToken), arg(value), ttl > 0 ? String(ms(ttl)) : '0']).then(
        (done) => done === 1,
      )
    }
    const args: Arg[] = ['SET', key, arg(value)]
    if (ttl > 0) expiry(args, ttl)
    // Connected: one reaction for both outcomes (as in `get`), not #run's and then another.
    const link = this.#link
    if (link?.client.isReady) return link.send(key, false, args).then(yes, this.#fail)
    return this.#later((l) => l.send(key, false, args)).then(yes)
  }

  add(key: string, value: unknown, ttl: number): Promise<boolean> {
    this.#getsFirst()
    const args: Arg[] = ['SET', key, arg(value), 'NX']
    if (ttl > 0) expiry(args, ttl)
    return this.#run((l) => l.send(key, false, args)).then((reply) => reply !== null)
  }

  async multiSet(pairs: ReadonlyArray<readonly [string, unknown]>, ttl: number): Promise<true> {
    this.#getsFirst()
    if (pairs.length === 0) return true
    const link = await this.#ready()
    if (ttl <= 0) {
      const args: Arg[] = ['MSET']
      for (const [key, value] of pairs) args.push(key, arg(value))
      await link.send(pairs[0]![0], false, args).then(undefined, this.#fail)
      return true
    }
    // With a ttl: one script per hash slot, so each group is written atomically.
    const groups = link.cluster ? groupBySlot(pairs) : [pairs]
    await Promise.all(
      groups.map((group) => {
        const keys = group.map(([key]) => key)
        const values = group.map(([, value]) => arg(value))
        return this.#evalOn(link, MSET_PX, keys, [...values, String(ms(ttl))])
      }),
    )
    return true
  }

  delete(key: string): Promise<number> {
    this.#getsFirst()
    return this.#run((l) => l.send(key, false, ['UNLINK', key])) as Promise<number>
  }

  /** Compare-and-delete in one Lua script (EVALSHA), so only the owner of a lock releases it. */
  deleteIf(key: string, expected: unknown): Promise<boolean> {
    this.#getsFirst()
    return this.#eval(DELETE_IF, [key], [arg(expected)]).then((n) => n === 1)
  }

  exists(key: string): Promise<boolean> {
    return this.#run((l) => l.send(key, true, ['EXISTS', key])).then((n) => n === 1)
  }

  async increment(key: string, delta: number): Promise<number> {
    this.#getsFirst()
    const link = await this.#ready()
    let value: number
    try {
      value = Number(await link.send(key, false, ['INCRBY', key, String(delta)]))
    } catch (error) {
      if (isReplyError(error) && /would overflow/i.test(error.message)) {
        throw new RangeError(
          `[oniocache] [${this.name}] incrementing ${JSON.stringify(key)} would pass Redis' 64-bit integers; ` +
            `nothing was written`,
          { cause: error },
        )
      }
      if (isReplyError(error) && /not an integer|out of range/i.test(error.message)) {
        throw new TypeError(`[oniocache] [${this.name}] cannot increment ${JSON.stringify(key)}: ${error.message}`, {
          cause: error,
        })
      }
      throw this.#wrap(error)
    }
    if (Number.isSafeInteger(value)) return value
    // Past what a JavaScript number holds exactly (as memory and Memcached refuse it): undo the step, then say so.
    try {
      await link.send(key, false, ['DECRBY', key, String(delta)])
    } catch (error) {
      throw this.#wrap(error)
    }
    throw new RangeError(
      `[oniocache] [${this.name}] incrementing ${JSON.stringify(key)} would pass Number.MAX_SAFE_INTEGER; the ` +
        `increment was undone`,
    )
  }

  async expire(key: string, ttl: number): Promise<boolean> {
    this.#getsFirst()
    const link = await this.#ready()
    try {
      if (ttl > 0) {
        const args = Number.isInteger(ttl) ? ['EXPIRE', key, String(ttl)] : ['PEXPIRE', key, String(ms(ttl))]
        return (await link.send(key, false, args)) === 1
      }
      // PERSIST answers 0 both for a missing key and for a key without a ttl.
      if ((await link.send(key, false, ['PERSIST', key])) === 1) return true
      return (await link.send(key, true, ['EXISTS', key])) === 1
    } catch (error) {
      throw this.#wrap(error)
    }
  }

  /**
   * `null`: FLUSHDB on every master. A prefix: SCAN … MATCH prefix* in batches on
   * every master, UNLINK of each batch — never KEYS, so Redis is never blocked
   * for long. Glob characters in the prefix are escaped. The walk stops at the
   * next batch once `signal` is aborted (the command timed out).
   */
  async clear(prefix: string | null, signal?: AbortSignal): Promise<true> {
    this.#getsFirst()
    const link = await this.#ready()
    try {
      const nodes = await this.#masters(link)
      await Promise.all(
        nodes.map(async (node) => {
          if (prefix === null) {
            await node.sendCommand(['FLUSHDB'])
            return
          }
          const match = prefix.replace(GLOB, '\\$&') + '*'
          let cursor = '0'
          do {
            // Past the command's timeout the caller has its TimeoutError: stop walking.
            signal?.throwIfAborted()
            const [next, keys] = (await node.sendCommand(['SCAN', cursor, 'MATCH', match, 'COUNT', SCAN_COUNT])) as [
              string,
              string[],
            ]
            cursor = next
            if (keys.length === 0) continue
            // In a cluster one UNLINK may only name keys of one slot.
            const groups = link.cluster ? groupKeysBySlot(keys) : [keys]
            await Promise.all(groups.map((group) => node.sendCommand(['UNLINK', ...group])))
          } while (cursor !== '0')
        }),
      )
      return true
    } catch (error) {
      throw this.#wrap(error)
    }
  }

  /** Sends `command` with `args` as given; on a cluster it is routed by the first argument. */
  raw(command: string, args: readonly unknown[]): Promise<unknown> {
    this.#getsFirst()
    const all = [command, ...args.map((a) => (typeof a === 'number' ? String(a) : arg(a)))]
    return this.#run((l) => l.send(all[1], false, all))
  }

  /**
   * Listens on a pub/sub channel (locks use it to wake waiters in other
   * processes). Subscriptions ride on a dedicated connection, duplicated from the
   * backend's client on the first call and closed by `close()`. Resolves once
   * Redis confirmed the subscription, to a function that removes the listener;
   * that function never rejects.
   */
  async subscribe(channel: string, listener: RedisMessageListener): Promise<() => Promise<void>> {
    const pending = (this.#subscriber ??= this.#openSubscriber())
    const subscriber = await pending
    await subscriber.subscribe(channel, listener).then(undefined, this.#fail)
    let done = false
    return async () => {
      if (done) return
      done = true
      // After close() (or a reconnect of the subscriber) there is nothing left to remove.
      if (this.#subscriber !== pending || !subscriber.isOpen) return
      await subscriber
        .unsubscribe(channel, listener)
        .catch((error: unknown) => debug('[%s] unsubscribe: %s', this.name, String(error)))
    }
  }

  /** Publishes `message` on `channel`; answers how many subscribers received it. */
  publish(channel: string, message: string): Promise<number> {
    return this.#run((l) => l.send(channel, false, ['PUBLISH', channel, message])) as Promise<number>
  }

  /**
   * Server-assisted invalidation for a near cache: a connection of its own (RESP3,
   * named `oniocache-invalidations`) in broadcasting mode (`CLIENT TRACKING ON BCAST
   * PREFIX prefix`), re-armed after every reconnection, telling `listener` each key
   * under `prefix` that anyone changes, expiry and eviction included.
   * @throws {TypeError} on a Redis Cluster, where tracking is per node: use a bus instead.
   */
  async watchChanges(prefix: string, listener: InvalidationListener): Promise<StopListening> {
    if (this.#options.cluster !== undefined || (this.#given !== undefined && 'masters' in this.#given)) {
      throw new TypeError(
        `[oniocache] ${this.name}: server-assisted invalidation is per node on a Redis Cluster and not followed ` +
          'here; give the near cache a bus instead: new NearCachePlugin({ bus: new RedisBus({ url }) }), with ' +
          'every writer of the store going through oniocache',
      )
    }
    const redis = await this.#module()
    const overrides = { RESP: 3 as const, emitInvalidate: true, name: 'oniocache-invalidations' }
    const client = (
      this.#given !== undefined
        ? (this.#given as unknown as { duplicate(o: object): NodeClient }).duplicate(overrides)
        : this.#create(redis, overrides)
    ) as NodeClient & FollowerClient
    const onInvalidate = (key: string | Buffer | null): void => {
      listener.invalidate(key === null ? null : [typeof key === 'string' ? key : key.toString()])
    }
    client.on('invalidate', onInvalidate)
    // The handshake turned tracking on in its default mode (emitInvalidate does); switching mode needs it off first.
    const arm = async (c: NodeClient): Promise<void> => {
      await Promise.all([
        c.sendCommand(['CLIENT', 'TRACKING', 'OFF']),
        c.sendCommand(['CLIENT', 'TRACKING', 'ON', 'BCAST', ...(prefix === '' ? [] : ['PREFIX', prefix])]),
      ])
    }
    const stop = await follow(client, arm, listener, this.name)
    return async () => {
      client.off('invalidate', onInvalidate)
      await stop()
    }
  }

  /**
   * Listens on `channel` on a connection of its own, telling `listener` when the
   * stream is lost (messages published meanwhile are never delivered) and when it is
   * live again (resubscribed): what `RedisBus` listens with. `onMessage` gets each message.
   */
  async followChannel(
    channel: string,
    onMessage: RedisMessageListener,
    listener: Pick<InvalidationListener, 'lost' | 'live'>,
  ): Promise<StopListening> {
    const redis = await this.#module()
    const overrides = { name: 'oniocache-bus' }
    const client = (this.#given !== undefined
      ? (this.#given as unknown as { duplicate(o: object): SubscriberClient }).duplicate(overrides)
      : this.#create(redis, overrides)) as unknown as SubscriberClient & FollowerClient
    let subscribed: Promise<void> | undefined
    // node-redis restores the subscription before it is ready again; the first one is made here.
    const arm = (c: SubscriberClient): Promise<void> => (subscribed ??= c.subscribe(channel, onMessage))
    const relay: InvalidationListener = {
      invalidate: () => {},
      invalidatePrefix: () => {},
      lost: (error) => listener.lost(error),
      live: () => listener.live(),
    }
    return follow(client, arm, relay, this.name)
  }

  /** The client module, imported once. */
  async #module(): Promise<RedisModule> {
    try {
      return await import('@redis/client')
    } catch (error) {
      throw new BackendError(this.name, 'the Redis client is not installed: run `npm install @redis/client`', {
        cause: error,
      })
    }
  }

  async #openSubscriber(): Promise<SubscriberClient> {
    try {
      const link = await this.#ready()
      const subscriber = (link.client as unknown as { duplicate(): SubscriberClient }).duplicate()
      subscriber.on('error', this.#onError)
      try {
        await firstAttempt(subscriber as unknown as NodeClient)
      } catch (error) {
        subscriber.off('error', this.#onError)
        if (subscriber.isOpen) subscriber.destroy()
        throw this.#wrap(error)
      }
      return subscriber
    } catch (error) {
      this.#subscriber = undefined // the next subscribe tries afresh
      throw error
    }
  }

  async #closeSubscriber(): Promise<void> {
    const pending = this.#subscriber
    this.#subscriber = undefined
    const subscriber = await pending?.catch(() => undefined)
    if (subscriber === undefined) return
    subscriber.off('error', this.#onError)
    await closeClient(subscriber)
  }

  /** Closes a client oniocache created; one passed in stays open. The next command reconnects. */
  async close(): Promise<void> {
    // Gets issued before close() go now, on the connection being closed, as unbatched gets would have.
    this.#flush()
    await this.#closeSubscriber()
    // A client still making its first connection (a cluster whose nodes never answer right) is destroyed, not
    // waited for: its connect() may never settle.
    if (this.#link === undefined) this.#dropOpening()
    let timer: NodeJS.Timeout | undefined
    const link =
      this.#link ??
      (await Promise.race([
        this.#connecting?.catch(() => undefined),
        new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), 1000))),
      ])) ??
      // A first connection that failed while close() waited keeps its client retrying in the background: close it.
      this.#link
    clearTimeout(timer)
    if (link === undefined) {
      // Still connecting after that wait (the client module was still loading above, on a busy machine, and the
      // server has not answered since): that connection is not kept once its attempt ends (#open), and its client,
      // if made by now, is destroyed.
      this.#epoch++
      this.#dropOpening()
    }
    this.#link = this.#connecting = undefined
    if (link === undefined) return
    link.client.off('error', this.#onError)
    if (link.client === this.#given) return
    await closeClient(link.client)
  }

  /** Destroys the client of a first connection still being made, unless it was given. */
  #dropOpening(): void {
    const opening = this.#opening
    if (opening === undefined) return
    this.#opening = undefined
    if (opening === this.#given) return
    opening.off('error', this.#onError)
    opening.destroy()
  }

  /** The link, connecting first if need be; rejects with BackendError when the server is known to be down. */
  #ready(): Promise<Link> {
    const link = this.#link
    if (link !== undefined) {
      if (link.client.isReady) return Promise.resolve(link)
      return Promise.reject(this.#down())
    }
    return this.#connect()
  }

  /** Before a write: the gets of the tick still waiting are sent first, so that the write is not applied first. */
  #getsFirst(): void {
    if (this.#flushQueued) this.#flush()
  }

  /** A get waiting for the end of the tick, to go with the others of the tick in one MGET. */
  #batched(key: string, binary: boolean, receiver: Receiver): void {
    let batch = binary ? this.#bytes : this.#text
    if (batch === undefined) {
      batch = new Batch(binary)
      if (binary) this.#bytes = batch
      else this.#text = batch
      if (!this.#flushQueued) {
        this.#flushQueued = true
        // Once the tick's microtasks have run too: gets that reach the backend through asynchronous middleware
        // join the batch of the gets issued with them.
        process.nextTick(this.#flush)
      }
    }
    batch.args.push(key)
    batch.receivers.push(receiver)
  }

  readonly #flush = (): void => {
    this.#flushQueued = false
    const text = this.#text
    const bytes = this.#bytes
    if (text === undefined && bytes === undefined) return
    this.#text = this.#bytes = undefined
    const link = this.#link
    if (link?.client.isReady) {
      if (text !== undefined) this.#sendBatch(link, text)
      if (bytes !== undefined) this.#sendBatch(link, bytes)
      return
    }
    this.#ready().then(
      (ready) => {
        if (text !== undefined) this.#sendBatch(ready, text)
        if (bytes !== undefined) this.#sendBatch(ready, bytes)
      },
      (error: unknown) => {
        const wrapped = this.#wrap(error)
        text?.fail(wrapped)
        bytes?.fail(wrapped)
      },
    )
  }

  /**
   * One GET for a lone key; else one MGET (on a cluster, one per hash slot). Every get learns its own answer; a
   * failed request fails each of its gets with the error a single get would have had.
   */
  #sendBatch(link: Link, batch: Batch): void {
    const options = batch.binary ? link.binary : undefined
    const groups = link.cluster && batch.args.length > 2 ? batch.bySlot() : [{ args: batch.args, at: undefined }]
    for (const { args, at } of groups) {
      const lone = args.length === 2
      if (lone) args[0] = 'GET'
      let reply: Promise<Reply>
      try {
        reply = link.send(args[1], true, args, options)
      } catch (error) {
        reply = Promise.reject(error)
      }
      this.#batchesInFlight++
      reply.then(
        (answer) => {
          this.#batchesInFlight--
          this.#answer(batch, lone ? [answer] : (answer as unknown[]), at)
        },
        (error: unknown) => {
          this.#batchesInFlight--
          batch.fail(this.#wrap(error), at)
        },
      )
    }
  }

  /**
   * Answers the gets of a reply. While the callers are answered, the server idles if no other batch is in flight:
   * the gets they issue in reaction only go once all of them have been (their MGET is sent at the end of the tick),
   * so that with many gets in flight the two sides take turns, each waiting for the other. A long reply with no
   * other batch in flight is answered in two halves: the first now; the second once the gets issued by the first
   * half's callers have been sent (`#flush` runs in a tick those callers queue, two ticks from here come after it,
   * and node-redis writes in an immediate queued there), so that the server works on them while the second half is
   * answered. With 1000 gets in flight, two MGETs of 500 then take turns instead of one of 1000.
   */
  #answer(batch: Batch, values: readonly unknown[], at: readonly number[] | undefined): void {
    const n = values.length
    if (n < SPLIT_AT || this.#batchesInFlight > 0) {
      batch.answer(values, at, 0, n)
      return
    }
    const half = n >> 1
    batch.answer(values, at, 0, half)
    process.nextTick(() => process.nextTick(() => setImmediate(() => batch.answer(values, at, half, n))))
  }

  #run(send: (link: Link) => Promise<Reply>): Promise<Reply> {
    const link = this.#link
    if (link?.client.isReady) return send(link).then(undefined, this.#fail)
    return this.#later(send)
  }

  #later(send: (link: Link) => Promise<Reply>): Promise<Reply> {
    return this.#ready().then((link) => send(link).then(undefined, this.#fail))
  }

  #eval(s: Script, keys: readonly string[], args: readonly Arg[]): Promise<Reply> {
    // Connected: sent now, as #run sends, so that a command issued right after it (a lock's release message after
    // its compare-and-delete) reaches Redis after it, not before.
    const link = this.#link
    if (link?.client.isReady) return this.#evalOn(link, s, keys, args)
    return this.#ready().then((ready) => this.#evalOn(ready, s, keys, args))
  }

  async #evalOn(link: Link, s: Script, keys: readonly string[], args: readonly Arg[]): Promise<Reply> {
    const tail = [String(keys.length), ...keys, ...args]
    try {
      return await link.send(keys[0], false, ['EVALSHA', s.sha, ...tail])
    } catch (error) {
      if (!(isReplyError(error) && error.message.startsWith('NOSCRIPT'))) throw this.#wrap(error)
    }
    return link.send(keys[0], false, ['EVAL', s.source, ...tail]).then(undefined, this.#fail)
  }

  async #masters(link: Link): Promise<NodeClient[]> {
    if (!link.cluster) return [link.client as NodeClient]
    const cluster = link.client as ClusterClient
    return Promise.all(cluster.masters.map((master) => cluster.nodeClient(master)))
  }

  #connect(): Promise<Link> {
    this.#connecting ??= this.#open()
    return this.#connecting
  }

  /**
   * Creates the client and waits for its first connection attempt; commands
   * issued meanwhile wait for that outcome. Whatever it is, the link is kept
   * while node-redis goes on retrying in the background, so later commands fail
   * at once while it is down and work again as soon as it is back.
   */
  async #open(): Promise<Link> {
    const epoch = this.#epoch
    let redis: RedisModule
    try {
      redis = await this.#module()
    } catch (error) {
      if (epoch === this.#epoch) this.#connecting = undefined
      throw error
    }
    // close() came while the module loaded: no client is made for a closed backend.
    if (epoch !== this.#epoch) throw this.#closedMeanwhile()
    const client = this.#given ?? this.#create(redis)
    this.#opening = client
    client.on('error', this.#onError)
    const cluster = 'masters' in client
    const binary = { typeMapping: { [redis.RESP_TYPES.BLOB_STRING]: Buffer } }
    const send = cluster
      ? (key: Arg | undefined, readonly: boolean, args: readonly Arg[], options?: object) =>
          (client as ClusterClient).sendCommand(key, readonly, args, options)
      : (_key: Arg | undefined, _readonly: boolean, args: readonly Arg[], options?: object) =>
          (client as NodeClient).sendCommand(args, options)
    const link: Link = { client, cluster, binary, send }
    try {
      if (!client.isOpen) await firstAttempt(client)
      else if (!client.isReady) throw this.#down()
    } catch (error) {
      if (epoch !== this.#epoch) throw this.#abandon(client)
      this.#opening = undefined
      this.#lastError = error
      if (client.isOpen) {
        this.#link = link // still retrying in the background
      } else {
        // Given up (a cluster whose root nodes all refused): start afresh on the next command.
        client.off('error', this.#onError)
        this.#connecting = undefined
      }
      throw this.#wrap(error)
    }
    if (epoch !== this.#epoch) throw this.#abandon(client)
    this.#opening = undefined
    this.#link = link
    return link
  }

  /**
   * close() came while `client` made its first connection: it is closed rather than kept retrying in the
   * background (which would keep the process alive); a client passed in stays open.
   */
  #abandon(client: NodeClient | ClusterClient): BackendError {
    if (this.#opening === client) this.#opening = undefined
    client.off('error', this.#onError)
    if (client !== this.#given && client.isOpen) client.destroy()
    return this.#closedMeanwhile()
  }

  #closedMeanwhile(): BackendError {
    return new BackendError(this.name, 'closed while connecting')
  }

  #create(redis: RedisModule, overrides?: object): NodeClient | ClusterClient {
    const o = this.#options
    const fromUrl = this.#location
    const tls = o.tls ?? fromUrl.tls
    const socket = {
      host: o.host ?? fromUrl.host ?? '127.0.0.1',
      port: o.port ?? fromUrl.port ?? 6379,
      connectTimeout: Math.round(toSeconds(o.connectTimeout ?? fromUrl.connectTimeout ?? 5, 'connectTimeout') * 1000),
      // Reconnect in the background with a capped backoff; commands meanwhile fail at once.
      reconnectStrategy: (retries: number) => Math.min(50 * 2 ** Math.min(retries, 5), 1000),
      ...(tls === true || typeof tls === 'object' ? { ...tlsOf(tls), tls: true as const } : {}),
    }
    const common = {
      username: o.username ?? fromUrl.username,
      password: o.password ?? fromUrl.password,
      disableOfflineQueue: true,
      commandOptions: { timeout: 0 },
    }
    if (o.cluster !== undefined) {
      const urls = o.cluster.map((node) => (typeof node === 'string' ? `redis://${node}` : node.url))
      // TLS for every node: asked for with tls, or by a root node's rediss:// url; the root urls then say rediss.
      const secure = tls ?? (urls.some((url) => url.startsWith('rediss://')) ? true : undefined)
      const rootNodes = urls.map((url) => ({ url: secure ? url.replace(/^redis:\/\//, 'rediss://') : url }))
      return redis.createCluster({
        rootNodes,
        defaults: {
          ...common,
          // Every node the cluster finds connects as the root nodes do, TLS included.
          socket: {
            connectTimeout: socket.connectTimeout,
            reconnectStrategy: socket.reconnectStrategy,
            ...(secure === true || typeof secure === 'object' ? { ...tlsOf(secure), tls: true as const } : {}),
          },
        },
      }) as unknown as ClusterClient
    }
    return redis.createClient({
      ...common,
      socket,
      database: o.db ?? fromUrl.db ?? 0,
      ...overrides,
    }) as unknown as NodeClient
  }

  #down(): BackendError {
    const last = this.#lastError
    const reason = last instanceof Error ? last.message : 'the connection is down'
    return new BackendError(this.name, `not connected (${reason}); reconnecting in the background`, { cause: last })
  }

  #wrap(error: unknown): Error {
    if (error instanceof BackendError || error instanceof TypeError) return error
    if (isReplyError(error))
      return new BackendError(this.name, `the server answered: ${error.message}`, { cause: error })
    const message = error instanceof Error ? error.message : String(error)
    if (
      error instanceof Error &&
      (/offline|closed/i.test(error.constructor.name) || typeof (error as NodeJS.ErrnoException).code === 'string')
    ) {
      return new BackendError(this.name, `not connected (${message}); reconnecting in the background`, { cause: error })
    }
    return new BackendError(this.name, message, { cause: error })
  }
}

/** The shortest reply answered in two halves (see `RedisBackend.#answer`). */
const SPLIT_AT = 64

/** The gets of one tick and one encoding: `MGET key…` in the making, and where each get answers, by position. */
class Batch {
  readonly binary: boolean
  /** `['MGET', key…]`, position `i + 1` holding the key of get `i`. */
  readonly args: string[] = ['MGET']
  readonly receivers: Receiver[] = []

  constructor(binary: boolean) {
    this.binary = binary
  }

  /**
   * Values `from` to `to` (excluded) of a GET or MGET, for the gets at positions `at` (all of them when
   * `undefined`).
   */
  answer(values: readonly unknown[], at: readonly number[] | undefined, from: number, to: number): void {
    const { receivers } = this
    for (let j = from; j < to; j++) receivers[at === undefined ? j : at[j]!]!.succeed(nullToUndefined(values[j]))
  }

  /** The gets at positions `at` (all of them when `undefined`) fail with `error`. */
  fail(error: Error, at?: readonly number[]): void {
    if (at === undefined) for (const receiver of this.receivers) receiver.failed(error)
    else for (const i of at) this.receivers[i]!.failed(error)
  }

  /** On a cluster, one MGET may only name keys of one hash slot: the gets grouped by slot. */
  bySlot(): Array<{ args: string[]; at: number[] }> {
    const groups = new Map<number, { args: string[]; at: number[] }>()
    const { args } = this
    for (let i = 1; i < args.length; i++) {
      const slot = calculateSlot(args[i]!)
      const group = groups.get(slot)
      if (group === undefined) groups.set(slot, { args: ['MGET', args[i]!], at: [i - 1] })
      else {
        group.args.push(args[i]!)
        group.at.push(i - 1)
      }
    }
    return [...groups.values()]
  }
}

/**
 * Resolves once the first connection attempt succeeds and rejects when it fails,
 * while node-redis goes on retrying in the background: the first command learns
 * at once that the server is down instead of waiting for its timeout.
 */
function firstAttempt(client: NodeClient | ClusterClient): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const done = (): void => {
      client.off('ready', onReady)
      client.off('error', onError)
    }
    const onReady = (): void => {
      done()
      resolve()
    }
    const onError = (error: Error): void => {
      done()
      reject(error)
    }
    client.on('ready', onReady)
    client.on('error', onError)
    client.connect().then(
      () => onReady(),
      (error: unknown) => onError(error instanceof Error ? error : new Error(String(error))),
    )
  })
}

function isReplyError(error: unknown): error is Error {
  // node-redis' ErrorReply and its subclasses; matched by name so two copies of the client both work.
  return (
    error instanceof Error &&
    /Error(Reply)?$/.test(error.constructor.name) &&
    'message' in error &&
    isServerMessage(error.message)
  )
}

function isServerMessage(message: string): boolean {
  return /^[A-Z]+[A-Z_]* /.test(message)
}

function yes(): true {
  return true
}

/** `GET key` on `link`, its reply as bytes when `encoding` is `null`. */
function sendGet(link: Link, key: string, encoding: 'utf8' | null | undefined): Promise<Reply> {
  return link.send(key, true, ['GET', key], encoding === null ? link.binary : undefined)
}

function nullToUndefined(value: unknown): unknown {
  return value === null ? undefined : value
}

/** A value as Redis stores it: strings as strings, bytes as raw bytes, integers as text. */
function arg(value: unknown): Arg {
  if (typeof value === 'string') return value
  if (value instanceof Uint8Array)
    return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength)
  if (typeof value === 'number' && Number.isFinite(value)) return String(value)
  throw new TypeError(
    `[oniocache] [redis] stores strings and bytes; the serializer produced ${describe(value)} (NullSerializer is ` +
      `for the memory backend only)`,
  )
}

function ms(ttl: number): number {
  return Math.max(1, Math.round(ttl * 1000))
}

function expiry(args: Arg[], ttl: number): void {
  if (Number.isInteger(ttl)) args.push('EX', String(ttl))
  else args.push('PX', String(ms(ttl)))
}

function groupBySlot<T extends readonly [string, unknown]>(pairs: readonly T[]): T[][] {
  const groups = new Map<number, T[]>()
  for (const pair of pairs) {
    const slot = calculateSlot(pair[0])
    const group = groups.get(slot)
    if (group === undefined) groups.set(slot, [pair])
    else group.push(pair)
  }
  return [...groups.values()]
}

function groupKeysBySlot(keys: readonly string[]): string[][] {
  return groupBySlot(keys.map((key) => [key, undefined] as const)).map((group) => group.map(([key]) => key))
}

/** The TLS options given (`tls: { ca, … }`), or none for `tls: true`. */
function tlsOf(tls: unknown): object {
  return tls !== null && typeof tls === 'object' ? tls : {}
}

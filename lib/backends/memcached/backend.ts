import type { Backend, Receiver } from '../../core/backend.js'
import { describe } from '../../util/describe.js'
import { toSeconds } from '../../util/duration.js'
import { BackendError } from '../../util/errors.js'
import { rejectLast, resolveLast, settleable } from '../../util/promise.js'
import type { ManyReplies, MemcachedClient, MemcachedClientOptions, MetaReply } from './client.js'
import { checkKey } from './keys.js'
import { checkMemcachedOptions, type MemcachedBackendOptions } from './options.js'

export type { MemcachedBackendOptions } from './options.js'

const VALUE = ['v']

/** The gets of one tick: their keys, whether each wants bytes, and where each one answers, by position. */
class Batch implements ManyReplies {
  readonly keys: string[] = []
  readonly binary: boolean[] = []
  readonly receivers: Receiver[] = []
  /** The client it is sent with, once it is. */
  client: MemcachedClient | undefined

  /** Sends every get with `client`: `mg <key> v`, the requests of each connection in one write. */
  send(client: MemcachedClient): void {
    this.client = client
    try {
      client.metaMany(this.keys, VALUE, this)
    } catch (error) {
      this.fail(error)
    }
  }

  /** Every get fails with `error`. */
  fail(error: unknown): void {
    for (const receiver of this.receivers) receiver.failed(error)
  }

  /** The reply to the get at `index`: its value, a miss, or why it failed. */
  settle(index: number, reply: MetaReply | Error): void {
    const receiver = this.receivers[index]!
    if (reply instanceof Error) receiver.failed(reply)
    else if (reply.code === 'VA') receiver.succeed(this.binary[index] ? reply.value! : reply.value!.toString())
    else if (reply.code === 'EN') receiver.succeed(undefined)
    else {
      const key = this.keys[index]!
      receiver.failed(
        new BackendError(
          `memcached ${this.client!.serverFor(key)}`,
          `unexpected reply ${reply.code} for ${JSON.stringify(key)}`,
        ),
      )
    }
  }
}

/** memcached reads an expiry above 30 days as an absolute Unix time. */
const RELATIVE_LIMIT = 60 * 60 * 24 * 30
// Room for the item header next to key and value, so a value the server would refuse is refused before I/O.
const ITEM_OVERHEAD = 64
// memcached's own decr pads a shorter number with spaces in place ("10" → "9 ").
const INTEGER_TEXT = /^-?\d+ *$/
const CAS_RETRIES = 100

/**
 * Memcached through oniocache's own meta-protocol client (`mg`/`ms`/`md`/`ma`),
 * pipelined over a few connections per server, keys spread by ketama-style
 * consistent hashing. Values are stored as raw bytes; strings as UTF-8.
 */
export class MemcachedBackend implements Backend {
  readonly name: string
  readonly #clientOptions: MemcachedClientOptions
  #client: MemcachedClient | undefined
  #loading: Promise<MemcachedClient> | undefined
  readonly #limits = new Map<string, Promise<number>>()
  /** `batch: true`: the gets of a tick go to each connection in one write. */
  readonly #batching: boolean
  /** The gets of this tick not sent yet. */
  #batch: Batch | undefined

  /**
   * Checks the options without connecting or loading the protocol client.
   * @throws {TypeError} for an unknown option, a server that is not `'host:port'`, or a `connectionsPerServer`
   *   that is not an integer >= 1.
   * @throws {RangeError} for a `connectTimeout` that is not a valid duration.
   */
  constructor(options: MemcachedBackendOptions = {}) {
    const servers = checkMemcachedOptions(options)
    const { connectionsPerServer, connectTimeout, batch } = options
    this.#batching = batch === true
    this.#clientOptions = {
      servers,
      ...(connectionsPerServer !== undefined ? { connectionsPerServer } : {}),
      ...(connectTimeout !== undefined
        ? { connectTimeoutMs: Math.round(toSeconds(connectTimeout, 'connectTimeout') * 1000) }
        : {}),
    }
    this.name = `memcached ${servers.join(',')}`
  }

  /**
   * The protocol client, loaded on the first command (importing oniocache never
   * loads a Memcached client). It connects lazily and reconnects by itself.
   */
  get client(): Promise<MemcachedClient> {
    if (this.#client !== undefined) return Promise.resolve(this.#client)
    this.#loading ??= import('./client.js').then(
      ({ MemcachedClient }) => (this.#client = new MemcachedClient(this.#clientOptions)),
    )
    return this.#loading
  }

  get(key: string, encoding?: 'utf8' | null): Promise<unknown> {
    const promise = settleable()
    this.getInto(key, encoding === null ? null : 'utf8', { succeed: resolveLast, failed: rejectLast })
    return promise
  }

  /** @internal */
  getInto(key: string, encoding: 'utf8' | null, receiver: Receiver): void {
    let k: string
    try {
      k = checkKey(key)
    } catch (error) {
      receiver.failed(error)
      return
    }
    if (!this.#batching) {
      const c = this.#use()
      if (c instanceof Promise) {
        c.then(
          (loaded) => getOn(loaded, k, encoding, receiver),
          (error: unknown) => receiver.failed(error),
        )
      } else getOn(c, k, encoding, receiver)
      return
    }
    let batch = this.#batch
    if (batch === undefined) {
      this.#batch = batch = new Batch()
      // Once the tick's microtasks have run too: gets that reach the backend through asynchronous middleware
      // join the batch of the gets issued with them.
      process.nextTick(this.#flush)
    }
    batch.keys.push(k)
    batch.binary.push(encoding === null)
    batch.receivers.push(receiver)
  }

  readonly #flush = (): void => {
    const batch = this.#batch
    if (batch === undefined) return
    this.#batch = undefined
    const client = this.#client
    if (client !== undefined) batch.send(client)
    else {
      this.client.then(
        (loaded) => batch.send(loaded),
        (error: unknown) => batch.fail(error),
      )
    }
  }

  async multiGet(keys: readonly string[], encoding?: 'utf8' | null): Promise<unknown[]> {
    const c = await this.#use()
    const checked = keys.map(checkKey)
    const replies = await Promise.all(checked.map((key) => c.meta(key, 'mg', ['v'])))
    return replies.map((reply) => (reply.code === 'VA' ? decode(reply.value!, encoding) : undefined))
  }

  async set(key: string, value: unknown, ttl: number, casToken?: unknown): Promise<boolean> {
    const c = await this.#use()
    const k = checkKey(key)
    const data = await this.#fit(c, k, value)
    if (casToken === undefined) {
      expect(c, k, await c.meta(k, 'ms', ttlFlags(ttl), data), ['HD'])
      return true
    }
    // The token is the stored value read earlier (as on Redis): compare it, then write with
    // memcached's CAS unique so nothing can slip in between the read and the write.
    const current = await c.meta(k, 'mg', ['v', 'c'])
    if (current.code !== 'VA' || !sameBytes(current.value!, bytes(casToken))) return false
    const reply = await c.meta(k, 'ms', [...ttlFlags(ttl), `C${current.flags.c}`], data)
    return expect(c, k, reply, ['HD', 'EX', 'NF']) === 'HD'
  }

  async add(key: string, value: unknown, ttl: number): Promise<boolean> {
    const c = await this.#use()
    const k = checkKey(key)
    const data = await this.#fit(c, k, value)
    return expect(c, k, await c.meta(k, 'ms', [...ttlFlags(ttl), 'ME'], data), ['HD', 'NS']) === 'HD'
  }

  async multiSet(pairs: ReadonlyArray<readonly [string, unknown]>, ttl: number): Promise<true> {
    const c = await this.#use()
    const checked = await Promise.all(
      pairs.map(async ([key, value]) => {
        const k = checkKey(key)
        return [k, await this.#fit(c, k, value)] as const
      }),
    )
    const flags = ttlFlags(ttl)
    // Pipelined in order, so the last of two pairs with the same key wins.
    const replies = await Promise.all(checked.map(([k, data]) => c.meta(k, 'ms', flags, data)))
    for (const [i, reply] of replies.entries()) expect(c, checked[i]![0], reply, ['HD'])
    return true
  }

  async delete(key: string): Promise<number> {
    const c = await this.#use()
    const k = checkKey(key)
    return expect(c, k, await c.meta(k, 'md', []), ['HD', 'NF']) === 'HD' ? 1 : 0
  }

  /** Compare-and-delete: `mg <key> v c`, compare the value, then `md <key> C<cas>`. */
  async deleteIf(key: string, expected: unknown): Promise<boolean> {
    const c = await this.#use()
    const k = checkKey(key)
    const current = await c.meta(k, 'mg', ['v', 'c'])
    if (current.code !== 'VA' || !sameBytes(current.value!, bytes(expected))) return false
    return expect(c, k, await c.meta(k, 'md', [`C${current.flags.c}`]), ['HD', 'EX', 'NF']) === 'HD'
  }

  async exists(key: string): Promise<boolean> {
    const c = await this.#use()
    const k = checkKey(key)
    // mg with no flags answers HD or EN: the value is never sent.
    return expect(c, k, await c.meta(k, 'mg', []), ['HD', 'EN']) === 'HD'
  }

  /**
   * A compare-and-swap on the value read first: `mg <key> v c t`, then, to add to
   * a count of 0 or more, `ma <key> C<cas> D<delta>`; to subtract, or below zero,
   * `ms <key> C<cas>` with the new count as text — memcached's counters are
   * unsigned, its decrement stops at 0 and pads the shorter number with spaces. Reading first is what
   * lets a value that is not an integer be refused: `ma` reads "5 apples" as 5
   * and would overwrite it with 6. A missing key starts at the delta (`ms` in add
   * mode), as in aiocache; the ttl stays. A lost race is retried.
   */
  async increment(key: string, delta: number): Promise<number> {
    const c = await this.#use()
    const k = checkKey(key)
    for (let attempt = 0; attempt < CAS_RETRIES; attempt++) {
      const current = await c.meta(k, 'mg', ['v', 'c', 't'])
      if (current.code !== 'VA') {
        const created = await c.meta(k, 'ms', ['ME'], Buffer.from(String(delta)))
        if (expect(c, k, created, ['HD', 'NS']) === 'HD') return delta
      } else {
        const text = current.value!.toString('latin1')
        if (!INTEGER_TEXT.test(text))
          throw new TypeError(
            `[oniocache] [${this.name}] cannot increment ${JSON.stringify(k)}: its value is not an integer`,
          )
        const value = Number(text.trimEnd())
        const next = value + delta
        if (!Number.isSafeInteger(value) || !Number.isSafeInteger(next)) {
          throw new RangeError(
            `[oniocache] [${this.name}] incrementing ${JSON.stringify(k)} would pass Number.MAX_SAFE_INTEGER`,
          )
        }
        const cas = `C${current.flags.c}`
        if (value >= 0 && delta >= 0) {
          const reply = await c.meta(k, 'ma', [cas, `D${delta}`, 'v'])
          if (expect(c, k, reply, ['VA', 'EX', 'NF']) === 'VA') return Number(reply.value!.toString('latin1').trimEnd())
        } else {
          const left = Number(current.flags.t)
          const written = await c.meta(k, 'ms', [cas, ...(left > 0 ? [`T${left}`] : [])], Buffer.from(String(next)))
          if (expect(c, k, written, ['HD', 'EX', 'NF']) === 'HD') return next
        }
      }
      // Lost a race: step aside for a moment, longer the more often it happens.
      await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(attempt + 1, 10)))
    }
    throw new BackendError(
      this.name,
      `increment of ${JSON.stringify(k)} lost ${CAS_RETRIES} compare-and-swap races in a row; try again`,
    )
  }

  /** Touch: `mg <key> T<ttl>` (T0: no expiry). */
  async expire(key: string, ttl: number): Promise<boolean> {
    const c = await this.#use()
    const k = checkKey(key)
    return expect(c, k, await c.meta(k, 'mg', [`T${exptime(ttl)}`]), ['HD', 'EN']) === 'HD'
  }

  /** Only the whole store (`flush_all` on every server): memcached has no way to find a namespace's keys. */
  async clear(prefix: string | null): Promise<true> {
    if (prefix !== null) {
      throw new BackendError(
        this.name,
        `Memcached cannot clear by namespace (it cannot list keys), so clearing the keys under ` +
          `${JSON.stringify(prefix)} did nothing; ` +
          `only clear() on a cache whose namespace is '' empties the servers (flush_all)`,
      )
    }
    await (await this.#use()).flushAll()
    return true
  }

  /**
   * A meta command (`raw('mg', key, 'v', 't')`, `raw('ms', key, value, 'T10')`),
   * `raw('version')` or `raw('flush_all')`.
   */
  async raw(command: string, args: readonly unknown[]): Promise<unknown> {
    const c = await this.#use()
    if (command === 'version') return c.version(typeof args[0] === 'string' ? args[0] : undefined)
    if (command === 'flush_all') return c.flushAll()
    if (command !== 'mg' && command !== 'ms' && command !== 'md' && command !== 'ma') {
      throw new TypeError(
        `[oniocache] [memcached] raw sends a meta command (mg, ms, md, ma), version or flush_all; ` +
          `${JSON.stringify(command)} is not one`,
      )
    }
    const [key, ...rest] = args
    if (typeof key !== 'string')
      throw new TypeError(`[oniocache] [memcached] raw('${command}', key, …) needs a key string`)
    const k = checkKey(key)
    if (command === 'ms') {
      const [value, ...flags] = rest
      return c.meta(k, 'ms', flags.map(String), await this.#fit(c, k, value))
    }
    return c.meta(k, command, rest.map(String))
  }

  async close(): Promise<void> {
    // Gets issued before close() go now, on the connections being closed, as unbatched gets would have.
    this.#flush()
    const client = this.#client ?? (await this.#loading)
    await client?.close()
  }

  /**
   * The client, for any command but a batched get. The gets of the tick still waiting go first: on their keys'
   * connections, so that a write issued after a get is not applied before it.
   */
  #use(): MemcachedClient | Promise<MemcachedClient> {
    if (this.#batch !== undefined) this.#flush()
    return this.#client ?? this.client
  }

  /** The value as bytes, refused before any write when the server could not store it. */
  async #fit(c: MemcachedClient, key: string, value: unknown): Promise<Buffer> {
    const data = bytes(value)
    const server = c.serverFor(key)
    let limit = this.#limits.get(server)
    if (limit === undefined) {
      limit = c.itemSizeLimit(server)
      this.#limits.set(server, limit)
      limit.catch(() => this.#limits.delete(server)) // ask again once the server is back
    }
    const max = await limit
    if (data.byteLength + Buffer.byteLength(key) + ITEM_OVERHEAD > max) {
      throw new RangeError(
        `[oniocache] [memcached ${server}] the value of ${JSON.stringify(key)} is ${data.byteLength} bytes, over ` +
          `the server's item size limit ` +
          `(${max} bytes, memcached -I); nothing was written`,
      )
    }
    return data
  }
}

/** A ttl in seconds as memcached's exptime: whole seconds rounded up; past 30 days an absolute Unix time. */
export function exptime(ttl: number): number {
  if (ttl <= 0) return 0
  const seconds = Math.ceil(ttl)
  return seconds > RELATIVE_LIMIT ? Math.floor(Date.now() / 1000) + seconds : seconds
}

function ttlFlags(ttl: number): string[] {
  return ttl > 0 ? [`T${exptime(ttl)}`] : []
}

function bytes(value: unknown): Buffer {
  if (typeof value === 'string') return Buffer.from(value, 'utf8')
  if (value instanceof Uint8Array)
    return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength)
  if (typeof value === 'number' && Number.isFinite(value)) return Buffer.from(String(value))
  throw new TypeError(
    `[oniocache] [memcached] stores strings and bytes; the serializer produced ${describe(value)} (NullSerializer ` +
      `is for the memory backend only)`,
  )
}

/** `mg <key> v` with `c`, answered into `receiver`. */
function getOn(c: MemcachedClient, key: string, encoding: 'utf8' | null, receiver: Receiver): void {
  c.meta(key, 'mg', VALUE).then(
    (reply) => receiver.succeed(reply.code === 'VA' ? decode(reply.value!, encoding) : undefined),
    (error: unknown) => receiver.failed(error),
  )
}

function decode(value: Buffer, encoding: 'utf8' | null | undefined): string | Buffer {
  return encoding === null ? value : value.toString('utf8')
}

function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.byteLength === b.byteLength && a.equals(b)
}

/** The reply's code if it is one of `codes`; anything else is a BackendError naming the server. */
function expect(client: MemcachedClient, key: string, reply: MetaReply, codes: readonly string[]): string {
  if (codes.includes(reply.code)) return reply.code
  throw new BackendError(
    `memcached ${client.serverFor(key)}`,
    `unexpected reply ${reply.code} for ${JSON.stringify(key)}`,
  )
}

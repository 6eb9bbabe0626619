/**
 * oniocache's own memcached client: the meta protocol (`mg`/`ms`/`md`/`ma`, memcached
 * >= 1.6), pipelined over a few connections per server, keys spread over the servers by
 * ketama consistent hashing. There is no maintained npm client that offers CAS,
 * consistent hashing and promises together, hence this one; it does only what the
 * memcached backend needs.
 *
 * Every failure is a rejected promise: a `BackendError` naming the server
 * (`[oniocache] [memcached 127.0.0.1:11211] …`) for anything the server or the network
 * did, a `TypeError` / `InvalidKeyError` for a request that must never be sent. The
 * client has no per-request timer: a server that stops answering (but keeps its
 * connections) makes requests wait, and the cache's timeout layer bounds them.
 */
import { describe } from '../../util/describe.js'
import { InvalidKeyError } from '../../util/errors.js'
import { checkOptions } from '../../util/options.js'
import { KetamaRing } from './ketama.js'
import { keyProblem, MAX_KEY_BYTES } from './keys.js'
import type { MetaReply } from './parser.js'
import { ServerPool } from './pool.js'
import { parseServer } from './servers.js'

export { MemcachedReplyError } from './connection.js'
export type { MetaReply } from './parser.js'
export { ProtocolError } from './parser.js'

/** The options of `new MemcachedClient(…)`. Times are milliseconds here, as in the protocol layer. */
export interface MemcachedClientOptions {
  /** `'host:port'` (IPv6: `'[::1]:11211'`), at least one. A key's server depends on these exact strings. */
  servers: readonly string[]
  /**
   * Connections per server, default 2. A key always uses the same connection, so the
   * requests for one key are carried out in the order they were made.
   */
  connectionsPerServer?: number
  /** How long one connection attempt may take, default 2000. */
  connectTimeoutMs?: number
  /** Reconnect backoff: first retry after min, doubling up to max. Default 50 and 1000. */
  retryMinMs?: number
  /** The longest wait between two reconnection attempts, in milliseconds. Default 1000; at least `retryMinMs`. */
  retryMaxMs?: number
  /** How long `close()` lets requests already sent wait for their replies, default 1000. */
  closeTimeoutMs?: number
}

/**
 * The meta commands `MemcachedClient.meta` sends: get, set, delete, arithmetic.
 * @inline
 */
export type MetaCommand = 'mg' | 'ms' | 'md' | 'ma'

const OPTIONS = [
  'servers',
  'connectionsPerServer',
  'connectTimeoutMs',
  'retryMinMs',
  'retryMaxMs',
  'closeTimeoutMs',
] as const
const COMMANDS: ReadonlySet<string> = new Set(['mg', 'ms', 'md', 'ma'])
/** A flag letter and an optional token of printable ASCII; opaque tokens are at most 32 bytes. */
const FLAG = /^[A-Za-z][\x21-\x7e]{0,63}$/
/**
 * memcached 1.6.18 answers `CLIENT_ERROR options flags too long` to an `ms` with more
 * than 16 flags WITHOUT reading its data block, which would then run as commands.
 */
export const MAX_FLAGS = 16
const EMPTY = new Uint8Array(0)

/**
 * oniocache's memcached client (what `MemcachedBackend` uses, exported for work below the cache): the meta protocol
 * (memcached >= 1.6), pipelined over a few connections per server, keys spread over the servers by ketama
 * consistent hashing. It connects on first use and reconnects by itself. Every failure is a rejected promise: a
 * `BackendError` naming the server for anything the server or the network did, a `TypeError` or `InvalidKeyError`
 * for a request that must never be sent. No request has a timer of its own: bound them from outside.
 */
export class MemcachedClient {
  /** The servers, as given. */
  readonly servers: readonly string[]
  readonly #pools: readonly ServerPool[]
  readonly #byName: ReadonlyMap<string, ServerPool>
  readonly #ring: KetamaRing | undefined
  readonly #connections: number
  /**
   * Checks the options; does NOT connect: that happens on first use.
   * @throws {TypeError} for an unknown option, no servers, a server that is not `'host:port'` or is listed twice,
   *   or a count or time that is not an integer in range.
   * @throws {RangeError} when `retryMaxMs` is below `retryMinMs`.
   */
  constructor(options: MemcachedClientOptions) {
    checkOptions(options, OPTIONS, 'MemcachedClient')
    const { servers } = options
    if (!Array.isArray(servers) || servers.length === 0) {
      throw new TypeError(
        `[oniocache] memcached servers must be a non-empty array of 'host:port' strings; got ${describe(servers)}`,
      )
    }
    const pool = {
      connections: integer(options.connectionsPerServer, 'connectionsPerServer', 2, 1),
      connectTimeoutMs: integer(options.connectTimeoutMs, 'connectTimeoutMs', 2000, 1),
      retryMinMs: integer(options.retryMinMs, 'retryMinMs', 50, 1),
      retryMaxMs: integer(options.retryMaxMs, 'retryMaxMs', 1000, 1),
      closeTimeoutMs: integer(options.closeTimeoutMs, 'closeTimeoutMs', 1000, 0),
    }
    if (pool.retryMaxMs < pool.retryMinMs) {
      throw new RangeError(
        `[oniocache] memcached retryMaxMs (${pool.retryMaxMs}) must not be below retryMinMs (${pool.retryMinMs})`,
      )
    }
    const byName = new Map<string, ServerPool>()
    for (const text of servers as readonly unknown[]) {
      const server = parseServer(text)
      if (byName.has(server.name))
        throw new TypeError(`[oniocache] memcached server ${JSON.stringify(server.name)} is listed twice`)
      byName.set(server.name, new ServerPool(server.name, server.host, server.port, pool))
    }
    this.servers = [...byName.keys()]
    this.#byName = byName
    this.#pools = [...byName.values()]
    this.#ring = this.servers.length > 1 ? new KetamaRing(this.servers) : undefined
    this.#connections = pool.connections
  }

  /** The 'host:port' that owns `key` (ketama consistent hashing, stable across processes). */
  serverFor(key: string): string {
    return this.#ring === undefined ? (this.servers[0] as string) : this.#ring.serverFor(key)
  }

  /**
   * Sends one meta command for `key` to its server and resolves with the reply:
   * `<command> <key> <flags...>\r\n`, and for `ms` `ms <key> <datalen> <flags...>\r\n<data>\r\n`
   * (no `data` stores an empty value). `flags` are tokens without the key, e.g.
   * `['v', 'c', 't']` or `['T30', 'ME']`; the `q` (quiet) flag is refused, since it
   * suppresses the replies that requests are matched with. `data` is written at the end
   * of the current tick, without a copy: do not change it before the promise settles.
   * Error replies (`CLIENT_ERROR …`, `SERVER_ERROR …`, `ERROR`) reject with a BackendError that quotes them.
   * @throws {InvalidKeyError} for a key memcached cannot hold (as a rejection, nothing sent).
   * @throws {TypeError} for an unknown command, a flag that is not a token (or is `q`), too many flags, or `data`
   *   given to a command other than `ms` (as a rejection, nothing sent).
   * @throws {BackendError} for an error reply, or when the server cannot be reached.
   */
  meta(key: string, command: MetaCommand, flags: readonly string[], data?: Uint8Array): Promise<MetaReply> {
    const problem = checkMeta(key, command, flags, data)
    if (problem) return Promise.reject(problem)
    let line = `${command} ${key}`
    if (command === 'ms') {
      data ??= EMPTY
      line += ` ${data.byteLength}`
    }
    for (const flag of flags) line += ` ${flag}`
    line += '\r\n'
    const pool =
      this.#ring === undefined ? (this.#pools[0] as ServerPool) : (this.#pools[this.#ring.indexFor(key)] as ServerPool)
    const slot = this.#connections === 1 ? 0 : fnv1a(key)
    const bytes = data?.byteLength ?? 0
    return new Promise((resolve, reject) =>
      pool.request(slot, { kind: 'meta', command, bytes, resolve, reject }, line, data),
    )
  }

  /**
   * Sends `mg <key> <flags…>` for every key of `keys`, which must be valid memcached keys, and hands each reply
   * to `to.settle` with the key's position: the requests that go over one connection (each key takes the connection
   * `meta` would give it, so that its commands keep their order) are sent in one write, matched with one entry of
   * its queue. A failure (an error reply, a server down, a connection lost) is handed over as an Error, a
   * `BackendError` naming the server. `flags` are checked as for `meta`.
   * @internal
   */
  metaMany(keys: readonly string[], flags: readonly string[], to: ManyReplies): void {
    const problem = keys.length === 0 ? undefined : checkMeta(keys[0], 'mg', flags, undefined)
    if (problem !== undefined) {
      for (let i = 0; i < keys.length; i++) to.settle(i, problem)
      return
    }
    let tail = ''
    for (const flag of flags) tail += ` ${flag}`
    tail += '\r\n'
    const ring = this.#ring
    const connections = this.#connections
    if (ring === undefined && connections === 1) {
      let lines = ''
      for (const key of keys) lines += `mg ${key}${tail}`
      ;(this.#pools[0] as ServerPool).request(0, new ManyGets(undefined, keys.length, to), lines)
      return
    }
    if (keys.length === 1) {
      // A lone get (one in flight): the connection `meta` would take, without grouping.
      const key = keys[0] as string
      const pool = this.#pools[ring === undefined ? 0 : ring.indexFor(key)] as ServerPool
      pool.request(fnv1a(key) % connections, new ManyGets(undefined, 1, to), `mg ${key}${tail}`)
      return
    }
    // By server and connection: `server × connections + connection`.
    const groups = new Map<number, number[]>()
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as string
      const at = (ring === undefined ? 0 : ring.indexFor(key)) * connections + (fnv1a(key) % connections)
      const group = groups.get(at)
      if (group === undefined) groups.set(at, [i])
      else group.push(i)
    }
    for (const [at, indices] of groups) {
      let lines = ''
      for (const i of indices) lines += `mg ${keys[i]}${tail}`
      const pool = this.#pools[Math.floor(at / connections)] as ServerPool
      pool.request(at % connections, new ManyGets(indices, indices.length, to), lines)
    }
  }

  /** `flush_all` on every server; resolves when all answered OK (rejects with the first failure). */
  async flushAll(): Promise<void> {
    await Promise.all(this.#pools.map((pool) => pool.line('flush_all', 'OK')))
  }

  /** `version` of one server (default: the first), e.g. '1.6.18'. */
  version(server?: string): Promise<string> {
    const pool = this.#pool(server ?? (this.servers[0] as string))
    if (pool instanceof Error) return Promise.reject(pool)
    return pool.line('version', 'VERSION ').then((line) => line.slice('VERSION '.length))
  }

  /** `stats` (or `stats <group>`, e.g. 'settings') of one server, as name → value. */
  stats(server: string, group?: string): Promise<Record<string, string>> {
    const pool = this.#pool(server)
    if (pool instanceof Error) return Promise.reject(pool)
    if (group !== undefined && !/^[a-z_]+(?: [0-9]+)?$/.test(group)) {
      return Promise.reject(new TypeError(`[oniocache] not a memcached stats group: ${describe(group)}`))
    }
    return pool.stats(group)
  }

  /** The server's item size limit in bytes (from `stats settings` item_size_max, read once per connection). */
  itemSizeLimit(server: string): Promise<number> {
    const pool = this.#pool(server)
    if (pool instanceof Error) return Promise.reject(pool)
    return pool.itemSizeLimit()
  }

  /** Whether `server` is known to be down right now (its requests reject at once until it is back). */
  isDown(server: string): boolean {
    return this.#byName.get(server)?.down ?? false
  }

  /**
   * Ends every socket and timer. Requests already sent get `closeTimeoutMs` to receive
   * their replies; the rest reject. The client can be used again afterwards (it reconnects).
   */
  async close(): Promise<void> {
    await Promise.all(this.#pools.map((pool) => pool.close()))
  }

  #pool(server: string): ServerPool | TypeError {
    return (
      this.#byName.get(server) ??
      new TypeError(
        `[oniocache] ${describe(server)} is not one of this client's memcached servers (${this.servers.join(', ')})`,
      )
    )
  }
}

/** Where `metaMany` hands each reply: with the position of its key. @internal */
export interface ManyReplies {
  settle(index: number, reply: MetaReply | Error): void
}

/** The requests of one `metaMany` on one server, answered in order through one entry of its connection's queue. */
class ManyGets {
  readonly kind = 'many' as const
  readonly command = 'mg'
  readonly bytes = 0
  /** The position in the caller's keys of each request, in order; `undefined`: the same as the order. */
  readonly #indices: readonly number[] | undefined
  readonly #count: number
  readonly #to: ManyReplies
  #answered = 0

  constructor(indices: readonly number[] | undefined, count: number, to: ManyReplies) {
    this.#indices = indices
    this.#count = count
    this.#to = to
  }

  answer(reply: MetaReply | Error): boolean {
    const i = this.#answered++
    this.#to.settle(this.#indices === undefined ? i : (this.#indices[i] as number), reply)
    return this.#answered === this.#count
  }

  reject(error: Error): void {
    while (this.#answered < this.#count) this.answer(error)
  }
}

/** What makes a meta request unsendable, if anything: sending it could desynchronise the connection. */
function checkMeta(key: unknown, command: unknown, flags: unknown, data: unknown): Error | undefined {
  if (typeof command !== 'string' || !COMMANDS.has(command)) {
    return new TypeError(`[oniocache] a memcached meta command is 'mg', 'ms', 'md' or 'ma'; got ${describe(command)}`)
  }
  if (keyProblem(key) !== undefined) {
    return new InvalidKeyError(
      `[oniocache] [memcached] invalid key ${describe(key)}: memcached keys are 1 to ${MAX_KEY_BYTES} bytes without ` +
        `spaces or control characters`,
    )
  }
  if (!Array.isArray(flags) || flags.length > MAX_FLAGS) {
    return new TypeError(
      `[oniocache] memcached meta flags must be an array of at most ${MAX_FLAGS} tokens; got ${describe(flags)}`,
    )
  }
  for (const flag of flags as readonly unknown[]) {
    if (typeof flag !== 'string' || !FLAG.test(flag)) {
      return new TypeError(
        `[oniocache] not a memcached meta flag: ${describe(flag)} (a letter, then an optional token of printable ` +
          `ASCII)`,
      )
    }
    if (flag[0] === 'q')
      return new TypeError(
        `[oniocache] the memcached 'q' (quiet) flag is not supported: replies are matched to requests in order`,
      )
  }
  if (data !== undefined && (command !== 'ms' || !(data instanceof Uint8Array))) {
    return new TypeError(`[oniocache] only 'ms' takes a value, as a Uint8Array; got ${describe(data)} for ${command}`)
  }
  return undefined
}

function integer(value: unknown, name: string, fallback: number, min: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new TypeError(`[oniocache] memcached ${name} must be an integer >= ${min}; got ${describe(value)}`)
  }
  return value
}

/** FNV-1a over the key's UTF-16 code units: picks a key's connection, cheaply and evenly. */
function fnv1a(key: string): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return hash >>> 0
}

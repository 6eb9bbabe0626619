/**
 * The connections to one memcached server, and whether that server is up.
 *
 * Connections open lazily, the first time a request needs them; requests made while the
 * first attempt is under way wait for its outcome. When a connection cannot connect, or
 * the server closes or resets it, the server is down: its requests reject at once with a
 * `BackendError` (no queueing until some timeout), and a single probe connection retries
 * in the background — after `retryMinMs`, doubling up to `retryMaxMs` — until the server
 * accepts it, which makes the server up again. Timers and idle sockets are unref'd: only
 * requests waiting for replies keep the process alive.
 */
import { BackendError } from '../../util/errors.js'
import { type CloseReason, Connection, type Pending } from './connection.js'

export interface ServerPoolOptions {
  connections: number
  connectTimeoutMs: number
  retryMinMs: number
  retryMaxMs: number
  closeTimeoutMs: number
}

/** @internal */
export class ServerPool {
  /** `host:port`, as given. */
  readonly name: string
  /** `memcached host:port`: the backend named by its BackendErrors. */
  readonly label: string
  readonly #host: string
  readonly #port: number
  readonly #options: ServerPoolOptions
  readonly #slots: (Connection | undefined)[]
  /** Why the server is down; undefined while it is (believed) up. */
  #down: Error | undefined
  #retryMs: number
  #retryTimer: NodeJS.Timeout | undefined
  #probe: Connection | undefined
  #itemSizeLimit: Promise<number> | undefined

  constructor(name: string, host: string, port: number, options: ServerPoolOptions) {
    this.name = name
    this.label = `memcached ${name}`
    this.#host = host
    this.#port = port
    this.#options = options
    this.#slots = new Array<Connection | undefined>(options.connections).fill(undefined)
    this.#retryMs = options.retryMinMs
  }

  /** Whether the server is known to be down (requests for it reject at once). */
  get down(): boolean {
    return this.#down !== undefined
  }

  /**
   * Sends a request on connection `slot` (modulo the pool size), opening it if needed;
   * rejects it at once while the server is down.
   */
  request(slot: number, pending: Pending, line: string, data?: Uint8Array): void {
    if (this.#down) {
      pending.reject(
        new BackendError(
          this.label,
          `${pending.command} failed: not connected (${this.#down.message}); reconnecting in the background`,
          { cause: this.#down },
        ),
      )
      return
    }
    const index = slot % this.#slots.length
    const connection = (this.#slots[index] ??= this.#open())
    connection.request(pending, line, data)
  }

  /** Sends a text-protocol command with a one-line reply starting with `expect`; resolves that line. */
  line(command: string, expect: string): Promise<string> {
    return new Promise((resolve, reject) =>
      this.request(0, { kind: 'line', command, expect, resolve, reject }, `${command}\r\n`),
    )
  }

  /** `stats` (or `stats <group>`) as name → value. */
  stats(group?: string): Promise<Record<string, string>> {
    const command = group === undefined ? 'stats' : `stats ${group}`
    return new Promise((resolve, reject) =>
      this.request(0, { kind: 'stats', command, stats: {}, resolve, reject }, `${command}\r\n`),
    )
  }

  /** `item_size_max` from `stats settings`, read once until the server's connections are lost or closed. */
  itemSizeLimit(): Promise<number> {
    if (this.#itemSizeLimit === undefined) {
      const limit = this.stats('settings').then((stats) => {
        const bytes = Number(stats.item_size_max)
        if (!Number.isSafeInteger(bytes) || bytes <= 0) {
          throw new BackendError(
            this.label,
            `stats settings has no usable item_size_max (${JSON.stringify(stats.item_size_max)})`,
          )
        }
        return bytes
      })
      this.#itemSizeLimit = limit
      limit.catch(() => {
        if (this.#itemSizeLimit === limit) this.#itemSizeLimit = undefined
      })
    }
    return this.#itemSizeLimit
  }

  /** Ends every connection (see `Connection.close`) and the retry timer; the pool can be used again afterwards. */
  async close(): Promise<void> {
    clearTimeout(this.#retryTimer)
    this.#retryTimer = undefined
    this.#down = undefined
    this.#retryMs = this.#options.retryMinMs
    this.#itemSizeLimit = undefined
    const closing: Promise<void>[] = []
    const probe = this.#probe
    this.#probe = undefined
    if (probe) closing.push(probe.close(0))
    for (let i = 0; i < this.#slots.length; i++) {
      const connection = this.#slots[i]
      this.#slots[i] = undefined
      if (connection) closing.push(connection.close(this.#options.closeTimeoutMs))
    }
    await Promise.all(closing)
  }

  #open(): Connection {
    return new Connection({
      host: this.#host,
      port: this.#port,
      label: this.label,
      connectTimeoutMs: this.#options.connectTimeoutMs,
      onClose: (connection, reason) => this.#closed(connection, reason),
    })
  }

  #closed(connection: Connection, reason: CloseReason): void {
    if (reason.kind !== 'closed') this.#itemSizeLimit = undefined
    if (connection === this.#probe) {
      // Still down: try again later, waiting twice as long (up to the maximum).
      this.#probe = undefined
      if (reason.kind === 'down') this.#down = reason.error
      this.#retryMs = Math.min(this.#retryMs * 2, this.#options.retryMaxMs)
      this.#scheduleRetry()
      return
    }
    const index = this.#slots.indexOf(connection)
    if (index < 0) return // closed by close(): no longer ours
    this.#slots[index] = undefined
    if (reason.kind === 'down' && this.#down === undefined) {
      this.#down = reason.error
      this.#retryMs = this.#options.retryMinMs
      this.#scheduleRetry()
    }
  }

  #scheduleRetry(): void {
    clearTimeout(this.#retryTimer)
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined
      this.#probe = new Connection({
        host: this.#host,
        port: this.#port,
        label: this.label,
        connectTimeoutMs: this.#options.connectTimeoutMs,
        onConnect: (connection) => this.#up(connection),
        onClose: (connection, reason) => this.#closed(connection, reason),
      })
    }, this.#retryMs)
    this.#retryTimer.unref()
  }

  /** The probe connected: the server is up again, and the probe serves as one of its connections. */
  #up(probe: Connection): void {
    if (probe !== this.#probe) return
    this.#probe = undefined
    this.#down = undefined
    this.#retryMs = this.#options.retryMinMs
    const index = this.#slots.indexOf(undefined)
    if (index >= 0) this.#slots[index] = probe
    else void probe.close(0)
  }
}

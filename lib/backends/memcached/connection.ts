/**
 * One TCP connection to one memcached server, pipelined: requests are written as soon
 * as they are made (all those of one tick in a single write) and their replies are
 * matched to them first in, first out. Whatever happens to the socket, every request
 * on it is settled: a connection that fails rejects all of its requests at once with
 * a `BackendError` and tells its owner why it ended.
 */
import * as net from 'node:net'
import { BackendError } from '../../util/errors.js'
import { type MetaReply, ProtocolError, type Reply, ReplyParser } from './parser.js'

/** An error line the server answered (`ERROR`, `CLIENT_ERROR …`, `SERVER_ERROR …`); the `cause` of the BackendError. */
export class MemcachedReplyError extends Error {
  /** The line as the server sent it, e.g. `SERVER_ERROR object too large for cache`. */
  readonly reply: string
  constructor(reply: string) {
    super(reply)
    this.name = 'MemcachedReplyError'
    this.reply = reply
  }
}

/** Why a connection ended. */
export type CloseReason =
  /** It could not connect, or the server closed or reset it: the server is down. */
  | { kind: 'down'; error: Error }
  /** It was dropped because the reply stream could no longer be trusted (garbage, or a desynchronising reply). */
  | { kind: 'reset'; error: Error }
  /** `close()` ended it. */
  | { kind: 'closed' }

export interface ConnectionOptions {
  host: string
  port: number
  /** `memcached host:port`, the BackendError's backend. */
  label: string
  connectTimeoutMs: number
  onConnect?(connection: Connection): void
  /** Called once, when the connection ends for whatever reason. */
  onClose(connection: Connection, reason: CloseReason): void
}

/** A request waiting for its reply. */
export type Pending =
  | { kind: 'meta'; command: string; bytes: number; resolve(reply: MetaReply): void; reject(error: Error): void }
  /**
   * Several meta requests written as one (the gets of a tick): `answer` takes their replies in order, an error
   * reply as a BackendError, and says once it has had the last; `reject` fails those not answered yet.
   */
  | {
      kind: 'many'
      command: string
      bytes: number
      answer(reply: MetaReply | Error): boolean
      reject(error: Error): void
    }
  /** A one-line text reply starting with `expect` (`OK`, `VERSION `). */
  | { kind: 'line'; command: string; expect: string; resolve(line: string): void; reject(error: Error): void }
  /** `STAT name value` lines up to `END`. */
  | {
      kind: 'stats'
      command: string
      stats: Record<string, string>
      resolve(stats: Record<string, string>): void
      reject(error: Error): void
    }

/**
 * Error replies to `ms` after which memcached has NOT read the data block: it will read
 * the value as command lines, so nothing that follows on the connection lines up any more.
 * (1.6.18 reads and discards the block for every other error, `object too large` included.)
 * The client's own checks keep these from happening; this is the safety net.
 */
const DESYNCHRONISING = /^(?:ERROR|CLIENT_ERROR (?:bad command line format|options flags|line too long|bad data chunk))/

/** `connecting` → `open` → (`closing` →) `closed`. */
type State = 'connecting' | 'open' | 'closing' | 'closed'

export class Connection {
  readonly #options: ConnectionOptions
  readonly #socket: net.Socket
  readonly #parser = new ReplyParser()
  readonly #closed: Promise<void>
  #queue: (Pending | undefined)[] = []
  #head = 0
  /** Bytes to write at the end of this tick: `#parts`, then `#text`. */
  #parts: (string | Uint8Array)[] = []
  #text = ''
  #flushQueued = false
  #state: State = 'connecting'
  /** Whether the socket keeps the process alive: only while requests wait for replies. */
  #referenced = false
  #connectTimer: NodeJS.Timeout | undefined
  #graceTimer: NodeJS.Timeout | undefined
  #socketError: Error | undefined

  constructor(options: ConnectionOptions) {
    this.#options = options
    const socket = net.connect({
      host: options.host,
      port: options.port,
      noDelay: true,
      keepAlive: true,
      keepAliveInitialDelay: 30_000,
    })
    this.#socket = socket
    socket.unref()
    this.#connectTimer = setTimeout(() => {
      this.#drop({ kind: 'down', error: new Error(`connect timed out after ${options.connectTimeoutMs} ms`) })
    }, options.connectTimeoutMs)
    this.#connectTimer.unref()
    this.#closed = new Promise((resolve) => socket.once('close', () => resolve()))
    socket.once('connect', () => {
      clearTimeout(this.#connectTimer)
      this.#connectTimer = undefined
      if (this.#state !== 'connecting') return
      this.#state = 'open'
      options.onConnect?.(this)
    })
    socket.on('data', (chunk: Buffer) => this.#read(chunk))
    socket.on('error', (error) => {
      this.#socketError ??= error
    })
    socket.on('close', () => this.#onSocketClose())
  }

  /** Requests written (or about to be) whose replies have not arrived. */
  get inFlight(): number {
    return this.#queue.length - this.#head
  }

  /**
   * Queues `pending` and its bytes: `line` (with its `\r\n`), then for `ms` the data
   * block and its `\r\n`. Written at the end of the current tick, with every other
   * request of the tick.
   */
  request(pending: Pending, line: string, data?: Uint8Array): void {
    if (this.#state === 'closing' || this.#state === 'closed') {
      pending.reject(new BackendError(this.#options.label, `${pending.command} failed: the connection is closing`))
      return
    }
    this.#queue.push(pending)
    if (data === undefined) {
      this.#text += line
    } else {
      this.#parts.push(this.#text + line, data)
      this.#text = '\r\n'
    }
    if (!this.#flushQueued) {
      this.#flushQueued = true
      queueMicrotask(this.#flush)
    }
    this.#updateReference()
  }

  /**
   * Ends the connection. Requests already sent get `graceMs` to receive their replies
   * (the socket is half-closed so that the server answers them and then closes);
   * whatever is still waiting after that is rejected. Resolves once the socket is closed.
   */
  close(graceMs: number): Promise<void> {
    if (this.#state === 'closing' || this.#state === 'closed') return this.#closed
    if (this.inFlight === 0 || graceMs <= 0) {
      this.#drop({ kind: 'closed' })
      return this.#closed
    }
    this.#flush()
    this.#state = 'closing'
    this.#socket.end()
    this.#graceTimer = setTimeout(() => this.#drop({ kind: 'closed' }), graceMs)
    this.#graceTimer.unref()
    return this.#closed
  }

  readonly #flush = (): void => {
    this.#flushQueued = false
    if (this.#text !== '') {
      this.#parts.push(this.#text)
      this.#text = ''
    }
    const parts = this.#parts
    if (parts.length === 0) return
    this.#parts = []
    if (this.#state === 'closed') return
    const socket = this.#socket
    try {
      if (parts.length === 1) {
        socket.write(parts[0] as string | Uint8Array)
      } else {
        socket.cork()
        for (const part of parts) socket.write(part)
        socket.uncork()
      }
    } catch (error) {
      // write() only throws for arguments it cannot take (say, a detached buffer): the
      // bytes already queued may be incomplete, so the stream cannot be trusted any more.
      this.#drop({ kind: 'reset', error: error instanceof Error ? error : new Error(String(error)) })
    }
  }

  #read(chunk: Buffer): void {
    if (this.#state === 'closed') return
    try {
      const { replies, error } = this.#parser.feed(chunk)
      for (const reply of replies) if (!this.#dispatch(reply)) return
      if (error) {
        this.#drop({ kind: 'reset', error })
        return
      }
      if (this.#state === 'closing' && this.inFlight === 0) {
        this.#drop({ kind: 'closed' })
        return
      }
      this.#updateReference()
    } catch (error) {
      // Unreachable unless there is a bug here: still never let it escape the socket's handler.
      this.#drop({ kind: 'reset', error: new ProtocolError(`failed to handle a reply: ${String(error)}`) })
    }
  }

  /** Hands `reply` to the oldest request; false when the connection had to be dropped. */
  #dispatch(reply: Reply): boolean {
    const pending = this.#queue[this.#head]
    if (pending === undefined)
      return this.#garbage(`a reply arrived with no request waiting for it (${describeReply(reply)})`)
    if ('code' in reply) {
      if (pending.kind === 'many') {
        if (pending.answer(reply)) this.#shift()
        return true
      }
      if (pending.kind !== 'meta') return this.#garbage(`${pending.command} got the meta reply ${describeReply(reply)}`)
      this.#shift()
      pending.resolve(reply)
      return true
    }
    if (reply.kind === 'error') {
      if (pending.kind === 'many') {
        if (pending.answer(this.#replyError(pending, reply.line))) this.#shift()
        return true
      }
      this.#shift()
      pending.reject(this.#replyError(pending, reply.line))
      if (pending.command === 'ms' && DESYNCHRONISING.test(reply.line)) {
        return this.#garbage(
          `the server could not read an ms command line (${reply.line}) and takes its data block for commands`,
        )
      }
      return true
    }
    if (pending.kind === 'line' && reply.line.startsWith(pending.expect)) {
      this.#shift()
      pending.resolve(reply.line)
      return true
    }
    if (pending.kind === 'stats') {
      if (reply.line === 'END') {
        this.#shift()
        pending.resolve(pending.stats)
        return true
      }
      if (reply.line.startsWith('STAT ')) {
        const space = reply.line.indexOf(' ', 5)
        if (space < 0) pending.stats[reply.line.slice(5)] = ''
        else pending.stats[reply.line.slice(5, space)] = reply.line.slice(space + 1)
        return true
      }
    }
    return this.#garbage(`${pending.command} got the reply ${describeReply(reply)}`)
  }

  #garbage(message: string): false {
    this.#drop({ kind: 'reset', error: new ProtocolError(message) })
    return false
  }

  #shift(): void {
    this.#queue[this.#head++] = undefined
    if (this.#head === this.#queue.length) {
      this.#queue.length = 0
      this.#head = 0
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head)
      this.#head = 0
    }
  }

  #replyError(pending: Pending, line: string): BackendError {
    let hint = ''
    if (pending.kind === 'meta' && line.startsWith('SERVER_ERROR object too large')) {
      hint =
        `: the ${pending.bytes}-byte value is larger than the server's item size limit; store a smaller value ` +
        `or raise the limit (memcached -I)`
    } else if (line === 'ERROR' || line.startsWith('ERROR ')) {
      hint = ': the server does not know this command (the meta protocol needs memcached >= 1.6)'
    }
    return new BackendError(
      this.#options.label,
      `${pending.command} failed: the server answered ${JSON.stringify(line)}${hint}`,
      {
        cause: new MemcachedReplyError(line),
      },
    )
  }

  #onSocketClose(): void {
    if (this.#state === 'closed') return
    if (this.#state === 'closing') {
      this.#drop({ kind: 'closed' })
      return
    }
    const fallback =
      this.#state === 'connecting' ? 'the connection closed while connecting' : 'the server closed the connection'
    this.#drop({ kind: 'down', error: this.#socketError ?? new Error(fallback) })
  }

  /** Ends the connection now: destroys the socket, rejects every waiting request, tells the owner. */
  #drop(reason: CloseReason): void {
    if (this.#state === 'closed') return
    const wasOpen = this.#state === 'open' || this.#state === 'closing'
    this.#state = 'closed'
    clearTimeout(this.#connectTimer)
    clearTimeout(this.#graceTimer)
    this.#connectTimer = this.#graceTimer = undefined
    this.#parts = []
    this.#text = ''
    this.#socket.destroy()
    const queue = this.#queue
    const head = this.#head
    this.#queue = []
    this.#head = 0
    const label = this.#options.label
    for (let i = head; i < queue.length; i++) {
      const pending = queue[i] as Pending
      pending.reject(
        new BackendError(
          label,
          `${pending.command} failed: ${explain(reason, wasOpen)}`,
          reason.kind === 'closed' ? undefined : { cause: reason.error },
        ),
      )
    }
    this.#options.onClose(this, reason)
  }

  #updateReference(): void {
    const busy = this.#head < this.#queue.length
    if (busy === this.#referenced || this.#state === 'closed') return
    this.#referenced = busy
    if (busy) this.#socket.ref()
    else this.#socket.unref()
  }
}

function explain(reason: CloseReason, wasOpen: boolean): string {
  switch (reason.kind) {
    case 'down':
      return wasOpen
        ? `connection lost before the reply (${reason.error.message}); reconnecting in the background`
        : `not connected (${reason.error.message}); reconnecting in the background`
    case 'reset':
      return `protocol error: ${reason.error.message}; the connection was dropped and will be reopened`
    case 'closed':
      return 'the client was closed before the reply came'
  }
}

function describeReply(reply: Reply): string {
  if ('code' in reply)
    return JSON.stringify([reply.code, ...Object.entries(reply.flags).map(([flag, token]) => flag + token)].join(' '))
  return JSON.stringify(reply.line.length > 60 ? `${reply.line.slice(0, 60)}…` : reply.line)
}

/**
 * An incremental parser for the replies of memcached's meta protocol, plus the few
 * text-protocol lines the client uses (`OK`, `END`, `VERSION …`, `STAT …`) and the
 * error lines every command may get (`ERROR`, `CLIENT_ERROR …`, `SERVER_ERROR …`).
 *
 * Bytes may arrive split at any boundary and many replies may share one chunk. The
 * parser never throws and never waits forever on garbage: anything that is not a
 * well-formed reply — an unknown line, a bare `\n`, a line longer than
 * `MAX_LINE_BYTES`, a data block not followed by `\r\n` — is a `ProtocolError`, after
 * which the parser is dead (the connection it belongs to must be dropped: nothing after
 * garbage can be trusted to line up with a request).
 */

/** A reply to `mg`, `ms`, `md`, `ma` or `mn`. */
export interface MetaReply {
  /** Two-letter return code: 'HD' | 'VA' | 'EN' | 'NF' | 'NS' | 'EX' | 'MN'. */
  code: string
  /** Returned flags by letter, e.g. { c: '123', t: '-1', s: '5' } (value is '' for flags without a token). */
  flags: Record<string, string>
  /** The data block of a VA reply (exact bytes). */
  value?: Buffer
}

/** A whole-line reply that is not a meta reply. */
export interface LineReply {
  /** `error`: `ERROR`, `CLIENT_ERROR …`, `SERVER_ERROR …`; `text`: `OK`, `END`, `VERSION …`, `STAT …`. */
  kind: 'error' | 'text'
  /** The line without its `\r\n`. */
  line: string
}

export type Reply = MetaReply | LineReply

/** What one `feed` produced: the complete replies, in order, and the garbage that stopped it, if any. */
export interface ParseResult {
  replies: Reply[]
  error?: ProtocolError
}

/** The bytes from a server are not memcached replies. */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ProtocolError'
  }
}

/**
 * Longest reply line accepted (without its `\r\n`). memcached's longest meta reply line is a 250-byte key
 * (`k`) plus a handful of short flags; a `STAT` line is shorter still.
 * @internal
 */
export const MAX_LINE_BYTES = 8192
/** Largest data block accepted: memcached's own ceiling for `-I` (item size) is 1 GiB. @internal */
export const MAX_VALUE_BYTES = 1024 * 1024 * 1024

const CR = 13
const LF = 10
const META_CODES = new Set(['HD', 'VA', 'EN', 'NF', 'NS', 'EX', 'MN'])
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this pattern is about
const CONTROL = /[\x00-\x1f\x7f]/
/** A flag letter and its token: any bytes but space and control characters (a `k` token is the key, UTF-8). */
const FLAG = /^[A-Za-z][\x21-\x7e\x80-\xff]*$/
const NON_ASCII = /[\x80-\xff]/
const SIZE = /^\d{1,10}$/
const EMPTY = Buffer.alloc(0)

/** A VA reply whose data block is still arriving. */
interface ValueInProgress {
  reply: MetaReply
  size: number
  /** Bytes of the `VA …\r\n` line. */
  header: number
  /** Slices received so far; together `received` bytes of `size + 2` (data and its `\r\n`). */
  parts: Buffer[]
  received: number
}

/** @internal */
export class ReplyParser {
  /** The start of a line whose `\n` has not arrived yet. */
  #carry: Buffer | undefined
  #value: ValueInProgress | undefined
  #error: ProtocolError | undefined

  /** Bytes held for a reply that is not complete yet (0 between replies). */
  get buffered(): number {
    return (this.#carry?.length ?? 0) + (this.#value ? this.#value.header + this.#value.received : 0)
  }

  /** The garbage that stopped this parser, if any. A failed parser ignores everything fed to it. */
  get error(): ProtocolError | undefined {
    return this.#error
  }

  /** Parses `chunk` on top of whatever earlier chunks left unfinished. */
  feed(chunk: Uint8Array): ParseResult {
    const replies: Reply[] = []
    if (this.#error) return { replies, error: this.#error }
    let buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    if (this.#carry) {
      buf = Buffer.concat([this.#carry, buf])
      this.#carry = undefined
    }
    let pos = 0
    // Every pass consumes bytes or leaves the loop, so the loop ends on any input.
    while (pos < buf.length) {
      const value = this.#value
      if (value) {
        const take = Math.min(value.size + 2 - value.received, buf.length - pos)
        value.parts.push(buf.subarray(pos, pos + take))
        value.received += take
        pos += take
        if (value.received < value.size + 2) break
        this.#value = undefined
        const single = value.parts.length === 1
        const block = single ? (value.parts[0] as Buffer) : Buffer.concat(value.parts, value.size + 2)
        if (block[value.size] !== CR || block[value.size + 1] !== LF) {
          return this.#fail(replies, `the ${value.size}-byte data block of a VA reply is not followed by \\r\\n`)
        }
        // Within one chunk, a copy: a view would pin the whole socket chunk for as long as
        // the caller keeps the value. Across chunks, concat already made a buffer of our own.
        const data = block.subarray(0, value.size)
        value.reply.value = value.size === 0 ? EMPTY : single ? Buffer.from(data) : data
        replies.push(value.reply)
        continue
      }
      const lf = buf.indexOf(LF, pos)
      if (lf < 0) {
        if (buf.length - pos > MAX_LINE_BYTES + 1)
          return this.#fail(replies, `a reply line is longer than ${MAX_LINE_BYTES} bytes`)
        this.#carry = Buffer.from(buf.subarray(pos))
        break
      }
      if (lf - pos > MAX_LINE_BYTES + 1)
        return this.#fail(replies, `a reply line is longer than ${MAX_LINE_BYTES} bytes`)
      if (lf === pos || buf[lf - 1] !== CR)
        return this.#fail(replies, 'a reply line ends with a bare \\n instead of \\r\\n')
      const start = pos
      const line = buf.toString('latin1', pos, lf - 1)
      pos = lf + 1
      const problem = this.#line(line, lf + 1 - start, replies)
      if (problem !== undefined) return this.#fail(replies, problem)
    }
    return { replies }
  }

  /**
   * Parses one line (`length` bytes with its `\r\n`) into `replies`, or starts a data block; answers what is wrong with
   * it, if anything.
   */
  #line(line: string, length: number, replies: Reply[]): string | undefined {
    if (CONTROL.test(line)) return `unexpected reply ${quote(line)}`
    const code = line.slice(0, 2)
    if ((line.length === 2 || line.charCodeAt(2) === 32) && META_CODES.has(code)) {
      const tokens = line.length > 3 ? line.slice(3).split(' ') : []
      let i = 0
      let size = 0
      if (code === 'VA') {
        const token = tokens[i++]
        if (token === undefined || !SIZE.test(token) || (size = Number(token)) > MAX_VALUE_BYTES) {
          return `a VA reply without a valid data length: ${quote(line)}`
        }
      }
      const flags: Record<string, string> = {}
      for (; i < tokens.length; i++) {
        const token = tokens[i] as string
        if (token === '') continue
        if (!FLAG.test(token)) return `a malformed flag ${quote(token)} in the reply ${quote(line)}`
        const value = token.slice(1)
        flags[token.charAt(0)] = NON_ASCII.test(value) ? Buffer.from(value, 'latin1').toString('utf8') : value
      }
      const reply: MetaReply = { code, flags }
      if (code === 'VA') this.#value = { reply, size, header: length, parts: [], received: 0 }
      else replies.push(reply)
      return undefined
    }
    if (line === 'ERROR' || line.startsWith('ERROR ') || /^(CLIENT|SERVER)_ERROR(?: |$)/.test(line)) {
      replies.push({ kind: 'error', line })
      return undefined
    }
    if (line === 'OK' || line === 'END' || line.startsWith('VERSION ') || line.startsWith('STAT ')) {
      replies.push({ kind: 'text', line })
      return undefined
    }
    return `unexpected reply ${quote(line)}`
  }

  #fail(replies: Reply[], message: string): ParseResult {
    this.#error = new ProtocolError(message)
    this.#carry = undefined
    this.#value = undefined
    return { replies, error: this.#error }
  }
}

/** A reply line as it may appear in a message: printable, and short. */
function quote(text: string): string {
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}…` : text)
}

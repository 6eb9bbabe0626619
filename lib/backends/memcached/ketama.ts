/**
 * Ketama consistent hashing, as libketama (last.fm) and libmemcached's ketama mode do it:
 * every server gets 160 points on a 32-bit ring (40 md5 digests of `"<server>-<i>"`,
 * four little-endian words each); a key belongs to the first point at or after the
 * first little-endian word of md5(key), wrapping around. Everything depends only on
 * the server names and the key, so every process maps a key to the same server, and
 * adding a server to n moves only about 1/(n+1) of the keys — all of them to the new one.
 */
import { createHash } from 'node:crypto'

/** Points per server (libketama: 40 digests × 4 points, for equal weights). @internal */
export const POINTS_PER_SERVER = 160

/** @internal */
export class KetamaRing {
  readonly servers: readonly string[]
  /** Ring points, ascending. */
  readonly #points: Uint32Array
  /** `#owners[i]`: index in `servers` of the server that owns `#points[i]`. */
  readonly #owners: Uint32Array

  constructor(servers: readonly string[]) {
    if (servers.length === 0) throw new RangeError('[oniocache] a ketama ring needs at least one server')
    this.servers = [...servers]
    const entries: { point: number; owner: number }[] = []
    this.servers.forEach((server, owner) => {
      for (let i = 0; i < POINTS_PER_SERVER / 4; i++) {
        const digest = md5(`${server}-${i}`)
        for (let word = 0; word < 4; word++) entries.push({ point: digest.readUInt32LE(word * 4), owner })
      }
    })
    // Ties are broken by server name, not list position, so that the order in which a
    // process lists its servers never changes where a key goes.
    entries.sort(
      (a, b) => a.point - b.point || compare(this.servers[a.owner] as string, this.servers[b.owner] as string),
    )
    this.#points = Uint32Array.from(entries, (entry) => entry.point)
    this.#owners = Uint32Array.from(entries, (entry) => entry.owner)
  }

  /** Index in `servers` of the server that owns `key`. */
  indexFor(key: string): number {
    const hash = md5(key).readUInt32LE(0)
    const points = this.#points
    let low = 0
    let high = points.length
    while (low < high) {
      const middle = (low + high) >>> 1
      if ((points[middle] as number) < hash) low = middle + 1
      else high = middle
    }
    return this.#owners[low === points.length ? 0 : low] as number
  }

  /** The server that owns `key`. */
  serverFor(key: string): string {
    return this.servers[this.indexFor(key)] as string
  }
}

function md5(text: string): Buffer {
  return createHash('md5').update(text, 'utf8').digest()
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

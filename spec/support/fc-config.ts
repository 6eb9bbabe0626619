import fc from 'fast-check'

/** Default seed of the property tests; `ONIOCACHE_FC_SEED=<integer>` replaces it. */
export const DEFAULT_SEED = 20_261_126

function readSeed(): number {
  const text = process.env.ONIOCACHE_FC_SEED
  if (text === undefined || text.trim() === '') return DEFAULT_SEED
  const seed = Number(text)
  if (!Number.isSafeInteger(seed))
    throw new RangeError(`ONIOCACHE_FC_SEED must be an integer; got ${JSON.stringify(text)}`)
  return seed | 0
}

/** The seed every property of the run uses (fast-check takes a 32-bit integer). */
export const SEED = readSeed()

fc.configureGlobal({ seed: SEED, numRuns: 100 })

/** Prints the seed (and how to replay) before a property failure propagates. */
function reportSeed(name: string, error: unknown): never {
  console.error(`\n[properties] "${name}" failed with seed ${SEED}; replay it with ONIOCACHE_FC_SEED=${SEED}`)
  throw error
}

/** `fc.assert` for a synchronous property, printing the seed on failure. */
export function check<Ts>(name: string, property: fc.IProperty<Ts>, params?: fc.Parameters<Ts>): void {
  try {
    fc.assert(property, params)
  } catch (error) {
    reportSeed(name, error)
  }
}

/** `fc.assert` for an asynchronous property, printing the seed on failure. */
export async function checkAsync<Ts>(
  name: string,
  property: fc.IAsyncProperty<Ts>,
  params?: fc.Parameters<Ts>,
): Promise<void> {
  try {
    await fc.assert(property, params)
  } catch (error) {
    reportSeed(name, error)
  }
}

/** A small deterministic PRNG (mulberry32) for shuffles driven by a generated integer. */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

/** The items in a random order (Fisher–Yates). */
export function shuffle<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}

// Fails when a source line is longer than 120 characters (Biome formats to that width,
// but leaves long strings and comments as they are): `npm run lint` runs it.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

const MAX = 120
const root = new URL('../..', import.meta.url).pathname
const files = (dir) =>
  readdirSync(join(root, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return files(path)
    return /\.(ts|mjs|js)$/.test(entry.name) ? [path] : []
  })
const long = []
for (const file of ['lib', 'spec', 'bench', 'examples'].flatMap(files)) {
  readFileSync(join(root, file), 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if ([...line].length > MAX) long.push(`${file}:${i + 1}: ${[...line].length} characters`)
    })
}
if (long.length > 0) {
  console.error(`Lines over ${MAX} characters:\n${long.join('\n')}`)
  process.exitCode = 1
}

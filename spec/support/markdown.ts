/**
 * The fenced code blocks of a Markdown file, for the specs that run the README's and
 * the docs' examples. One home for the Markdown rules those specs share.
 *
 * A block is a fence of three or more backticks with an info string (`ts`, `js`, `sh`,
 * `text`…). A `text` block that comes right after a `ts` or `js` block (nothing but
 * blank lines between them) and whose first line is `// output` is that program's
 * expected standard output; the line itself is not part of it.
 */
import { readFileSync } from 'node:fs'

export interface CodeBlock {
  /** The file it came from, as given. */
  readonly file: string
  /** 1-based line of the opening fence. */
  readonly line: number
  /** The fence's language (`ts`, `js`, `sh`, `text`, or `''`). */
  readonly lang: string
  /** The text of the `## ` heading above the block (`''` before the first one). */
  readonly section: string
  readonly code: string
  /** The expected standard output, when an output block follows. */
  readonly output?: string
}

const FENCE = /^(`{3,})\s*([\w-]*)\s*$/
const OUTPUT_MARK = '// output'

/** Every fenced block of `text`, in order; an output block is attached to its program, not listed. */
export function codeBlocks(text: string, file = '<markdown>'): CodeBlock[] {
  const lines = text.split('\n')
  const raw: { line: number; end: number; lang: string; section: string; code: string }[] = []
  let section = ''
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string
    if (line.startsWith('## ')) section = line.slice(3).trim()
    const open = FENCE.exec(line)
    if (open === null) continue
    const fence = open[1] as string
    const body: string[] = []
    let j = i + 1
    while (j < lines.length && (lines[j] as string).trim() !== fence) body.push(lines[j++] as string)
    if (j === lines.length) throw new Error(`${file}:${i + 1}: the code block is never closed`)
    raw.push({ line: i + 1, end: j + 1, lang: open[2] ?? '', section, code: `${body.join('\n')}\n` })
    i = j
  }
  const blocks: CodeBlock[] = []
  for (let k = 0; k < raw.length; k++) {
    const block = raw[k]!
    const next = raw[k + 1]
    const between = next === undefined ? [] : lines.slice(block.end, next.line - 1)
    const isProgram = block.lang === 'ts' || block.lang === 'js'
    if (
      isProgram &&
      next !== undefined &&
      next.lang === 'text' &&
      between.every((l) => l.trim() === '') &&
      next.code.startsWith(`${OUTPUT_MARK}\n`)
    ) {
      blocks.push({ file, ...block, output: next.code.slice(OUTPUT_MARK.length + 1) })
      k++
    } else {
      blocks.push({ file, ...block })
    }
  }
  return blocks
}

/** The blocks of a Markdown file on disk. */
export function codeBlocksOf(path: string, label = path): CodeBlock[] {
  return codeBlocks(readFileSync(path, 'utf8'), label)
}

/**
 * Whether a program's standard output is what its output block shows. Lines are
 * compared one by one, trailing white space ignored; `…` in an expected line stands for
 * any text within that line (a time, a random id).
 */
export function matchesOutput(actual: string, expected: string): boolean {
  const want = expected.trimEnd().split('\n')
  const got = actual.trimEnd().split('\n')
  if (want.length !== got.length) return false
  return want.every((line, i) => {
    const pattern = line
      .trimEnd()
      .split('…')
      .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*?')
    return new RegExp(`^${pattern}$`).test((got[i] as string).trimEnd())
  })
}

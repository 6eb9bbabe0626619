// The README and the guides cannot go stale: every JavaScript and TypeScript block in
// them is run (against the built package, and Redis and Memcached servers of the
// harness), its output compared with the output block under it; the TypeScript blocks
// are type-checked together; every shell line names a script, file or package that
// exists; every relative link and anchor resolves; and the prose keeps to a user's
// guide (no issue numbers, no first person).
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { promisify } from 'node:util'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { childEnv } from './support/children.js'
import { type CodeBlock, codeBlocks, codeBlocksOf, matchesOutput } from './support/markdown.js'
import { HOST, type ServerControls, startMemcached, startRedis } from './support/servers.js'

const run = promisify(execFile)
const root = new URL('..', import.meta.url).pathname
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>
  dependencies: Record<string, string>
  peerDependencies: Record<string, string>
}

/** The Markdown a user reads: the README, the top-level pages and the guides (not the generated API pages). */
function markdownFiles(): string[] {
  const top = readdirSync(root).filter((name) => name.endsWith('.md'))
  const docs = existsSync(join(root, 'docs'))
    ? readdirSync(join(root, 'docs'))
        .filter((name) => name.endsWith('.md'))
        .map((name) => `docs/${name}`)
    : []
  return [...top, ...docs, 'bench/RESULTS.md'].sort()
}

// DOCS_ONLY=docs/plugins.md,README.md checks those pages only (while writing them).
const only = process.env.DOCS_ONLY?.split(',')
const files = markdownFiles().filter((file) => only === undefined || only.includes(file))
const blocks = files.flatMap((file) => codeBlocksOf(join(root, file), file))
const programs = blocks.filter((block) => block.lang === 'ts' || block.lang === 'js')
const where = (block: CodeBlock) => `${block.file}:${block.line}`

// A place inside the project, so that `import 'oniocache'` resolves to this package
// (by its own name, through package.json "exports") — that is, to the built dist/.
const scratch = join(root, '.tmp', `docs-${process.pid}`)

function fileOf(block: CodeBlock): string {
  const slug = block.file.replace(/[^\w]+/g, '-').toLowerCase()
  return join(scratch, `${slug}-${block.line}.${block.lang === 'ts' ? 'ts' : 'mjs'}`)
}

test('the guides are there and hold programs', () => {
  for (const page of [
    'README.md',
    'SECURITY.md',
    'docs/plugins.md',
    'docs/decorators-and-locks.md',
    'docs/backends.md',
    'docs/config-and-urls.md',
    'docs/performance.md',
    'docs/reliability-and-security.md',
    'docs/writing-a-backend.md',
    'docs/aiocache.md',
    'docs/observability.md',
  ]) {
    assert.ok(files.includes(page), `${page} is missing`)
  }
  assert.ok(programs.length >= 20, `only ${programs.length} programs found`)
  const quick = programs.filter((block) => block.file === 'README.md' && block.section === 'Quick start')
  assert.is(quick.length, 4, 'the Quick start is four programs')
  for (const block of quick) {
    assert.is(block.lang, 'js', `${where(block)}: Quick start programs are plain JavaScript`)
    assert.ok(block.output !== undefined, `${where(block)}: a Quick start program shows its output`)
  }
})

test('the README is a guide: short, with the two set-up commands and no lab notes', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const lines = readme.split('\n').length
  assert.ok(lines <= 420, `README.md has ${lines} lines`)
  assert.ok(readme.includes('npm install && npm run demo'))
  assert.ok(readme.includes('\nnpm test '))
  for (const heading of ['## Install', '## Quick start', '### Cache options', '### Commands', '### Errors']) {
    assert.ok(readme.includes(`\n${heading}\n`), `README.md has no "${heading}"`)
  }
})

/** The prose of a Markdown file: without code blocks and inline code. */
function prose(text: string): string[] {
  const out: string[] = []
  let fence: string | undefined
  for (const line of text.split('\n')) {
    const open = /^(`{3,})/.exec(line)
    if (fence === undefined && open !== null) fence = open[1]
    else if (fence !== undefined && line.trim() === fence) fence = undefined
    else if (fence === undefined) out.push(line.replace(/`[^`]*`/g, '``'))
  }
  return out
}

test('the pages speak to a reader: no issue numbers, no SPEC, no first person', () => {
  const rules: [RegExp, string][] = [
    [/\bissue\s*#?\d+|#\d{1,3}\b/i, 'an issue number'],
    [/\bSPEC\b/, '"SPEC"'],
    [/\b(I(?!\/O)|I'm|I've|I'd|me|my|we|We|we're|our|Our|us)\b/, 'first person'],
  ]
  const found: string[] = []
  for (const file of files) {
    if (file === 'CHANGELOG.md') continue
    prose(readFileSync(join(root, file), 'utf8')).forEach((line, i) => {
      for (const [rule, what] of rules)
        if (rule.test(line)) found.push(`${file} (prose line ${i + 1}): ${what}: ${line}`)
    })
  }
  assert.equal(found, [])
})

/** GitHub's anchor for a heading. */
function slug(heading: string): string {
  return heading
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .trim()
    .replace(/\s/g, '-')
}

test('every relative link and anchor resolves', () => {
  const broken: string[] = []
  for (const file of files) {
    const text = prose(readFileSync(join(root, file), 'utf8')).join('\n')
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target!)) continue
      const [path, anchor] = target!.split('#') as [string, string | undefined]
      const resolved = path === '' ? join(root, file) : resolve(dirname(join(root, file)), path)
      if (!existsSync(resolved)) {
        broken.push(`${file}: ${target} (no ${relative(root, resolved)})`)
        continue
      }
      if (anchor !== undefined && resolved.endsWith('.md')) {
        const headings = readFileSync(resolved, 'utf8')
          .split('\n')
          .filter((line) => /^#{1,6} /.test(line))
          .map((line) => slug(line.replace(/^#+ /, '')))
        if (!headings.includes(anchor)) broken.push(`${file}: ${target} (no such heading)`)
      }
    }
  }
  assert.equal(broken, [])
})

test('every shell line names a script, a file or a package that exists', () => {
  const unknown: string[] = []
  const packages = new Set(['oniocache', ...Object.keys(pkg.peerDependencies)])
  for (const block of blocks.filter((b) => b.lang === 'sh')) {
    for (const raw of block.code.split('\n')) {
      const line = raw.replace(/\s+#.*$/, '').trim()
      if (line === '' || line.startsWith('#')) continue
      for (const command of line.split('&&').map((part) => part.trim())) {
        const script = /^npm (?:run (\S+)|(test))(?: -- .*)?$/.exec(command)
        const install = /^npm install(?: (\S+))?$/.exec(command)
        const program = /^(?:npx tsx|node --import tsx) (\S+)$/.exec(command)
        const env = /^[A-Z_]+=\S+ npm run (\S+)$/.exec(command)
        if (script !== null) {
          if (pkg.scripts[(script[1] ?? script[2])!] === undefined) unknown.push(`${where(block)}: ${command}`)
        } else if (install !== null) {
          const name = install[1]
          if (name !== undefined && !packages.has(name) && !name.startsWith('git+https://'))
            unknown.push(`${where(block)}: ${command}`)
        } else if (program !== null) {
          if (!existsSync(join(root, program[1]!))) unknown.push(`${where(block)}: ${command}`)
        } else if (env !== null) {
          if (pkg.scripts[env[1]!] === undefined) unknown.push(`${where(block)}: ${command}`)
        } else {
          unknown.push(`${where(block)}: ${command} (a command this check does not know)`)
        }
      }
    }
  }
  assert.equal(unknown, [])
})

test('code blocks are of languages this spec checks', () => {
  const known = new Set(['ts', 'js', 'sh', 'text', 'python'])
  const odd = blocks.filter((block) => !known.has(block.lang)).map((block) => `${where(block)}: "${block.lang}"`)
  assert.equal(odd, [])
})

test('every program runs and prints what its output block shows', async () => {
  assert.ok(existsSync(join(root, 'dist/index.js')), 'dist/ is missing: run `npm run build` first (npm test does)')
  mkdirSync(scratch, { recursive: true })
  const servers: ServerControls[] = []
  try {
    const [redis, memcached] = await Promise.all([startRedis(), startMemcached()])
    servers.push(redis, memcached)
    const env = childEnv({
      FORCE_COLOR: '0',
      NO_COLOR: '1',
      REDIS_URL: `redis://${HOST}:${redis.port}`,
      MEMCACHED_SERVERS: `${HOST}:${memcached.port}`,
    })
    for (const block of programs) {
      // Top-level await needs a module; `export {}` makes a block without imports one.
      writeFileSync(fileOf(block), block.lang === 'ts' ? `${block.code}export {}\n` : block.code)
    }
    const failures: string[] = []
    const queue = [...programs]
    const worker = async () => {
      for (let block = queue.shift(); block !== undefined; block = queue.shift()) {
        const args = block.lang === 'ts' ? ['--import', 'tsx', fileOf(block)] : [fileOf(block)]
        try {
          const { stdout } = await run(process.execPath, args, { cwd: scratch, env, timeout: 60_000 })
          if (block.output !== undefined && !matchesOutput(stdout, block.output)) {
            failures.push(`${where(block)} printed:\n${stdout}\n… but its output block shows:\n${block.output}`)
          }
        } catch (error) {
          const { stderr = '', message } = error as { stderr?: string; message: string }
          failures.push(`${where(block)} failed: ${stderr.trim() || message}`)
        }
      }
    }
    await Promise.all([worker(), worker(), worker()])
    assert.equal(failures, [])
  } finally {
    // Only these two: the spec files share one process, and other files' servers may still be in use.
    await Promise.all(servers.map((server) => server.stop()))
  }
})

test('the TypeScript programs type-check (strict)', async () => {
  const ts = programs.filter((block) => block.lang === 'ts')
  if (ts.length === 0) return
  mkdirSync(scratch, { recursive: true })
  try {
    for (const block of ts) writeFileSync(fileOf(block), `${block.code}export {}\n`)
    const config = {
      compilerOptions: {
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        module: 'nodenext',
        moduleResolution: 'nodenext',
        target: 'es2022',
        lib: ['es2023', 'esnext.disposable'],
        types: ['node'],
        typeRoots: [join(root, 'node_modules/@types')],
      },
      include: ts.map(fileOf),
    }
    writeFileSync(join(scratch, 'tsconfig.json'), JSON.stringify(config))
    const result = await run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', scratch], {
      cwd: root,
    }).catch((error: { stdout?: string }) => ({ stdout: error.stdout ?? String(error) }))
    const report = result.stdout.replaceAll(`${scratch}/`, '')
    assert.is(report.trim(), '', `type errors in the docs' programs:\n${report}`)
  } finally {
    rmSync(scratch, { recursive: true, force: true })
  }
})

test('Python examples parse, where python3 is installed', async () => {
  const python = blocks.filter((block) => block.lang === 'python')
  const found = await run('python3', ['--version']).then(
    () => true,
    () => false,
  )
  if (!found) {
    console.log(`  python3 not found: ${python.length} Python block(s) not parsed`)
    return
  }
  for (const block of python) {
    const check = 'import ast, sys; ast.parse(sys.stdin.read())'
    const child = run('python3', ['-c', check])
    child.child.stdin?.end(block.code)
    await child.catch((error: { stderr?: string }) => assert.unreachable(`${where(block)}: ${error.stderr}`))
  }
})

test('the block reader: fences, sections, output blocks and the … wildcard', () => {
  const text = [
    '## One',
    '```js',
    'console.log(1)',
    '```',
    '',
    '```text',
    '// output',
    '1',
    '```',
    '## Two',
    '````ts',
    '```',
    '````',
    '```text',
    'not an output block',
    '```',
  ].join('\n')
  const found = codeBlocks(text, 'x.md')
  assert.equal(
    found.map((b) => [b.line, b.lang, b.section, b.output]),
    [
      [2, 'js', 'One', '1\n'],
      [11, 'ts', 'Two', undefined],
      [14, 'text', 'Two', undefined],
    ],
  )
  assert.equal(found[1]?.code, '```\n')
  assert.throws(() => codeBlocks('```js\nopen', 'y.md'), /y\.md:1: the code block is never closed/)
  assert.ok(matchesOutput('took 12.5 µs\nend\n', 'took … µs\nend'))
  assert.not.ok(matchesOutput('took 12.5 ms\n', 'took … µs'))
  assert.not.ok(matchesOutput('a\nb\n', 'a'))
  assert.not.ok(matchesOutput('a.c\n', 'abc'))
  assert.not.ok(matchesOutput('a\nb', 'a…b'), '… stays within a line')
})

test.run()

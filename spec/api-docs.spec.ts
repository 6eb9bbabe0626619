// The API reference cannot rot: `npm run docs` (TypeDoc over the four entry points,
// with typedoc.json) runs clean — every export documented, every {@link} resolved,
// every referenced type exported — and renders the pages of the main names with
// their examples. And the check bites: an undocumented export in a tiny fixture,
// run through the same TypeDoc with the same validation options, fails the run and
// is named. TypeDoc runs twice in all (once per project, side by side), not per test.
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { childEnv } from './support/children.js'

const root = new URL('..', import.meta.url).pathname
const typedoc = join(root, 'tools', 'api-docs', 'typedoc.mjs')
const installed = existsSync(join(root, 'tools', 'api-docs', 'node_modules', 'typedoc', 'package.json'))
const MISSING = 'tools/api-docs/node_modules/typedoc is missing: run `npm ci` first'

interface Run {
  code: number | null
  output: string
}

/** Runs the project's TypeDoc from the project root with `args`; resolves with its exit code and output. */
function runTypedoc(args: readonly string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [typedoc, ...args], { cwd: root, env: childEnv({ NO_COLOR: '1' }) })
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, output }))
  })
}

// Inside the project, so that nothing lands in the system's temp directory; removed afterwards.
mkdirSync(join(root, '.tmp'), { recursive: true })
const scratch = mkdtempSync(join(root, '.tmp', 'api-docs-'))
const removeScratch = (): void => rmSync(scratch, { recursive: true, force: true })
process.on('exit', removeScratch) // also when a test fails or the run is cut short
const html = join(scratch, 'html')
const fixture = join(scratch, 'fixture')

/** The repository's options that decide what fails a run, for the fixture to be checked the same way. */
function validationOptions(): Record<string, unknown> {
  const config = JSON.parse(readFileSync(join(root, 'typedoc.json'), 'utf8')) as Record<string, unknown>
  const names = [
    'validation',
    'treatWarningsAsErrors',
    'treatValidationWarningsAsErrors',
    'requiredToBeDocumented',
    'excludeInternal',
    'excludePrivate',
  ]
  return Object.fromEntries(names.filter((name) => name in config).map((name) => [name, config[name]]))
}

function writeFixture(): void {
  mkdirSync(fixture, { recursive: true })
  writeFileSync(
    join(fixture, 'index.ts'),
    [
      '/** Adds one: this export is documented. */',
      'export function documentedExport(n: number): number {',
      '  return n + 1',
      '}',
      '',
      'export function undocumentedExport(n: number): number {',
      '  return n - 1',
      '}',
      '',
    ].join('\n'),
  )
  const compilerOptions = { strict: true, module: 'nodenext', target: 'es2022', types: [], noEmit: true }
  writeFileSync(join(fixture, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['index.ts'] }, null, 2))
  const options = {
    ...validationOptions(),
    entryPoints: ['index.ts'],
    tsconfig: 'tsconfig.json',
    out: 'html',
    readme: 'none',
    disableSources: true,
  }
  writeFileSync(join(fixture, 'typedoc.json'), JSON.stringify(options, null, 2))
}

let project: Run | undefined
let bad: Run | undefined

test.before(async () => {
  if (!installed) return
  writeFixture()
  ;[project, bad] = await Promise.all([
    runTypedoc(['--out', html]),
    runTypedoc(['--options', join(fixture, 'typedoc.json')]),
  ])
})

test.after(removeScratch)

test('TypeDoc is installed in its workspace (tools/api-docs, beside the TypeScript 6 it needs)', () => {
  assert.ok(installed, MISSING)
})

test('npm run docs runs clean: exit 0, no warning (every export documented, every link resolved)', () => {
  assert.ok(installed && project !== undefined, MISSING)
  const warnings = project.output.split('\n').filter((line) => /\[(warning|error)\]/.test(line))
  assert.equal(warnings, [], `TypeDoc reported:\n${project.output}`)
  assert.is(project.code, 0, `TypeDoc exited with ${project.code}:\n${project.output}`)
})

/** Every generated page by its heading: `Class Cache`, `Function cached`, `Variable caches`, … */
function pagesByHeading(): Map<string, string> {
  const pages = new Map<string, string>()
  for (const dir of readdirSync(html, { withFileTypes: true })) {
    if (!dir.isDirectory() || dir.name === 'assets') continue
    for (const file of readdirSync(join(html, dir.name))) {
      const text = readFileSync(join(html, dir.name, file), 'utf8')
      const heading = /<h1>([^<]*)/.exec(text)?.[1]
      if (heading !== undefined) pages.set(heading.replace(/^(\w+) (\S+).*$/, '$1 $2'), text)
    }
  }
  return pages
}

/** The rendered examples of a page: a heading "Example" and a highlighted TypeScript block. */
function examplesIn(page: string): number {
  return page.match(/<div class="tsd-tag-example">\s*<h4[^>]*>Example\b[\s\S]*?<pre><code class="ts">/g)?.length ?? 0
}

test('the main names have their pages, each with a rendered example', () => {
  assert.ok(installed, MISSING)
  assert.ok(project?.code === 0, 'TypeDoc failed, so it wrote no pages: see the test above')
  const pages = pagesByHeading()
  const main = [
    'Class Cache',
    'Class MemoryCache',
    'Class RedisCache',
    'Class MemcachedCache',
    'Class RedLock',
    'Class OptimisticLock',
    'Class BasePlugin',
    'Class TimingPlugin',
    'Class HitMissRatioPlugin',
    'Function cached',
    'Function multiCached',
    'Function cachedStampede',
    'Function Cached',
    'Function registerConformance',
    'Variable caches',
  ]
  for (const heading of main) {
    const page = pages.get(heading)
    assert.ok(page !== undefined, `no page titled "${heading}"; pages: ${[...pages.keys()].join(', ')}`)
    assert.ok(examplesIn(page) >= 1, `"${heading}" has no rendered @example`)
  }
  const cache = pages.get('Class Cache')!
  const fromUrl = cache.slice(cache.indexOf('id="fromurl"'))
  const end = fromUrl.indexOf('<section class="tsd-panel tsd-member')
  assert.ok(examplesIn(end === -1 ? fromUrl : fromUrl.slice(0, end)) >= 1, 'Cache.fromUrl has no rendered @example')
  const module = pages.get('Module index')
  assert.ok(module?.includes('the core, the memory backend'), "the oniocache module's page carries its comment")
})

test('the check bites: an undocumented export fails the same TypeDoc run and is named', () => {
  assert.ok(installed && bad !== undefined, MISSING)
  assert.is.not(bad.code, 0, `an undocumented export passed:\n${bad.output}`)
  assert.match(bad.output, /undocumentedExport\b[^\n]*does not have any documentation/)
  assert.not.match(bad.output, /(?<!\w)documentedExport\b[^\n]*does not have any documentation/)
  assert.not.ok(existsSync(join(fixture, 'html')), 'no pages are written for a project that fails its checks')
})

test.run()

/**
 * The package as a user gets it: `npm pack` the project (dist/ as built: npm test builds
 * it before the specs run), install the tarball into a scratch project OUTSIDE the
 * repository with no dev dependencies — inside it, Node's resolution would walk up into
 * the repository's node_modules and hide a missing dependency — then load every entry
 * point from there with `import` and `require()`, and run the README's Quick start
 * programs there unchanged, against private Redis and Memcached servers.
 *
 * ONIOCACHE_EXTRA_NODES (paths, `:`-separated) adds Node binaries to load the entry
 * points with, besides the one running this spec.
 */
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { isAbsolute, join, relative } from 'node:path'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { childEnv } from './support/children.js'
import { codeBlocksOf, matchesOutput } from './support/markdown.js'
import { type ServerControls, startMemcached, startRedis } from './support/servers.js'

const execFileAsync = promisify(execFile)
const root = new URL('..', import.meta.url).pathname
const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as {
  name: string
  version: string
  exports: Record<string, string | Record<string, string>>
  devDependencies: Record<string, string>
}

/** Each entry point and a few of the names it must export. */
const ENTRY_POINTS: Record<string, string[]> = {
  oniocache: [
    'Cache',
    'MemoryCache',
    'cached',
    'cachedStampede',
    'multiCached',
    'Cached',
    'RedLock',
    'OptimisticLock',
    'TimingPlugin',
    'HitMissRatioPlugin',
    'JsonSerializer',
    'caches',
    'plainKeys',
  ],
  'oniocache/redis': ['RedisCache', 'RedisBackend', 'parseRedisUrl'],
  'oniocache/memcached': ['MemcachedCache', 'MemcachedBackend', 'MemcachedClient'],
  'oniocache/testing': ['registerConformance', 'conformanceTests', 'conformanceNodeTest', 'conformance'],
  'oniocache/otel': ['OtelPlugin'],
  'oniocache/prometheus': ['PrometheusPlugin'],
}

/** The optional peer dependencies, packed from node_modules and installed beside the package. */
const PEERS = ['@redis/client', '@opentelemetry/api', 'prom-client']

/** The tarball holds these and whatever is under dist/, nothing else. */
const SHIPPED_FILES = ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md']
const NEVER_SHIPPED = /^(spec|lib|bench|examples|\.ci|coverage|node_modules|\.tmp|\.git)\/|\.tsbuildinfo$/

// ---------------------------------------------------------------------------
// Child processes

interface ExecFailure extends Error {
  code?: number | string
  signal?: NodeJS.Signals | null
  killed?: boolean
  stdout?: string
  stderr?: string
}

/**
 * The environment of a child that stands for a user's shell: coverage off, and none of
 * the variables `npm run` sets for this project (its prefix, package fields, lifecycle),
 * no NODE_PATH or NODE_OPTIONS that could reach back into the repository.
 */
function userEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = childEnv({ FORCE_COLOR: '0', NO_COLOR: '1', ...extra })
  for (const key of Object.keys(env)) {
    if (/^npm_(package|lifecycle)_|^npm_config_local_prefix$|^INIT_CWD$|^NODE_PATH$|^NODE_OPTIONS$/i.test(key)) {
      delete env[key]
    }
  }
  return env
}

/** Runs a command to completion; a failure names `what` and shows the end of its output. */
async function run(
  what: string,
  file: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; timeout?: number },
): Promise<{ stdout: string; stderr: string }> {
  const timeout = options.timeout ?? 60_000
  try {
    return await execFileAsync(file, args, { ...options, timeout, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' })
  } catch (error) {
    const failure = error as ExecFailure
    const how = failure.killed ? `killed after ${timeout} ms` : `exit code ${failure.code ?? failure.signal}`
    const output = [failure.stderr, failure.stdout].filter((text) => text?.trim()).join('\n')
    throw new Error(`${what} failed (${how}):\n${output.trimEnd().split('\n').slice(-40).join('\n')}`)
  }
}

function seconds(since: number): string {
  return `${((performance.now() - since) / 1000).toFixed(1)} s`
}

// ---------------------------------------------------------------------------
// The scratch project, packed and installed once for all tests

interface PackResult {
  filename: string
  size: number
  unpackedSize: number
  entryCount: number
  files: { path: string }[]
}

interface Installed {
  /** The scratch project: the tarballs under packs/, node_modules, the probes. */
  dir: string
  pack: PackResult
}

let scratch: string | undefined

/** A new directory in the system's temp directory, which must lie outside the repository. */
function makeScratch(): string {
  const base = process.env.ONIOCACHE_SYSTEM_TMPDIR || tmpdir()
  const dir = realpathSync(mkdtempSync(join(base, 'oniocache-install-')))
  scratch = dir
  const inside = relative(realpathSync(root), dir)
  assert.ok(
    inside.startsWith('..') || isAbsolute(inside),
    `the scratch project ${dir} lies inside the repository, where the repository's node_modules would be found ` +
      'from it: run through `npm run spec` (or spec/support/with-tmp.mjs), or set ONIOCACHE_SYSTEM_TMPDIR',
  )
  return dir
}

async function npmPack(what: string, source: string, destination: string): Promise<PackResult> {
  const { stdout } = await run(
    what,
    'npm',
    ['pack', source, '--ignore-scripts', '--json', '--pack-destination', destination],
    { cwd: destination, env: userEnv() },
  )
  const packed = (JSON.parse(stdout) as PackResult[])[0]
  assert.ok(packed !== undefined, `${what} listed no tarball:\n${stdout}`)
  return packed
}

async function packAndInstall(): Promise<Installed> {
  assert.ok(
    existsSync(`${root}dist/index.js`),
    'dist/index.js is missing: run `npm run build` first (npm test builds before the specs run)',
  )
  for (const peer of PEERS) {
    assert.ok(
      existsSync(`${root}node_modules/${peer}/package.json`),
      `${peer} is not in node_modules: run \`npm ci\` first`,
    )
  }
  const dir = makeScratch()
  const packs = join(dir, 'packs')
  mkdirSync(packs)
  let started = performance.now()
  const [pack, ...peers] = await Promise.all([
    npmPack('npm pack (the project)', root, packs),
    ...PEERS.map((peer) => npmPack(`npm pack (node_modules/${peer})`, `${root}node_modules/${peer}`, packs)),
  ])
  const packTime = seconds(started)
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ name: 'install-check', private: true }, null, 2)}\n`)
  started = performance.now()
  await run(
    'npm install of the tarball',
    'npm',
    [
      'install',
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      '--omit=dev',
      join(packs, pack.filename),
      ...peers.map((peer) => join(packs, peer.filename)),
    ],
    { cwd: dir, env: userEnv(), timeout: 120_000 },
  )
  console.log(
    `  install: packed ${pack.filename} (${pack.entryCount} files, ${(pack.size / 1024).toFixed(0)} kB) and ` +
      `${peers.map((peer) => peer.filename).join(', ')} in ${packTime}; npm install took ${seconds(started)}`,
  )
  return { dir, pack }
}

let installing: Promise<Installed> | undefined
const installed = (): Promise<Installed> => (installing ??= packAndInstall())

/** The servers this file started: only these are stopped (the spec files share one process). */
const servers: ServerControls[] = []

test.after(async () => {
  await Promise.all(servers.map((server) => server.stop()))
  if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true })
})

// ---------------------------------------------------------------------------
// The tarball

test('npm pack ships dist/, the README, LICENSE, CHANGELOG.md and package.json, and nothing else', async () => {
  const { pack } = await installed()
  const paths = pack.files.map((file) => file.path)
  for (const file of ['dist/index.js', 'dist/index.d.ts', ...SHIPPED_FILES]) {
    assert.ok(paths.includes(file), `the tarball lacks ${file}`)
  }
  for (const [entry, target] of Object.entries(pkg.exports)) {
    for (const file of typeof target === 'string' ? [target] : Object.values(target)) {
      assert.ok(paths.includes(file.replace(/^\.\//, '')), `the tarball lacks ${file}, exported as ${entry}`)
    }
  }
  const unwanted = paths.filter((path) => NEVER_SHIPPED.test(path))
  assert.equal(unwanted, [], 'sources, specs or tooling reached the tarball')
  const others = paths.filter((path) => !path.startsWith('dist/') && !SHIPPED_FILES.includes(path))
  assert.equal(others, [], 'files beyond dist/ and the four listed ones reached the tarball')
  assert.is(pack.filename, `${pkg.name}-${pkg.version}.tgz`)
})

test('the tarball installs with its dependencies only, none of the dev dependencies', async () => {
  const { dir } = await installed()
  const modules = join(dir, 'node_modules')
  const manifest = JSON.parse(readFileSync(join(modules, 'oniocache/package.json'), 'utf8')) as { version: string }
  assert.is(manifest.version, pkg.version)
  assert.not.ok(existsSync(join(modules, 'oniocache/lib')), 'the sources were installed')
  const devOnly = Object.keys(pkg.devDependencies).filter((name) => !PEERS.includes(name))
  const present = devOnly.filter((name) => existsSync(join(modules, name)))
  assert.equal(present, [], 'dev dependencies were installed with the package')
  for (const name of ['koa-compose', 'msgpackr', 'cluster-key-slot', ...PEERS]) {
    assert.ok(existsSync(join(modules, name, 'package.json')), `${name} was not installed`)
  }
})

// ---------------------------------------------------------------------------
// Loading the entry points, with import and require(), on every Node at hand

/** Appends every URL the ESM loader resolves to a log file (module.register hooks). */
const RESOLVE_LOG_HOOKS = `import { appendFileSync } from 'node:fs'
let log
export function initialize(data) { log = data.log }
export async function resolve(specifier, context, nextResolve) {
  const resolved = await nextResolve(specifier, context)
  appendFileSync(log, resolved.url + '\\n')
  return resolved
}
`

/**
 * `node probe-import.mjs <entry points JSON> <log>`: imports 'oniocache' alone first and
 * reports which optional peer dependency (@redis/client, @opentelemetry/api, prom-client)
 * was resolved by then, then the other entry points and the names each lacks; finally
 * imports @redis/client, to prove the log would show it.
 */
const IMPORT_PROBE = `import { readFileSync, writeFileSync } from 'node:fs'
import * as module from 'node:module'
const [entries, log] = process.argv.slice(2)
const want = JSON.parse(entries)
const report = { version: process.version, resolved: {}, missing: {} }
const hooks = typeof module.register === 'function'
const resolvedUrls = () => (hooks ? readFileSync(log, 'utf8').split('\\n').filter(Boolean) : [])
if (hooks) {
  writeFileSync(log, '')
  module.register('./resolve-log.mjs', import.meta.url, { data: { log } })
}
const core = await import('oniocache')
report.hooks = hooks
const peers = ['@redis/client', '@opentelemetry/api', 'prom-client'].map((name) => '/node_modules/' + name + '/')
report.clientAfterCore = resolvedUrls().filter((url) => peers.some((peer) => url.includes(peer)))
report.coreSeen = resolvedUrls().some((url) => url.includes('/node_modules/oniocache/dist/index.js'))
const cache = new core.Cache()
await cache.set('k', { n: 1 })
report.roundTrip = await cache.get('k')
for (const [entry, names] of Object.entries(want)) {
  report.resolved[entry] = import.meta.resolve(entry)
  const api = await import(entry)
  report.missing[entry] = names.filter((name) => api[name] === undefined)
}
await import('@redis/client')
report.clientSeen = resolvedUrls().some((url) => url.includes('/node_modules/@redis/client/'))
console.log(JSON.stringify(report))
`

/**
 * `node probe-require.cjs <entry points JSON>`: a CommonJS user. Where this Node cannot
 * require ES modules it reports the error require('oniocache') gives instead.
 */
const REQUIRE_PROBE = `const want = JSON.parse(process.argv[2])
const report = {
  version: process.version,
  requireModule: process.features.require_module === true,
  manifest: require('oniocache/package.json').version,
  resolved: {},
  missing: {},
}
if (report.requireModule) {
  for (const [entry, names] of Object.entries(want)) {
    report.resolved[entry] = require.resolve(entry)
    const api = require(entry)
    report.missing[entry] = names.filter((name) => api[name] === undefined)
  }
  const cache = new (require('oniocache').Cache)()
  cache.set('k', { n: 1 }).then(() => cache.get('k')).then((value) => {
    report.roundTrip = value
    console.log(JSON.stringify(report))
  })
} else {
  try {
    require('oniocache')
    report.loadedAnyway = true
  } catch (error) {
    report.error = error.code ?? String(error)
  }
  console.log(JSON.stringify(report))
}
`

interface ImportReport {
  version: string
  hooks: boolean
  clientAfterCore: string[]
  coreSeen: boolean
  clientSeen: boolean
  roundTrip: unknown
  resolved: Record<string, string>
  missing: Record<string, string[]>
}

interface RequireReport {
  version: string
  requireModule: boolean
  manifest: string
  resolved: Record<string, string>
  missing: Record<string, string[]>
  roundTrip?: unknown
  loadedAnyway?: boolean
  error?: string
}

function lastJsonLine<T>(stdout: string): T {
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as T
}

/** The Node binaries to check: this one and those named by ONIOCACHE_EXTRA_NODES. */
function nodes(): string[] {
  const extra = (process.env.ONIOCACHE_EXTRA_NODES ?? '').split(':').filter((path) => path.trim() !== '')
  for (const path of extra) assert.ok(existsSync(path), `ONIOCACHE_EXTRA_NODES names ${path}, which does not exist`)
  return [process.execPath, ...extra.filter((path) => path !== process.execPath)]
}

test('every entry point loads from the installed package with import and require(), on each Node', async () => {
  const { dir } = await installed()
  const entries = Object.keys(ENTRY_POINTS).map((entry) =>
    entry === 'oniocache' ? '.' : entry.slice('oniocache'.length + 1),
  )
  const exported = Object.keys(pkg.exports).filter((entry) => entry !== './package.json')
  assert.equal(
    entries.map((entry) => (entry === '.' ? entry : `./${entry}`)).sort(),
    exported.sort(),
    'ENTRY_POINTS here must name every entry point package.json exports',
  )
  writeFileSync(join(dir, 'resolve-log.mjs'), RESOLVE_LOG_HOOKS)
  writeFileSync(join(dir, 'probe-import.mjs'), IMPORT_PROBE)
  writeFileSync(join(dir, 'probe-require.cjs'), REQUIRE_PROBE)
  const want = JSON.stringify(ENTRY_POINTS)
  const installedAt = pathToFileURL(join(dir, 'node_modules/oniocache/')).href
  const checked: string[] = []
  for (const node of nodes()) {
    const options = { cwd: dir, env: userEnv(), timeout: 30_000 }
    const esm = lastJsonLine<ImportReport>(
      (await run(`${node} probe-import.mjs`, node, ['probe-import.mjs', want, join(dir, 'resolved.log')], options))
        .stdout,
    )
    const label = `Node ${esm.version} (${node})`
    for (const [entry, url] of Object.entries(esm.resolved)) {
      assert.ok(url.startsWith(installedAt), `${label}: import '${entry}' resolved to ${url}, not the installed copy`)
    }
    assert.equal(esm.missing, Object.fromEntries(Object.keys(ENTRY_POINTS).map((entry) => [entry, []])), label)
    assert.equal(esm.roundTrip, { n: 1 }, `${label}: a memory cache works`)
    let clientNote = 'not checked (no module.register)'
    if (esm.hooks) {
      assert.ok(esm.coreSeen && esm.clientSeen, `${label}: the resolve log works`)
      assert.equal(esm.clientAfterCore, [], `${label}: import 'oniocache' loaded an optional peer dependency`)
      clientNote = 'loads no optional peer (@redis/client, @opentelemetry/api, prom-client)'
    }

    const cjs = lastJsonLine<RequireReport>(
      (await run(`${node} probe-require.cjs`, node, ['probe-require.cjs', want], options)).stdout,
    )
    assert.is(cjs.manifest, pkg.version, `${label}: require('oniocache/package.json')`)
    let requireNote: string
    if (cjs.requireModule) {
      for (const [entry, path] of Object.entries(cjs.resolved)) {
        assert.ok(
          pathToFileURL(path).href.startsWith(installedAt),
          `${label}: require('${entry}') resolved to ${path}, not the installed copy`,
        )
      }
      assert.equal(cjs.missing, Object.fromEntries(Object.keys(ENTRY_POINTS).map((entry) => [entry, []])), label)
      assert.equal(cjs.roundTrip, { n: 1 }, `${label}: a memory cache works through require()`)
      requireNote = 'require() ok'
    } else {
      // Not a pass: this Node cannot load an ES module with require(). Say what it did and what is needed.
      assert.is(cjs.loadedAnyway, undefined, `${label}: require() loaded the package though require_module is off`)
      assert.is(cjs.error, 'ERR_REQUIRE_ESM', `${label}: require('oniocache') failed otherwise than expected`)
      requireNote = `require() NOT checked: this Node gives ${cjs.error}; it needs Node 20.19+ or 22.12+`
    }
    checked.push(`${label}: import ok, import 'oniocache' ${clientNote}; ${requireNote}`)
  }
  for (const line of checked) console.log(`  install: ${line}`)
})

// ---------------------------------------------------------------------------
// The README's Quick start, run as a reader would run it

/** The expected and printed lines, marking those that differ. */
function outputDiff(expected: string, actual: string): string {
  const want = expected.trimEnd().split('\n')
  const got = actual.trimEnd().split('\n')
  const lines = ['(- the output block, + what the program printed)']
  for (let i = 0; i < Math.max(want.length, got.length); i++) {
    const [w, g] = [want[i], got[i]]
    if (w !== undefined && g !== undefined && matchesOutput(g, w)) lines.push(`  ${g}`)
    else {
      if (w !== undefined) lines.push(`- ${w}`)
      if (g !== undefined) lines.push(`+ ${g}`)
    }
  }
  return lines.join('\n')
}

test('the README Quick start programs run unchanged against the installed package and print their output', async () => {
  const blocks = codeBlocksOf(`${root}README.md`, 'README.md').filter(
    (block) => block.section === 'Quick start' && block.lang === 'js',
  )
  assert.ok(blocks.length >= 4, `README.md has ${blocks.length} js programs under "## Quick start", expected 4 or more`)
  const { dir } = await installed()
  const [redis, memcached] = await Promise.all([startRedis(), startMemcached()])
  servers.push(redis, memcached)
  const env = userEnv({ REDIS_URL: redis.url, MEMCACHED_SERVERS: memcached.server })
  for (const [i, block] of blocks.entries()) {
    const file = `quickstart-${i + 1}.mjs`
    writeFileSync(join(dir, file), block.code)
    const where = `README.md:${block.line} (run as ${file})`
    const { stdout } = await run(where, process.execPath, [file], { cwd: dir, env, timeout: 30_000 })
    if (block.output !== undefined) {
      assert.ok(
        matchesOutput(stdout, block.output),
        `${where} printed what its output block does not show:\n${outputDiff(block.output, stdout)}`,
      )
    }
  }
})

test.run()

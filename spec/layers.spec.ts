// The house rules of lib/, read off the source: layers point one way, there is no
// import cycle (type-only and dynamic imports included), no side-effect import, the
// entry points only re-export, and importing the core reaches neither backend module.
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { test } from 'uvu'
import * as assert from 'uvu/assert'

const lib = fileURLToPath(new URL('../lib/', import.meta.url))

/** Layers, lowest first: a file may import its own folder and any lower layer, nothing else. */
const LAYERS: ReadonlyArray<readonly string[]> = [
  ['util'],
  ['core'],
  ['serializers.ts', 'plugins', 'backends', 'locks'],
  ['decorators', 'caches', 'testing'],
  ['config'],
  ['index.ts', 'redis.ts', 'memcached.ts', 'otel.ts', 'prometheus.ts'],
]
/** Entry points: what `package.json` exports. */
const ENTRIES = ['index.ts', 'redis.ts', 'memcached.ts', 'otel.ts', 'prometheus.ts', 'testing/index.ts']

interface Edge {
  from: string
  to: string
  kind: 'static' | 'type' | 'dynamic' | 'augmentation' | 'side-effect'
}

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? files(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [],
  )
}

const sources = new Map(files(lib).map((file) => [relative(lib, file), readFileSync(file, 'utf8')]))

function edgesOf(file: string, text: string): Edge[] {
  const edges: Edge[] = []
  const add = (specifier: string, kind: Edge['kind']): void => {
    if (!specifier.startsWith('.')) return
    const to = relative(lib, resolve(dirname(join(lib, file)), specifier)).replace(/\.js$/, '.ts')
    edges.push({ from: file, to, kind })
  }
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '')
  for (const m of code.matchAll(/^(import|export)\s+(type\s+)?([^'";]*?)\s+from\s+'([^']+)'/gm)) {
    add(m[4]!, m[2] !== undefined ? 'type' : 'static')
  }
  for (const m of code.matchAll(/^import\s+'([^']+)'/gm)) add(m[1]!, 'side-effect')
  for (const m of code.matchAll(/import\(\s*'([^']+)'\s*\)/g)) add(m[1]!, 'dynamic')
  for (const m of code.matchAll(/declare module\s+'([^']+)'/g)) add(m[1]!, 'augmentation')
  return edges
}

const edges = [...sources].flatMap(([file, text]) => edgesOf(file, text))

function layerOf(file: string): number {
  const top = file.split('/')[0]!
  const index = LAYERS.findIndex((names) => names.includes(top))
  if (index === -1) throw new Error(`${file} is in no layer`)
  return index
}

test('every import names a file that exists', () => {
  const missing = edges.filter((e) => !sources.has(e.to)).map((e) => `${e.from} -> ${e.to}`)
  assert.equal(missing, [])
  assert.ok(edges.length > 100, `${edges.length} imports read`)
})

test(
  'layers point one way: util → core → plugins, serializers, backends, locks → decorators, caches, testing → ' +
    'config → entry points',
  () => {
    const upward = edges
      .filter((e) => e.from.split('/')[0] !== e.to.split('/')[0] && layerOf(e.to) >= layerOf(e.from))
      .map((e) => `${e.from} -> ${e.to} (${e.kind})`)
    assert.equal(upward, [])
  },
)

test('no import cycle, type-only, dynamic imports and module augmentations included', () => {
  const next = new Map<string, string[]>()
  for (const e of edges) next.set(e.from, [...(next.get(e.from) ?? []), e.to])
  const state = new Map<string, 'open' | 'done'>()
  const cycles: string[] = []
  const visit = (file: string, path: string[]): void => {
    if (state.get(file) === 'done') return
    if (state.get(file) === 'open') {
      cycles.push([...path.slice(path.indexOf(file)), file].join(' -> '))
      return
    }
    state.set(file, 'open')
    for (const to of next.get(file) ?? []) visit(to, [...path, file])
    state.set(file, 'done')
  }
  for (const file of sources.keys()) visit(file, [])
  assert.equal(cycles, [])
})

test('no side-effect imports; the entry points only re-export', () => {
  assert.equal(
    edges.filter((e) => e.kind === 'side-effect').map((e) => `${e.from} -> ${e.to}`),
    [],
  )
  for (const entry of ['index.ts', 'redis.ts', 'memcached.ts', 'otel.ts', 'prometheus.ts']) {
    const code = sources
      .get(entry)!
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/^\s*\/\/.*$/gm, '')
    const rest = code.replace(/^export (type )?\{[^}]*\} from '[^']+'$/gm, '').trim()
    assert.is(rest, '', `${entry} holds more than re-exports`)
  }
})

test('importing the core reaches neither backend module, a client, nor a telemetry plugin, even through types', () => {
  const reached = new Set<string>()
  const walk = (file: string): void => {
    if (reached.has(file)) return
    reached.add(file)
    for (const e of edges) if (e.from === file && e.kind !== 'dynamic') walk(e.to)
  }
  walk('index.ts')
  const backend = /^backends\/(redis|memcached)\/(backend|client|connection|pool|parser|ketama)\.ts$/
  const telemetry = /^plugins\/(otel|prometheus)\.ts$/
  const heavy = [...reached].filter((file) => backend.test(file) || telemetry.test(file))
  assert.equal(heavy, [])
  assert.ok(reached.has('backends/redis/url.ts'), 'the Redis URL grammar is part of the core (config reads it)')
  // The backends are reached only through dynamic imports, from the one place that builds caches from data.
  const dynamic = edges.filter((e) => e.kind === 'dynamic').map((e) => `${e.from} -> ${e.to}`)
  assert.equal(dynamic.sort(), [
    'backends/memcached/backend.ts -> backends/memcached/client.ts',
    'caches/kinds.ts -> backends/memcached/backend.ts',
    'caches/kinds.ts -> backends/redis/backend.ts',
  ])
})

test('every entry point is reachable and every lib file is reached from one', () => {
  const reached = new Set<string>()
  const walk = (file: string): void => {
    if (reached.has(file)) return
    reached.add(file)
    for (const e of edges) if (e.from === file) walk(e.to)
  }
  for (const entry of ENTRIES) walk(entry)
  assert.equal(
    [...sources.keys()].filter((file) => !reached.has(file)),
    [],
  )
})

test.run()

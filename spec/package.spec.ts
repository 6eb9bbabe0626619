import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { childEnv } from './support/children.js'

const run = promisify(execFile)
const root = new URL('..', import.meta.url).pathname

test('the built package exports every name the SPEC lists (npm test builds dist/ first)', async () => {
  assert.ok(existsSync(`${root}dist/index.js`), 'dist/index.js is missing: run `npm run build` first (npm test does)')
  // A specifier TypeScript does not resolve: npm test type-checks before it builds dist/.
  const self = 'oniocache'
  const api = (await import(self)) as Record<string, unknown>
  const names = [
    'Cache',
    'MemoryCache',
    'SimpleMemoryCache',
    'MemoryBackend',
    'BasePlugin',
    'TimingPlugin',
    'HitMissRatioPlugin',
    'NullSerializer',
    'StringSerializer',
    'JsonSerializer',
    'MsgPackSerializer',
    'V8Serializer',
    'KeyExistsError',
    'TimeoutError',
    'SerializationError',
    'InvalidKeyError',
    'InvalidCacheTypeError',
    'OptimisticLockError',
    'BackendError',
  ]
  for (const name of names) assert.type(api[name], 'function', name)
  assert.is(api.SimpleMemoryCache, api.MemoryCache)
  assert.ok(existsSync(`${root}dist/index.d.ts`), 'type declarations are shipped')
})

test('the seed example (npm run demo) tells its story: hooks, the hit ratio in %, times in µs/ms', async () => {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'examples/plugins.ts'], {
    cwd: root,
    env: childEnv({ FORCE_COLOR: '0', NO_COLOR: '1' }),
  })
  assert.match(stdout, /hits: \d+ of 1000 reads, hit ratio [5-9]\d\.\d %/)
  assert.match(stdout, /set +4 +[\d.]+ [µm]?s +[\d.]+ [µm]?s +[\d.]+ [µm]?s\n/)
  assert.match(stdout, /get +1000 +[\d.]+ [µm]?s +[\d.]+ [µm]?s +[\d.]+ [µm]?s\n/)
  assert.match(stdout, /postSet hook: key d, result true, took [\d.]+ [µm]?s/)
  assert.not.match(stdout, /e-\d/, 'no raw floats in exponent notation')
  assert.match(stdout, /preSet hook being called with key a/)
})

test('examples/decorators.ts and examples/locks.ts run and show what they promise', async () => {
  const env = childEnv({ FORCE_COLOR: '0', NO_COLOR: '1' })
  const decorators = (await run(process.execPath, ['--import', 'tsx', 'examples/decorators.ts'], { cwd: root, env }))
    .stdout
  assert.match(decorators, /getUser\('42'\) twice -> loads: 1/)
  assert.match(decorators, /pricesFor asked for: c\n/, 'multiCached asks only for the missing key')
  assert.match(decorators, /through a broken cache: \{ id: '99'/)
  const locks = (await run(process.execPath, ['--import', 'tsx', 'examples/locks.ts'], { cwd: root, env })).stdout
  assert.match(locks, /computed 1 time\(s\)/)
  assert.match(locks, /conflict: OptimisticLockError/)
})

test('the shipped declarations type-check alone, without skipLibCheck, and leave @internal names out', async () => {
  assert.ok(existsSync(`${root}dist/index.d.ts`), 'dist/ is missing: run `npm run build` first (npm test does)')
  const dir = mkdtempSync(join(tmpdir(), 'oniocache-dts-'))
  try {
    const config = {
      compilerOptions: {
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        module: 'nodenext',
        moduleResolution: 'nodenext',
        target: 'es2022',
        lib: ['es2023', 'esnext.disposable'],
        types: ['node'],
        typeRoots: [`${root}node_modules/@types`],
      },
      include: [`${root}dist/**/*.d.ts`],
    }
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify(config))
    const { stdout } = await run(process.execPath, [`${root}node_modules/typescript/bin/tsc`, '-p', dir], { cwd: root })
    assert.is(stdout.trim(), '')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  const compose = readFileSync(`${root}dist/core/compose.d.ts`, 'utf8')
  assert.not.match(compose, /function compose|SYNC_NEXT/, 'an @internal name reached the declarations')
  const map = JSON.parse(readFileSync(`${root}dist/core/compose.js.map`, 'utf8')) as { sourcesContent?: string[] }
  assert.ok(map.sourcesContent?.[0]?.includes('export function compose'), 'source maps carry their sources')
})

test.run()

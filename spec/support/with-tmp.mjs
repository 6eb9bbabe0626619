// Runs a command with a temp directory of its own inside the project (TMPDIR=.tmp/run-…),
// removed when it ends: whatever the command and its children put in "the temp
// directory" — server data, tsx's compile cache — is gone afterwards, and nothing
// is left in the system's. The command's exit code is this one's. The system's temp
// directory stays known as ONIOCACHE_SYSTEM_TMPDIR, for the specs that need a place
// outside the project (an install that must not see the project's node_modules).
//
//   node spec/support/with-tmp.mjs <command> [args…]
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const [command, ...args] = process.argv.slice(2)
if (command === undefined) {
  console.error('usage: node spec/support/with-tmp.mjs <command> [args…]')
  process.exit(2)
}
const root = new URL('../..', import.meta.url).pathname
mkdirSync(join(root, '.tmp'), { recursive: true })
const tmp = mkdtempSync(join(root, '.tmp', 'run-'))
// Nested runs keep the outermost value: by then tmpdir() is an outer run's directory.
const system = process.env.ONIOCACHE_SYSTEM_TMPDIR ?? tmpdir()
const env = { ...process.env, TMPDIR: tmp, TMP: tmp, TEMP: tmp, ONIOCACHE_SYSTEM_TMPDIR: system }
const child = spawn(command, args, { stdio: 'inherit', env })
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal))
child.on('exit', (code, signal) => {
  rmSync(tmp, { recursive: true, force: true })
  process.exitCode = code ?? (signal === null ? 1 : 128)
})

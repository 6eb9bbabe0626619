// Runs a command with a temp directory of its own inside the project (TMPDIR=.tmp/run-…),
// removed when it ends: whatever the command and its children put in "the temp
// directory" — server data, tsx's compile cache — is gone afterwards, and nothing
// is left in the system's. The command's exit code is this one's.
//
//   node spec/support/with-tmp.mjs <command> [args…]
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'

const [command, ...args] = process.argv.slice(2)
if (command === undefined) {
  console.error('usage: node spec/support/with-tmp.mjs <command> [args…]')
  process.exit(2)
}
const root = new URL('../..', import.meta.url).pathname
mkdirSync(join(root, '.tmp'), { recursive: true })
const tmp = mkdtempSync(join(root, '.tmp', 'run-'))
const child = spawn(command, args, { stdio: 'inherit', env: { ...process.env, TMPDIR: tmp, TMP: tmp, TEMP: tmp } })
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal))
child.on('exit', (code, signal) => {
  rmSync(tmp, { recursive: true, force: true })
  process.exitCode = code ?? (signal === null ? 1 : 128)
})

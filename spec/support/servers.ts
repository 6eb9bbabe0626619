/**
 * Test harness: starts REAL, private `redis-server` (single or cluster) and `memcached`
 * processes on free loopback ports, each in its own temporary directory, and makes sure
 * every one of them is gone when the test process ends (even when a test fails).
 *
 *  - Servers listen on 127.0.0.1 only and never on the default ports (6379 / 11211).
 *  - Readiness is checked over node:net with the harness's own tiny RESP / text-protocol
 *    clients, and the answering process is verified to be OUR process (its pid).
 *  - Missing binaries are installed once with apt-get when running as root on Debian,
 *    with service auto-start prevented (policy-rc.d); otherwise an Error names the command.
 *  - Nothing here ever talks to, flushes or signals a server the harness did not start.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as fsp from 'node:fs/promises'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'

export const HOST = '127.0.0.1'
/** The single command a human needs to run when the binaries are missing. */
export const INSTALL_COMMAND = 'apt-get install -y redis-server redis-tools memcached'

const APT_PACKAGES = ['redis-server', 'redis-tools', 'memcached'] as const
/** Wait for a concurrent apt/dpkg (another test process) instead of failing on its lock. */
const APT_LOCK_WAIT = ['-o', 'DPkg::Lock::Timeout=300'] as const
/** Default ports (and Redis' default cluster bus port) that our servers must never use. */
const FORBIDDEN_PORTS = new Set([6379, 16379, 11211])
/** Redis cluster bus port = port + 10000, which must stay a valid port. */
const CLUSTER_BUS_OFFSET = 10000
const DEFAULT_START_TIMEOUT_MS = 10_000
const DEFAULT_CLUSTER_TIMEOUT_MS = 30_000
const KILL_GRACE_MS = 5_000
const LOG_TAIL_BYTES = 16 * 1024
const LOG = '[oniocache spec/support/servers]'

// ---------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------

export type KillSignal = 'SIGTERM' | 'SIGKILL' | 'SIGINT' | 'SIGQUIT'

export interface ServerControls {
  readonly host: typeof HOST
  readonly port: number
  /** Pid of the current process (of the last one after `kill()`). */
  readonly pid: number
  /** The private temporary directory (cwd / `--dir`); removed by `stop()`. */
  readonly dir: string
  readonly running: boolean
  readonly paused: boolean
  /** Last captured stdout/stderr of the current (or last) process. */
  logs(): string
  /** SIGSTOP: the process keeps its port but answers nothing until `resume()`. */
  pause(): Promise<void>
  /** SIGCONT. */
  resume(): Promise<void>
  /** Sends `signal` (default SIGTERM; SIGKILL after 5 s) and waits for the exit. The temp dir is kept. */
  kill(signal?: KillSignal): Promise<void>
  /** Starts the server again on the SAME port and temp dir (killing it first if still running); waits until ready. */
  restart(timeoutMs?: number): Promise<void>
  /** Kills the server (SIGKILL), waits for the exit and removes the temp dir. Idempotent. */
  stop(): Promise<void>
}

export interface RedisServer extends ServerControls {
  /** `redis://127.0.0.1:PORT` */
  readonly url: string
}

export interface MemcachedServer extends ServerControls {
  /** `127.0.0.1:PORT` */
  readonly server: string
}

export interface RedisOptions {
  /** Fixed port (no retry on another port). Default: a free one. */
  port?: number
  /** Extra `redis-server` arguments, e.g. `['--maxmemory', '10mb']`. */
  args?: readonly string[]
  startTimeoutMs?: number
}

export interface MemcachedOptions {
  port?: number
  /** Extra `memcached` arguments. */
  args?: readonly string[]
  /** `-m`, default 64. */
  memoryMb?: number
  startTimeoutMs?: number
}

export interface RedisClusterOptions {
  /** Default 3 (redis-cli requires at least 3). */
  masters?: number
  /** Default 0. */
  replicasPerMaster?: 0 | 1
  /** Extra `redis-server` arguments for every node. */
  args?: readonly string[]
  /** Bound on the whole start (processes + `redis-cli --cluster create` + convergence). Default 30 s. */
  timeoutMs?: number
}

export interface ClusterNodeInfo {
  id: string
  /** `127.0.0.1:PORT` */
  address: string
  port: number
  flags: string[]
  role: 'master' | 'replica'
  /** Master's id for replicas, `undefined` for masters. */
  masterId: string | undefined
  linkState: string
  /** Slot ranges as written by CLUSTER NODES, e.g. `['0-5460']`. */
  slots: string[]
}

export interface RedisCluster {
  readonly nodes: RedisServer[]
  /** For cluster clients: `[{ url: 'redis://127.0.0.1:P' }, ...]`. */
  readonly rootNodes: { url: string }[]
  /**
   * Polls until every running node reports `cluster_state:ok` with all 16384 slots assigned and
   * every slot owner (as each running node sees it) is a running, non-failing master — so after
   * killing a master it waits for the failover (needs replicas) or the master's restart — and
   * replicas of running masters have `master_link_status:up`.
   */
  waitUntilOk(timeoutMs?: number): Promise<void>
  /** Parsed `CLUSTER NODES` as seen by the first running node (or `node`). */
  clusterNodes(node?: RedisServer): Promise<ClusterNodeInfo[]>
  stop(): Promise<void>
}

export type RespValue = string | number | null | RedisReplyError | RespValue[]

/** A Redis `-ERR ...` reply. Rejected at top level; kept as an element inside arrays. */
export class RedisReplyError extends Error {
  override readonly name = 'RedisReplyError'
}

export interface CommandTarget {
  port: number
  host?: string
  /** Reject (code `ETIMEDOUT`) when no complete answer arrives in time. Default 5000 ms. */
  timeoutMs?: number
}

export type RedisArg = string | number | Buffer

// ---------------------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------------------

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

function codedError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code })
}

function lastLines(text: string, count = 20): string {
  const lines = text.trimEnd().split('\n')
  return lines.slice(-count).join('\n')
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<{ value: T } | undefined> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => resolve(undefined), ms)
    promise.then(
      (value) => {
        clearTimeout(timer)
        resolve({ value })
      },
      (err: unknown) => {
        clearTimeout(timer)
        reject(err)
      },
    )
  })
}

/** Keeps the last `limit` bytes of a process's combined stdout/stderr. */
class OutputTail {
  #text = ''
  constructor(private readonly limit = LOG_TAIL_BYTES) {}
  push(chunk: Buffer | string): void {
    this.#text += chunk.toString()
    if (this.#text.length > this.limit) this.#text = this.#text.slice(-this.limit)
  }
  clear(): void {
    this.#text = ''
  }
  toString(): string {
    return this.#text
  }
}

interface RunResult {
  code: number | null
  signal: NodeJS.Signals | null
  output: string
}

/** Children that must die with us (redis-cli helpers); killed by the exit handler. */
const helperChildren = new Set<ChildProcess>()

/** Runs a command to completion, capturing combined output (never throws for exit codes). */
function run(
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; killOnExit?: boolean } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const output = new OutputTail(256 * 1024)
    const child = spawn(command, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: false,
      env: options.env ?? process.env,
    })
    if (options.killOnExit) {
      installExitHandlers()
      helperChildren.add(child)
    }
    child.stdout?.on('data', (chunk: Buffer) => output.push(chunk))
    child.stderr?.on('data', (chunk: Buffer) => output.push(chunk))
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            output.push(`\n${LOG} timed out after ${options.timeoutMs} ms; killing ${command}\n`)
            child.kill('SIGKILL')
          }, options.timeoutMs)
    child.once('error', (err) => {
      if (timer) clearTimeout(timer)
      helperChildren.delete(child)
      reject(err)
    })
    child.once('close', (code, signal) => {
      if (timer) clearTimeout(timer)
      helperChildren.delete(child)
      resolve({ code, signal, output: output.toString() })
    })
  })
}

function findExecutable(name: string): string | undefined {
  const dirs = [
    ...(process.env.PATH ?? '').split(path.delimiter),
    '/usr/local/bin',
    '/usr/bin',
    '/usr/sbin',
    '/bin',
    '/sbin',
  ]
  for (const dir of dirs) {
    if (!dir) continue
    const candidate = path.join(dir, name)
    try {
      fs.accessSync(candidate, fs.constants.X_OK)
      if (fs.statSync(candidate).isFile()) return candidate
    } catch {
      // not here
    }
  }
  return undefined
}

/** True when something accepts TCP connections on 127.0.0.1:port. Sends nothing. */
function isListening(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: HOST, port })
    const done = (result: boolean): void => {
      socket.destroy()
      resolve(result)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
}

// ---------------------------------------------------------------------------------------
// Binaries (and the one-time apt-get install)
// ---------------------------------------------------------------------------------------

export interface ServerBinaries {
  redisServer: string
  redisCli: string
  memcached: string
}

function locateBinaries(): { found: Partial<ServerBinaries>; missing: string[] } {
  const found: Partial<ServerBinaries> = {}
  const missing: string[] = []
  const wanted: [keyof ServerBinaries, string][] = [
    ['redisServer', 'redis-server'],
    ['redisCli', 'redis-cli'],
    ['memcached', 'memcached'],
  ]
  for (const [key, name] of wanted) {
    const location = findExecutable(name)
    if (location) found[key] = location
    else missing.push(name)
  }
  return { found, missing }
}

let binariesPromise: Promise<ServerBinaries> | undefined

/**
 * Resolves the server binaries, installing them once (root + Debian only) when missing.
 * Otherwise rejects with an Error naming `apt-get install -y redis-server redis-tools memcached`.
 */
export function ensureServerBinaries(): Promise<ServerBinaries> {
  binariesPromise ??= resolveBinaries()
  return binariesPromise
}

async function resolveBinaries(): Promise<ServerBinaries> {
  let { found, missing } = locateBinaries()
  if (missing.length > 0) {
    const isRoot = process.getuid?.() === 0
    const isDebian = fs.existsSync('/etc/debian_version')
    if (!isRoot || !isDebian || !findExecutable('apt-get')) {
      throw new Error(
        `${LOG} missing ${missing.join(', ')}; the Redis/Memcached specs need real servers. ` +
          `Install them (as root) with: ${INSTALL_COMMAND}`,
      )
    }
    await aptInstall(missing)
    ;({ found, missing } = locateBinaries())
    if (missing.length > 0) {
      throw new Error(`${LOG} still missing ${missing.join(', ')} after installing; run: ${INSTALL_COMMAND}`)
    }
  }
  const { redisServer, redisCli, memcached } = found
  if (!redisServer || !redisCli || !memcached) throw new Error(`${LOG} unreachable: binaries not resolved`)
  return { redisServer, redisCli, memcached }
}

const POLICY_RC_D = '/usr/sbin/policy-rc.d'
const POLICY_RC_D_OURS = '#!/bin/sh\n# oniocache spec harness: no service starts during apt-get install\nexit 101\n'
/** Files to remove if we die while they exist (our temporary policy-rc.d). */
const cleanupFiles = new Set<string>()

/** Makes invoke-rc.d / deb-systemd-invoke refuse to start services during the install. */
async function preventServiceStarts(): Promise<() => Promise<void>> {
  if (fs.existsSync(POLICY_RC_D)) return async () => {} // someone else's policy (containers ship one); leave it
  await fsp.writeFile(POLICY_RC_D, POLICY_RC_D_OURS, { mode: 0o755, flag: 'wx' })
  cleanupFiles.add(POLICY_RC_D)
  installExitHandlers()
  return async () => {
    cleanupFiles.delete(POLICY_RC_D)
    try {
      if ((await fsp.readFile(POLICY_RC_D, 'utf8')) === POLICY_RC_D_OURS) await fsp.rm(POLICY_RC_D, { force: true })
    } catch {
      // already gone
    }
  }
}

/** True when apt knows an installation candidate for every package (else `apt-get update` is needed). */
async function aptHasCandidates(): Promise<boolean> {
  try {
    const { code, output } = await run('apt-cache', ['policy', ...APT_PACKAGES], { timeoutMs: 60_000 })
    if (code !== 0) return false
    const candidates = output.split('\n').filter((line) => /^\s*Candidate:/.test(line))
    return candidates.length === APT_PACKAGES.length && candidates.every((line) => !/\(none\)/.test(line))
  } catch {
    return false
  }
}

async function aptInstall(missing: readonly string[]): Promise<void> {
  process.stderr.write(
    `${LOG} ${missing.join(', ')} not found; installing once with: DEBIAN_FRONTEND=noninteractive ${INSTALL_COMMAND}\n`,
  )
  const env: NodeJS.ProcessEnv = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  const defaultPorts: [number, string][] = [
    [6379, 'redis-server'],
    [11211, 'memcached'],
  ]
  const listeningBefore = new Map<number, boolean>()
  for (const [port] of defaultPorts) listeningBefore.set(port, await isListening(port))

  const restorePolicy = await preventServiceStarts()
  try {
    let updated = false
    const update = async (): Promise<void> => {
      updated = true
      process.stderr.write(`${LOG} running apt-get update\n`)
      const result = await run('apt-get', [...APT_LOCK_WAIT, 'update'], { env, timeoutMs: 300_000 })
      if (result.code !== 0) {
        throw new Error(
          `${LOG} apt-get update failed (exit ${result.code}); run: ${INSTALL_COMMAND}\n${lastLines(result.output)}`,
        )
      }
    }
    if (!(await aptHasCandidates())) await update()
    const install = (): Promise<RunResult> =>
      run('apt-get', [...APT_LOCK_WAIT, 'install', '-y', ...APT_PACKAGES], { env, timeoutMs: 600_000 })
    let result = await install()
    if (result.code !== 0 && !updated) {
      await update() // stale package lists (404s) are the usual cause
      result = await install()
    }
    if (result.code !== 0) {
      throw new Error(
        `${LOG} "${INSTALL_COMMAND}" failed (exit ${result.code}); run it yourself.\n${lastLines(result.output)}`,
      )
    }
  } finally {
    await restorePolicy()
  }

  // If the package still managed to start its service on a default port (a system without a
  // policy-rc.d that refuses starts), stop it through the service manager. Processes that were
  // already listening before the install are not ours to touch.
  for (const [port, service] of defaultPorts) {
    if (listeningBefore.get(port) || !(await isListening(port))) continue
    process.stderr.write(`${LOG} the ${service} package started a service on ${HOST}:${port}; stopping it\n`)
    const manager = findExecutable('service')
      ? run('service', [service, 'stop'], { timeoutMs: 30_000 })
      : run('systemctl', ['stop', service], { timeoutMs: 30_000 })
    await manager.catch(() => undefined)
    if (await isListening(port)) {
      process.stderr.write(
        `${LOG} warning: something still listens on ${HOST}:${port}; the harness never uses that port\n`,
      )
    }
  }
  process.stderr.write(`${LOG} installed ${APT_PACKAGES.join(' ')}\n`)
}

let redisMajorPromise: Promise<number> | undefined

function redisMajorVersion(bin: string): Promise<number> {
  redisMajorPromise ??= run(bin, ['--version'], { timeoutMs: 10_000 }).then(({ output }) => {
    const match = /v=(\d+)\./.exec(output)
    return match ? Number(match[1]) : 0
  })
  return redisMajorPromise
}

/** Versions of the binaries the harness uses, e.g. `{ redis: '7.0.15', memcached: '1.6.18' }`. */
export async function serverVersions(): Promise<{ redis: string; memcached: string }> {
  const bins = await ensureServerBinaries()
  const [redis, memcached] = await Promise.all([
    run(bins.redisServer, ['--version'], { timeoutMs: 10_000 }),
    run(bins.memcached, ['-V'], { timeoutMs: 10_000 }),
  ])
  return {
    redis: /v=([\d.]+)/.exec(redis.output)?.[1] ?? redis.output.trim(),
    memcached: /memcached ([\d.]+)/.exec(memcached.output)?.[1] ?? memcached.output.trim(),
  }
}

// ---------------------------------------------------------------------------------------
// Free ports
// ---------------------------------------------------------------------------------------

/** Ports handed out to live servers of this process (so two parallel starts never collide). */
const reservedPorts = new Set<number>()

function listenOnce(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = net.createServer()
    server.unref()
    server.once('error', () => resolve(undefined))
    server.listen({ host: HOST, port, exclusive: true }, () => {
      const address = server.address()
      const bound = typeof address === 'object' && address ? address.port : undefined
      server.close(() => resolve(bound))
    })
  })
}

/** A port that was free a moment ago (bind 127.0.0.1:0, close). With `busPort`, port+10000 is free too. */
async function findFreePort(options: { busPort?: boolean } = {}): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = await listenOnce(0)
    if (port === undefined || FORBIDDEN_PORTS.has(port) || reservedPorts.has(port)) continue
    if (!options.busPort) {
      reservedPorts.add(port)
      return port
    }
    const bus = port + CLUSTER_BUS_OFFSET
    if (bus > 65535 || FORBIDDEN_PORTS.has(bus) || reservedPorts.has(bus)) continue
    // Reserve both before awaiting, so a concurrent caller cannot pick the same pair.
    reservedPorts.add(port)
    reservedPorts.add(bus)
    if ((await listenOnce(bus)) !== undefined) return port
    releasePort(port, true)
  }
  throw new Error(`${LOG} could not find a free port on ${HOST}`)
}

function releasePort(port: number, busPort: boolean): void {
  reservedPorts.delete(port)
  if (busPort) reservedPorts.delete(port + CLUSTER_BUS_OFFSET)
}

// ---------------------------------------------------------------------------------------
// Registry and exit cleanup
// ---------------------------------------------------------------------------------------

const live = new Set<ManagedServer>()
let exitHandlersInstalled = false

/** Synchronous last-resort cleanup: SIGKILL every live server, remove temp dirs. */
function cleanupSync(): void {
  for (const server of live) server.destroySync()
  live.clear()
  for (const child of helperChildren) {
    try {
      child.kill('SIGKILL')
    } catch {
      // gone
    }
  }
  helperChildren.clear()
  for (const file of cleanupFiles) {
    try {
      fs.rmSync(file, { force: true })
    } catch {
      // ignore
    }
  }
  cleanupFiles.clear()
}

function installExitHandlers(): void {
  if (exitHandlersInstalled) return
  exitHandlersInstalled = true
  process.on('exit', cleanupSync)
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      cleanupSync()
      // Keep the default behaviour (die by that signal) unless someone else handles it.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
    }
    process.once(signal, onSignal)
  }
}

/**
 * Stops every server started by this harness (in this process). Not for a spec file's own
 * cleanup: the files run in one process, and another file's servers may still be in use.
 */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((server) => server.stop()))
}

/** How many servers started by the harness are still registered (not yet `stop()`ped). */
export function liveServerCount(): number {
  return live.size
}

// ---------------------------------------------------------------------------------------
// A managed server process
// ---------------------------------------------------------------------------------------

interface ServerSpec {
  /** `redis` / `memcached`, for messages and temp dir names. */
  kind: string
  bin: string
  args(port: number, dir: string): string[]
  /** One readiness probe: resolves true once the server answers AND is the process `pid`. */
  probe(port: number, pid: number): Promise<boolean>
  /** Reserve port+10000 as well (Redis cluster bus). */
  busPort: boolean
}

class StartError extends Error {
  constructor(
    message: string,
    readonly addressInUse: boolean,
  ) {
    super(message)
  }
}

function processState(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0]
  } catch {
    return undefined
  }
}

async function waitForProcessState(pid: number, stopped: boolean, timeoutMs = 2000): Promise<void> {
  if (!fs.existsSync('/proc/self/stat')) return
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const state = processState(pid)
    if (state === undefined || (state === 'T') === stopped) return
    await sleep(2)
  }
}

class ManagedServer implements ServerControls {
  readonly host = HOST
  #child: ChildProcess | undefined
  #exited: Promise<void> = Promise.resolve()
  #lastPid = 0
  #paused = false
  #stopping: Promise<void> | undefined
  readonly #output = new OutputTail()

  constructor(
    protected readonly spec: ServerSpec,
    readonly port: number,
    readonly dir: string,
  ) {
    installExitHandlers()
    live.add(this)
  }

  get pid(): number {
    return this.#child?.pid ?? this.#lastPid
  }

  get running(): boolean {
    const child = this.#child
    return child !== undefined && child.exitCode === null && child.signalCode === null
  }

  get paused(): boolean {
    return this.#paused && this.running
  }

  logs(): string {
    return this.#output.toString()
  }

  toString(): string {
    return `${this.spec.kind} ${HOST}:${this.port}`
  }

  /** Spawns the process and waits until it is ready; on failure the process is killed. */
  async start(timeoutMs: number): Promise<void> {
    if (this.#stopping) throw new Error(`${LOG} ${this} was stopped`)
    if (this.running) throw new Error(`${LOG} ${this} is already running`)
    this.#output.clear()
    this.#paused = false
    const child = spawn(this.spec.bin, this.spec.args(this.port, this.dir), {
      cwd: this.dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: false,
    })
    this.#child = child
    // Never let a server keep the test process alive: the exit handler kills it.
    child.unref()
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue
      stream.on('data', (chunk: Buffer) => this.#output.push(chunk))
      if (stream instanceof net.Socket) stream.unref()
    }
    let exitNote: string | undefined
    let spawnError: Error | undefined
    this.#exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        exitNote = signal ? `killed by ${signal}` : `exited with code ${code}`
        resolve()
      })
      child.once('error', (err) => {
        spawnError = err
        if (child.pid === undefined) {
          exitNote = `failed to spawn: ${err.message}`
          resolve()
        }
      })
    })
    const closed = new Promise<void>((resolve) => child.once('close', () => resolve()))
    if (child.pid !== undefined) this.#lastPid = child.pid

    const deadline = Date.now() + timeoutMs
    let lastProbeError = ''
    while (true) {
      if (exitNote !== undefined) break
      const pid = child.pid
      if (pid !== undefined) {
        try {
          if (await this.spec.probe(this.port, pid)) return
          lastProbeError = 'answered, but not ready (or not our process)'
        } catch (err) {
          lastProbeError = errorMessage(err)
        }
      }
      if (exitNote !== undefined || Date.now() >= deadline) break
      await Promise.race([sleep(25), this.#exited])
    }

    // Failed: make sure it is gone, then report with the last lines of its output.
    if (exitNote === undefined) {
      child.kill('SIGKILL')
      await this.#exited
      exitNote = `not ready within ${timeoutMs} ms (last probe: ${lastProbeError}); killed`
    }
    await withTimeout(closed, 500) // let stdout/stderr drain into the log tail
    const output = this.logs()
    const addressInUse = /address already in use|EADDRINUSE|failed to listen/i.test(output)
    throw new StartError(
      `${LOG} ${this.spec.kind} on ${HOST}:${this.port} failed to start: ${exitNote}` +
        (spawnError ? ` (${spawnError.message})` : '') +
        `\n--- last output of ${path.basename(this.spec.bin)} ---\n${lastLines(output) || '(none)'}`,
      addressInUse,
    )
  }

  async pause(): Promise<void> {
    const child = this.#requireRunning('pause')
    child.kill('SIGSTOP')
    this.#paused = true
    if (child.pid !== undefined) await waitForProcessState(child.pid, true)
  }

  async resume(): Promise<void> {
    const child = this.#requireRunning('resume')
    child.kill('SIGCONT')
    this.#paused = false
    if (child.pid !== undefined) await waitForProcessState(child.pid, false)
  }

  async kill(signal: KillSignal = 'SIGTERM'): Promise<void> {
    const child = this.#child
    if (!child || !this.running) return
    child.kill(signal)
    // A stopped process only acts on SIGTERM & co. once continued (SIGKILL needs no help).
    if (this.#paused && signal !== 'SIGKILL') child.kill('SIGCONT')
    this.#paused = false
    if (!(await withTimeout(this.#exited, KILL_GRACE_MS))) {
      child.kill('SIGKILL')
      await this.#exited
    }
  }

  async restart(timeoutMs = DEFAULT_START_TIMEOUT_MS): Promise<void> {
    if (this.#stopping) throw new Error(`${LOG} ${this} was stopped; it cannot be restarted`)
    if (this.running) await this.kill('SIGTERM')
    const deadline = Date.now() + timeoutMs
    // Same port: retry while the port is transiently taken (e.g. by a client's ephemeral port).
    while (true) {
      try {
        await this.start(Math.max(1000, deadline - Date.now()))
        return
      } catch (err) {
        if (!(err instanceof StartError) || !err.addressInUse || Date.now() >= deadline) throw err
        await sleep(100)
      }
    }
  }

  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      try {
        await this.kill('SIGKILL')
      } finally {
        await fsp.rm(this.dir, { recursive: true, force: true })
        live.delete(this)
        releasePort(this.port, this.spec.busPort)
      }
    })()
    return this.#stopping
  }

  /** Exit-handler path: synchronous SIGKILL and temp dir removal. */
  destroySync(): void {
    const pid = this.#child?.pid
    if (pid !== undefined && this.running) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // already gone
      }
    }
    try {
      fs.rmSync(this.dir, { recursive: true, force: true })
    } catch {
      // ignore
    }
  }

  #requireRunning(action: string): ChildProcess {
    const child = this.#child
    if (!child || !this.running) throw new Error(`${LOG} cannot ${action} ${this}: not running`)
    return child
  }
}

class ManagedRedis extends ManagedServer implements RedisServer {
  get url(): string {
    return `redis://${HOST}:${this.port}`
  }
}

class ManagedMemcached extends ManagedServer implements MemcachedServer {
  get server(): string {
    return `${HOST}:${this.port}`
  }
}

/**
 * Creates a temp dir, picks a free port (unless fixed) and starts the server, retrying on a
 * fresh port when the chosen one was taken in the meantime.
 */
async function launch<T extends ManagedServer>(
  make: (port: number, dir: string) => T,
  spec: ServerSpec,
  fixedPort: number | undefined,
  timeoutMs: number,
): Promise<T> {
  if (fixedPort !== undefined && FORBIDDEN_PORTS.has(fixedPort)) {
    throw new RangeError(`${LOG} refusing to start ${spec.kind} on default port ${fixedPort}`)
  }
  const attempts = fixedPort === undefined ? 5 : 1
  let lastError: unknown
  for (let attempt = 0; attempt < attempts; attempt++) {
    let port: number
    if (fixedPort === undefined) {
      port = await findFreePort({ busPort: spec.busPort })
    } else {
      if (reservedPorts.has(fixedPort)) throw new Error(`${LOG} port ${fixedPort} is already used by a harness server`)
      port = fixedPort
      reservedPorts.add(port)
      if (spec.busPort) reservedPorts.add(port + CLUSTER_BUS_OFFSET)
    }
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), `oniocache-${spec.kind}-`))
    const server = make(port, dir)
    try {
      await server.start(timeoutMs)
      return server
    } catch (err) {
      lastError = err
      await server.stop()
      if (!(err instanceof StartError) || !err.addressInUse) break
    }
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError))
}

// ---------------------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------------------

async function redisProbe(port: number, pid: number): Promise<boolean> {
  const target = { port, timeoutMs: 1000 }
  if ((await redisCommand(target, 'PING')) !== 'PONG') return false
  const info = await redisCommand(target, 'INFO', 'server')
  return typeof info === 'string' && new RegExp(`^process_id:${pid}\\r?$`, 'm').test(info)
}

async function redisSpec(extraArgs: readonly string[], cluster: boolean): Promise<ServerSpec> {
  const bins = await ensureServerBinaries()
  const major = await redisMajorVersion(bins.redisServer)
  return {
    kind: cluster ? 'redis-cluster-node' : 'redis',
    bin: bins.redisServer,
    busPort: cluster,
    probe: redisProbe,
    args: (port, dir) => [
      '--bind',
      HOST,
      '--port',
      String(port),
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      '--daemonize',
      'no',
      '--repl-diskless-sync-delay',
      '0', // replicas sync at once (the default waits 5 s)
      ...(major >= 7 ? ['--enable-debug-command', 'local'] : []),
      ...(cluster
        ? ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000']
        : []),
      ...extraArgs,
    ],
  }
}

/** Starts a private redis-server on a free 127.0.0.1 port and waits until it answers PING. */
export async function startRedis(options: RedisOptions = {}): Promise<RedisServer> {
  const spec = await redisSpec(options.args ?? [], false)
  return launch(
    (port, dir) => new ManagedRedis(spec, port, dir),
    spec,
    options.port,
    options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS,
  )
}

function parseInfo(text: string): Map<string, string> {
  const fields = new Map<string, string>()
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':')
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1).trim())
  }
  return fields
}

/** Parses `CLUSTER NODES` output. */
export function parseClusterNodes(text: string): ClusterNodeInfo[] {
  const nodes: ClusterNodeInfo[] = []
  for (const line of text.split(/\r?\n/)) {
    const parts = line.trim().split(' ')
    const [id, rawAddress, rawFlags, master, , , , linkState, ...slots] = parts
    if (!id || !rawAddress || !rawFlags || !master || !linkState) continue
    const address = rawAddress.split('@')[0] ?? rawAddress
    const flags = rawFlags.split(',')
    nodes.push({
      id,
      address,
      port: Number(address.slice(address.lastIndexOf(':') + 1)),
      flags,
      role: flags.includes('master') ? 'master' : 'replica',
      masterId: master === '-' ? undefined : master,
      linkState,
      slots,
    })
  }
  return nodes
}

async function clusterInfo(port: number): Promise<Map<string, string>> {
  const info = await redisCommand({ port, timeoutMs: 1000 }, 'CLUSTER', 'INFO')
  return parseInfo(typeof info === 'string' ? info : '')
}

/**
 * Starts `masters * (1 + replicasPerMaster)` private cluster-enabled redis-servers, joins them with
 * `redis-cli --cluster create`, and waits until every node reports `cluster_state:ok`, knows every
 * other node with a healthy link, sees the expected number of masters, and every replica is in sync.
 */
export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisCluster> {
  const masters = options.masters ?? 3
  const replicas = options.replicasPerMaster ?? 0
  if (!Number.isInteger(masters) || masters < 3) throw new RangeError(`${LOG} a Redis cluster needs at least 3 masters`)
  if (replicas !== 0 && replicas !== 1) throw new RangeError(`${LOG} replicasPerMaster must be 0 or 1`)
  const timeoutMs = options.timeoutMs ?? DEFAULT_CLUSTER_TIMEOUT_MS
  const deadline = Date.now() + timeoutMs
  const bins = await ensureServerBinaries()
  const spec = await redisSpec(options.args ?? [], true)
  const total = masters * (1 + replicas)

  const started = await Promise.allSettled(
    Array.from({ length: total }, () =>
      launch((port, dir) => new ManagedRedis(spec, port, dir), spec, undefined, DEFAULT_START_TIMEOUT_MS),
    ),
  )
  const nodes = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []))
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map((node) => node.stop()))
  }
  const failed = started.find((result): result is PromiseRejectedResult => result.status === 'rejected')
  if (failed) {
    await stop()
    throw failed.reason instanceof Error ? failed.reason : new Error(String(failed.reason))
  }

  const clusterNodes = async (node?: RedisServer): Promise<ClusterNodeInfo[]> => {
    const from = node ?? nodes.find((n) => n.running)
    if (!from) throw new Error(`${LOG} no running cluster node`)
    const text = await redisCommand({ port: from.port, timeoutMs: 2000 }, 'CLUSTER', 'NODES')
    return parseClusterNodes(typeof text === 'string' ? text : '')
  }

  const pollUntil = async (what: string, until: number, check: () => Promise<string | undefined>): Promise<void> => {
    let problem: string | undefined = 'not checked yet'
    while (true) {
      try {
        problem = await check()
      } catch (err) {
        problem = errorMessage(err)
      }
      if (problem === undefined) return
      if (Date.now() >= until) throw new Error(`${LOG} ${what}: ${problem}`)
      await sleep(100)
    }
  }

  /** What keeps `node` from being healthy (undefined when healthy). `strict`: the full initial topology. */
  const nodeProblem = async (node: RedisServer, strict: boolean): Promise<string | undefined> => {
    const info = await clusterInfo(node.port)
    if (info.get('cluster_state') !== 'ok') return `${node} has cluster_state:${info.get('cluster_state')}`
    if (info.get('cluster_slots_assigned') !== '16384') {
      return `${node} has cluster_slots_assigned:${info.get('cluster_slots_assigned')}`
    }
    const view = await clusterNodes(node)
    const runningPorts = new Set(nodes.filter((n) => n.running).map((n) => n.port))
    // cluster_state stays ok until node-timeout flags a dead master: also require that every
    // slot owner is one of our running nodes and not flagged as failing.
    for (const owner of view.filter((n) => n.role === 'master' && n.slots.length > 0)) {
      if (!runningPorts.has(owner.port) || owner.flags.includes('fail') || owner.flags.includes('fail?')) {
        return `${node} routes slots ${owner.slots.join(',')} to ${owner.address} (${owner.flags.join(',')})`
      }
    }
    // A replica that never synced cannot fail over later ("disconnected from master for longer
    // than allowed"), so replicas of running masters must have their replication link up.
    const myself = view.find((n) => n.flags.includes('myself'))
    const master = myself?.masterId === undefined ? undefined : view.find((n) => n.id === myself.masterId)
    if (myself?.role === 'replica' && master && runningPorts.has(master.port)) {
      const replication = await redisCommand({ port: node.port, timeoutMs: 1000 }, 'INFO', 'replication')
      const link = parseInfo(typeof replication === 'string' ? replication : '').get('master_link_status')
      if (link !== 'up') return `${node} (replica of ${master.address}) has master_link_status:${link}`
    }
    if (strict) {
      if (view.length !== total) return `${node} knows ${view.length}/${total} nodes`
      const unhealthy = view.find(
        (n) =>
          n.linkState !== 'connected' ||
          n.flags.some((flag) => ['fail', 'fail?', 'handshake', 'noaddr'].includes(flag)),
      )
      if (unhealthy) return `${node} sees ${unhealthy.address} as ${unhealthy.flags.join(',')} ${unhealthy.linkState}`
      const masterCount = view.filter((n) => n.role === 'master').length
      if (masterCount !== masters) return `${node} sees ${masterCount}/${masters} masters`
    }
    return undefined
  }

  const allNodesHealthy = async (strict: boolean): Promise<string | undefined> => {
    for (const node of nodes) {
      if (!node.running) continue
      const problem = await nodeProblem(node, strict)
      if (problem) return problem
    }
    return undefined
  }

  const waitUntilOk = (waitMs = timeoutMs): Promise<void> =>
    pollUntil(`cluster not ok within ${waitMs} ms`, Date.now() + waitMs, () => allNodesHealthy(false))

  try {
    const create = await run(
      bins.redisCli,
      [
        '--cluster',
        'create',
        ...nodes.map((node) => `${HOST}:${node.port}`),
        '--cluster-replicas',
        String(replicas),
        '--cluster-yes',
      ],
      { timeoutMs: Math.max(1000, deadline - Date.now()), killOnExit: true },
    )
    if (create.code !== 0 || /\[ERR\]/.test(create.output)) {
      throw new Error(
        `${LOG} redis-cli --cluster create failed (exit ${create.code}):\n${lastLines(create.output, 30)}`,
      )
    }
    await pollUntil(`cluster did not converge within ${timeoutMs} ms`, deadline, () => allNodesHealthy(true))
  } catch (err) {
    await stop()
    throw err
  }

  return {
    nodes,
    rootNodes: nodes.map((node) => ({ url: node.url })),
    waitUntilOk,
    clusterNodes,
    stop,
  }
}

// ---------------------------------------------------------------------------------------
// Memcached
// ---------------------------------------------------------------------------------------

async function memcachedProbe(port: number, pid: number): Promise<boolean> {
  const target = { port, timeoutMs: 1000 }
  if (!/^VERSION /.test(await memcachedCommand(target, 'version'))) return false
  const stats = await memcachedCommand(target, 'stats')
  return new RegExp(`^STAT pid ${pid}\\r?$`, 'm').test(stats)
}

/** Starts a private memcached on a free 127.0.0.1 port (UDP off) and waits until it answers `version`. */
export async function startMemcached(options: MemcachedOptions = {}): Promise<MemcachedServer> {
  const bins = await ensureServerBinaries()
  const runAs = process.getuid?.() === 0 ? ['-u', 'root'] : [] // memcached refuses root without -u
  const spec: ServerSpec = {
    kind: 'memcached',
    bin: bins.memcached,
    busPort: false,
    probe: memcachedProbe,
    args: (port) => [
      '-l',
      HOST,
      '-p',
      String(port),
      '-U',
      '0',
      '-m',
      String(options.memoryMb ?? 64),
      '-t',
      '1',
      ...runAs,
      ...(options.args ?? []),
    ],
  }
  return launch(
    (port, dir) => new ManagedMemcached(spec, port, dir),
    spec,
    options.port,
    options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS,
  )
}

// ---------------------------------------------------------------------------------------
// Tiny protocol clients (one-shot connections)
// ---------------------------------------------------------------------------------------

function normalizeTarget(target: number | CommandTarget): Required<CommandTarget> {
  return typeof target === 'number'
    ? { port: target, host: HOST, timeoutMs: 5000 }
    : { port: target.port, host: target.host ?? HOST, timeoutMs: target.timeoutMs ?? 5000 }
}

/** Encodes a command as a RESP array of bulk strings. */
export function encodeRedisCommand(args: readonly RedisArg[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)]
  for (const arg of args) {
    const bytes = Buffer.isBuffer(arg) ? arg : Buffer.from(String(arg))
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'))
  }
  return Buffer.concat(parts)
}

/**
 * Parses one RESP2 value at `offset`: `undefined` when more bytes are needed.
 * Simple strings and bulk strings become strings (UTF-8), integers numbers, nil null,
 * errors RedisReplyError instances.
 */
export function parseResp(buffer: Buffer, offset = 0): { value: RespValue; next: number } | undefined {
  const eol = buffer.indexOf('\r\n', offset)
  if (eol < 0) return undefined
  const type = String.fromCharCode(buffer[offset] ?? 0)
  const line = buffer.toString('utf8', offset + 1, eol)
  const next = eol + 2
  switch (type) {
    case '+':
      return { value: line, next }
    case '-':
      return { value: new RedisReplyError(line), next }
    case ':':
      return { value: Number(line), next }
    case '$': {
      const length = Number(line)
      if (length < 0) return { value: null, next }
      if (buffer.length < next + length + 2) return undefined
      return { value: buffer.toString('utf8', next, next + length), next: next + length + 2 }
    }
    case '*': {
      const count = Number(line)
      if (count < 0) return { value: null, next }
      const items: RespValue[] = []
      let position = next
      for (let i = 0; i < count; i++) {
        const item = parseResp(buffer, position)
        if (!item) return undefined
        items.push(item.value)
        position = item.next
      }
      return { value: items, next: position }
    }
    default:
      throw new Error(`${LOG} RESP protocol error: unexpected type byte ${JSON.stringify(type)}`)
  }
}

/** Opens a connection, writes `payload`, and feeds received bytes to `onData` until it settles. */
function oneShot<T>(
  target: number | CommandTarget,
  payload: Buffer,
  onData: (received: Buffer, ended: boolean) => { value: T } | { error: Error } | undefined,
  what: string,
): Promise<T> {
  const { host, port, timeoutMs } = normalizeTarget(target)
  return new Promise<T>((resolve, reject) => {
    let received = Buffer.alloc(0)
    let settled = false
    const socket = net.connect({ host, port })
    const finish = (outcome: { value: T } | { error: Error }): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      if ('error' in outcome) reject(outcome.error)
      else resolve(outcome.value)
    }
    const timer = setTimeout(
      () => finish({ error: codedError(`${what} to ${host}:${port}: no answer within ${timeoutMs} ms`, 'ETIMEDOUT') }),
      timeoutMs,
    )
    const feed = (ended: boolean): void => {
      try {
        const outcome = onData(received, ended)
        if (outcome) finish(outcome)
        else if (ended)
          finish({
            error: codedError(`${what} to ${host}:${port}: connection closed before a complete answer`, 'ECONNRESET'),
          })
      } catch (err) {
        finish({ error: err instanceof Error ? err : new Error(String(err)) })
      }
    }
    socket.once('connect', () => socket.write(payload))
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk])
      feed(false)
    })
    socket.once('end', () => feed(true))
    socket.once('close', () => feed(true))
    socket.once('error', (err) => finish({ error: err }))
  })
}

/**
 * Sends one command over a fresh connection and resolves its reply. A top-level error reply
 * rejects with RedisReplyError. `target` is a port (127.0.0.1, 5 s timeout) or `{ port, host, timeoutMs }`.
 */
export function redisCommand(target: number | CommandTarget, ...args: RedisArg[]): Promise<RespValue> {
  if (args.length === 0) return Promise.reject(new TypeError(`${LOG} redisCommand needs a command`))
  return oneShot<RespValue>(
    target,
    encodeRedisCommand(args),
    (received) => {
      const parsed = parseResp(received)
      if (!parsed) return undefined
      return parsed.value instanceof RedisReplyError ? { error: parsed.value } : { value: parsed.value }
    },
    `redis ${String(args[0])}`,
  )
}

/**
 * Sends one text-protocol line (data blocks included, e.g. `'set k 0 0 5\r\nhello'`) followed by
 * `quit`, and resolves everything memcached answered before closing the connection (raw, with CRLFs).
 */
export function memcachedCommand(target: number | CommandTarget, line: string): Promise<string> {
  const payload = `${line.endsWith('\r\n') ? line : `${line}\r\n`}quit\r\n`
  return oneShot<string>(
    target,
    Buffer.from(payload),
    (received, ended) => (ended ? { value: received.toString('utf8') } : undefined),
    `memcached ${line.split(/\s/)[0] ?? ''}`,
  )
}

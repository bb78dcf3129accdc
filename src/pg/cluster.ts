import {createHash, createHmac, pbkdf2Sync, randomBytes} from 'node:crypto'
import {type FSWatcher, watch} from 'node:fs'
import {appendFile, chmod, lstat, mkdir, open, readFile, readdir, readlink, rm, writeFile} from 'node:fs/promises'
import {release} from 'node:os'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {ExternalCommandError, ZenithError, tail} from '../errors.js'
import {splitKeyValue} from '../key-value.js'
import {type RunResult, run as runProgram} from '../process.js'
import {isAlive} from '../state/lock.js'
import {timed} from '../timing.js'
import type {PgBinaries} from './binaries.js'
import {newClient} from './client.js'
import {type OsUser, asUser, giveTo} from './os-user.js'

/** The major version a data directory was made by (its PG_VERSION); 0 when it has none. */
export async function readPgVersion(dataDir: string): Promise<number> {
  const text = await readFile(path.join(dataDir, 'PG_VERSION'), 'utf8').catch(() => '')
  return Number.parseInt(text.trim(), 10) || 0
}

/** One postgres data directory and how to run the server on it. */
export interface Cluster {
  dataDir: string
  port: number
  socketDir: string
  logFile: string
  osUser?: OsUser
  binaries: PgBinaries
  settings: Record<string, string>
}

export type ClusterStatus = 'running' | 'stopped' | 'crashed'

const ZENITH_CONF = 'zenith.conf'
const ZENITH_HBA = 'zenith_hba.conf'
/**
 * Access rules of every pg zenith runs: the unix socket (in a 0700 folder of the postgres OS
 * user) is trusted; TCP needs the password, and only loopback is listened on unless asked.
 */
const HBA_RULES = [
  '# Written by zenith before every start (override with --set hba_file=/path).',
  'local   all          all                  trust',
  'local   replication  all                  trust',
  'host    all          all  127.0.0.1/32    scram-sha-256',
  'host    all          all  ::1/128         scram-sha-256',
  'host    replication  all  127.0.0.1/32    scram-sha-256',
  'host    replication  all  ::1/128         scram-sha-256',
]
const INCLUDE_LINE = `include_if_exists = '${ZENITH_CONF}'\t# added by zenith: port, sockets and --set values`

export async function initCluster(cluster: Cluster, password: string): Promise<void> {
  await mkdir(path.dirname(cluster.logFile), {recursive: true, mode: 0o711})
  const pwfile = path.join(path.dirname(cluster.logFile), `.pw.${process.pid}.${randomBytes(4).toString('hex')}`)
  await writeFile(pwfile, password + '\n', {mode: 0o600})
  await giveTo(cluster.osUser, pwfile)
  try {
    await run(cluster, 'initdb', [
      '-D', cluster.dataDir, '-U', 'postgres', '--pwfile', pwfile, '-E', 'UTF8', '--locale', 'C',
      '--auth-local', 'trust', '--auth-host', 'scram-sha-256',
    ])
  } finally {
    await rm(pwfile, {force: true})
  }
}

/**
 * zenith's own settings live in `zenith.conf`, included at the end of postgresql.conf, so a
 * snapshot imported from another server keeps its configuration and still gets our port and
 * sockets. Values are quoted for postgresql.conf; keys are checked by `validateSetting`.
 */
export async function writeZenithConf(cluster: Cluster): Promise<void> {
  const lines = [
    '# Written by zenith before every start; edit with `zenith pg create --set` (changes here are overwritten).',
    `port = ${cluster.port}`,
    `listen_addresses = '${quote(cluster.settings.listen_addresses ?? 'localhost')}'`,
    `unix_socket_directories = '${quote(cluster.socketDir)}'`,
    `hba_file = '${quote(path.join(cluster.dataDir, ZENITH_HBA))}'`,
    ...defaultSettings(cluster),
    ...Object.entries(cluster.settings).filter(([key]) => key !== 'listen_addresses').map(([key, value]) => `${key} = '${quote(value)}'`),
  ]
  const file = path.join(cluster.dataDir, ZENITH_CONF)
  await writeFile(file, lines.join('\n') + '\n', {mode: 0o600})
  await giveTo(cluster.osUser, file)
  const hba = path.join(cluster.dataDir, ZENITH_HBA)
  await writeFile(hba, HBA_RULES.join('\n') + '\n', {mode: 0o600})
  await giveTo(cluster.osUser, hba)
  const mainConf = path.join(cluster.dataDir, 'postgresql.conf')
  const text = await readFile(mainConf, 'utf8').catch(() => '')
  if (!text.includes(INCLUDE_LINE)) {
    if (text === '') {
      await writeFile(mainConf, INCLUDE_LINE + '\n', {mode: 0o600})
      await giveTo(cluster.osUser, mainConf)
    } else {
      await appendFile(mainConf, `\n${INCLUDE_LINE}\n`)
    }
  }
}

/**
 * Settings zenith picks unless the user set them. A clone or checkout starts with crash recovery,
 * and before it replays WAL postgres fsyncs every file of the data directory one by one
 * (`recovery_init_sync_method = fsync`): 90 ms on XFS and 230 ms on zfs-fuse for a 1.4 GB clone,
 * more than the rest of the start. `syncfs` makes that one syscall per filesystem; Linux reports
 * write-back errors through syncfs only since 5.8, so older kernels keep the default.
 */
function defaultSettings(cluster: Cluster): string[] {
  const lines: string[] = []
  if (cluster.binaries.major >= 14 && syncfsReportsErrors() && !('recovery_init_sync_method' in cluster.settings)) {
    lines.push(`recovery_init_sync_method = 'syncfs'`)
  }

  return lines
}

function syncfsReportsErrors(): boolean {
  if (process.platform !== 'linux') return false
  const [major, minor] = release().split('.').map(part => Number.parseInt(part, 10))
  return major > 5 || (major === 5 && minor >= 8)
}

export function validateSetting(pair: string): [string, string] {
  const [rawKey, value] = splitKeyValue(pair) ?? ['', '']
  const key = rawKey.trim()
  if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(key)) {
    throw new ZenithError('INVALID_ARGUMENT', `"${pair}" is not a setting.`, 'Write --set key=value, for example --set shared_buffers=256MB.')
  }

  if (/[\n\r\0]/.test(value)) throw new ZenithError('INVALID_ARGUMENT', `The value of ${key} contains a line break.`, 'Settings are single-line values.')
  if (key === 'port' || key === 'unix_socket_directories') {
    throw new ZenithError('INVALID_ARGUMENT', `${key} is managed by zenith.`, key === 'port' ? 'Use --port N.' : 'zenith keeps sockets in a short private folder.')
  }

  return [key, value]
}

export async function startCluster(cluster: Cluster, timeoutSeconds = 600): Promise<void> {
  await timed('prepare the start (sockets, log, leftovers, conf)', async () => {
    await prepareSocketDir(cluster)
    await prepareLogFile(cluster)
    const state = await clusterStatus(cluster.dataDir)
    // Backends of a killed postmaster can only be left where its postmaster.pid is: a cleanly
    // stopped or new data directory spares the scan of every process.
    if (state.status !== 'stopped') await waitForLeftoverProcesses(cluster.dataDir)
    if (state.status === 'crashed') await removeStaleLocks(cluster, state.pid)
    await writeZenithConf(cluster)
  })
  const args = ['start', '-D', cluster.dataDir, '-l', cluster.logFile, '-w', '-t', String(timeoutSeconds), '-s']
  const launchedAt = Date.now() / 1000
  const result = await timed('postgres start (pg_ctl start until ready)', () => pgCtlUntil(cluster, args, (pidFile) => isReadyPidFile(pidFile, launchedAt)))
  if (result === 'seen') return
  if (result.exitCode !== 0) {
    const log = await readFile(cluster.logFile, 'utf8').catch(() => '')
    throw new ZenithError('PG_START_FAILED', `postgres did not start on ${cluster.dataDir}:\n${tail(log || result.stderr, 12)}`,
      `See the whole log with \`zenith pg logs\` (${cluster.logFile}).`)
  }
}

/**
 * Sets the `postgres` role's password over the trusted unix socket (data imported from
 * elsewhere). The server gets a SCRAM verifier computed here, never the password, and the
 * session turns statement logging off first: a pg made with `--set log_statement=all` must not
 * write its secret to the log. A server still starting up (a start that a killed command left
 * running) is waited for up to `waitSeconds`.
 */
export async function setSuperuserPassword(cluster: Cluster, password: string, waitSeconds = 0): Promise<void> {
  const deadline = Date.now() + waitSeconds * 1000
  for (;;) {
    const client = await newClient({host: cluster.socketDir, port: cluster.port, user: 'postgres', database: 'template1'})
    try {
      await client.connect()
      await client.query("set log_statement = 'none'; set log_min_duration_statement = -1; set log_min_error_statement = 'panic'")
      await client.query(`alter role postgres with login password '${scramVerifier(password)}'`)
      return
    } catch (error) {
      const code = (error as {code?: string}).code
      const notYet = code === '57P03' || code === 'ECONNREFUSED' || code === 'ENOENT'
      if (notYet && Date.now() < deadline) {
        await sleep(100)
        continue
      }

      throw new ZenithError('PG_START_FAILED', `postgres started on ${cluster.dataDir}, but zenith could not set the password of the role "postgres": ${(error as Error).message}`,
        'The data has no usable "postgres" superuser role; connect with `zenith pg psql` as another role and create it.')
    } finally {
      await client.end().catch(() => undefined)
    }
  }
}

/**
 * The SCRAM-SHA-256 verifier postgres stores for a password (RFC 5802/7677, as libpq's
 * PQencryptPasswordConn makes it): `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
 * Written by hand because neither pg nor node ships it; 4096 iterations is postgres' default.
 */
export function scramVerifier(password: string, salt = randomBytes(16), iterations = 4096): string {
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256')
  const hmac = (key: Buffer, text: string) => createHmac('sha256', key).update(text).digest()
  const storedKey = createHash('sha256').update(hmac(salted, 'Client Key')).digest()
  const serverKey = hmac(salted, 'Server Key')
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`
}

export async function stopCluster(cluster: Pick<Cluster, 'dataDir' | 'osUser' | 'binaries'>, mode: 'smart' | 'fast' | 'immediate' = 'fast'): Promise<void> {
  const args = ['stop', '-D', cluster.dataDir, '-m', mode, '-w', '-t', '300', '-s']
  // pg_ctl's own test of "stopped", as soon as it holds: postmaster.pid is gone.
  const result = await timed('postgres stop (pg_ctl stop until gone)', () => pgCtlUntil(cluster, args, (pidFile) => pidFile === undefined))
  if (result === 'seen') return
  if (result.exitCode !== 0 && (await clusterStatus(cluster.dataDir)).status === 'running') {
    throw new ExternalCommandError('pg_ctl', args, tail(result.stderr), result.exitCode)
  }
}

/**
 * `pg_ctl ... -w`, finished as soon as `done` holds for the data directory's postmaster.pid
 * (its text, undefined when there is none). pg_ctl -w looks at that file every 100 ms, so a
 * postgres that is ready (or gone) in 30 ms costs 100 ms, and one ready in 110 ms costs 200 ms;
 * zenith watches the file (inotify) and ends pg_ctl, which is then only waiting for its next look,
 * when it sees the state. Any failure is still pg_ctl's to report: when pg_ctl exits first, its
 * result is returned. The postmaster is pg_ctl's child in its own session, so ending pg_ctl does
 * not touch it.
 */
async function pgCtlUntil(cluster: Pick<Cluster, 'dataDir' | 'osUser' | 'binaries'>, args: string[], done: (pidFile: string | undefined) => boolean): Promise<RunResult | 'seen'> {
  const pgCtl = new AbortController()
  const watching = new AbortController()
  const seen = watchPidFile(cluster.dataDir, done, watching.signal)
  const finished = runProgram(cluster.binaries.path('pg_ctl'), args, {cwd: '/', user: cluster.osUser, signal: pgCtl.signal})
  const first: RunResult | 'seen' = await Promise.race([finished, seen.then(async (value): Promise<RunResult | 'seen'> => (value ? 'seen' : finished))])
  watching.abort()
  if (first === 'seen') {
    pgCtl.abort()
    return 'seen'
  }

  return first
}

/** A postmaster.pid of a postmaster started since `launchedAt` (seconds) that accepts connections (or runs as a standby without them), as pg_ctl -w judges it. */
function isReadyPidFile(text: string | undefined, launchedAt: number): boolean {
  const lines = text?.split('\n') ?? []
  const pid = Number(lines[0])
  const status = lines[7]?.trim()
  // pg_ctl allows the same 2 s of clock granularity for the start time (line 3).
  return pid > 0 && Number(lines[2]) >= launchedAt - 2 && (status === 'ready' || status === 'standby') && isAlive(pid)
}

/**
 * Resolves true once `done(text of postmaster.pid)` holds, false when `signal` aborts first.
 * Changes are seen through inotify; a look every 100 ms covers filesystems without it (FUSE, NFS).
 */
function watchPidFile(dataDir: string, done: (pidFile: string | undefined) => boolean, signal: AbortSignal): Promise<boolean> {
  const file = path.join(dataDir, 'postmaster.pid')
  return new Promise((resolve) => {
    let watcher: FSWatcher | undefined
    let looking = false
    let lookAgain = false
    const finish = (value: boolean) => {
      watcher?.close()
      clearInterval(timer)
      signal.removeEventListener('abort', onAbort)
      resolve(value)
    }

    const onAbort = () => finish(false)
    const look = async () => {
      if (looking) {
        lookAgain = true
        return
      }

      looking = true
      do {
        lookAgain = false
        const text = await readFile(file, "utf8").catch(() => undefined)
        if (signal.aborted) return
        if (done(text)) {
          finish(true)
          return
        }
      } while (lookAgain)
      looking = false
    }

    const timer = setInterval(look, 100)
    signal.addEventListener('abort', onAbort)
    try {
      watcher = watch(dataDir, (_event, name) => {
        if (name === 'postmaster.pid') void look()
      })
      // A watch that fails later (the folder removed) leaves the interval to decide.
      watcher.on('error', () => watcher?.close())
    } catch {
      // No inotify here (or too many watches): the interval looks instead.
    }

    void look()
  })
}

/**
 * postgres removes a lock file whose pid is gone, but not one whose pid is an unreaped zombie (a
 * killed postmaster in a container whose PID 1 does not reap): it would refuse to start. Both of
 * its lock files go, the data directory's and the socket's, the latter only while it still names
 * that dead postmaster (another server may have taken the port since).
 */
async function removeStaleLocks(cluster: Cluster, deadPid: number | undefined): Promise<void> {
  await rm(path.join(cluster.dataDir, 'postmaster.pid'), {force: true})
  const socketLock = path.join(cluster.socketDir, `.s.PGSQL.${cluster.port}.lock`)
  const holder = Number((await readFile(socketLock, 'utf8').catch(() => '')).split('\n')[0])
  if (deadPid !== undefined && holder === deadPid) await rm(socketLock, {force: true})
}

/** Read from the real process, not from the store: postmaster.pid and whether its pid lives. */
export async function clusterStatus(dataDir: string): Promise<{status: ClusterStatus; pid?: number}> {
  let text: string
  try {
    text = await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')
  } catch {
    return {status: 'stopped'}
  }

  const pid = Number(text.split('\n')[0])
  if (pid > 0 && isAlive(pid) && await isPostgresProcess(pid)) return {status: 'running', pid}
  return {status: 'crashed', pid: pid || undefined}
}

async function isPostgresProcess(pid: number): Promise<boolean> {
  if (process.platform !== 'linux') return true
  const comm = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')
  // A killed postmaster that its parent has not reaped yet is a zombie: it still has a pid and a
  // name, but it is not running (containers whose PID 1 does not reap keep such zombies).
  const state = /^State:\s+(\S)/m.exec(await readFile(`/proc/${pid}/status`, 'utf8').catch(() => ''))?.[1]
  return /postgres|postmaster/.test(comm) && state !== 'Z' && state !== 'X'
}

/**
 * After a postmaster is killed, its backends notice and exit within moments; until they do the
 * shared memory is still attached and a new postmaster refuses to start.
 */
async function waitForLeftoverProcesses(dataDir: string): Promise<void> {
  if (process.platform !== 'linux') return
  for (let i = 0; i < 100; i++) {
    if (!(await anyProcessIn(dataDir))) return
    await sleep(100)
  }
}

async function anyProcessIn(dataDir: string): Promise<boolean> {
  const entries = await readdir('/proc').catch(() => [] as string[])
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue
    const cwd = await readlink(`/proc/${entry}/cwd`).catch(() => '')
    if (cwd === dataDir) return true
  }

  return false
}

async function prepareSocketDir(cluster: Cluster): Promise<void> {
  await mkdir(cluster.socketDir, {recursive: true, mode: 0o700})
  const info = await lstat(cluster.socketDir)
  const expectedUid = cluster.osUser?.uid ?? process.getuid?.()
  if (info.isSymbolicLink() || !info.isDirectory()) {
    throw new ZenithError('PERMISSION_DENIED', `${cluster.socketDir} is not a directory zenith made.`, `Remove it (rm -rf ${cluster.socketDir}) and retry.`)
  }

  if (cluster.osUser) await giveTo(cluster.osUser, cluster.socketDir)
  else if (expectedUid !== undefined && info.uid !== expectedUid) {
    throw new ZenithError('PERMISSION_DENIED', `${cluster.socketDir} belongs to another user.`, `Remove it (rm -rf ${cluster.socketDir}) and retry.`)
  }

  await chmod(cluster.socketDir, 0o700)
}

async function prepareLogFile(cluster: Cluster): Promise<void> {
  await mkdir(path.dirname(cluster.logFile), {recursive: true, mode: 0o711})
  const handle = await open(cluster.logFile, 'a', 0o640)
  await handle.close()
  await giveTo(cluster.osUser, cluster.logFile)
}

async function run(cluster: Cluster, tool: 'initdb', args: string[]): Promise<void> {
  const [command, fullArgs] = asUser(cluster.osUser, cluster.binaries.path(tool), args)
  const result = await runProgram(command, fullArgs, {cwd: '/'})
  if (result.exitCode !== 0) throw new ExternalCommandError(tool, args, tail(result.stderr), result.exitCode)
}

function quote(value: string): string {
  return value.replaceAll('\\', '\\\\').replaceAll("'", "''")
}

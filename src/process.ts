import {spawn} from 'node:child_process'
import {existsSync} from 'node:fs'
import {readFile, readdir} from 'node:fs/promises'
import {constants} from 'node:os'
import path from 'node:path'
import {performance} from 'node:perf_hooks'
import {setTimeout as sleep} from 'node:timers/promises'

import {ExternalCommandError, ZenithError, tail} from './errors.js'
import {reportStep, timingEnabled} from './timing.js'

export interface RunResult {
  exitCode: number
  stdout: string
  stderr: string
}

export interface RunOptions {
  cwd?: string
  /** Added to (not replacing) the environment. */
  env?: Record<string, string | undefined>
  /** `inherit` hands the terminal to the program (psql). */
  stdio?: 'pipe' | 'inherit'
  /** Runs it as that OS user (inside the same setpriv that ties it to zenith). */
  user?: RunAs
  /** Kills it (SIGKILL) when aborted; the result is then exit code 127 with the abort's message. */
  signal?: AbortSignal
  /** Sees stderr as it comes (progress lines), besides collecting it. */
  onStderr?: (text: string) => void
}

/**
 * Runs a program with an argument array (never through a shell) and collects its output; a
 * non-zero exit is a result, not an exception (callers turn it into a typed error). The core
 * commands use this instead of execa, whose import alone costs ~80 ms of every command's start.
 * A program that cannot be started gives exit code 127, as a shell would. Every program dies
 * with zenith (see tiedToZenith).
 */
export function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const [program, fullArgs] = tiedToZenith(command, args, options.user)
  const started = timingEnabled() ? performance.now() : 0
  return new Promise<RunResult>((resolve) => {
    const child = spawn(program, fullArgs, {
      cwd: options.cwd,
      env: options.env ? {...process.env, ...options.env} : process.env,
      stdio: options.stdio === 'inherit' ? 'inherit' : ['ignore', 'pipe', 'pipe'],
      signal: options.signal,
      killSignal: 'SIGKILL',
    })
    const stdout: Buffer[] = []
    const stderr: Buffer[] = []
    child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk))
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr.push(chunk)
      options.onStderr?.(chunk.toString('utf8'))
    })
    let settled = false
    child.once('error', (error) => {
      if (settled) return
      settled = true
      resolve({exitCode: 127, stdout: '', stderr: error.message})
    })
    child.once('close', (code, signal) => {
      if (settled) return
      settled = true
      const exitCode = code ?? 128 + (signal ? constants.signals[signal] ?? 0 : 0)
      resolve({exitCode, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8')})
    })
  }).finally(() => {
    if (started) reportStep(`run ${path.basename(command)} ${args.slice(0, 3).join(' ')}`, performance.now() - started)
  })
}

/** `run`, with a failure turned into an ExternalCommandError carrying the tail of stderr. */
export async function runChecked(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const result = await run(command, args, options)
  if (result.exitCode !== 0) throw new ExternalCommandError(command, args, tail(result.stderr), result.exitCode)
  return result
}

/** An OS user to run a program as (structurally pg/os-user's OsUser; process.ts sits below pg/). */
export interface RunAs {
  name: string
  uid: number
  gid: number
}

let setprivPath: string | null | undefined

function findSetpriv(): string | undefined {
  if (setprivPath === undefined) {
    setprivPath = process.platform === 'linux' ? ['/usr/bin/setpriv', '/bin/setpriv'].find((file) => existsSync(file)) ?? null : null
  }

  return setprivPath ?? undefined
}

/**
 * The command line that runs `command` so that it dies with zenith, also by kill -9: util-linux
 * `setpriv --pdeathsig KILL` has the kernel SIGKILL it when zenith exits. A child that outlived a
 * killed zenith (pg_basebackup, cp) would go on writing into a scratch folder that the next
 * command's repair removes. `user` switches to that OS user inside the same setpriv: `runuser`
 * forks, and the death signal does not pass a fork. (postgres itself is forked by pg_ctl, so it
 * is not tied and outlives zenith as it must.) Where setpriv is missing, runuser and no tie.
 */
export function tiedToZenith(command: string, args: readonly string[], user?: RunAs): [string, string[]] {
  const setpriv = findSetpriv()
  if (!setpriv) return user ? ['runuser', ['-u', user.name, '--', command, ...args]] : [command, [...args]]
  const switchUser = user ? [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--init-groups'] : []
  return [setpriv, [...switchUser, '--pdeathsig', 'KILL', '--', command, ...args]]
}

/**
 * Kills (SIGKILL) every process that names `folder` or a path inside it on its command line and
 * waits until they are gone: what the repair does before it removes a killed command's scratch
 * folder, in case a child's death signal has not landed yet, or a child of that child (the WAL
 * streamer pg_basebackup forks) still writes. Linux only (/proc); elsewhere nothing to find.
 * Returns the pids it killed.
 */
export async function killWritersOf(folder: string, timeoutMs = 10_000): Promise<number[]> {
  const writers = await findWritersOf(folder)
  for (const pid of writers) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // It exited between the scan and the kill: nothing left to stop.
    }
  }

  const deadline = Date.now() + timeoutMs
  while (writers.length > 0 && (await findWritersOf(folder)).length > 0) {
    if (Date.now() > deadline) {
      throw new ZenithError('INCOMPLETE_OPERATION', `Processes still write into ${folder} after SIGKILL (pids ${writers.join(', ')}).`,
        'Wait a moment and run the command again; if they stay, they hang in the kernel (a dead NFS or disk): see `ps -o pid,stat,cmd -p PID`.')
    }

    await sleep(50)
  }

  return writers
}

async function findWritersOf(folder: string): Promise<number[]> {
  if (process.platform !== 'linux') return []
  const inside = folder.endsWith('/') ? folder : `${folder}/`
  const found: number[] = []
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    const pid = Number(entry)
    if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) continue
    // Read while the process may exit: a missing file means it is gone.
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
    if (!cmdline) continue
    if (!cmdline.split('\0').some((arg) => arg === folder || arg.startsWith(inside) || arg.includes(`=${inside}`))) continue
    // A zombie writes nothing; it waits for a parent (maybe a pid 1 that never reaps).
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
    if (state && state !== 'Z' && state !== 'X') found.push(pid)
  }

  return found
}

import {spawn} from 'node:child_process'
import {constants} from 'node:os'

import {ExternalCommandError, tail} from './errors.js'

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
}

/**
 * Runs a program with an argument array (never through a shell) and collects its output; a
 * non-zero exit is a result, not an exception (callers turn it into a typed error). The core
 * commands use this instead of execa, whose import alone costs ~80 ms of every command's start.
 * A program that cannot be started gives exit code 127, as a shell would.
 */
export function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ? {...process.env, ...options.env} : process.env,
      stdio: options.stdio === 'inherit' ? 'inherit' : ['ignore', 'pipe', 'pipe'],
    })
    const stdout: Buffer[] = []
    const stderr: Buffer[] = []
    child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk))
    child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk))
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
  })
}

/** `run`, with a failure turned into an ExternalCommandError carrying the tail of stderr. */
export async function runChecked(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const result = await run(command, args, options)
  if (result.exitCode !== 0) throw new ExternalCommandError(command, args, tail(result.stderr), result.exitCode)
  return result
}

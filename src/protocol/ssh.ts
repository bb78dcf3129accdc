import {type ChildProcessWithoutNullStreams, spawn} from 'node:child_process'

import {type ReportedError, ZenithError, reportedError, tail} from '../errors.js'
import type {SshTarget} from '../urls.js'

// zenith on another host, over the system's ssh client (its keys, agent, ~/.ssh/config and
// known_hosts): a push runs `zenith snapshot recv --stdio` there, a pull `zenith snapshot push
// SNAP --to -`; either way the snapshot goes through the connection as one stream (recv-stream.ts).

/**
 * The ssh command line that runs `zenith ARGS` on the target. $ZENITH_SSH_COMMAND replaces `ssh`
 * (split on spaces, e.g. `ssh -i ~/.ssh/deploy -o StrictHostKeyChecking=accept-new`), as
 * GIT_SSH_COMMAND does for git.
 */
export function sshInvocation(target: SshTarget, zenithArgs: string[], env: NodeJS.ProcessEnv = process.env): {command: string; args: string[]} {
  const [command, ...options] = (env.ZENITH_SSH_COMMAND?.trim() || 'ssh').split(/\s+/)
  const remote = [...(target.home ? ['env', `ZENITH_HOME=${target.home}`] : []), ...target.zenith, ...zenithArgs].map(shellQuote).join(' ')
  const destination = target.user ? `${target.user}@${target.host}` : target.host
  return {command, args: [...options, '-T', '-o', 'ServerAliveInterval=15', ...(target.port ? ['-p', String(target.port)] : []), destination, '--', remote]}
}

/** Quoted for the remote user's shell, which is what runs an ssh command line. */
export function shellQuote(word: string): string {
  return /^[\w./=:@%+-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`
}

/** zenith running on the other host over ssh, its stdin and stdout being the transfer's stream. */
export interface SshSession {
  child: ChildProcessWithoutNullStreams
  /** Why the session ended (ssh could not connect or log in, zenith is missing there, ...). */
  failure(): Promise<ZenithError>
  /** Ends the stream and waits for ssh to exit (killing it if it hangs). */
  close(): Promise<void>
}

export function startSsh(target: SshTarget, zenithArgs: string[]): SshSession {
  const {command, args} = sshInvocation(target, zenithArgs)
  const child = spawn(command, args, {stdio: ['pipe', 'pipe', 'pipe']})
  let stderr = ''
  const exit = new Promise<{code: number | null; spawnError?: NodeJS.ErrnoException}>((resolve) => {
    child.once('error', (error: NodeJS.ErrnoException) => resolve({code: null, spawnError: error}))
    child.once('close', (code) => resolve({code}))
  })
  child.stderr.on('data', (data: Buffer) => {
    stderr = (stderr + data.toString('utf8')).slice(-8192)
  })
  // A broken pipe shows as the session's end, explained by failure().
  child.stdin.on('error', () => undefined)
  return {
    child,
    async failure() {
      const {code, spawnError} = await exit
      return sshFailure(target.label, code, spawnError, tail(stderr, 6))
    },
    async close() {
      child.stdin.end()
      const timer = setTimeout(() => child.kill(), 10_000)
      await exit
      clearTimeout(timer)
    },
  }
}

/**
 * Runs `zenith ARGS --json` on the target and returns its parsed output; an error it reports
 * comes back with its own code, prefixed with the URL.
 */
export async function runRemoteJson<T>(target: SshTarget, zenithArgs: string[]): Promise<T> {
  const session = startSsh(target, [...zenithArgs, '--json'])
  session.child.stdin.end()
  const parts: Buffer[] = []
  session.child.stdout.on('data', (part: Buffer) => parts.push(part))
  const failure = await session.failure()
  const output = Buffer.concat(parts).toString('utf8')
  let parsed: unknown
  try {
    parsed = JSON.parse(output)
  } catch {
    throw failure
  }

  const reported = (parsed as {error?: ReportedError} | null)?.error
  if (reported?.code) throw reportedError(reported, target.label)
  return parsed as T
}

function sshFailure(label: string, code: number | null, spawnError: NodeJS.ErrnoException | undefined, said: string): ZenithError {
  if (spawnError) {
    return new ZenithError('SOURCE_UNREACHABLE', `Cannot run ${spawnError.path ?? 'ssh'}: ${spawnError.message}.`, 'Install an ssh client (Debian: openssh-client), or point ZENITH_SSH_COMMAND at one.')
  }

  if (code === 255 && /Permission denied|Too many authentication failures|Host key verification failed/i.test(said)) {
    return new ZenithError('AUTH_FAILED', `ssh could not log in to ${label}:\n${said}`, 'Check the user, your key (ssh-add, ~/.ssh/config, or ZENITH_SSH_COMMAND="ssh -i KEY") and the host key in ~/.ssh/known_hosts; `ssh HOST true` must work without a password prompt.')
  }

  if (code === 127 || /command not found|: not found|No such file or directory/i.test(said)) {
    return new ZenithError('SOURCE_UNREACHABLE', `zenith did not start on ${label}:\n${said}`, `Install zenith there, or name its command in the URL: ${label}?zenith=/path/to/zenith.`)
  }

  return new ZenithError('SOURCE_UNREACHABLE', `The connection to ${label} ended early (ssh exit code ${code})${said ? `:\n${said}` : '.'}`,
    'Check that `ssh HOST zenith --version` works there; then run the same command again: chunks already verified on the receiving side are not sent again.')
}

import {type ChildProcess, spawn} from 'node:child_process'
import {existsSync} from 'node:fs'
import {chmod, mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'

import {execa} from 'execa'

export const SSHD = '/usr/sbin/sshd'

/** Why an sshd cannot be run here (the tests that need one are skipped with it), or undefined. */
export function sshdUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (sshd and its privilege separation folder)'
  if (!existsSync(SSHD)) return `${SSHD} is missing (Debian: openssh-server; .ci/run installs it)`
  return undefined
}

/**
 * A real OpenSSH server on 127.0.0.1 with its own host key, config and one authorized client
 * key, for pushes to ssh:// URLs. `env()` gives ZENITH_SSH_COMMAND for the client side.
 */
export class SshServer {
  private constructor(readonly dir: string, readonly port: number, readonly clientKey: string, private readonly child: ChildProcess) {}

  static async start(): Promise<SshServer> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'zenith-sshd-'))
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'host_key')])
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'client_key')])
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'other_key')])
    await writeFile(path.join(dir, 'authorized_keys'), await readFile(path.join(dir, 'client_key.pub')))
    await chmod(path.join(dir, 'authorized_keys'), 0o600)
    // sshd refuses to start without its privilege separation folder.
    await mkdir('/run/sshd', {recursive: true, mode: 0o755})
    const port = await freePort()
    await writeFile(path.join(dir, 'sshd_config'), [
      `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${path.join(dir, 'host_key')}`, `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
      'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'UsePAM no', 'PermitRootLogin prohibit-password', 'StrictModes no',
      `PidFile ${path.join(dir, 'sshd.pid')}`, 'LogLevel ERROR', '',
    ].join('\n'))
    const child = spawn(SSHD, ['-D', '-e', '-f', path.join(dir, 'sshd_config')], {stdio: ['ignore', 'ignore', 'pipe']})
    let said = ''
    child.stderr?.on('data', (data: Buffer) => {
      said += data.toString()
    })
    for (let i = 0; i < 100 && !(await listening(port)); i++) {
      if (child.exitCode !== null) throw new Error(`sshd exited with ${child.exitCode}: ${said}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }

    return new SshServer(dir, port, path.join(dir, 'client_key'), child)
  }

  /** ZENITH_SSH_COMMAND that logs in with `key` (default: the authorized one), trusting this server's key. */
  env(key = this.clientKey): Record<string, string> {
    return {ZENITH_SSH_COMMAND: `ssh -i ${key} -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes`}
  }

  get otherKey(): string {
    return path.join(this.dir, 'other_key')
  }

  async stop(): Promise<void> {
    this.child.kill()
    await rm(this.dir, {recursive: true, force: true})
  }
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.end()
      resolve(true)
    })
    socket.on('error', () => resolve(false))
  })
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.listen(0, '127.0.0.1', () => {
      const {port} = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
    server.on('error', reject)
  })
}

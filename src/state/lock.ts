import {createHash} from 'node:crypto'
import {open, readFile, rm} from 'node:fs/promises'
import net from 'node:net'
import {setTimeout as sleep} from 'node:timers/promises'

import {ZenithError} from '../errors.js'

export interface Lock {
  release(): Promise<void>
}

/**
 * A cross-process mutex for one ZENITH_HOME. On Linux it is an abstract unix socket: binding is
 * exclusive and the kernel frees it when the holder dies, so a killed command never leaves a
 * stale lock behind. Elsewhere an exclusive lock file holding the owner's pid.
 */
export async function acquireLock(lockPath: string, timeoutMs = 60_000): Promise<Lock> {
  const deadline = Date.now() + timeoutMs
  const attempt = process.platform === 'linux' ? tryAbstractSocket : tryLockFile
  for (let wait = 2; ; wait = Math.min(wait * 2, 50)) {
    const lock = await attempt(lockPath)
    if (lock) return lock
    if (Date.now() > deadline) {
      throw new ZenithError('STORE_LOCK_TIMEOUT', `Timed out after ${timeoutMs / 1000}s waiting for the zenith store lock (${lockPath}).`,
        'Another zenith command is holding it; wait for it to finish, or find it with `ps aux | grep zenith`.')
    }
    await sleep(wait + Math.random() * wait)
  }
}

function tryAbstractSocket(lockPath: string): Promise<Lock | undefined> {
  const name = '\0zenith-lock-' + createHash('sha256').update(lockPath).digest('hex').slice(0, 32)
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE') resolve(undefined)
      else reject(error)
    })
    server.listen({path: name, exclusive: true}, () => {
      resolve({release: () => new Promise<void>((done) => server.close(() => done()))})
    })
  })
}

async function tryLockFile(lockPath: string): Promise<Lock | undefined> {
  try {
    const handle = await open(lockPath, 'wx', 0o600)
    await handle.writeFile(String(process.pid))
    await handle.close()
    return {release: () => rm(lockPath, {force: true})}
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    const owner = Number(await readFile(lockPath, 'utf8').catch(() => ''))
    // A lock whose owner is gone is stale; an unreadable or half-written one may still be in use.
    if (owner > 0 && !isAlive(owner)) await rm(lockPath, {force: true})
    return undefined
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Whether work named after `pid` (a `.p<pid>` suffix) was left by a process that is gone:
 * a pid that parsed, is not this process and no longer runs. What every sweep of leftovers asks.
 */
export function leftByDeadProcess(pid: number | undefined): boolean {
  return Boolean(pid) && pid !== process.pid && !isAlive(pid!)
}

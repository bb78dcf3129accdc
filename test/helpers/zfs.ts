import {randomBytes} from 'node:crypto'
import {existsSync, readFileSync} from 'node:fs'
import {chmod, mkdir, mkdtemp, readFile, readdir, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {execa} from 'execa'

import {isRoot} from './zenith.js'

/**
 * A ZFS pool on a file, for tests that need real ZFS. This machine and CI have no ZFS kernel
 * module, but Debian's zfs-fuse runs (FUSE): when no ZFS answers, the first test process to need
 * one starts a zfs-fuse daemon, and the last one to finish stops that daemon, by its pid, and
 * only that one (a ZFS that was already running is left alone). Test files that run at the same
 * time share the daemon, each with its own pool.
 */
export interface ZfsPool {
  name: string
  /** Where the pool's root dataset is mounted. */
  mountpoint: string
  /** Destroys the pool and its file (and stops a daemon the tests started, once no test uses it). */
  destroy(): Promise<void>
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin']).some((dir) => existsSync(path.join(dir, command)))
}

/** The tools are here and we may use them: root, zpool and zfs, and a ZFS to talk to (zfs-fuse or the kernel module). */
export const canUseZfs = isRoot && onPath('zpool') && onPath('zfs') && (onPath('zfs-fuse') || existsSync('/dev/zfs'))

/** Shared by the test processes of one machine: who uses the daemon, and which daemon the tests started. */
const STATE = path.join(os.tmpdir(), 'zenith-test-zfs-fuse')
const LOCK = `${STATE}.lock`

async function zfsAnswers(): Promise<boolean> {
  return (await execa('zpool', ['list', '-H'], {reject: false})).exitCode === 0
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    // ESRCH: no such process.
    return false
  }

  // A daemon that exited but was not reaped (a container's pid 1 may never reap) is gone too.
  let stat = ''
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    // Exited between the two looks.
    return false
  }

  return !/^\d+ \(.*\) [ZX] /.test(stat)
}

async function withLock<T>(work: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      await mkdir(LOCK)
      await writeFile(path.join(LOCK, 'owner'), String(process.pid))
      break
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
      const owner = Number(await readFile(path.join(LOCK, 'owner'), 'utf8').catch(() => '0'))
      // A lock whose owner died (or that has no owner after a few tries) is stale.
      if ((owner && !alive(owner)) || (!owner && attempt > 20)) await rm(LOCK, {recursive: true, force: true})
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }

  try {
    return await work()
  } finally {
    await rm(LOCK, {recursive: true, force: true})
  }
}

/** Registers this process as a user of ZFS, starting zfs-fuse when no ZFS answers. */
async function useDaemon(): Promise<void> {
  await withLock(async () => {
    await mkdir(path.join(STATE, 'users'), {recursive: true})
    await writeFile(path.join(STATE, 'users', String(process.pid)), '')
    if (await zfsAnswers()) return
    // The daemon refuses to start when its pid file exists: a fresh name each time.
    const pidFile = path.join(STATE, `daemon.${process.pid}.${randomBytes(4).toString('hex')}.pid`)
    await execa('zfs-fuse', ['--pidfile', pidFile])
    for (let i = 0; i < 100 && !(await zfsAnswers()); i++) await new Promise((resolve) => setTimeout(resolve, 100))
    const pid = Number(await readFile(pidFile, 'utf8'))
    await writeFile(path.join(STATE, 'started'), String(pid))
    if (!(await zfsAnswers())) throw new Error(`zfs-fuse (pid ${pid}) started but zpool list does not answer`)
  })
}

/** Unregisters this process; the last user stops the daemon that the tests started (by its pid). */
async function releaseDaemon(): Promise<void> {
  await withLock(async () => {
    await rm(path.join(STATE, 'users', String(process.pid)), {force: true})
    const users = (await readdir(path.join(STATE, 'users')).catch(() => [] as string[])).map(Number).filter((pid) => pid !== process.pid && alive(pid))
    if (users.length > 0) return
    const started = Number(await readFile(path.join(STATE, 'started'), 'utf8').catch(() => '0'))
    if (started && alive(started)) {
      // Only a zfs-fuse: the pid may have been reused since.
      const command = await readFile(`/proc/${started}/cmdline`, 'utf8').catch(() => '')
      if (command.startsWith('zfs-fuse')) {
        process.kill(started, 'SIGTERM')
        for (let i = 0; i < 150 && alive(started); i++) await new Promise((resolve) => setTimeout(resolve, 100))
      }
    }

    await rm(STATE, {recursive: true, force: true})
  })
}

/** A pool of `sizeMb` on a file in a temporary folder, mounted there. Destroy it in afterAll, also when a test failed. */
export async function createPool(sizeMb = 2048): Promise<ZfsPool> {
  await useDaemon()
  const base = await mkdtemp(path.join(os.tmpdir(), 'zenith-zfs-'))
  // The postgres OS user must be able to reach data directories inside.
  await chmod(base, 0o755)
  // Pools of test processes that died before their teardown (the daemon imports them again
  // from its cache, FAULTED when their file is gone).
  const pools = String((await execa('zpool', ['list', '-H', '-o', 'name'])).stdout).split('\n')
  for (const stale of pools.filter((pool) => Number(/^zt(\d+)x[0-9a-f]+$/.exec(pool)?.[1]) > 0 && !alive(Number(/^zt(\d+)x/.exec(pool)![1])))) {
    await execa('zpool', ['destroy', '-f', stale], {reject: false})
  }

  const name = `zt${process.pid}x${randomBytes(2).toString('hex')}`
  const file = path.join(base, 'pool.img')
  const mountpoint = path.join(base, 'mnt')
  try {
    await execa('truncate', ['-s', `${sizeMb}M`, file])
    await execa('zpool', ['create', '-m', mountpoint, name, file])
    await chmod(mountpoint, 0o755)
  } catch (error) {
    await rm(base, {recursive: true, force: true})
    await releaseDaemon()
    throw error
  }

  return {
    name,
    mountpoint,
    async destroy() {
      let result = await execa('zpool', ['destroy', '-f', name], {reject: false})
      // A postgres that is still shutting down keeps a dataset busy for a moment.
      for (let i = 0; i < 40 && result.exitCode !== 0 && !/no such pool/.test(String(result.stderr)); i++) {
        await new Promise((resolve) => setTimeout(resolve, 250))
        result = await execa('zpool', ['destroy', '-f', name], {reject: false})
      }

      await rm(base, {recursive: true, force: true})
      await releaseDaemon()
      if (result.exitCode !== 0 && !/no such pool/.test(String(result.stderr))) throw new Error(`zpool destroy ${name} failed: ${result.stderr}`)
    },
  }
}

import {randomBytes} from 'node:crypto'
import {rm, stat, statfs, writeFile} from 'node:fs/promises'
import path from 'node:path'

import type {HealthNote} from './storage.js'

/**
 * What the health checks of folder-based storages share (`zenith doctor`): a folder that exists
 * and takes a write, and the room on its filesystem.
 */

/**
 * The folder of storage `name` exists and a file can be written into it (written and removed
 * again): undefined when so, else the failing note (its detail, like every health detail, does
 * not repeat the storage's location, which the report shows). A real write, not access(2): root passes
 * every access check, and a read-only mount or a full disk only shows on writing.
 */
export async function folderProblem(folder: string, name: string): Promise<HealthNote | undefined> {
  const info = await stat(folder).catch((error: NodeJS.ErrnoException) => error)
  if (info instanceof Error) {
    if (info.code === 'ENOENT') {
      return {status: 'fail', detail: 'its folder is missing',
        fix: `Mount or restore ${folder} (mkdir -p ${folder} if it should start empty), or forget the storage: zenith storage detach ${name}`}
    }

    return {status: 'fail', detail: `its folder cannot be read: ${info.message}`, fix: `Fix the owner and mode of ${folder} (zenith must be able to enter it)`}
  }

  if (!info.isDirectory()) return {status: 'fail', detail: 'it is not a folder', fix: `Move ${folder} aside and restore the storage's folder there`}
  const probe = path.join(folder, `.zenith-doctor.p${process.pid}.${randomBytes(3).toString('hex')}`)
  try {
    await writeFile(probe, 'zenith doctor')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    const why = code === 'EROFS' ? 'the file system is read-only' : code === 'ENOSPC' || code === 'EDQUOT' ? 'the disk is full' : (error as Error).message
    return {status: 'fail', detail: `its folder cannot be written: ${why}`,
      fix: code === 'EROFS' ? `Remount the file system of ${folder} read-write` : code === 'ENOSPC' || code === 'EDQUOT' ? `Free space there (zenith storage show ${name} lists what it holds)` : `Let this user write ${folder} (chown or chmod it), or run zenith as its owner`}
  } finally {
    await rm(probe, {force: true})
  }

  return undefined
}

/** Free and total bytes of the filesystem that holds `folder`. */
export async function filesystemSpace(folder: string): Promise<{freeBytes: number; totalBytes: number}> {
  const stats = await statfs(folder)
  return {freeBytes: stats.bavail * stats.bsize, totalBytes: stats.blocks * stats.bsize}
}

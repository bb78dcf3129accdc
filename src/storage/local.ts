import {randomBytes} from 'node:crypto'
import {constants} from 'node:fs'
import {copyFile, mkdir, readdir, rename, rm, statfs, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {ExternalCommandError, ZenithError, explainSystemError, tail} from '../errors.js'
import {killWritersOf, run, runChecked} from '../process.js'
import {isAlive} from '../state/lock.js'
import type {CopyMethod, StorageRecord, StorageType} from '../state/schema.js'
import type {LocalStorage} from './storage.js'

const BTRFS_MAGIC = 0x91_23_68_3E

/**
 * A storage on a local folder: `local` (reflink or plain copy, or btrfs subvolumes when the
 * folder happens to be on btrfs) and `btrfs` (the folder must be on btrfs). Layout:
 * `volumes/<name>` (data directories), `snapshots/<name>` (read-only images), `.scratch/` (work
 * in progress, named after the owning process so leftovers of a killed command can be reclaimed).
 */
export class LocalFolderStorage implements LocalStorage {
  readonly kind = 'local'
  readonly name: string
  readonly type: StorageType
  readonly copyMethod: CopyMethod
  private readonly root: string

  constructor(readonly record: StorageRecord) {
    if (!record.path || !record.copyMethod) throw new Error(`storage ${record.name} has no path or copy method`)
    this.name = record.name
    this.type = record.type
    this.root = record.path
    this.copyMethod = record.copyMethod
  }

  volumePath(volume: string): string {
    return path.join(this.root, 'volumes', volume)
  }

  snapshotPath(snapshot: string): string {
    return path.join(this.root, 'snapshots', snapshot)
  }

  async createVolume(volume: string): Promise<string> {
    const target = this.volumePath(volume)
    await this.ensureLayout()
    await this.build(target, async (scratch) => {
      if (this.copyMethod === 'btrfs') await btrfs(['subvolume', 'create', scratch])
      else await mkdir(scratch, {mode: 0o700})
    })
    return target
  }

  async snapshotVolume(volume: string, snapshot: string, prepare?: (dir: string) => Promise<void>): Promise<void> {
    await this.ensureLayout()
    const source = this.volumePath(volume)
    const target = this.snapshotPath(snapshot)
    await this.refuseExisting(target)
    if (this.copyMethod === 'btrfs') {
      // One atomic, crash-consistent image, made read-only after `prepare`; created in place
      // because a read-only subvolume cannot be moved to another folder.
      if (!prepare) {
        await btrfs(['subvolume', 'snapshot', '-r', source, target])
        await syncFilesystem(target)
        return
      }

      await btrfs(['subvolume', 'snapshot', source, target])
      try {
        await prepare(target)
        await btrfs(['property', 'set', '-ts', target, 'ro', 'true'])
        await syncFilesystem(target)
      } catch (error) {
        await this.removeTree(target).catch(() => undefined)
        throw error
      }

      return
    }

    await this.build(target, async (scratch) => {
      await copyTree(source, scratch, this.copyMethod === 'reflink' ? 'always' : 'never')
      await prepare?.(scratch)
      await syncFilesystem(scratch)
    })
  }

  async cloneSnapshot(snapshot: string, volume: string, mode: 'thin' | 'full'): Promise<void> {
    await this.ensureLayout()
    const source = this.snapshotPath(snapshot)
    await this.build(this.volumePath(volume), (scratch) => this.copyInto(source, scratch, mode))
  }

  async restoreVolume(snapshot: string, volume: string): Promise<void> {
    const target = this.volumePath(volume)
    const fresh = this.scratchPath(`${volume}.restore`)
    const old = this.scratchPath(`${volume}.old`)
    await this.copyInto(this.snapshotPath(snapshot), fresh, 'thin')
    await syncFilesystem(fresh)
    // Swap in two renames; a kill between them leaves the old data in .scratch and the volume
    // missing, which checkout's journal repairs by restoring again.
    await rename(target, old)
    await rename(fresh, target)
    await this.removeTree(old)
  }

  async createSnapshotFrom(snapshot: string, fill: (dir: string) => Promise<void>): Promise<void> {
    await this.ensureLayout()
    const target = this.snapshotPath(snapshot)
    await this.refuseExisting(target)
    if (this.copyMethod === 'btrfs') {
      const scratch = this.scratchPath(snapshot)
      await btrfs(['subvolume', 'create', scratch])
      try {
        await fill(scratch)
        await btrfs(['subvolume', 'snapshot', '-r', scratch, target])
        await syncFilesystem(target)
      } finally {
        await this.removeTree(scratch)
      }

      return
    }

    await this.build(target, async (scratch) => {
      await mkdir(scratch, {mode: 0o700})
      await fill(scratch)
      await syncFilesystem(scratch)
    })
  }

  async removeVolume(volume: string): Promise<void> {
    await this.removeTree(this.volumePath(volume))
  }

  async removeSnapshot(snapshot: string): Promise<void> {
    await this.removeTree(this.snapshotPath(snapshot))
  }

  async renameSnapshot(from: string, to: string): Promise<void> {
    await this.refuseExisting(this.snapshotPath(to))
    await rename(this.snapshotPath(from), this.snapshotPath(to))
  }

  async sizeOf(item: {volume?: string; snapshot?: string}): Promise<{bytes: number; exclusive: boolean}> {
    const target = item.volume ? this.volumePath(item.volume) : this.snapshotPath(item.snapshot!)
    if (this.copyMethod === 'btrfs') {
      const exclusive = await btrfsExclusiveBytes(target)
      if (exclusive !== undefined) return {bytes: exclusive, exclusive: true}
    }

    return {bytes: await diskUsage(target), exclusive: false}
  }

  async usage(): Promise<{usedBytes: number; freeBytes: number; totalBytes: number}> {
    await this.ensureLayout()
    const stats = await statfs(this.root)
    return {
      usedBytes: this.copyMethod === 'btrfs' ? await btrfsUsage(this.root) : await diskUsage(this.root),
      freeBytes: stats.bavail * stats.bsize,
      totalBytes: stats.blocks * stats.bsize,
    }
  }

  async reclaim(): Promise<string[]> {
    const scratchDir = path.join(this.root, '.scratch')
    const entries = await readdir(scratchDir).catch(() => [] as string[])
    const removed: string[] = []
    for (const entry of entries) {
      const owner = Number(/\.p(\d+)\.[0-9a-f]+$/.exec(entry)?.[1])
      if (!owner || owner === process.pid || isAlive(owner)) continue
      // A child of the dead owner (pg_basebackup, cp) may still be writing here: stop it first,
      // or the removal races its writes (ENOTEMPTY) and the space stays taken.
      const folder = path.join(scratchDir, entry)
      await killWritersOf(folder)
      await this.removeTree(folder)
      removed.push(entry)
    }

    return removed
  }

  async ensureLayout(): Promise<void> {
    // 0711: the OS user postgres runs as must reach its data directory, but not list others.
    for (const dir of [this.root, path.join(this.root, 'volumes'), path.join(this.root, 'snapshots'), path.join(this.root, '.scratch')]) {
      await mkdir(dir, {recursive: true, mode: 0o711})
    }
  }

  private scratchPath(label: string): string {
    return path.join(this.root, '.scratch', `${label}.p${process.pid}.${randomBytes(3).toString('hex')}`)
  }

  /** Builds `target` in a scratch folder and renames it into place: all or nothing. */
  private async build(target: string, make: (scratch: string) => Promise<void>): Promise<void> {
    await this.refuseExisting(target)
    const scratch = this.scratchPath(path.basename(target))
    try {
      await make(scratch)
      await rename(scratch, target)
    } catch (error) {
      await this.removeTree(scratch).catch(() => undefined)
      throw await explainCopyFailure(error, this.root)
    }
  }

  private async copyInto(source: string, target: string, mode: 'thin' | 'full'): Promise<void> {
    if (this.copyMethod === 'btrfs') {
      if (mode === 'thin') {
        await btrfs(['subvolume', 'snapshot', source, target])
        return
      }

      await btrfs(['subvolume', 'create', target])
      await copyTree(source, target, 'never', true)
      return
    }

    await copyTree(source, target, mode === 'thin' && this.copyMethod === 'reflink' ? 'always' : 'never')
  }

  private async refuseExisting(target: string): Promise<void> {
    const exists = await readdir(target).then(() => true, () => false)
    if (exists) throw new ZenithError('NAME_TAKEN', `${target} already exists in storage ${this.name}.`, 'Choose another name, or remove the leftover folder if no pg or snapshot uses it.')
  }

  private async removeTree(target: string): Promise<void> {
    if (this.copyMethod === 'btrfs' && await isSubvolume(target)) {
      await btrfs(['subvolume', 'delete', target])
      return
    }

    // Retries ride out a writer that was killed a moment ago (ENOTEMPTY, EBUSY).
    await rm(target, {recursive: true, force: true, maxRetries: 5, retryDelay: 100})
  }
}

/** What the filesystem under `folder` can do, probed once when a storage is attached. */
export async function detectCopyMethod(folder: string): Promise<CopyMethod> {
  await mkdir(folder, {recursive: true, mode: 0o711})
  const stats = await statfs(folder)
  if (stats.type === BTRFS_MAGIC && await hasBtrfsTool()) return 'btrfs'
  const probe = path.join(folder, `.reflink-probe.${process.pid}`)
  try {
    await writeFile(probe, 'zenith')
    await copyFile(probe, `${probe}.clone`, constants.COPYFILE_FICLONE_FORCE)
    return 'reflink'
  } catch {
    // ENOTSUP/EXDEV/EINVAL: this filesystem cannot share blocks between files.
    return 'copy'
  } finally {
    await rm(probe, {force: true})
    await rm(`${probe}.clone`, {force: true})
  }
}

export async function isOnBtrfs(folder: string): Promise<boolean> {
  const stats = await statfs(folder)
  return stats.type === BTRFS_MAGIC
}

async function hasBtrfsTool(): Promise<boolean> {
  const result = await run('btrfs', ['--version'])
  return result.exitCode === 0
}

async function isSubvolume(target: string): Promise<boolean> {
  const result = await run('btrfs', ['subvolume', 'show', target])
  return result.exitCode === 0
}

async function btrfs(args: string[]): Promise<void> {
  await runChecked('btrfs', args)
}

async function btrfsExclusiveBytes(target: string): Promise<number | undefined> {
  const result = await run('btrfs', ['qgroup', 'show', '--raw', '-f', target])
  if (result.exitCode !== 0) return undefined
  const line = result.stdout.trim().split('\n').at(-1) ?? ''
  const fields = line.trim().split(/\s+/)
  const exclusive = Number(fields[2])
  return Number.isFinite(exclusive) ? exclusive : undefined
}

/**
 * `cp -a` keeps owners, modes and times; `--reflink=always` shares blocks or fails. Files that
 * vanish during the copy of a running data directory (temporary files, stats) are not an error:
 * postgres recreates them, as pg_basebackup also assumes.
 */
export async function copyTree(source: string, target: string, reflink: 'always' | 'never' | 'auto', intoExisting = false): Promise<void> {
  const args = ['-a', `--reflink=${reflink}`, intoExisting ? `${source}/.` : source, target]
  const result = await run('cp', args)
  if (result.exitCode === 0) return
  const problems = result.stderr.split('\n').filter((line) => line.trim() !== '' && !/No such file or directory/.test(line))
  if (problems.length > 0 || !/No such file or directory/.test(result.stderr)) {
    throw new ExternalCommandError('cp', args, tail(result.stderr), result.exitCode)
  }
}

/**
 * A snapshot is recorded as ready (in the fsynced store) only after its data is on disk, so a
 * power loss cannot leave a "ready" snapshot with missing blocks. syncfs flushes the whole
 * filesystem: cheap for block-sharing copies, the real write time for plain copies.
 */
async function syncFilesystem(target: string): Promise<void> {
  await runChecked('sync', ['-f', target])
}

/** Blocks really used under a btrfs folder: shared extents counted once. */
async function btrfsUsage(target: string): Promise<number> {
  const result = await run('btrfs', ['filesystem', 'du', '-s', '--raw', target])
  const fields = result.stdout.trim().split('\n').at(-1)?.trim().split(/\s+/) ?? []
  const used = Number(fields[1]) + Number(fields[2])
  return Number.isFinite(used) ? used : diskUsage(target)
}

export async function diskUsage(target: string): Promise<number> {
  const result = await run('du', ['-sb', target])
  return Number(result.stdout.split(/\s/)[0]) || 0
}

async function explainCopyFailure(error: unknown, root: string): Promise<unknown> {
  if (explainSystemError(error)?.code === 'NOT_ENOUGH_DISK_SPACE') {
    const stats = await statfs(root).catch(() => undefined)
    const free = stats ? `${Math.round(stats.bavail * stats.bsize / 1024 / 1024)} MiB free` : 'no space left'
    return new ZenithError('NOT_ENOUGH_DISK_SPACE', `Not enough disk space in ${root} (${free}); nothing was kept.`,
      'Free space (destroy unused pgs and snapshots), or use a storage with copy-on-write (btrfs, XFS reflink) so copies share blocks.')
  }

  return error
}

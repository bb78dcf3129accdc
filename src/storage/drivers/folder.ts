import {randomBytes} from 'node:crypto'
import {mkdir, readdir, rename, rm, statfs} from 'node:fs/promises'
import path from 'node:path'

import {ZenithError, explainSystemError} from '../../errors.js'
import {killWritersOf} from '../../process.js'
import {leftByDeadProcess} from '../../state/lock.js'
import type {StorageRecord, StorageType} from '../../state/schema.js'
import type {AttachContext, StorageDraft, StorageDriver, StorageKind} from '../driver.js'
import {assertDataFilesystem} from '../filesystem.js'
import {diskUsage, diskUsages, syncFilesystem} from '../folders.js'
import {filesystemSpace, folderProblem} from '../health.js'
import type {HealthNote, SizedItem, StorageCapabilities, StorageHealth, VolumeStorage, WalArea} from '../storage.js'
import {FolderWalArea, walAreaPath} from '../wal.js'

/**
 * What the folder drivers (copy, reflink, btrfs) share: a storage in a local folder. Layout:
 * `volumes/<name>` (data directories), `snapshots/<name>` (read-only images), `wal/<area>/`
 * (WAL areas), `.scratch/` (work in progress, named after the owning process so leftovers of a
 * killed command can be reclaimed). A driver says how its medium makes, copies and removes a
 * folder; btrfs also how it snapshots one.
 */
export abstract class FolderStorage implements VolumeStorage {
  abstract readonly driver: string
  abstract readonly capabilities: StorageCapabilities
  readonly name: string
  readonly type: StorageType
  readonly location: string
  protected readonly root: string

  constructor(readonly record: StorageRecord) {
    if (!record.path) throw new Error(`storage ${record.name} has no path`)
    this.name = record.name
    this.type = record.type
    this.root = record.path
    this.location = record.path
  }

  /** An empty, writable folder at `target` (a subvolume on btrfs). */
  protected abstract makeFolder(target: string): Promise<void>
  /** Copies `source` to the new folder `target`: `thin` shares blocks where the medium can. */
  protected abstract copyInto(source: string, target: string, mode: 'thin' | 'full'): Promise<void>

  /**
   * What the folder's filesystem offers this driver now (checked by `zenith doctor` once the
   * folder takes a write): a btrfs storage whose filesystem was unmounted sits on the disk below.
   */
  protected abstract filesystemHealth(): Promise<HealthNote>

  /** Bytes that only `target` holds, where the medium can tell. */
  protected async exclusiveBytes(_target: string): Promise<number | undefined> {
    return undefined
  }

  protected async usedBytes(): Promise<number> {
    return diskUsage(this.root)
  }

  volumePath(volume: string): string {
    return path.join(this.root, 'volumes', volume)
  }

  snapshotPath(snapshot: string): string {
    return path.join(this.root, 'snapshots', snapshot)
  }

  walArea(area: string): WalArea {
    return new FolderWalArea(path.join(this.root, ...walAreaPath(area).split('/')))
  }

  async createVolume(volume: string): Promise<string> {
    const target = this.volumePath(volume)
    await this.ensureLayout()
    await this.build(target, (scratch) => this.makeFolder(scratch))
    return target
  }

  async snapshotVolume(volume: string, snapshot: string, prepare?: (dir: string) => Promise<void>): Promise<void> {
    await this.ensureLayout()
    const source = this.volumePath(volume)
    const target = this.snapshotPath(snapshot)
    await this.refuseExisting(target)
    await this.build(target, async (scratch) => {
      await this.copyInto(source, scratch, 'thin')
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

  async createSnapshotFrom(snapshot: string, fill: (dir: string) => Promise<void>, options: {durable?: boolean} = {}): Promise<void> {
    await this.ensureLayout()
    const target = this.snapshotPath(snapshot)
    await this.refuseExisting(target)
    await this.build(target, async (scratch) => {
      await mkdir(scratch, {mode: 0o700})
      await fill(scratch)
      if (!options.durable) await syncFilesystem(scratch)
    })
  }

  async scratchFolder(label: string): Promise<string> {
    await this.ensureLayout()
    const folder = this.scratchPath(label)
    await mkdir(folder, {mode: 0o700})
    return folder
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

  async sizeOf(item: SizedItem): Promise<{bytes: number; exclusive: boolean}> {
    return (await this.sizesOf([item]))[0]
  }

  async sizesOf(items: readonly SizedItem[]): Promise<{bytes: number; exclusive: boolean}[]> {
    const targets = items.map((item) => (item.volume ? this.volumePath(item.volume) : this.snapshotPath(item.snapshot!)))
    const exclusive = await Promise.all(targets.map((target) => this.exclusiveBytes(target)))
    const walk = targets.filter((_, i) => exclusive[i] === undefined && items[i].logicalBytes === undefined)
    const walked = new Map((await diskUsages(walk)).map((bytes, i) => [walk[i], bytes]))
    return targets.map((target, i) => {
      const bytes = exclusive[i]
      if (bytes !== undefined) return {bytes, exclusive: true}
      return {bytes: items[i].logicalBytes ?? walked.get(target) ?? 0, exclusive: false}
    })
  }

  async usage(): Promise<{usedBytes: number; freeBytes: number; totalBytes: number}> {
    await this.ensureLayout()
    const [usedBytes, space] = await Promise.all([this.usedBytes(), filesystemSpace(this.root)])
    return {usedBytes, ...space}
  }

  async checkHealth(): Promise<StorageHealth> {
    const problem = await folderProblem(this.root, this.name)
    if (problem) return {access: problem}
    const [access, space] = await Promise.all([this.filesystemHealth(), filesystemSpace(this.root)])
    return {access, space}
  }

  async reclaim(): Promise<string[]> {
    const scratchDir = path.join(this.root, '.scratch')
    const entries = await readdir(scratchDir).catch(() => [] as string[])
    const removed: string[] = []
    for (const entry of entries) {
      const owner = Number(/\.p(\d+)\.[0-9a-f]+$/.exec(entry)?.[1])
      if (!leftByDeadProcess(owner)) continue
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

  protected scratchPath(label: string): string {
    return path.join(this.root, '.scratch', `${label}.p${process.pid}.${randomBytes(3).toString('hex')}`)
  }

  /** Builds `target` in a scratch folder and renames it into place: all or nothing. */
  protected async build(target: string, make: (scratch: string) => Promise<void>): Promise<void> {
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

  protected async refuseExisting(target: string): Promise<void> {
    const exists = await readdir(target).then(() => true, () => false)
    if (exists) throw new ZenithError('NAME_TAKEN', `${target} already exists in storage ${this.name}.`, 'Choose another name, or remove the leftover folder if no pg or snapshot uses it.')
  }

  protected async removeTree(target: string): Promise<void> {
    // Retries ride out a writer that was killed a moment ago (ENOTEMPTY, EBUSY).
    await rm(target, {recursive: true, force: true, maxRetries: 5, retryDelay: 100})
  }
}

/** A driver for a local folder: it can tell whether a folder's filesystem supports it. */
export interface FolderDriver extends StorageDriver {
  /** Whether this driver can serve a storage in `folder` (which exists). */
  probe(folder: string): Promise<boolean>
  /** Set-up once the driver is chosen (btrfs: quota groups, so snapshot sizes are exact). */
  prepareFolder?(folder: string, options: Record<string, string>): Promise<void>
}

const FOLDER_OPTIONS = ['path', 'quota']

/** `-c path=/absolute/folder [-c quota=off]`, checked for any folder type. */
export function configureFolder(type: StorageType, name: string, options: Record<string, string>): StorageDraft {
  const folder = options.path
  if (!folder || !path.isAbsolute(folder)) {
    throw new ZenithError('INVALID_ARGUMENT', `A ${type} storage needs an absolute path.`, `Pass -c path=/absolute/folder, e.g. zenith storage attach -t ${type} -n ${name} -c path=/mnt/data`)
  }

  const unknown = Object.keys(options).filter((key) => !FOLDER_OPTIONS.includes(key))
  if (unknown.length > 0) throw new ZenithError('INVALID_ARGUMENT', `Unknown option${unknown.length > 1 ? 's' : ''} for a ${type} storage: ${unknown.join(', ')}.`, 'Known options: path, quota (btrfs: on|off).')
  return {name, type, path: folder, options, createdAt: new Date().toISOString()}
}

/**
 * Creates the folder, checks that postgres' OS user can reach it, and picks the first of
 * `candidates` (best first) that the filesystem supports; `unsupported` explains when none does.
 * `setUp: false` skips the driver's set-up (the default storage gets no btrfs quota groups).
 */
export async function attachFolder(draft: StorageDraft, context: AttachContext, candidates: FolderDriver[], unsupported?: () => ZenithError, setUp = true): Promise<StorageRecord> {
  const folder = draft.path!
  // Before anything is created there: mkdir under /proc never returns.
  await assertDataFilesystem(folder)
  await mkdir(folder, {recursive: true, mode: 0o711})
  await context.checkReachable(folder)
  for (const driver of candidates) {
    if (!(await driver.probe(folder))) continue
    if (setUp) await driver.prepareFolder?.(folder, draft.options)
    // copyMethod is what `storage list` shows (cow=...); the driver is what opens it.
    return {...draft, copyMethod: driver.name as StorageRecord['copyMethod'], driver: driver.name}
  }

  throw unsupported?.() ?? new ZenithError('STORAGE_UNSUPPORTED', `No storage driver can use ${folder}.`, 'Pass a folder on a local filesystem.')
}

/** `-t local`: a folder on whatever filesystem, using the best copy method it offers. */
export function folderKind(candidates: FolderDriver[]): StorageKind & {attachDefault(name: string, folder: string, context: AttachContext): Promise<StorageRecord>} {
  return {
    type: 'local',
    configure: (name, options) => configureFolder('local', name, options),
    attach: (draft, context) => attachFolder(draft, context, candidates),
    attachDefault: (name, folder, context) =>
      attachFolder({name, type: 'local', path: folder, options: {}, createdAt: new Date().toISOString()}, context, candidates, undefined, false),
  }
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

import {stat, statfs} from 'node:fs/promises'
import path from 'node:path'

import {ZenithError} from '../../errors.js'
import {run, runChecked} from '../../process.js'
import type {StorageRecord} from '../../state/schema.js'
import type {StorageKind} from '../driver.js'
import {assertDataFilesystem} from '../filesystem.js'
import {copyTree, diskUsage} from '../folders.js'
import type {HealthNote, StorageCapabilities} from '../storage.js'
import {type FolderDriver, FolderStorage, attachFolder, configureFolder} from './folder.js'

const BTRFS_MAGIC = 0x91_23_68_3E

const capabilities: StorageCapabilities = {volumes: true, atomicSnapshot: true, thinClone: true, exactSize: true, wal: true}

/**
 * A folder on btrfs: volumes are subvolumes, a snapshot is one atomic, crash-consistent
 * subvolume snapshot (no backup API needed), clones share blocks, and quota groups say what a
 * snapshot retains.
 */
export class BtrfsStorage extends FolderStorage {
  readonly driver = 'btrfs'
  readonly capabilities = capabilities

  override async snapshotVolume(volume: string, snapshot: string, prepare?: (dir: string) => Promise<void>): Promise<void> {
    await this.ensureLayout()
    const source = this.volumePath(volume)
    const target = this.snapshotPath(snapshot)
    await this.refuseExisting(target)
    // One atomic, crash-consistent image, made read-only after `prepare`; created in place
    // because a read-only subvolume cannot be moved to another folder. No sync afterwards: the
    // snapshot ioctl flushes the source's dirty data and commits a transaction before it returns,
    // and so does setting `ro` (which also covers `prepare`'s changes). A syncfs would flush the
    // whole filesystem instead, the running pg's writes and every other pg's included.
    if (!prepare) {
      await btrfs(['subvolume', 'snapshot', '-r', source, target])
      return
    }

    await btrfs(['subvolume', 'snapshot', source, target])
    try {
      await prepare(target)
      await btrfs(['property', 'set', '-ts', target, 'ro', 'true'])
    } catch (error) {
      await this.removeTree(target).catch(() => undefined)
      throw error
    }
  }

  override async createSnapshotFrom(snapshot: string, fill: (dir: string) => Promise<void>): Promise<void> {
    await this.ensureLayout()
    const target = this.snapshotPath(snapshot)
    await this.refuseExisting(target)
    const scratch = this.scratchPath(snapshot)
    await btrfs(['subvolume', 'create', scratch])
    try {
      await fill(scratch)
      // The read-only snapshot flushes what `fill` wrote and commits it (see snapshotVolume): no syncfs.
      await btrfs(['subvolume', 'snapshot', '-r', scratch, target])
    } finally {
      // A subvolume that this process made: deleted without asking `btrfs subvolume show` first.
      await btrfs(['subvolume', 'delete', scratch]).catch(() => this.removeTree(scratch))
    }
  }

  protected async makeFolder(target: string): Promise<void> {
    await btrfs(['subvolume', 'create', target])
  }

  protected async filesystemHealth(): Promise<HealthNote> {
    if (!(await isOnBtrfs(this.root))) {
      return {status: 'fail', detail: 'not on btrfs any more (is its filesystem unmounted?)', fix: `Mount the btrfs filesystem at ${this.root} again`}
    }

    if ((await run('btrfs', ['--version'])).exitCode !== 0) {
      return {status: 'fail', detail: 'on btrfs, but the btrfs command is missing', fix: 'Install btrfs-progs (apt-get install btrfs-progs)'}
    }

    const quota = (await run('btrfs', ['qgroup', 'show', '-f', this.root])).exitCode === 0
    if (quota) return {status: 'ok', detail: 'writable; btrfs subvolumes and snapshots, quota groups on (exact snapshot sizes)'}
    const detail = 'writable; btrfs subvolumes and snapshots, quota groups off (snapshot sizes are logical)'
    // Attached with -t btrfs and without -c quota=off: zenith enabled quotas then, and someone turned them off.
    if (this.type === 'btrfs' && this.record.options.quota !== 'off') return {status: 'warn', detail, fix: `btrfs quota enable ${this.root}`}
    return {status: 'ok', detail}
  }

  protected async copyInto(source: string, target: string, mode: 'thin' | 'full'): Promise<void> {
    if (mode === 'thin') {
      await btrfs(['subvolume', 'snapshot', source, target])
      return
    }

    await btrfs(['subvolume', 'create', target])
    await copyTree(source, target, 'never', true)
  }

  protected override async exclusiveBytes(target: string): Promise<number | undefined> {
    // Attached with quota=off: no quota groups to ask (a `btrfs qgroup show` that fails costs a process).
    if (this.record.options.quota === 'off') return undefined
    const result = await run('btrfs', ['qgroup', 'show', '--raw', '-f', target])
    if (result.exitCode !== 0) return undefined
    const line = result.stdout.trim().split('\n').at(-1) ?? ''
    const fields = line.trim().split(/\s+/)
    const exclusive = Number(fields[2])
    return Number.isFinite(exclusive) ? exclusive : undefined
  }

  /** Blocks really used under the folder: shared extents counted once. */
  protected override async usedBytes(): Promise<number> {
    const result = await run('btrfs', ['filesystem', 'du', '-s', '--raw', this.root])
    const fields = result.stdout.trim().split('\n').at(-1)?.trim().split(/\s+/) ?? []
    const used = Number(fields[1]) + Number(fields[2])
    return Number.isFinite(used) ? used : diskUsage(this.root)
  }

  protected override async removeTree(target: string): Promise<void> {
    if (await isSubvolume(target)) {
      await btrfs(['subvolume', 'delete', target])
      return
    }

    await super.removeTree(target)
  }
}

export const btrfsDriver: FolderDriver = {
  name: 'btrfs',
  capabilities,
  open: (record: StorageRecord) => new BtrfsStorage(record),
  async probe(folder) {
    return await isOnBtrfs(folder) && (await run('btrfs', ['--version'])).exitCode === 0
  },
  async prepareFolder(folder, options) {
    // Quota groups let `snapshot list` show what each snapshot retains; best effort.
    if (options.quota !== 'off') await run('btrfs', ['quota', 'enable', folder])
  },
}

/** `-t btrfs`: like `-t local`, but the folder must be on btrfs (and the btrfs tool installed). */
export const btrfsKind: StorageKind = {
  type: 'btrfs',
  configure: (name, options) => configureFolder('btrfs', name, options),
  async attach(draft, context) {
    const folder = draft.path!
    await assertDataFilesystem(folder)
    let existing = folder
    while (!(await stat(existing).then(() => true, () => false))) existing = path.dirname(existing)
    if (!(await isOnBtrfs(existing))) {
      throw new ZenithError('STORAGE_UNSUPPORTED', `${folder} is not on a btrfs filesystem.`, 'Pass a folder on btrfs, or attach it as -t local (reflink or plain copy).')
    }

    return attachFolder(draft, context, [btrfsDriver],
      () => new ZenithError('STORAGE_UNSUPPORTED', 'The btrfs command is missing.', 'Install btrfs-progs (apt-get install btrfs-progs).'))
  },
}

async function isOnBtrfs(folder: string): Promise<boolean> {
  const stats = await statfs(folder)
  return stats.type === BTRFS_MAGIC
}

async function isSubvolume(target: string): Promise<boolean> {
  const result = await run('btrfs', ['subvolume', 'show', target])
  return result.exitCode === 0
}

async function btrfs(args: string[]): Promise<void> {
  await runChecked('btrfs', args)
}

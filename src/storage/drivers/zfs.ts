import {randomBytes} from 'node:crypto'
import {chmod, mkdir, readdir, rm, rmdir, stat, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {ExternalCommandError, ZenithError, tail} from '../../errors.js'
import {type RunResult, killWritersOf, run} from '../../process.js'
import {leftByDeadProcess} from '../../state/lock.js'
import type {StorageRecord, StorageType} from '../../state/schema.js'
import type {AttachContext, StorageDraft, StorageDriver, StorageKind} from '../driver.js'
import {assertDataFilesystem} from '../filesystem.js'
import {copyTree} from '../folders.js'
import {folderProblem} from '../health.js'
import type {SizedItem, StorageCapabilities, StorageHealth, VolumeStorage, WalArea} from '../storage.js'
import {FolderWalArea, walAreaPath} from '../wal.js'

const capabilities: StorageCapabilities = {volumes: true, atomicSnapshot: true, thinClone: true, exactSize: true, wal: true}

/** The one ZFS snapshot of a snapshot's dataset: what clones are made from. */
const FROZEN = 'frozen'
/** Datasets that hold the storage's datasets; never mounted themselves. */
const CONTAINERS = ['volumes', 'snapshots'] as const
/** Folders of the storage's own dataset where datasets are mounted. */
const FOLDERS = ['volumes', 'snapshots', 'scratch'] as const
/** Work of a process, named after it so that leftovers of a killed one can be reclaimed. */
const OWNED = /\.p(\d+)\.[0-9a-f]+$/
/** zfs-fuse answers "dataset is busy" for a moment after an unmount: retried this often, 100 ms apart. */
const BUSY_RETRIES = 50
const DATASET = /^[A-Za-z][A-Za-z0-9_.:-]*(?:\/[A-Za-z0-9_.:-]+)+$/

interface Entry {
  name: string
  type: string
  /** The snapshot a clone was made from. */
  origin?: string
  /** A folder, or `none`; absent for a ZFS snapshot. */
  mountpoint?: string
  used: number
  referenced: number
}

/**
 * A dataset of a ZFS pool (OpenZFS or zfs-fuse), and datasets under it, each mounted where the
 * folder drivers keep the same thing:
 *
 * - a volume (data directory) is a dataset in `volumes/`, mounted at `<folder>/volumes/<name>`;
 * - a snapshot is a read-only dataset in `snapshots/`, mounted at `<folder>/snapshots/<name>`,
 *   with one ZFS snapshot `@frozen` that clones are made from. Snapshotting a pg is one atomic
 *   `zfs snapshot` of its volume (`@s.p<pid>.<hex>`: crash-consistent while postgres runs),
 *   cloned into a dataset so that it has a folder (zfs-fuse has no `.zfs/snapshot`) and outlives
 *   its volume.
 *
 * A dataset's state is its mountpoint: its place (live), a folder in `<folder>/scratch/` (work in
 * progress: reclaimed when the process named in the dataset's name is dead), or `none`
 * (retired: no longer zenith's, but kept while clones depend on its ZFS snapshots, e.g. a
 * snapshot destroyed with --force or a volume replaced by a checkout; destroyed as soon as
 * nothing depends on it). Datasets are never renamed: zfs-fuse unmounts every clone of a
 * dataset to rename it, which fails while postgres runs on one. Nothing outside the storage's
 * dataset is ever touched.
 */
export class ZfsStorage implements VolumeStorage {
  readonly driver = 'zfs'
  readonly capabilities = capabilities
  readonly name: string
  readonly type: StorageType
  readonly location: string
  private readonly root: string
  private readonly dataset: string

  constructor(readonly record: StorageRecord) {
    if (!record.path || !record.options.dataset) throw new Error(`zfs storage ${record.name} has no dataset or folder`)
    this.name = record.name
    this.type = record.type
    this.root = record.path
    this.dataset = record.options.dataset
    this.location = record.path
  }

  volumePath(volume: string): string {
    return path.join(this.root, 'volumes', component(volume))
  }

  snapshotPath(snapshot: string): string {
    return path.join(this.root, 'snapshots', component(snapshot))
  }

  walArea(area: string): WalArea {
    return new FolderWalArea(path.join(this.root, ...walAreaPath(area).split('/')))
  }

  async createVolume(volume: string): Promise<string> {
    const folder = this.volumePath(volume)
    await this.refuseExisting(await this.entries(), folder)
    await zfs(['create', '-o', `mountpoint=${folder}`, this.newDataset('volumes', volume)])
    return folder
  }

  async snapshotVolume(volume: string, snapshot: string, prepare?: (dir: string) => Promise<void>): Promise<void> {
    const entries = await this.entries()
    const folder = this.snapshotPath(snapshot)
    await this.refuseExisting(entries, folder)
    const image = `${this.live(entries, this.volumePath(volume), `volume ${volume}`).name}@s${owned()}`
    // The one atomic step: the whole data directory at one instant, crash-consistent.
    await zfs(['snapshot', image])
    const target = this.newDataset('snapshots', snapshot)
    try {
      // Cloned in place (as btrfs snapshots in place): a kill leaves a `creating` record whose
      // repair removes it.
      await zfs(['clone', '-o', `mountpoint=${folder}`, image, target])
      await prepare?.(folder)
      await this.freeze(target)
    } catch (error) {
      await this.destroy(target, true).catch(() => undefined)
      await this.destroy(image).catch(() => undefined)
      throw await this.explainFailure(error)
    }
  }

  async cloneSnapshot(snapshot: string, volume: string, mode: 'thin' | 'full'): Promise<void> {
    const entries = await this.entries()
    const folder = this.volumePath(volume)
    await this.refuseExisting(entries, folder)
    const source = this.live(entries, this.snapshotPath(snapshot), `snapshot ${snapshot}`)
    if (mode === 'thin') {
      // Constant time whatever the size: the clone shares every block until written.
      await zfs(['clone', '-o', `mountpoint=${folder}`, `${source.name}@${FROZEN}`, this.newDataset('volumes', volume)])
      return
    }

    // An independent dataset: a file copy, mounted in place when complete.
    await this.build('volumes', volume, folder, async (dir) => {
      await copyTree(this.snapshotPath(snapshot), dir, 'never', true)
    })
  }

  async restoreVolume(snapshot: string, volume: string): Promise<void> {
    const entries = await this.entries()
    const source = this.live(entries, this.snapshotPath(snapshot), `snapshot ${snapshot}`)
    const folder = this.volumePath(volume)
    const fresh = this.newDataset('volumes', volume)
    const scratch = this.scratchMountpoint(fresh)
    await zfs(['clone', '-o', `mountpoint=${scratch}`, `${source.name}@${FROZEN}`, fresh])
    try {
      // The old volume is retired (the HEAD{n} snapshot just taken of it is a clone of it, so
      // ZFS keeps it); a kill before the new one is in place leaves the volume missing, and
      // checkout's journal restores again.
      const old = entries.find((entry) => entry.mountpoint === folder)
      if (old) await this.retire(old.name)
      await this.place(fresh, scratch, folder)
    } catch (error) {
      await this.destroy(fresh, true).catch(() => undefined)
      throw error
    }

    await this.collectGarbage()
  }

  async createSnapshotFrom(snapshot: string, fill: (dir: string) => Promise<void>): Promise<void> {
    const folder = this.snapshotPath(snapshot)
    await this.refuseExisting(await this.entries(), folder)
    await this.build('snapshots', snapshot, folder, async (dir, dataset) => {
      await chmod(dir, 0o700)
      await fill(dir)
      await this.freeze(dataset)
    })
  }

  /** A plain folder in `<folder>/scratch/` (in the storage's own dataset), named after this process. */
  async scratchFolder(label: string): Promise<string> {
    const folder = path.join(this.root, 'scratch', `${component(label).slice(0, 64)}${owned()}`)
    await mkdir(folder, {mode: 0o700})
    return folder
  }

  async removeVolume(volume: string): Promise<void> {
    await this.remove(this.volumePath(volume), true)
  }

  async removeSnapshot(snapshot: string): Promise<void> {
    await this.remove(this.snapshotPath(snapshot), false)
  }

  async renameSnapshot(from: string, to: string): Promise<void> {
    const entries = await this.entries()
    const target = this.snapshotPath(to)
    await this.refuseExisting(entries, target)
    const source = this.live(entries, this.snapshotPath(from), `snapshot ${from}`)
    await this.place(source.name, this.snapshotPath(from), target)
  }

  /**
   * A volume: the bytes it references (its data, shared or not). A snapshot: what destroying it
   * would free, the blocks its image holds that nothing else does, plus its own dataset.
   */
  async sizeOf(item: SizedItem): Promise<{bytes: number; exclusive: boolean}> {
    return (await this.sizesOf([item]))[0]
  }

  /** One listing of the datasets for all the items. */
  async sizesOf(items: readonly SizedItem[]): Promise<{bytes: number; exclusive: boolean}[]> {
    const entries = await this.entries()
    return items.map((item) => this.sizeIn(entries, item))
  }

  private sizeIn(entries: Awaited<ReturnType<ZfsStorage['entries']>>, item: SizedItem): {bytes: number; exclusive: boolean} {
    if (item.volume !== undefined) return {bytes: this.live(entries, this.volumePath(item.volume), `volume ${item.volume}`).referenced, exclusive: false}
    const dataset = this.live(entries, this.snapshotPath(item.snapshot!), `snapshot ${item.snapshot}`)
    const image = dataset.origin && !dataset.origin.endsWith(`@${FROZEN}`) ? entries.find((entry) => entry.name === dataset.origin) : undefined
    return {bytes: dataset.used + (image?.used ?? 0), exclusive: true}
  }

  /** Its dataset answers, is mounted where the record says and takes a write; its room is the dataset's. */
  async checkHealth(): Promise<StorageHealth> {
    const pool = this.dataset.split('/')[0]
    const got = await run('zfs', ['get', '-H', '-o', 'value', 'mounted,mountpoint', this.dataset])
    if (got.exitCode === 127) {
      return {access: {status: 'fail', detail: 'the zfs and zpool commands are missing',
        fix: 'Install OpenZFS (apt-get install zfsutils-linux, with its kernel module) or zfs-fuse (apt-get install zfs-fuse)'}}
    }

    if (got.exitCode !== 0) {
      const pools = await run('zpool', ['list', '-H', '-o', 'name'])
      if (pools.exitCode !== 0) {
        const fuse = (await zfsImplementation()) === 'zfs-fuse'
        return {access: {status: 'fail', detail: `ZFS does not answer: \`zpool list\` failed: ${tail(pools.stderr, 1) || `exit code ${pools.exitCode}`}`,
          fix: fuse ? 'Start the zfs-fuse daemon (as root: zfs-fuse)' : 'Load the kernel module (modprobe zfs)'}}
      }

      const hasPool = pools.stdout.split('\n').includes(pool)
      return {access: {status: 'fail', detail: hasPool ? `the dataset ${this.dataset} is missing from pool ${pool}` : `there is no ZFS pool ${pool} (zpool list shows ${pools.stdout.trim().split('\n').filter(Boolean).join(', ') || 'none'})`,
        fix: hasPool ? `Restore ${this.dataset}, or forget the storage: zenith storage detach ${this.name}` : `Import the pool (zpool import ${pool}), or forget the storage: zenith storage detach ${this.name}`}}
    }

    const [mounted, mountpoint] = got.stdout.trim().split('\n')
    if (path.resolve(mountpoint ?? '') !== path.resolve(this.root)) {
      return {access: {status: 'fail', detail: `${this.dataset} is mounted at ${mountpoint}, not here where its pgs and snapshots are`, fix: `zfs set mountpoint=${this.root} ${this.dataset}`}}
    }

    if (mounted !== 'yes') return {access: {status: 'fail', detail: `${this.dataset} is not mounted`, fix: `zfs mount ${this.dataset}`}}
    const problem = await folderProblem(this.root, this.name)
    if (problem) return {access: problem}
    const [mine, whole] = await Promise.all([properties(this.dataset, ['used', 'available']), properties(pool, ['used', 'available'])])
    return {
      access: {status: 'ok', detail: `dataset ${this.dataset} mounted here, writable; ZFS datasets, snapshots and clones`},
      space: {freeBytes: mine.available, totalBytes: whole.used + whole.available},
    }
  }

  /** The storage's dataset's use, the pool's free space and size. */
  async usage(): Promise<{usedBytes: number; freeBytes: number; totalBytes: number}> {
    const pool = this.dataset.split('/')[0]
    const [mine, whole] = await Promise.all([properties(this.dataset, ['used', 'available']), properties(pool, ['used', 'available'])])
    return {usedBytes: mine.used, freeBytes: mine.available, totalBytes: whole.used + whole.available}
  }

  /**
   * Work in progress of dead processes (after stopping any process still writing there), images
   * of snapshots whose making was killed, and retired datasets nothing depends on any more.
   */
  async reclaim(): Promise<string[]> {
    const removed: string[] = []
    const entries = await this.entries()
    const clones = clonesOf(entries)
    for (const entry of entries) {
      if (!isDeadOwners(entry.name)) continue
      if (entry.type === 'filesystem' && entry.mountpoint?.startsWith(`${path.join(this.root, 'scratch')}/`)) {
        await killWritersOf(entry.mountpoint)
        await this.destroyWithOrigin(entry, entries)
        removed.push(this.shortName(entry.name))
      } else if (entry.type === 'snapshot' && !entry.name.endsWith(`@${FROZEN}`) && !clones.has(entry.name)) {
        await this.destroy(entry.name)
        removed.push(this.shortName(entry.name))
      }
    }

    // Plain scratch folders of dead processes (an export's), and folders their datasets left.
    // One listing serves the whole check when nothing was found (the case of every command).
    const scratch = path.join(this.root, 'scratch')
    const current = removed.length > 0 ? await this.entries() : entries
    const mounted = new Set(current.map((entry) => entry.mountpoint))
    for (const name of await readdir(scratch).catch(() => [] as string[])) {
      const folder = path.join(scratch, name)
      if (!isDeadOwners(name) || mounted.has(folder)) continue
      await killWritersOf(folder)
      await rm(folder, {recursive: true, force: true, maxRetries: 5, retryDelay: 100})
      removed.push(`scratch/${name}`)
    }

    return [...removed, ...await this.collectGarbage(current)]
  }

  /** A new dataset's name: what it is for (abridged: names are for people) and its owner. */
  private newDataset(container: typeof CONTAINERS[number], label: string): string {
    return `${this.dataset}/${container}/${component(label).slice(0, 64)}${owned()}`
  }

  private scratchMountpoint(dataset: string): string {
    return path.join(this.root, 'scratch', dataset.slice(dataset.lastIndexOf('/') + 1))
  }

  private shortName(name: string): string {
    return name.slice(this.dataset.length + 1)
  }

  /** The live dataset mounted at `folder`. */
  private live(entries: Entry[], folder: string, what: string): Entry {
    const entry = entries.find((item) => item.type === 'filesystem' && item.mountpoint === folder)
    if (!entry) throw new Error(`storage ${this.name} has no dataset for ${what} (nothing mounted at ${folder})`)
    return entry
  }

  private async refuseExisting(entries: Entry[], folder: string): Promise<void> {
    const existing = entries.find((item) => item.type === 'filesystem' && item.mountpoint === folder)
    if (existing) {
      throw new ZenithError('NAME_TAKEN', `${folder} already exists in storage ${this.name} (dataset ${existing.name}).`,
        `Choose another name, or destroy the leftover dataset (zfs destroy -r ${existing.name}) if no pg or snapshot uses it.`)
    }
  }

  /** Read-only from now on, with the ZFS snapshot that clones are made from. */
  private async freeze(dataset: string): Promise<void> {
    await zfs(['set', 'readonly=on', dataset])
    await zfs(['snapshot', `${dataset}@${FROZEN}`])
  }

  /** Makes a new dataset in scratch and mounts it at `folder` when complete: all or nothing. */
  private async build(container: typeof CONTAINERS[number], label: string, folder: string, make: (dir: string, dataset: string) => Promise<void>): Promise<void> {
    const dataset = this.newDataset(container, label)
    const scratch = this.scratchMountpoint(dataset)
    try {
      await zfs(['create', '-o', `mountpoint=${scratch}`, dataset])
      await make(scratch, dataset)
      await this.place(dataset, scratch, folder)
    } catch (error) {
      await this.destroy(dataset, true).catch(() => undefined)
      await this.removeLeftoverFolder(scratch)
      throw await this.explainFailure(error)
    }
  }

  /** Mounts a dataset at its new folder (setting the mountpoint moves it), and removes the old folder. */
  private async place(dataset: string, from: string, folder: string): Promise<void> {
    await unmount(dataset)
    await zfs(['set', `mountpoint=${folder}`, dataset])
    if (await mountedState(dataset) !== 'yes') await zfs(['mount', dataset])
    await this.removeLeftoverFolder(from)
  }

  /** No longer zenith's: unmounted, and destroyed by collectGarbage once no clone needs it. */
  private async retire(dataset: string): Promise<void> {
    await unmount(dataset)
    await zfs(['set', 'mountpoint=none', dataset])
  }

  /** Removes the dataset mounted at `folder`: retired while clones depend on it, else destroyed. */
  private async remove(folder: string, withImages: boolean): Promise<void> {
    const entries = await this.entries()
    const dataset = entries.find((entry) => entry.type === 'filesystem' && entry.mountpoint === folder)
    if (!dataset) return this.removeLeftoverFolder(folder)
    const clones = clonesOf(entries)
    const snapshots = snapshotsOf(entries, dataset.name)
    // A volume's images of snapshots that are gone: nothing needs them.
    if (withImages) for (const snapshot of snapshots.filter((item) => !clones.has(item.name))) await this.destroy(snapshot.name)
    // A clone (a pg made with --cow, a snapshot of a volume) keeps it: ZFS cannot drop blocks
    // that a clone shares, so it stays, out of sight, until the last one is gone.
    if (snapshots.some((snapshot) => clones.has(snapshot.name))) await this.retire(dataset.name)
    else await this.destroyWithOrigin(dataset, entries)
    await this.removeLeftoverFolder(folder)
    await this.collectGarbage()
  }

  private async destroy(name: string, recursive = false): Promise<void> {
    if (!name.includes('@')) await unmount(name)
    const result = await zfsResult(['destroy', ...(recursive ? ['-r'] : []), name])
    if (result.exitCode !== 0 && !/does not exist/.test(result.stderr)) throw new ExternalCommandError('zfs', ['destroy', name], tail(result.stderr), result.exitCode)
  }

  /**
   * Destroys a dataset with its ZFS snapshots, then the volume image it was cloned from when
   * nothing else uses that image (a snapshot's dataset is the one clone of its image).
   */
  private async destroyWithOrigin(dataset: Entry, entries: Entry[]): Promise<void> {
    await this.destroy(dataset.name, true)
    const origin = dataset.origin
    if (!origin || origin.endsWith(`@${FROZEN}`)) return
    if (!entries.some((entry) => entry.origin === origin && entry.name !== dataset.name)) await this.destroy(origin)
  }

  /**
   * Destroys retired datasets whose ZFS snapshots have no clones left, until none is left; returns
   * what it destroyed. `listed` is a listing the caller has just read, to spare the first `zfs get`.
   */
  private async collectGarbage(listed?: Entry[]): Promise<string[]> {
    const destroyed: string[] = []
    for (let first = listed; ; first = undefined) {
      const entries = first ?? await this.entries()
      const clones = clonesOf(entries)
      const unused = entries.filter((entry) => entry.type === 'filesystem' && entry.mountpoint === 'none' &&
        CONTAINERS.some((container) => entry.name.startsWith(`${this.dataset}/${container}/`)) &&
        !snapshotsOf(entries, entry.name).some((snapshot) => clones.has(snapshot.name)))
      if (unused.length === 0) return destroyed
      for (const entry of unused) {
        await this.destroyWithOrigin(entry, entries)
        destroyed.push(this.shortName(entry.name))
      }
    }
  }

  /** Every dataset and ZFS snapshot under the storage's dataset: one `zfs get`, exact bytes. */
  private async entries(): Promise<Entry[]> {
    const result = await zfs(['get', '-H', '-p', '-r', '-o', 'name,property,value', 'type,origin,mountpoint,used,referenced', this.dataset])
    const byName = new Map<string, Entry>()
    for (const line of result.stdout.split('\n').filter((item) => item !== '')) {
      const [name, property, value] = line.split('\t')
      const entry = byName.get(name) ?? {name, type: '', used: 0, referenced: 0}
      byName.set(name, entry)
      if (property === 'type') entry.type = value
      else if (property === 'origin' && value !== '-' && value !== '') entry.origin = value
      else if (property === 'mountpoint' && value !== '-') entry.mountpoint = value
      else if (property === 'used' || property === 'referenced') entry[property] = Number(value) || 0
    }

    return [...byName.values()]
  }

  /** A mountpoint folder whose dataset is gone or moved: zfs leaves it behind. */
  private async removeLeftoverFolder(folder: string): Promise<void> {
    // Only an empty folder: anything in it is not zenith's to delete.
    await rmdir(folder).catch((error: NodeJS.ErrnoException) => {
      if (!['ENOENT', 'ENOTEMPTY', 'EEXIST', 'EBUSY'].includes(error.code ?? '')) throw error
    })
  }

  private async explainFailure(error: unknown): Promise<unknown> {
    if (error instanceof ExternalCommandError && /out of space/i.test(error.stderrTail)) {
      const free = await properties(this.dataset, ['available']).then(({available}) => `${Math.round(available / 1024 / 1024)} MiB free`, () => 'no space left')
      return new ZenithError('NOT_ENOUGH_DISK_SPACE', `Not enough space in ZFS dataset ${this.dataset} (${free}); nothing was kept.`,
        'Free space (destroy unused pgs and snapshots), or add a device to the pool (zpool add).')
    }

    return error
  }
}

/**
 * A volume or snapshot name as a folder and dataset name: ZFS allows letters, digits and
 * `_ . : -`; anything else (the `@` of `pg@tag`) becomes `:` and its hex code, and so does `:`.
 */
export function component(name: string): string {
  return [...Buffer.from(name, 'utf8')].map((byte) => {
    const char = String.fromCodePoint(byte)
    return /[A-Za-z0-9_.-]/.test(char) ? char : `:${byte.toString(16).padStart(2, '0')}`
  }).join('')
}

/** A suffix that names this process as the owner: `.p<pid>.<hex>`. */
function owned(): string {
  return `.p${process.pid}.${randomBytes(4).toString('hex')}`
}

function isDeadOwners(name: string): boolean {
  return leftByDeadProcess(Number(OWNED.exec(name)?.[1]))
}

function clonesOf(entries: Entry[]): Set<string> {
  return new Set(entries.map((entry) => entry.origin).filter((origin): origin is string => origin !== undefined))
}

function snapshotsOf(entries: Entry[], dataset: string): Entry[] {
  return entries.filter((entry) => entry.type === 'snapshot' && entry.name.startsWith(`${dataset}@`))
}

async function zfsResult(args: string[]): Promise<RunResult> {
  for (let attempt = 0; ; attempt++) {
    const result = await run('zfs', args)
    if (result.exitCode === 0 || !/dataset is busy/.test(result.stderr) || attempt >= BUSY_RETRIES) return result
    await sleep(100)
  }
}

async function zfs(args: string[]): Promise<RunResult> {
  const result = await zfsResult(args)
  if (result.exitCode !== 0) throw new ExternalCommandError('zfs', args, tail(result.stderr), result.exitCode)
  return result
}

async function mountedState(dataset: string): Promise<string> {
  return (await run('zfs', ['get', '-H', '-o', 'value', 'mounted', dataset])).stdout.trim()
}

async function unmount(dataset: string): Promise<void> {
  if (await mountedState(dataset) === 'yes') await zfs(['unmount', dataset])
}

/** Exact byte values (`zfs get -p`, which zfs-fuse has, unlike `zfs list -p`). */
async function properties<K extends string>(dataset: string, names: K[]): Promise<Record<K, number>> {
  const result = await zfs(['get', '-H', '-p', '-o', 'property,value', names.join(','), dataset])
  const values: Partial<Record<K, number>> = {}
  for (const line of result.stdout.split('\n').filter((item) => item !== '')) {
    const [property, value] = line.split('\t')
    const bytes = Number(value)
    if (!Number.isFinite(bytes)) throw new Error(`zfs get ${property} ${dataset} gave "${value}", not a number of bytes`)
    values[property as K] = bytes
  }

  for (const name of names) if (values[name] === undefined) throw new Error(`zfs get gave no ${name} for ${dataset}`)
  return values as Record<K, number>
}

export const zfsDriver: StorageDriver = {
  name: 'zfs',
  capabilities,
  open: (record: StorageRecord) => new ZfsStorage(record),
}

const OPTIONS = ['dataset', 'mountpoint']

/** Which ZFS answers: OpenZFS (kernel module) has `zfs version`; zfs-fuse (pool version 23) does not. */
export async function zfsImplementation(): Promise<'openzfs' | 'zfs-fuse' | undefined> {
  if ((await run('zfs', ['version'])).exitCode === 0) return 'openzfs'
  if ((await run('zfs-fuse', ['--help'])).exitCode !== 127) return 'zfs-fuse'
  return (await run('zpool', ['upgrade', '-v'])).exitCode === 0 ? 'openzfs' : undefined
}

/**
 * `-t zfs -c dataset=POOL/PATH [-c mountpoint=/folder]`: the pool must exist; zenith creates the
 * dataset when it is missing and keeps everything under it.
 */
export const zfsKind: StorageKind = {
  type: 'zfs',
  configure(name, options): StorageDraft {
    const unknown = Object.keys(options).filter((key) => !OPTIONS.includes(key))
    if (unknown.length > 0) {
      throw new ZenithError('INVALID_ARGUMENT', `Unknown option${unknown.length > 1 ? 's' : ''} for a zfs storage: ${unknown.join(', ')}.`, 'Known options: dataset (POOL/PATH), mountpoint (an absolute folder).')
    }

    const dataset = options.dataset
    if (!dataset) {
      throw new ZenithError('INVALID_ARGUMENT', 'A zfs storage needs a dataset.', `Pass -c dataset=POOL/PATH, e.g. zenith storage attach -t zfs -n ${name} -c dataset=tank/zenith`)
    }

    if (!DATASET.test(dataset) || dataset.split('/').some((part) => part === '.' || part === '..')) {
      throw new ZenithError('INVALID_ARGUMENT', `"${dataset}" is not a dataset below a pool.`,
        'Write POOL/PATH (letters, digits, "_", "-", ".", ":"; the pool name starts with a letter), e.g. -c dataset=tank/zenith: zenith keeps everything under it.')
    }

    if (options.mountpoint !== undefined && !path.isAbsolute(options.mountpoint)) {
      throw new ZenithError('INVALID_ARGUMENT', `The mountpoint "${options.mountpoint}" is not an absolute folder.`, 'Pass -c mountpoint=/absolute/folder, or leave it out to inherit the pool\'s.')
    }

    return {name, type: 'zfs', options: {...options}, createdAt: new Date().toISOString(), path: options.mountpoint}
  },
  attach: (draft, context) => attachZfs(draft, context),
}

async function attachZfs(draft: StorageDraft, context: AttachContext): Promise<StorageRecord> {
  const dataset = draft.options.dataset
  const wanted = draft.options.mountpoint
  if (wanted) await assertDataFilesystem(wanted)
  const pool = dataset.split('/')[0]
  const pools = await run('zpool', ['list', '-H', '-o', 'name'])
  if (pools.exitCode === 127) {
    throw new ZenithError('STORAGE_UNSUPPORTED', 'The zfs and zpool commands are missing.',
      'Install OpenZFS (apt-get install zfsutils-linux, with its kernel module) or zfs-fuse (apt-get install zfs-fuse).')
  }

  if (pools.exitCode !== 0) {
    const fuse = (await zfsImplementation()) === 'zfs-fuse'
    throw new ZenithError('STORAGE_UNSUPPORTED', `ZFS does not answer: \`zpool list\` failed: ${tail(pools.stderr, 2) || `exit code ${pools.exitCode}`}.`,
      fuse ? 'Start the zfs-fuse daemon (as root: zfs-fuse), then retry.' : 'Load the kernel module (modprobe zfs), then retry.')
  }

  const names = pools.stdout.split('\n').filter((line) => line !== '')
  if (!names.includes(pool)) {
    throw new ZenithError('INVALID_ARGUMENT', `There is no ZFS pool named "${pool}".`,
      `\`zpool list\` shows ${names.length > 0 ? `these pools: ${names.join(', ')}` : 'no pool'}; create one (zpool create ${pool} DEVICE) or name an existing one in -c dataset=POOL/PATH.`)
  }

  // What this attach creates is removed again when the attach fails: the first missing ancestor.
  let created: string | undefined
  const parts = dataset.split('/')
  for (let depth = 2; depth <= parts.length && !created; depth++) {
    const candidate = parts.slice(0, depth).join('/')
    if ((await run('zfs', ['list', '-H', '-o', 'name', candidate])).exitCode !== 0) created = candidate
  }

  try {
    if (created) await zfs(['create', '-p', ...(wanted ? ['-o', `mountpoint=${wanted}`] : []), dataset])
    const root = await mountedFolder(dataset, wanted)
    for (const child of CONTAINERS) {
      const name = `${dataset}/${child}`
      if ((await run('zfs', ['list', '-H', '-o', 'name', name])).exitCode !== 0) await zfs(['create', '-o', 'mountpoint=none', name])
    }

    // 0711: the OS user postgres runs as must reach its data directory, but not list others.
    await chmod(root, 0o711)
    for (const folder of FOLDERS) await mkdir(path.join(root, folder), {recursive: true, mode: 0o711})
    await context.checkReachable(path.join(root, 'volumes'))
    await probe(dataset, root)
    return {...draft, path: root, driver: 'zfs'}
  } catch (error) {
    if (created) await zfsResult(['destroy', '-r', '-f', created])
    throw error
  }
}

/** The folder a dataset is mounted at (mounted now if it is not); refuses one without a mountpoint. */
async function mountedFolder(dataset: string, wanted: string | undefined): Promise<string> {
  const values = (await zfs(['get', '-H', '-o', 'value', 'mountpoint,mounted', dataset])).stdout.trim().split('\n')
  const [mountpoint, mounted] = values
  if (!path.isAbsolute(mountpoint ?? '')) {
    throw new ZenithError('INVALID_ARGUMENT', `Dataset ${dataset} has no mountpoint (${mountpoint}).`, `Give it one: zfs set mountpoint=/some/folder ${dataset}, or attach with -c mountpoint=/some/folder for a new dataset.`)
  }

  if (wanted && path.resolve(wanted) !== path.resolve(mountpoint)) {
    throw new ZenithError('INVALID_ARGUMENT', `Dataset ${dataset} is mounted at ${mountpoint}, not ${wanted}.`, `Leave out -c mountpoint, or change it first: zfs set mountpoint=${wanted} ${dataset}.`)
  }

  if (mounted !== 'yes') await zfs(['mount', dataset])
  return mountpoint
}

/** Creates, writes into and destroys a dataset: proves that zenith can use the pool. */
async function probe(dataset: string, root: string): Promise<void> {
  const name = `${dataset}/volumes/probe${owned()}`
  const folder = path.join(root, 'scratch', name.slice(name.lastIndexOf('/') + 1))
  await zfs(['create', '-o', `mountpoint=${folder}`, name])
  try {
    await writeFile(path.join(folder, 'probe'), 'zenith')
    await stat(path.join(folder, 'probe'))
    await rm(path.join(folder, 'probe'))
  } finally {
    await unmount(name)
    await zfs(['destroy', name])
    await rmdir(folder).catch(() => undefined)
  }
}

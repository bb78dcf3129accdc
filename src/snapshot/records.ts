import {randomBytes} from 'node:crypto'

import type {Zenith} from '../context.js'
import {DEFAULT_STORAGE, volumeStorage} from '../storage/registry.js'
import {ZenithError} from '../errors.js'
import {readPgVersion} from '../pg/cluster.js'
import {diskUsage} from '../storage/folders.js'
import type {SnapshotMethod, SnapshotRecord, StoreData} from '../state/schema.js'

/** A folder name for a snapshot: unique, so a name can be reused while an old copy is removed. */
export function snapshotVolumeName(name: string): string {
  return `${name.replaceAll(/[^A-Za-z0-9_.@-]/g, '_')}.${randomBytes(3).toString('hex')}`
}

export function assertSnapshotNameFree(data: StoreData, name: string): void {
  if (data.snapshots[name]) {
    throw new ZenithError('NAME_TAKEN', `A snapshot named "${name}" already exists.`, 'Choose another name, or destroy it first with `zenith snapshot destroy`.')
  }
}

export interface AddSnapshotOptions {
  name: string
  storage?: string
  method: SnapshotMethod
  parent?: string
  pg?: string
  tag?: string
  /** Writes the data directory into the (empty) folder it is given. */
  fill: (dir: string) => Promise<void>
  /** `fill` flushes what it writes itself (pg_basebackup): the storage need not sync the filesystem. */
  durable?: boolean
  /** The bytes `fill` writes, where known beforehand (a pull's manifest): spares the walk that measures them. */
  logicalBytes?: number
}

/**
 * Creates a snapshot from a writer (import, pull, recv): reserves the name, fills a scratch
 * folder, and only then makes it visible. On any failure (or a kill: see recovery.ts) nothing
 * is left: no record, no files.
 */
export async function addSnapshot(zenith: Zenith, options: AddSnapshotOptions): Promise<SnapshotRecord> {
  const storageName = options.storage ?? DEFAULT_STORAGE
  const record = await zenith.store.update((data) => {
    const storage = volumeStorage(data, storageName)
    assertSnapshotNameFree(data, options.name)
    const snapshot: SnapshotRecord = {
      name: options.name, pg: options.pg, tag: options.tag, storage: storage.name, volume: snapshotVolumeName(options.name),
      parent: options.parent, method: options.method, pgVersion: 0, logicalBytes: 0,
      createdAt: new Date().toISOString(), state: 'creating', pid: process.pid,
    }
    data.snapshots[options.name] = snapshot
    return snapshot
  })

  const storage = volumeStorage(await zenith.store.read(), storageName)
  try {
    await storage.createSnapshotFrom(record.volume, options.fill, {durable: options.durable})
    const folder = storage.snapshotPath(record.volume)
    const ready: SnapshotRecord = {...record, pgVersion: await readPgVersion(folder), logicalBytes: options.logicalBytes ?? await diskUsage(folder), state: 'ready', pid: undefined}
    await zenith.store.update((data) => {
      data.snapshots[record.name] = ready
    })
    return ready
  } catch (error) {
    await storage.removeSnapshot(record.volume).catch(() => undefined)
    await zenith.store.update((data) => {
      if (data.snapshots[record.name]?.pid === process.pid) delete data.snapshots[record.name]
    })
    throw error
  }
}

/** The major version in a data directory's PG_VERSION (0 when there is none). */

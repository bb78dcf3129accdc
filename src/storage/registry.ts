import {ZenithError} from '../errors.js'
import type {StorageRecord, StorageType, StoreData} from '../state/schema.js'
import type {AttachContext, StorageDriver, StorageKind} from './driver.js'
import {btrfsDriver, btrfsKind} from './drivers/btrfs.js'
import {copyDriver} from './drivers/copy.js'
import {dirDriver, dirKind} from './drivers/dir.js'
import {folderKind} from './drivers/folder.js'
import {reflinkDriver} from './drivers/reflink.js'
import {s3Driver, s3Kind} from './drivers/s3.js'
import {zfsDriver, zfsKind} from './drivers/zfs.js'
import {type ObjectStorage, type Storage, type VolumeStorage, hasVolumes, holdsObjects} from './storage.js'

/**
 * The one place that lists the drivers. A new medium (LVM, a cloud disk) is a file in
 * drivers/ plus a line here: its driver, and the `storage attach -t` type that makes it.
 */
const DRIVERS: StorageDriver[] = [copyDriver, reflinkDriver, btrfsDriver, zfsDriver, s3Driver, dirDriver]

// A plain folder takes the best copy method its filesystem offers, best first.
const LOCAL = folderKind([btrfsDriver, reflinkDriver, copyDriver])

const KINDS: StorageKind[] = [
  LOCAL,
  btrfsKind,
  zfsKind,
  s3Kind,
  dirKind,
]

/** The storage every ZENITH_HOME has from the first run (a folder in it). */
export const DEFAULT_STORAGE = 'local'

/** The record of the default storage: a folder in ZENITH_HOME, attached as `-t local`. */
export async function attachDefaultStorage(folder: string, context: AttachContext): Promise<StorageRecord> {
  return LOCAL.attachDefault(DEFAULT_STORAGE, folder, context)
}

/** The driver named `name`, or undefined when this zenith has none by that name. */
export function findDriver(name: string): StorageDriver | undefined {
  return DRIVERS.find((item) => item.name === name)
}

export function storageDriver(name: string): StorageDriver {
  const driver = findDriver(name)
  if (!driver) {
    throw new ZenithError('STORAGE_UNSUPPORTED', `This zenith has no "${name}" storage driver.`,
      'The storage was attached by a newer zenith, or its driver is not in this build: upgrade zenith.')
  }

  return driver
}

/** Types in the design (StorageType) that have no driver in this build yet: refused as unsupported, not unknown. */
const PLANNED_TYPES: readonly string[] = []

/**
 * How `storage attach -t TYPE` makes a storage. A planned type without a driver yet (none now)
 * is STORAGE_UNSUPPORTED, anything else INVALID_ARGUMENT; both name only the types that work.
 */
export function storageKind(type: string): StorageKind {
  const kind = KINDS.find((item) => item.type === type)
  if (kind) return kind
  const hint = `Use -t ${storageTypes().join(', -t ')} (local takes any folder: btrfs snapshots, reflink or plain copies, whatever its filesystem can do).`
  if (PLANNED_TYPES.includes(type)) throw new ZenithError('STORAGE_UNSUPPORTED', `${type} storages are not supported yet in this version of zenith.`, hint)
  throw new ZenithError('INVALID_ARGUMENT', `"${type}" is not a storage type.`, hint)
}

/** Storage types that can be attached, in the order help text lists them. */
export function storageTypes(): StorageType[] {
  return KINDS.map((kind) => kind.type)
}

export function storageRecord(data: StoreData, name: string): StorageRecord {
  const record = data.storages[name]
  if (!record) {
    throw new ZenithError('STORAGE_NOT_FOUND', `There is no storage named "${name}".`,
      `See \`zenith storage list\`; attach one with \`zenith storage attach -t local -n ${name} -c path=/some/folder\`.`)
  }

  return record
}

/** The driver of an attached storage, whatever it can do. */
export function openStorage(data: StoreData, name: string): Storage {
  return openRecord(storageRecord(data, name))
}

export function openRecord(record: StorageRecord): Storage {
  return storageDriver(record.driver).open(record)
}

/** The driver of a storage that must hold data directories: STORAGE_UNSUPPORTED for one that cannot. */
export function volumeStorage(data: StoreData, name: string): VolumeStorage {
  return requireVolumes(openStorage(data, name))
}

export function requireVolumes(storage: Storage): VolumeStorage {
  if (!hasVolumes(storage)) {
    throw new ZenithError('STORAGE_UNSUPPORTED', `Storage "${storage.name}" (${storage.type}) holds only snapshots and WAL, not data directories.`,
      'Create pgs on a local, btrfs or zfs storage; move snapshots to it with `zenith snapshot pull`.')
  }

  return storage
}

/** The object store of an attached storage that keeps snapshots as objects (s3, dir). */
export function objectStorage(record: StorageRecord): ObjectStorage {
  const storage = openRecord(record)
  if (!holdsObjects(storage)) throw new Error(`storage ${record.name} (${record.type}) is not a remote storage`)
  return storage
}

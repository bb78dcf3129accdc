import type {Zenith} from './context.js'
import {ZenithError, isZenithError} from './errors.js'
import {assertReachable, pgOsUser} from './pg/os-user.js'
import {listRemoteSnapshots, remoteUsage} from './remote/layout.js'
import {validateName} from './state/names.js'
import type {StorageRecord, StorageType, StoreData} from './state/schema.js'
import {DEFAULT_STORAGE, openRecord, storageKind, storageRecord, storageTypes} from './storage/registry.js'
import {hasVolumes} from './storage/storage.js'

export interface StorageInfo {
  name: string
  type: StorageRecord['type']
  /** Absent when a remote storage could not be read: unknown, not 0. */
  usedBytes?: number
  freeBytes?: number
  options: Record<string, string>
  copyMethod?: StorageRecord['copyMethod']
  path?: string
  pgs: string[]
  snapshots: string[]
  /** Why a remote storage could not be read (it is listed anyway, its size and snapshots unknown). */
  error?: string
  /** The code of that error (AUTH_FAILED, SOURCE_UNREACHABLE, BUCKET_NOT_FOUND, ...); absent for an unexpected one. */
  errorCode?: string
}

export async function listStorages(zenith: Zenith): Promise<StorageInfo[]> {
  const data = await zenith.store.read()
  return Promise.all(Object.values(data.storages).sort((a, b) => a.name.localeCompare(b.name)).map((record) => describeStorage(data, record)))
}

export async function showStorage(zenith: Zenith, name: string): Promise<StorageInfo> {
  const data = await zenith.store.read()
  return describeStorage(data, storageRecord(data, name))
}

/** One read of the store serves every storage a listing describes. */
async function describeStorage(data: StoreData, record: StorageRecord): Promise<StorageInfo> {
  const storage = openRecord(record)
  if (!hasVolumes(storage)) return describeRemoteStorage(record)
  const usage = await storage.usage()
  return {
    name: record.name,
    type: record.type,
    usedBytes: usage.usedBytes,
    freeBytes: usage.freeBytes,
    options: record.options,
    copyMethod: record.copyMethod,
    path: record.path,
    pgs: Object.values(data.pgs).filter((pg) => pg.storage === record.name).map((pg) => pg.name).sort(),
    snapshots: Object.values(data.snapshots).filter((snapshot) => snapshot.storage === record.name).map((snapshot) => snapshot.name).sort(),
  }
}

/** What `storage attach -t` accepts in this version: the registry's types. */
export const ATTACHABLE_TYPES: readonly StorageType[] = storageTypes()

/** The `-t` of `storage attach`: one of ATTACHABLE_TYPES; anything else is refused naming only those. */
export function attachableType(type: string): StorageType {
  return storageKind(type).type
}

export interface AttachStorageOptions {
  type: StorageType | string
  name: string
  /** The user's -c key=value options; for s3 never credentials. */
  options: Record<string, string>
}

/**
 * `storage attach -t TYPE -n NAME -c key=value ...`, for any type the registry knows: the
 * driver checks the options, makes the storage usable and proves it works (a local folder is
 * probed for what its filesystem can do; a bucket or share gets a probe object written, read
 * back and deleted, so wrong credentials, a missing bucket or no network fail here and not in
 * the middle of the first push), then the storage is saved.
 *
 * Returns what `storage attach --json` has always printed: the storage's description for one
 * that holds data directories, the saved record for one that holds only snapshots and WAL.
 */
export async function attachStorage(zenith: Zenith, options: AttachStorageOptions): Promise<StorageInfo | Omit<StorageRecord, 'driver'>> {
  const kind = storageKind(options.type)
  const name = validateName('storage', options.name)
  const draft = kind.configure(name, options.options)
  if ((await zenith.store.read()).storages[name]) throw nameTaken(name)
  const record = await kind.attach(draft, {checkReachable: async (folder) => assertReachable(await pgOsUser(zenith), folder)})
  await zenith.store.update((data) => {
    if (data.storages[name]) throw nameTaken(name)
    data.storages[name] = record
  })
  if (hasVolumes(openRecord(record))) return showStorage(zenith, name)
  // The driver is the store's business; the JSON of an attached remote storage is unchanged.
  const shown: Partial<StorageRecord> = {...record}
  delete shown.driver
  return shown as Omit<StorageRecord, 'driver'>
}

/** `storage attach -t local|btrfs`: a folder for data directories and snapshots (see attachStorage). */
export async function attachLocalStorage(zenith: Zenith, options: {name: string; type: 'local' | 'btrfs'; options: Record<string, string>}): Promise<StorageInfo> {
  return attachStorage(zenith, options) as Promise<StorageInfo>
}

export interface AttachRemoteOptions {
  type: 's3' | 'dir'
  name: string
  /** The user's -c key=value options; for s3 never credentials. */
  options: Record<string, string>
}

/** `storage attach -t s3|dir`: a bucket/prefix or a plain folder for snapshots (see attachStorage). */
export async function attachRemoteStorage(zenith: Zenith, options: AttachRemoteOptions): Promise<Omit<StorageRecord, 'driver'>> {
  return attachStorage(zenith, options) as Promise<Omit<StorageRecord, 'driver'>>
}

/** Forgets a storage; its files stay. Refuses while pgs or snapshots live in it. */
export async function detachStorage(zenith: Zenith, name: string): Promise<{name: string; path?: string}> {
  return zenith.store.update((data) => {
    const record = storageRecord(data, name)
    if (name === DEFAULT_STORAGE) throw new ZenithError('STORAGE_IN_USE', 'The default storage "local" cannot be detached.', 'It is where pgs go unless you pass -s.')
    const users = [
      ...Object.values(data.pgs).filter((pg) => pg.storage === name).map((pg) => `pg ${pg.name}`),
      ...Object.values(data.snapshots).filter((snapshot) => snapshot.storage === name).map((snapshot) => `snapshot ${snapshot.name}`),
    ]
    if (users.length > 0) {
      throw new ZenithError('STORAGE_IN_USE', `Storage "${name}" is in use by ${users.join(', ')}.`, 'Destroy or move them first.')
    }

    delete data.storages[name]
    return {name, path: record.path}
  })
}

/** s3 and dir storages hold only snapshots: their index says which, and how much they use. */
async function describeRemoteStorage(record: StorageRecord): Promise<StorageInfo> {
  const base = {name: record.name, type: record.type, options: record.options, path: record.path, pgs: []}
  try {
    const [usage, snapshots] = await Promise.all([remoteUsage(record), listRemoteSnapshots(record)])
    return {...base, usedBytes: usage.usedBytes, snapshots: snapshots.map((snapshot) => snapshot.name)}
  } catch (error) {
    // One unreachable bucket must not hide the other storages from `storage list`; but its size
    // is unknown, not 0, so that nobody reads an empty bucket into it.
    return {...base, snapshots: [], error: error instanceof Error ? error.message : String(error), errorCode: isZenithError(error) ? error.code : undefined}
  }
}

function nameTaken(name: string): ZenithError {
  return new ZenithError('NAME_TAKEN', `A storage named "${name}" is already attached.`, 'Choose another name, or detach it first.')
}

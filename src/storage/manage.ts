import {mkdir, stat} from 'node:fs/promises'
import path from 'node:path'

import type {Zenith} from '../context.js'
import {DEFAULT_STORAGE, localStorage, storageRecord} from '../context.js'
import {ZenithError, isZenithError} from '../errors.js'
import {run} from '../process.js'
import {validateName} from '../state/names.js'
import type {StorageRecord, StoreData} from '../state/schema.js'
import {listRemoteSnapshots, remoteUsage} from '../remote/layout.js'
import {assertReachable, pgOsUser} from '../pg/os-user.js'
import {detectCopyMethod, isOnBtrfs} from './local.js'

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
  if (record.type === 's3' || record.type === 'dir') return describeRemoteStorage(record)
  const usage = await localStorage(data, record.name).usage()
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

/**
 * `storage attach -t local|btrfs -n NAME -c path=...`: a folder for data directories and
 * snapshots. A btrfs storage must be on btrfs; it gets quota groups so snapshot sizes are exact
 * (`-c quota=off` to skip). What the filesystem can do is detected once, here.
 */
export async function attachLocalStorage(zenith: Zenith, options: {name: string; type: 'local' | 'btrfs'; options: Record<string, string>}): Promise<StorageInfo> {
  validateName('storage', options.name)
  const folder = options.options.path
  if (!folder || !path.isAbsolute(folder)) {
    throw new ZenithError('INVALID_ARGUMENT', `A ${options.type} storage needs an absolute path.`, `Pass -c path=/absolute/folder, e.g. zenith storage attach -t ${options.type} -n ${options.name} -c path=/mnt/data`)
  }

  const unknown = Object.keys(options.options).filter((key) => !['path', 'quota'].includes(key))
  if (unknown.length > 0) throw new ZenithError('INVALID_ARGUMENT', `Unknown option${unknown.length > 1 ? 's' : ''} for a ${options.type} storage: ${unknown.join(', ')}.`, 'Known options: path, quota (btrfs: on|off).')
  if ((await zenith.store.read()).storages[options.name]) {
    throw new ZenithError('NAME_TAKEN', `A storage named "${options.name}" is already attached.`, 'Choose another name, or detach it first.')
  }

  if (options.type === 'btrfs') {
    let existing = folder
    while (!(await stat(existing).then(() => true, () => false))) existing = path.dirname(existing)
    if (!(await isOnBtrfs(existing))) {
      throw new ZenithError('STORAGE_UNSUPPORTED', `${folder} is not on a btrfs filesystem.`, 'Pass a folder on btrfs, or attach it as -t local (reflink or plain copy).')
    }
  }

  await mkdir(folder, {recursive: true, mode: 0o711})
  await assertReachable(await pgOsUser(zenith), folder)
  const copyMethod = await detectCopyMethod(folder)
  if (options.type === 'btrfs' && copyMethod !== 'btrfs') {
    throw new ZenithError('STORAGE_UNSUPPORTED', 'The btrfs command is missing.', 'Install btrfs-progs (apt-get install btrfs-progs).')
  }

  if (copyMethod === 'btrfs' && options.options.quota !== 'off') {
    // Quota groups let `snapshot list` show what each snapshot retains; best effort.
    await run('btrfs', ['quota', 'enable', folder])
  }

  await zenith.store.update((data) => {
    if (data.storages[options.name]) throw new ZenithError('NAME_TAKEN', `A storage named "${options.name}" is already attached.`, 'Choose another name.')
    data.storages[options.name] = {name: options.name, type: options.type, path: folder, options: options.options, copyMethod, createdAt: new Date().toISOString()}
  })
  return showStorage(zenith, options.name)
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

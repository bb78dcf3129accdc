import {createHash} from 'node:crypto'
import {chmod, mkdir, stat} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {ZenithError} from './errors.js'
import {assertReachable, pgOsUser, runningAsRoot} from './pg/os-user.js'
import type {StorageRecord, StoreData} from './state/schema.js'
import {Store} from './state/store.js'
import {LocalFolderStorage, detectCopyMethod} from './storage/local.js'
import type {LocalStorage} from './storage/storage.js'

/** Everything a domain function needs: where zenith keeps its state, and the store itself. */
export interface Zenith {
  home: string
  store: Store
  /** A short folder for postgres' unix sockets (socket paths are limited to ~107 bytes). */
  socketDir: string
  logDir: string
}

export const DEFAULT_STORAGE = 'local'

/**
 * ZENITH_HOME, else ~/.zenith; as root /var/lib/zenith, because the OS user postgres runs as
 * must be able to reach the data directories and /root is closed to it.
 */
export function resolveHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.ZENITH_HOME) return path.resolve(env.ZENITH_HOME)
  return runningAsRoot() ? '/var/lib/zenith' : path.join(os.homedir(), '.zenith')
}

export async function openZenith(home = resolveHome()): Promise<Zenith> {
  // As root the home must be traversable (not listable) by the postgres OS user.
  const mode = runningAsRoot() ? 0o711 : 0o700
  await mkdir(home, {recursive: true, mode})
  const info = await stat(home)
  if (!info.isDirectory()) throw new ZenithError('INVALID_ARGUMENT', `ZENITH_HOME ${home} is not a directory.`, 'Point ZENITH_HOME at a directory.')
  if (runningAsRoot() && (info.mode & 0o011) !== 0o011) await chmod(home, (info.mode & 0o777) | 0o011)
  const store = new Store(home)
  const hash = createHash('sha256').update(home).digest('hex').slice(0, 10)
  const zenith: Zenith = {
    home,
    store,
    socketDir: path.join(os.tmpdir().length <= 20 ? os.tmpdir() : '/tmp', `zenith-${hash}`),
    logDir: path.join(home, 'logs'),
  }
  await ensureDefaultStorage(zenith)
  return zenith
}

/** The `local` storage exists from the first run; its capabilities are detected once. */
async function ensureDefaultStorage(zenith: Zenith): Promise<void> {
  const data = await zenith.store.read()
  if (data.storages[DEFAULT_STORAGE]) return
  const folder = path.join(zenith.home, 'storages', DEFAULT_STORAGE)
  const copyMethod = await detectCopyMethod(folder)
  await assertReachable(await pgOsUser(zenith), folder)
  await zenith.store.update((current) => {
    current.storages[DEFAULT_STORAGE] ??= {
      name: DEFAULT_STORAGE, type: 'local', path: folder, options: {}, copyMethod, createdAt: new Date().toISOString(),
    }
  })
}

export function storageRecord(data: StoreData, name: string): StorageRecord {
  const record = data.storages[name]
  if (!record) {
    throw new ZenithError('STORAGE_NOT_FOUND', `There is no storage named "${name}".`,
      `See \`zenith storage list\`; attach one with \`zenith storage attach -t local -n ${name} -c path=/some/folder\`.`)
  }

  return record
}

/** The driver of a storage that can hold data directories. */
export function localStorage(data: StoreData, name: string): LocalStorage {
  const record = storageRecord(data, name)
  if (record.type === 's3' || record.type === 'dir') {
    throw new ZenithError('STORAGE_UNSUPPORTED', `Storage "${name}" (${record.type}) holds only snapshots and WAL, not data directories.`,
      'Create pgs on a local, btrfs or zfs storage; move snapshots to it with `zenith snapshot pull`.')
  }

  return new LocalFolderStorage(record)
}

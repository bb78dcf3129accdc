import {constants} from 'node:fs'
import {access, lstat, readFile, stat} from 'node:fs/promises'
import path from 'node:path'

import {socketDirOf} from '../context.js'
import {isZenithError} from '../errors.js'
import {pgOsUser} from '../pg/os-user.js'
import {isAlive} from '../state/lock.js'
import {SCHEMA_VERSION, type StoreData} from '../state/schema.js'
import {Store} from '../state/store.js'
import type {Check} from './check.js'

/** ZENITH_HOME: a folder zenith can read and write, or one the first command can make. */
export async function homeChecks(home: string): Promise<Check[]> {
  const source = process.env.ZENITH_HOME ? 'ZENITH_HOME' : 'the default'
  const info = await stat(home).catch((error: NodeJS.ErrnoException) => error)
  if (info instanceof Error) {
    if (info.code !== 'ENOENT') return [{name: 'home', status: 'fail', detail: `${home} (${source}) cannot be read: ${info.message}`, fix: `Fix the owner and mode of ${home}, or point ZENITH_HOME elsewhere`}]
    const parent = await nearestExisting(path.dirname(home))
    const writable = await access(parent, constants.W_OK | constants.X_OK).then(() => true, () => false)
    return [writable
      ? {name: 'home', status: 'ok', detail: `${home} (${source}) does not exist yet; the first zenith command makes it`}
      : {name: 'home', status: 'fail', detail: `${home} (${source}) does not exist, and ${parent} cannot be written to make it`, fix: `mkdir -p ${home} as a user who may, or point ZENITH_HOME at a folder you own`}]
  }

  if (!info.isDirectory()) return [{name: 'home', status: 'fail', detail: `${home} (${source}) is not a folder`, fix: 'Point ZENITH_HOME at a folder'}]
  const usable = await access(home, constants.R_OK | constants.W_OK | constants.X_OK).then(() => true, () => false)
  if (!usable) return [{name: 'home', status: 'fail', detail: `${home} (${source}) is not readable and writable by this user`, fix: `Run zenith as the owner of ${home}, or fix its owner (chown) and mode`}]
  return [{name: 'home', status: 'ok', detail: `${home} (${source}): readable and writable`}]
}

async function nearestExisting(folder: string): Promise<string> {
  let current = folder
  while (!(await stat(current).then(() => true, () => false)) && current !== path.dirname(current)) current = path.dirname(current)
  return current
}

/**
 * state.json: readable, of a schema version this zenith understands. Its data is what the
 * storage and pg checks go through; without it they are left out (this check says why).
 */
export async function storeCheck(home: string): Promise<{check: Check; data?: StoreData}> {
  const store = new Store(home)
  let text: string
  try {
    text = await readFile(store.file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {check: {name: 'store', status: 'ok', detail: `no ${store.file} yet (a new home)`}, data: await store.read()}
    return {check: {name: 'store', status: 'fail', detail: `${store.file} cannot be read: ${(error as Error).message}`, fix: `Run zenith as the owner of ${store.file}, or fix its owner and mode (0600)`}}
  }

  let data: StoreData
  try {
    data = await store.read()
  } catch (error) {
    if (!isZenithError(error)) throw error
    return {check: {name: 'store', status: 'fail', detail: error.message.replace(/\.$/, ''), fix: error.hint?.replace(/\.$/, '')}}
  }

  // store.read() migrates an older store in memory: the file's own version is what is on disk.
  const onDisk = (JSON.parse(text) as {version: number}).version
  const counts = `${count(data.storages, 'storage')}, ${count(data.pgs, 'pg')}, ${count(data.snapshots, 'snapshot')}, ${count(data.pitr, 'PITR area')}`
  const version = `schema version ${onDisk}${onDisk < SCHEMA_VERSION ? ` (migrated to ${SCHEMA_VERSION} on the next change)` : ''}`
  const stale = [...Object.values(data.pgs), ...Object.values(data.snapshots), ...Object.values(data.pitr)]
    .filter((item) => item.state !== 'ready' && (item.pid === undefined || !isAlive(item.pid)))
  if (stale.length > 0) {
    return {data, check: {name: 'store', status: 'warn', detail: `${version}; ${counts}; left half-done by a killed command: ${stale.map((item) => `${item.name} (${item.state})`).join(', ')}`,
      fix: 'zenith pg list (every zenith command but doctor repairs what a killed command left)'}}
  }

  return {data, check: {name: 'store', status: 'ok', detail: `${store.file}: ${version}; ${counts}`}}
}

function count(records: Record<string, unknown>, noun: string): string {
  const n = Object.keys(records).length
  return `${n} ${noun}${n === 1 ? '' : 's'}`
}

/**
 * The short folder for postgres' unix sockets: made by the next start when missing; else a
 * real folder (not a link) of the user postgres runs as, which can write it.
 */
export async function socketCheck(home: string, data: StoreData | undefined): Promise<Check> {
  const folder = socketDirOf(home)
  const info = await lstat(folder).catch(() => undefined)
  if (!info) {
    const parent = path.dirname(folder)
    const writable = await access(parent, constants.W_OK | constants.X_OK).then(() => true, () => false)
    return writable
      ? {name: 'sockets', status: 'ok', detail: `${folder} does not exist yet; the next pg start makes it`}
      : {name: 'sockets', status: 'fail', detail: `${folder} does not exist and ${parent} cannot be written to make it`, fix: `Let this user write ${parent} (it should be mode 1777), or set TMPDIR to a short folder it can write`}
  }

  if (info.isSymbolicLink() || !info.isDirectory()) {
    return {name: 'sockets', status: 'fail', detail: `${folder} is not a folder zenith made`, fix: `rm -rf ${folder} (the next pg start makes it again)`}
  }

  // A missing OS user is the user check's failure; here it only means no owner to compare with.
  const user = data && Object.keys(data.pgs).length > 0 ? await pgOsUser({home}).catch(() => undefined) : undefined
  const owner = user?.uid ?? process.getuid?.()
  // As root, a start gives the folder to the postgres OS user; until the first start it is root's.
  if (owner !== undefined && info.uid !== owner && !(user && info.uid === 0)) {
    return {name: 'sockets', status: 'fail', detail: `${folder} belongs to uid ${info.uid}, not ${user ? `the OS user ${user.name} postgres runs as` : 'this user'}`, fix: `rm -rf ${folder} (the next pg start makes it again)`}
  }

  const writable = await access(folder, constants.W_OK | constants.X_OK).then(() => true, () => false)
  if (!writable) return {name: 'sockets', status: 'fail', detail: `${folder} cannot be written`, fix: `chmod 700 ${folder}`}
  return {name: 'sockets', status: 'ok', detail: `${folder}: a folder of ${user ? user.name : 'this user'}, writable`}
}

/** The ssh client for ssh:// URLs (ZENITH_SSH_COMMAND or ssh): only a warning when missing, since only those URLs need it. */
export async function sshCheck(): Promise<Check> {
  const command = (process.env.ZENITH_SSH_COMMAND ?? 'ssh').trim().split(/\s+/)[0]
  const from = process.env.ZENITH_SSH_COMMAND ? ' (ZENITH_SSH_COMMAND)' : ''
  const found = await findExecutable(command)
  if (found) return {name: 'ssh', status: 'ok', detail: `${found}${from}, for push and pull to ssh:// URLs`}
  return {name: 'ssh', status: 'warn', detail: `${command}${from} is not found: push and pull to ssh:// URLs cannot work`,
    fix: process.env.ZENITH_SSH_COMMAND ? 'Point ZENITH_SSH_COMMAND at an ssh client' : 'Install an ssh client (apt-get install openssh-client)'}
}

/** `command` itself when it names a file, else the first match in the PATH. */
async function findExecutable(command: string): Promise<string | undefined> {
  const candidates = command.includes('/') ? [command] : (process.env.PATH ?? '').split(path.delimiter).filter(Boolean).map((dir) => path.join(dir, command))
  for (const candidate of candidates) {
    if (await access(candidate, constants.X_OK).then(() => true, () => false)) return candidate
  }

  return undefined
}

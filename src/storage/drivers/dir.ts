import {randomBytes} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {mkdir, open, readFile, readdir, rename, rm, stat} from 'node:fs/promises'
import {hostname} from 'node:os'
import path from 'node:path'
import type {Readable} from 'node:stream'

import {ZenithError} from '../../errors.js'
import {leftByDeadProcess} from '../../state/lock.js'
import {TaskPool} from '../../task-pool.js'
import type {StorageRecord, StorageType} from '../../state/schema.js'
import type {StorageDriver, StorageKind} from '../driver.js'
import {assertDataFilesystem} from '../filesystem.js'
import {probeObjectStore} from '../objects.js'
import {filesystemSpace, folderProblem} from '../health.js'
import type {ObjectStorage, StorageCapabilities, StorageHealth, WalArea} from '../storage.js'
import {FolderWalArea, walAreaPath} from '../wal.js'

const capabilities: StorageCapabilities = {volumes: false, atomicSnapshot: false, thinClone: false, exactSize: false, wal: true}

/** Files removed at once by deleteMany. */
const DELETE_CONCURRENCY = 16

/** Where writes are staged: `.staging/<host>-p<pid>/` of the folder, one folder per writing process. */
const STAGING = '.staging'

/** This host's name as a folder name: staging folders of other hosts sharing the folder are theirs. */
const HOST = hostname().replace(/[^\w-]/g, '_')

/**
 * A plain folder (a mounted share, a USB disk) that holds snapshots as objects, one file each,
 * and WAL areas. Writes go to a temporary file in this process's staging folder that is synced
 * and renamed into place, so a reader or a crash never sees half an object; the staging folders
 * of killed writers on this host are removed by `reclaim()` (on every command, and before the
 * first write of a process). A share may be used by several hosts: only this host's are touched.
 */
export class DirStorage implements ObjectStorage {
  readonly driver = 'dir'
  readonly capabilities = capabilities
  readonly location: string
  readonly record: StorageRecord
  readonly name: string
  readonly type: StorageType = 'dir'

  /** `record` is absent for a folder named by a file:// URL rather than attached. */
  constructor(private readonly root: string, record?: StorageRecord) {
    this.location = root
    this.record = record ?? {name: root, type: 'dir', path: root, options: {path: root}, createdAt: '', driver: 'dir'}
    this.name = this.record.name
  }

  walArea(area: string): WalArea {
    return new FolderWalArea(path.join(this.root, ...walAreaPath(area).split('/')))
  }

  private staging?: Promise<string>

  /** Staging folders of dead processes of this host (a killed push's temporary files). */
  async reclaim(): Promise<string[]> {
    const folder = path.join(this.root, STAGING)
    const owner = new RegExp(`^${HOST}-p(\\d+)$`)
    const removed: string[] = []
    for (const entry of await readdir(folder).catch(() => [] as string[])) {
      const pid = Number(owner.exec(entry)?.[1])
      if (!leftByDeadProcess(pid)) continue
      // A finished writer leaves its folder empty: removed without counting as a repair.
      const left = await readdir(path.join(folder, entry)).catch(() => [] as string[])
      await rm(path.join(folder, entry), {recursive: true, force: true})
      if (left.length > 0) removed.push(`${STAGING}/${entry}`)
    }

    return removed
  }

  /** This process's staging folder, made (after reclaiming dead ones) on the first write. */
  private stagingFolder(): Promise<string> {
    this.staging ??= (async () => {
      await this.reclaim().catch(() => undefined)
      const folder = path.join(this.root, STAGING, `${HOST}-p${process.pid}`)
      await mkdir(folder, {recursive: true})
      return folder
    })()
    return this.staging
  }

  /** Its folder (made when it was attached) exists and takes a write: a share that is not mounted fails here. */
  async checkHealth(): Promise<StorageHealth> {
    const problem = await folderProblem(this.root, this.name)
    if (problem) return {access: problem}
    return {access: {status: 'ok', detail: 'writable'}, space: await filesystemSpace(this.root)}
  }

  /** Creates the folder (a missing parent is the user's typo: refuse). */
  async prepare(): Promise<void> {
    const parent = path.dirname(this.root)
    const info = await stat(parent).catch(() => undefined)
    if (!info?.isDirectory()) {
      throw new ZenithError('INVALID_ARGUMENT', `The folder ${parent} does not exist.`, 'Create it (or mount the share) first, or pass another -c path=.')
    }

    await mkdir(this.root, {recursive: true}).catch((error: unknown) => {
      throw explainFsError(error, this.root)
    })
  }

  async put(key: string, body: Buffer): Promise<void> {
    const target = this.pathOf(key)
    let temporary: string | undefined
    try {
      await mkdir(path.dirname(target), {recursive: true})
      temporary = path.join(await this.stagingFolder(), `${randomBytes(6).toString('hex')}.tmp`)
      const handle = await open(temporary, 'w', 0o644)
      try {
        await handle.writeFile(body)
        await handle.datasync()
      } finally {
        await handle.close()
      }

      await rename(temporary, target)
    } catch (error) {
      if (temporary) await rm(temporary, {force: true})
      throw explainFsError(error, this.root)
    }
  }

  async get(key: string): Promise<Buffer | undefined> {
    try {
      return await readFile(this.pathOf(key))
    } catch (error) {
      if (isMissing(error)) return undefined
      throw explainFsError(error, this.root)
    }
  }

  async getRange(key: string, start: number, end: number): Promise<Buffer | undefined> {
    let handle
    try {
      handle = await open(this.pathOf(key), 'r')
    } catch (error) {
      if (isMissing(error)) return undefined
      throw explainFsError(error, this.root)
    }

    try {
      const buffer = Buffer.allocUnsafe(end - start + 1)
      let filled = 0
      while (filled < buffer.length) {
        const {bytesRead} = await handle.read(buffer, filled, buffer.length - filled, start + filled)
        if (bytesRead === 0) break
        filled += bytesRead
      }

      return buffer.subarray(0, filled)
    } finally {
      await handle.close()
    }
  }

  async getStream(key: string): Promise<Readable | undefined> {
    const file = this.pathOf(key)
    if (!(await this.head(key))) return undefined
    return createReadStream(file)
  }

  async head(key: string): Promise<{size: number} | undefined> {
    try {
      const info = await stat(this.pathOf(key))
      return info.isFile() ? {size: info.size} : undefined
    } catch (error) {
      if (isMissing(error)) return undefined
      throw explainFsError(error, this.root)
    }
  }

  async * list(prefix: string): AsyncIterable<{key: string; size: number}> {
    // Keys are laid out as folders; walk the folder that holds the prefix.
    const slash = prefix.lastIndexOf('/')
    const folder = slash === -1 ? '' : prefix.slice(0, slash)
    yield * this.walk(folder, prefix)
  }

  async delete(key: string): Promise<void> {
    await rm(this.pathOf(key), {force: true})
  }

  async deleteMany(keys: string[]): Promise<void> {
    await new TaskPool(DELETE_CONCURRENCY).forEach(keys, (key) => this.delete(key))
  }

  private async * walk(folder: string, prefix: string): AsyncIterable<{key: string; size: number}> {
    let entries
    try {
      entries = await readdir(path.join(this.root, folder), {withFileTypes: true})
    } catch (error) {
      if (isMissing(error)) return
      throw explainFsError(error, this.root)
    }

    for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (entry.name.startsWith('.')) continue
      const key = folder ? `${folder}/${entry.name}` : entry.name
      if (entry.isDirectory()) {
        if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) yield * this.walk(key, prefix)
      } else if (entry.isFile() && key.startsWith(prefix)) {
        const info = await stat(path.join(this.root, key)).catch(() => undefined)
        if (info) yield {key, size: info.size}
      }
    }
  }

  private pathOf(key: string): string {
    if (key.split('/').some((part) => part === '..' || part === '')) throw new Error(`invalid object key ${key}`)
    return path.join(this.root, ...key.split('/'))
  }
}

export const dirDriver: StorageDriver = {
  name: 'dir',
  capabilities,
  open(record) {
    const folder = record.path ?? record.options.path
    if (!folder) throw new Error(`dir storage ${record.name} has no path`)
    return new DirStorage(folder, record)
  },
}

/** `-t dir -c path=/some/folder`: proven with a probe object written, read back and deleted. */
export const dirKind: StorageKind = {
  type: 'dir',
  configure(name, options) {
    const folder = dirPath(options)
    return {name, type: 'dir', options: {path: folder}, createdAt: new Date().toISOString(), path: folder}
  },
  async attach(draft) {
    await assertDataFilesystem(draft.path!)
    const record: StorageRecord = {...draft, driver: 'dir'}
    const storage = new DirStorage(draft.path!, record)
    await storage.prepare()
    await probeObjectStore(storage)
    return record
  },
}

export function dirPath(options: Record<string, string>): string {
  const unknown = Object.keys(options).filter((key) => key !== 'path')
  if (unknown.length > 0) throw new ZenithError('INVALID_ARGUMENT', `Unknown dir option${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}.`, 'A dir storage takes only -c path=/some/folder.')
  if (!options.path) throw new ZenithError('INVALID_ARGUMENT', 'A dir storage needs a folder.', 'Pass -c path=/some/folder (e.g. a mounted share).')
  return path.resolve(options.path)
}

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code
  return code === 'ENOENT' || code === 'ENOTDIR'
}

function explainFsError(error: unknown, root: string): unknown {
  const code = (error as NodeJS.ErrnoException).code
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new ZenithError('PERMISSION_DENIED', `Cannot write to ${root}: ${(error as Error).message}.`, 'Check the folder\'s permissions (and that a share is mounted read-write).')
  }

  if (code === 'ENOSPC') {
    return new ZenithError('NOT_ENOUGH_DISK_SPACE', `No space left in ${root}.`, 'Free space on that disk, or push to another storage.')
  }

  return error
}

import {randomBytes} from 'node:crypto'
import {mkdir, open, readFile, readdir, rename, rm} from 'node:fs/promises'
import path from 'node:path'

import {ZenithError} from '../errors.js'
import {acquireLock, isAlive} from './lock.js'
import {migrate} from './migrations.js'
import {SCHEMA_VERSION, type StoreData, emptyStore} from './schema.js'

/**
 * The metadata store: one JSON file in ZENITH_HOME, read freely, changed only under the
 * cross-process lock and replaced atomically (write a temporary file, fsync, rename), so a
 * reader sees either the old or the new state and 20 concurrent writers lose nothing.
 */
export class Store {
  readonly file: string
  private readonly lockPath: string

  constructor(readonly home: string) {
    this.file = path.join(home, 'state.json')
    this.lockPath = path.join(home, 'state.lock')
  }

  async read(): Promise<StoreData> {
    let text: string
    try {
      text = await readFile(this.file, 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return emptyStore()
      throw error
    }

    return parseStore(text, this.file)
  }

  /** Runs `change` on the current state under the lock and saves what it leaves. Keep it short. */
  async update<T>(change: (data: StoreData) => T | Promise<T>): Promise<T> {
    await mkdir(this.home, {recursive: true})
    const lock = await acquireLock(this.lockPath)
    try {
      const data = await this.read()
      const result = await change(data)
      await this.write(data)
      return result
    } finally {
      await lock.release()
    }
  }

  /**
   * Removes the temporary files of writers that were killed between write and rename (their pid
   * is in the name); a live writer's file is left alone. Returns how many went.
   */
  async reclaimTemporaries(): Promise<number> {
    const prefix = `${path.basename(this.file)}.`
    let removed = 0
    for (const entry of await readdir(this.home).catch(() => [] as string[])) {
      const pid = Number(/^(\d+)\.[0-9a-f]+\.tmp$/.exec(entry.slice(prefix.length))?.[1])
      if (!entry.startsWith(prefix) || !pid || isAlive(pid)) continue
      await rm(path.join(this.home, entry), {force: true})
      removed++
    }

    return removed
  }

  private async write(data: StoreData): Promise<void> {
    const temporary = `${this.file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
    try {
      const handle = await open(temporary, 'w', 0o600)
      try {
        await handle.writeFile(JSON.stringify(data, null, 2) + '\n')
        await handle.sync()
      } finally {
        await handle.close()
      }

      await rename(temporary, this.file)
    } catch (error) {
      await rm(temporary, {force: true})
      throw error
    }
  }
}

export function parseStore(text: string, file: string): StoreData {
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch {
    throw corrupt(file, 'it is not valid JSON')
  }

  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw corrupt(file, 'it is not a JSON object')
  const record = data as Partial<StoreData>
  if (typeof record.version !== 'number') throw corrupt(file, 'it has no schema version')
  if (record.version > SCHEMA_VERSION) {
    throw new ZenithError('STORE_TOO_NEW',
      `The zenith store ${file} has schema version ${record.version}; this zenith understands up to ${SCHEMA_VERSION}.`,
      'Upgrade zenith (npm install -g zenith-pg@latest); the store was left untouched.')
  }

  for (const key of ['storages', 'pgs', 'snapshots', 'pitr'] as const) {
    const value = record[key]
    if (value === undefined) record[key] = {}
    else if (typeof value !== 'object' || value === null || Array.isArray(value)) throw corrupt(file, `"${key}" is not an object`)
  }

  // An older store is migrated as it is read; the next update saves it in the new shape.
  migrate(record)
  record.version = SCHEMA_VERSION
  return record as StoreData
}

function corrupt(file: string, why: string): ZenithError {
  return new ZenithError('STORE_CORRUPT', `The zenith store ${file} is corrupt: ${why}.`,
    `Restore it from a backup or move it aside (mv ${file} ${file}.bad); zenith will not overwrite it.`)
}

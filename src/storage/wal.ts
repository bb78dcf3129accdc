import {readdir, rm, stat} from 'node:fs/promises'
import path from 'node:path'

import {ZenithError} from '../errors.js'
import {readIfExists, storeSegmentFile, syncFolder} from '../wal-agent/segment-file.js'
import type {ObjectStore, WalArea, WalSegment} from './storage.js'

/** What postgres archives: segments, timeline history files, backup labels, partial segments. */
const SEGMENT_NAME = /^(?:[0-9A-F]{24}(?:\.partial|\.[0-9A-F]{8}\.backup)?|[0-9A-F]{8}\.history)$/
const AREA_NAME = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$/

export function validateSegmentName(name: string): string {
  if (!SEGMENT_NAME.test(name)) {
    throw new ZenithError('INVALID_ARGUMENT', `"${name}" is not a WAL file name.`,
      'WAL files are named like 000000010000000000000001 (or .history, .backup, .partial), as postgres passes them to archive_command as %f.')
  }

  return name
}

export function validateAreaName(area: string): string {
  if (!AREA_NAME.test(area) || area.includes('..')) {
    throw new ZenithError('INVALID_NAME', `"${area}" is not a valid WAL area name.`, 'Use letters, digits, "_", "-", "." and "@".')
  }

  return area
}

function conflict(location: string, name: string): ZenithError {
  return new ZenithError('WAL_CONFLICT', `WAL file ${name} is already stored in ${location} with different content; the stored one was kept.`,
    'Two servers archive into one WAL area (or the pg was restored without a new timeline): give each its own area.')
}

function notFound(location: string, name: string): ZenithError {
  return new ZenithError('WAL_SEGMENT_NOT_FOUND', `WAL file ${name} is not stored in ${location}.`, 'List the area to see which segments it holds.')
}

function inRange(name: string, from: string, to: string): boolean {
  return name >= from && name <= to
}

/**
 * A WAL area in a local folder (folder drivers and dir storages): one file per segment, stored
 * as the archive command stores it (storeSegmentFile: fsynced, hard-linked, never replaced).
 */
export class FolderWalArea implements WalArea {
  constructor(private readonly dir: string) {}

  get folder(): string {
    return this.dir
  }

  async append(name: string, body: Buffer): Promise<'stored' | 'identical'> {
    const result = await storeSegmentFile(this.dir, validateSegmentName(name), body)
    if (result === 'conflict') throw conflict(this.dir, name)
    return result
  }

  async list(): Promise<WalSegment[]> {
    const names = await readdir(this.dir).catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [] as string[]
      throw error
    })
    const segments: WalSegment[] = []
    for (const name of names.filter((item) => SEGMENT_NAME.test(item)).sort()) {
      const info = await stat(path.join(this.dir, name)).catch(() => undefined)
      if (info?.isFile()) segments.push({name, size: info.size})
    }

    return segments
  }

  async read(name: string): Promise<Buffer> {
    const body = await readIfExists(path.join(this.dir, validateSegmentName(name)))
    if (!body) throw notFound(this.dir, name)
    return body
  }

  async deleteRange(from: string, to: string): Promise<string[]> {
    const doomed = (await this.list()).map((segment) => segment.name).filter((name) => inRange(name, from, to))
    for (const name of doomed) await rm(path.join(this.dir, name), {force: true})
    if (doomed.length > 0) await syncFolder(this.dir)
    return doomed
  }

  async remove(names: string[]): Promise<void> {
    for (const name of names) await rm(path.join(this.dir, validateSegmentName(name)), {force: true})
    if (names.length > 0) await syncFolder(this.dir).catch(() => undefined)
  }
}

/**
 * A WAL area in an object store (s3) under `wal/<area>/`. `putIfAbsent` is the store's
 * create-only write (S3 `If-None-Match: *`); it returns false when the object already exists.
 */
export class ObjectWalArea implements WalArea {
  constructor(
    private readonly store: ObjectStore,
    private readonly prefix: string,
    private readonly putIfAbsent: (key: string, body: Buffer) => Promise<boolean>,
  ) {}

  async append(name: string, body: Buffer): Promise<'stored' | 'identical'> {
    const key = this.keyOf(validateSegmentName(name))
    const existing = await this.store.get(key)
    if (existing) return this.compare(existing, body, name)
    if (await this.putIfAbsent(key, body)) return 'stored'
    return this.compare((await this.store.get(key)) ?? Buffer.alloc(0), body, name)
  }

  async list(): Promise<WalSegment[]> {
    const segments: WalSegment[] = []
    for await (const item of this.store.list(this.prefix)) {
      const name = item.key.slice(this.prefix.length)
      if (SEGMENT_NAME.test(name)) segments.push({name, size: item.size})
    }

    return segments.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  }

  async read(name: string): Promise<Buffer> {
    const body = await this.store.get(this.keyOf(validateSegmentName(name)))
    if (!body) throw notFound(`${this.store.location}/${this.prefix}`, name)
    return body
  }

  async deleteRange(from: string, to: string): Promise<string[]> {
    const doomed = (await this.list()).map((segment) => segment.name).filter((name) => inRange(name, from, to))
    for (const name of doomed) await this.store.delete(this.keyOf(name))
    return doomed
  }

  async remove(names: string[]): Promise<void> {
    await this.store.deleteMany(names.map((name) => this.keyOf(validateSegmentName(name))))
  }

  private keyOf(name: string): string {
    return `${this.prefix}${name}`
  }

  private compare(stored: Buffer, body: Buffer, name: string): 'identical' {
    if (!stored.equals(body)) throw conflict(`${this.store.location}/${this.prefix}`, name)
    return 'identical'
  }
}

/** Where a storage keeps the WAL area `area`, relative to its root (a folder or a key prefix). */
export function walAreaPath(area: string): string {
  return `wal/${validateAreaName(area)}`
}

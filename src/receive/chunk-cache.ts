import {randomBytes} from 'node:crypto'
import {type FileHandle, mkdir, open, readdir, rename, rm, stat, utimes} from 'node:fs/promises'
import path from 'node:path'

import {isAlive} from '../state/lock.js'

/** How long the verified chunks of a failed or killed pull wait for a re-run before they are reclaimed. */
export const CACHE_KEEP_MS = 7 * 24 * 3600 * 1000

/** A record in a pack: the chunk's sha256 (32 bytes), its stored length (uint32 BE), then the stored bytes. */
const RECORD_HEADER = 36

/**
 * Verified chunks (compressed, as stored remotely) kept on disk while a snapshot is being
 * received, so that an interrupted pull or recv fetches only what is still missing when it is
 * run again. Only chunks whose sha256 matched are ever put here; they are checked again when
 * read, because a crash can leave a record half-written.
 *
 * Each transfer works in its own folder `cache/<kind>-<key>.p<pid>.<random>`, so two pulls of
 * the same snapshot never remove each other's chunks. A new transfer with the same key adopts
 * (renames to its own name) the folders of owners that are gone: that is how a re-run resumes.
 * Chunks are appended to one pack file per transfer rather than a file each: creating
 * thousands of small files costs more than the whole rest of a local pull.
 */
export class ChunkCache {
  private readonly known = new Map<string, {pack: string; offset: number; length: number}>()
  private pack?: {file: string; handle: Promise<FileHandle>; end: number}
  private readonly readers = new Map<string, Promise<FileHandle>>()

  private constructor(readonly dir: string) {}

  /**
   * A working folder for one transfer, holding the chunks of earlier transfers with the same
   * key whose process is gone (a failed or killed pull of the same snapshot from the same remote).
   */
  static async claim(home: string, kind: 'pull' | 'recv' | 'ssh', key: string): Promise<ChunkCache> {
    const root = path.join(home, 'cache')
    await mkdir(root, {recursive: true, mode: 0o700})
    const cache = new ChunkCache(path.join(root, `${kind}-${key}.p${process.pid}.${randomBytes(3).toString('hex')}`))
    await mkdir(cache.dir, {mode: 0o700})
    for (const entry of await readdir(root)) {
      const owner = ownerOf(entry, kind, key)
      if (owner === undefined || owner === process.pid || (owner > 0 && isAlive(owner))) continue
      await cache.adopt(path.join(root, entry))
    }

    for (const name of await readdir(cache.dir)) {
      if (name.startsWith('pack-')) await cache.index(name)
    }

    return cache
  }

  /** Hashes of the chunks an earlier transfer left here (unverified until read). */
  get cached(): string[] {
    return [...this.known.keys()]
  }

  has(hash: string): boolean {
    return this.known.has(hash)
  }

  async put(hash: string, stored: Buffer): Promise<void> {
    if (!this.pack) {
      const file = `pack-${randomBytes(4).toString('hex')}`
      this.pack = {file, handle: open(path.join(this.dir, file), 'wx', 0o600), end: 0}
    }

    const pack = this.pack
    const header = Buffer.alloc(RECORD_HEADER)
    header.write(hash, 'hex')
    header.writeUInt32BE(stored.length, 32)
    // Offsets are reserved before any await, so parallel puts never overlap.
    const offset = pack.end
    pack.end += RECORD_HEADER + stored.length
    const handle = await pack.handle
    await handle.writev([header, stored], offset)
    this.known.set(hash, {pack: pack.file, offset: offset + RECORD_HEADER, length: stored.length})
  }

  async read(hash: string): Promise<Buffer> {
    const where = this.known.get(hash)
    if (!where) throw new Error(`chunk ${hash} is not in the cache`)
    let reader = this.readers.get(where.pack)
    if (!reader) {
      reader = open(path.join(this.dir, where.pack), 'r')
      this.readers.set(where.pack, reader)
    }

    const buffer = Buffer.allocUnsafe(where.length)
    const {bytesRead} = await (await reader).read(buffer, 0, where.length, where.offset)
    return buffer.subarray(0, bytesRead)
  }

  /** After a failure: nothing worth keeping goes; otherwise the folder waits for a re-run. */
  async release(): Promise<void> {
    await this.close()
    if (this.known.size === 0) {
      await this.remove()
      return
    }

    // Its age is what reclaimCaches looks at.
    const now = new Date()
    await utimes(this.dir, now, now).catch(() => undefined)
  }

  async remove(): Promise<void> {
    await this.close()
    await rm(this.dir, {recursive: true, force: true})
  }

  private async close(): Promise<void> {
    const handles = [...this.readers.values()]
    if (this.pack) handles.push(this.pack.handle)
    this.readers.clear()
    this.pack = undefined
    for (const handle of handles) {
      // A pack that failed to open has nothing to close; the failure reached its put already.
      await handle.then((opened) => opened.close()).catch(() => undefined)
    }
  }

  /** Reads the headers of a pack; stops at the first record a crash cut short. */
  private async index(name: string): Promise<void> {
    const handle = await open(path.join(this.dir, name), 'r')
    try {
      const size = (await handle.stat()).size
      const header = Buffer.alloc(RECORD_HEADER)
      let offset = 0
      while (offset + RECORD_HEADER <= size) {
        await handle.read(header, 0, RECORD_HEADER, offset)
        const length = header.readUInt32BE(32)
        if (length === 0 || offset + RECORD_HEADER + length > size) break
        this.known.set(header.subarray(0, 32).toString('hex'), {pack: name, offset: offset + RECORD_HEADER, length})
        offset += RECORD_HEADER + length
      }
    } finally {
      await handle.close()
    }
  }

  /** Takes over a dead transfer's folder; of several new transfers, exactly one gets it. */
  private async adopt(folder: string): Promise<void> {
    const taken = `${this.dir}.adopting-${path.basename(folder)}`
    try {
      await rename(folder, taken)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return
      throw error
    }

    for (const name of await readdir(taken)) {
      if (name.startsWith('pack-')) await rename(path.join(taken, name), path.join(this.dir, `pack-${randomBytes(4).toString('hex')}`))
    }

    await rm(taken, {recursive: true, force: true})
  }
}

/**
 * The owning pid of a cache folder of this kind and key; 0 for the folders of zenith versions
 * that did not record one; undefined for any other folder.
 */
function ownerOf(entry: string, kind: string, key: string): number | undefined {
  if (entry === `${kind}-${key}`) return 0
  const match = /^([a-z]+)-([0-9a-f]+)\.p(\d+)\.[0-9a-f]+$/.exec(entry)
  return match && match[1] === kind && match[2] === key ? Number(match[3]) : undefined
}

/**
 * Removes what killed transfers left in ZENITH_HOME/cache: a dead recv's folder at once (its URL
 * and token died with it, so nothing can resume it), a dead pull's folder once it has waited
 * CACHE_KEEP_MS for a re-run, and half-adopted folders of dead processes.
 */
export async function reclaimCaches(home: string, now = Date.now()): Promise<string[]> {
  const root = path.join(home, 'cache')
  const removed: string[] = []
  for (const entry of await readdir(root).catch(() => [] as string[])) {
    const match = /^(pull|recv|ssh)-[0-9a-f]+(?:\.p(\d+)\.[0-9a-f]+)?(\.adopting-.*)?$/.exec(entry)
    if (!match) continue
    const owner = Number(match[2] ?? 0)
    if (owner === process.pid || (owner > 0 && isAlive(owner))) continue
    const folder = path.join(root, entry)
    const info = await stat(folder).catch(() => undefined)
    if (!info) continue
    const expired = match[1] === 'recv' || match[3] !== undefined || now - info.mtimeMs > CACHE_KEEP_MS
    if (!expired) continue
    await rm(folder, {recursive: true, force: true})
    removed.push(entry)
  }

  return removed
}

import {type FileHandle, chmod, lutimes, mkdir, open, symlink, utimes} from 'node:fs/promises'
import path from 'node:path'

import type {ArchiveManifest, ManifestFile} from '../archive/manifest.js'
import type {Zenith} from '../context.js'
import {ZenithError} from '../errors.js'
import type {OnProgress} from '../progress.js'
import {addSnapshot} from '../snapshot/records.js'
import type {SnapshotRecord} from '../state/schema.js'
import {TaskPool} from './pool.js'

/** Logical (uncompressed) size of every distinct chunk a manifest names. */
export function chunkSizes(manifest: ArchiveManifest): Map<string, number> {
  const sizes = new Map<string, number>()
  for (const file of manifest.files) {
    file.chunks.forEach((hash, i) => sizes.set(hash, Math.min(manifest.chunkSize, file.size - i * manifest.chunkSize)))
  }

  return sizes
}

/** The file(s) a chunk belongs to, for an error message that names what is damaged. */
export function filesOfChunk(manifest: ArchiveManifest, hash: string): string {
  const files = manifest.files.filter((file) => file.chunks.includes(hash)).map((file) => file.path)
  return files.length > 3 ? `${files.slice(0, 3).join(', ')} and ${files.length - 3} more` : files.join(', ')
}

/** A chunk that could not be had: gone from the source, or its content does not match its sha256. */
export interface DamagedChunk {
  hash: string
  missing: boolean
  /** The pack object it should be in, when it is missing because the whole pack is. */
  pack?: string
}

/**
 * Where the chunks of a snapshot being written come from. `content` returns a chunk's
 * decompressed content, already checked against its sha256 and expected size, or says why it
 * cannot. It is called once per distinct chunk, up to `concurrency` at a time.
 */
export interface ChunkSource {
  readonly concurrency: number
  content(hash: string, size: number): Promise<Buffer | DamagedChunk>
  /** The order in which to ask for the chunks (e.g. as they lie in the remote's packs); default: the manifest's. */
  order?(hashes: string[]): string[]
}

interface Placement {
  file: TargetFile
  offset: number
}

/**
 * A regular file being written. It is created (`wx`) when its first chunk arrives and kept open
 * until its last chunk is written; then its mode and time are set through the same handle and it
 * is closed: one open and one close per file instead of one per chunk, no pre-sizing (its last
 * chunk ends at its size), no path lookups for chmod and utimes.
 */
interface TargetFile {
  path: string
  mode: number
  mtime?: Date
  /** Placements not yet written. */
  remaining: number
  /** Writes in progress through `handle`. */
  busy: number
  created: boolean
  handle?: Promise<FileHandle>
}

/** Files kept open at once; beyond it, a file between writes is closed and opened again for its next chunk. */
const MAX_OPEN_FILES = 256

/**
 * Whether a file can be created with its final mode (one chmod less per file): a mode the umask
 * leaves alone, with no bits open(2) ignores, that still lets the owner reopen it for writing.
 */
function createdWithMode(mode: number): boolean {
  umask ??= process.umask()
  return (mode & 0o7777) === (mode & 0o777 & ~umask) && (mode & 0o200) !== 0
}

let umask: number | undefined

/** Files and symlinks given their modes and times at once. */
const FILE_CREATION_CONCURRENCY = 4

/** The open handles of the files being written (see TargetFile). */
class OpenFiles {
  private open = 0
  private readonly handles = new Set<Promise<FileHandle>>()

  async write(place: Placement, content: Buffer): Promise<void> {
    const file = place.file
    file.busy++
    let wrote = false
    try {
      if (!file.handle) {
        file.handle = open(file.path, file.created ? 'r+' : 'wx', createdWithMode(file.mode) ? file.mode : 0o600)
        file.created = true
        this.open++
        this.handles.add(file.handle)
      }

      const handle = await file.handle
      let written = 0
      while (written < content.length) {
        const {bytesWritten} = await handle.write(content, written, content.length - written, place.offset + written)
        written += bytesWritten
      }

      wrote = true
    } finally {
      file.busy--
      if (wrote) file.remaining--
    }

    if (file.busy > 0) return
    if (file.remaining === 0) {
      await this.close(file, true)
    } else if (this.open > MAX_OPEN_FILES) {
      await this.close(file, false)
    }
  }

  /** Closes whatever is still open (after a failure: before the folder is removed). */
  async closeAll(): Promise<void> {
    const handles = [...this.handles]
    this.handles.clear()
    await Promise.allSettled(handles.map(async (handle) => (await handle).close()))
  }

  private async close(file: TargetFile, finished: boolean): Promise<void> {
    const pending = file.handle
    if (!pending) return
    file.handle = undefined
    this.open--
    this.handles.delete(pending)
    const handle = await pending
    try {
      if (finished) {
        if (!createdWithMode(file.mode)) await handle.chmod(file.mode & 0o7777)
        if (file.mtime) await handle.utimes(file.mtime, file.mtime)
      }
    } finally {
      await handle.close()
    }
  }
}

/**
 * Makes a local snapshot from a manifest: the folders are laid out in addSnapshot's scratch
 * folder, then each distinct chunk is obtained from `source` (verified there) and written at its
 * place(s) as it arrives, each file created by its first chunk. A damaged chunk does not stop
 * the others (so a re-run finds every good one in its cache); when any is damaged the error
 * from `damaged` is thrown and addSnapshot removes everything: nothing becomes visible before
 * every chunk has been verified.
 */
export async function assembleSnapshot(zenith: Zenith, options: {
  name: string; storage?: string; manifest: ArchiveManifest; source: ChunkSource; label: string; onProgress: OnProgress
  damaged: (chunks: DamagedChunk[]) => Error
}): Promise<SnapshotRecord> {
  const {manifest, source, label} = options
  checkChunkCounts(manifest)
  return addSnapshot(zenith, {
    name: options.name,
    storage: options.storage,
    method: 'import',
    async fill(dir) {
      // Folders and symlinks first (parents before children). A regular file is created when
      // its first chunk arrives and finished (mode, time, close) when its last one is written.
      const target = (file: ManifestFile) => path.join(dir, ...file.path.split('/'))
      const time = (file: ManifestFile) => (file.mtime === undefined ? undefined : new Date(file.mtime * 1000))
      const empty: ManifestFile[] = []
      const placements = new Map<string, Placement[]>()
      for (const file of manifest.files) {
        if (file.type === 'dir') {
          await mkdir(target(file), {mode: 0o700})
        } else if (file.type === 'symlink') {
          await symlink(file.target ?? '', target(file))
        } else if (file.chunks.length === 0) {
          empty.push(file)
        } else {
          const written: TargetFile = {path: target(file), mode: file.mode, mtime: time(file), remaining: file.chunks.length, busy: 0, created: false}
          file.chunks.forEach((hash, i) => {
            const at = {file: written, offset: i * manifest.chunkSize}
            const list = placements.get(hash)
            if (list) list.push(at)
            else placements.set(hash, [at])
          })
        }
      }

      const sizes = chunkSizes(manifest)
      const pool = new TaskPool(source.concurrency)
      const files = new OpenFiles()
      const damaged: DamagedChunk[] = []
      let done = 0
      try {
        const order = source.order ? source.order([...placements.keys()]) : [...placements.keys()]
        for (const hash of order) {
          const places = placements.get(hash)!
          await pool.run(async () => {
            const content = await source.content(hash, sizes.get(hash)!)
            if (!Buffer.isBuffer(content)) {
              damaged.push(content)
              return
            }

            await Promise.all(places.map((place) => files.write(place, content)))
            done += content.length * places.length
            options.onProgress({type: 'bytes', label, done, total: manifest.totalBytes})
          })
        }

        await pool.drain()
      } finally {
        // Nothing may still be writing into the folder when a failure has it removed.
        await pool.settle()
        await files.closeAll()
      }

      options.onProgress({type: 'bytes-end', label, done})
      if (damaged.length > 0) throw options.damaged(damaged)

      // Empty files, then the times of symlinks, then the modes and times of folders, children
      // before parents, so that a read-only folder does not block its own content.
      const finishing = new TaskPool(FILE_CREATION_CONCURRENCY)
      for (const file of [...empty, ...manifest.files.filter((item) => item.type === 'symlink')]) {
        await finishing.run(async () => {
          const at = time(file)
          if (file.type === 'symlink') {
            if (at) await lutimes(target(file), at, at)
            return
          }

          const handle = await open(target(file), 'wx', 0o600)
          try {
            await handle.chmod(file.mode & 0o7777)
            if (at) await handle.utimes(at, at)
          } finally {
            await handle.close()
          }
        })
      }

      await finishing.drain()
      for (const file of [...manifest.files].reverse()) {
        if (file.type !== 'dir') continue
        const at = time(file)
        await chmod(target(file), file.mode & 0o7777)
        if (at) await utimes(target(file), at, at)
      }
    },
  })
}

/** A file of N bytes has ceil(N / chunkSize) chunks: otherwise chunk offsets and sizes are wrong. */
function checkChunkCounts(manifest: ArchiveManifest): void {
  for (const file of manifest.files) {
    if (file.type === 'file' && file.chunks.length !== Math.ceil(file.size / manifest.chunkSize)) {
      throw new ZenithError('ARCHIVE_INVALID', `${file.path} should have ${file.size} bytes but the manifest lists ${file.chunks.length} chunks of ${manifest.chunkSize} for it.`,
        'The manifest is damaged: push the snapshot again with --force.')
    }
  }
}

import {chmod, lutimes, mkdir, open, symlink, utimes} from 'node:fs/promises'
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
  file: string
  offset: number
  created: Promise<void>
}

/** Files created (or given their modes and times) at once. */
const FILE_CREATION_CONCURRENCY = 4

interface Deferred {
  promise: Promise<void>
  resolve: () => void
  reject: (error: unknown) => void
}

function deferred(): Deferred {
  let resolve!: () => void
  let reject!: (error: unknown) => void
  const promise = new Promise<void>((ok, fail) => {
    resolve = ok
    reject = fail
  })
  // Awaited by the chunk writes into that file; a failure is thrown where the layout is awaited.
  promise.catch(() => undefined)
  return {promise, resolve, reject}
}

/**
 * Makes a local snapshot from a manifest: the data directory is laid out in addSnapshot's
 * scratch folder (files pre-sized), then each distinct chunk is obtained from `source`
 * (verified there) and written at its place(s) as it arrives. A damaged chunk does not stop
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
      // Folders and symlinks first (parents before children); files are created in the
      // background while the first chunks are on their way: on a busy disk, creating a data
      // directory's thousand files takes as long as fetching its chunks.
      const files: Array<{target: string; size: number; created: Deferred}> = []
      const placements = new Map<string, Placement[]>()
      for (const file of manifest.files) {
        const target = path.join(dir, ...file.path.split('/'))
        if (file.type === 'dir') {
          await mkdir(target, {mode: 0o700})
        } else if (file.type === 'symlink') {
          await symlink(file.target ?? '', target)
        } else {
          const created = deferred()
          files.push({target, size: file.size, created})
          file.chunks.forEach((hash, i) => {
            const at = {file: target, offset: i * manifest.chunkSize, created: created.promise}
            const list = placements.get(hash)
            if (list) list.push(at)
            else placements.set(hash, [at])
          })
        }
      }

      let next = 0
      const layout = Promise.all(Array.from({length: FILE_CREATION_CONCURRENCY}, async () => {
        while (next < files.length) {
          const file = files[next++]
          try {
            await createSized(file.target, file.size)
            file.created.resolve()
          } catch (error) {
            file.created.reject(error)
            throw error
          }
        }
      }))
      layout.catch(() => {
        // Thrown by `await layout` below, or by the chunk writes waiting for that file.
      })

      const sizes = chunkSizes(manifest)
      const pool = new TaskPool(source.concurrency)
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

            for (const place of places) {
              await place.created
              await writeAt(place, content)
              done += content.length
            }

            options.onProgress({type: 'bytes', label, done, total: manifest.totalBytes})
          })
        }

        await pool.drain()
        await layout
      } finally {
        // Nothing may still be writing into the folder when a failure has it removed.
        await pool.settle()
        await Promise.allSettled([layout])
      }

      options.onProgress({type: 'bytes-end', label, done})
      if (damaged.length > 0) throw options.damaged(damaged)

      // Modes and times last, once nothing more is written: files and symlinks in parallel (a
      // file's mode and time do not touch its folder), then folders children before parents, so
      // that a read-only folder does not block its own content.
      const target = (file: ManifestFile) => path.join(dir, ...file.path.split('/'))
      const time = (file: ManifestFile) => (file.mtime === undefined ? undefined : new Date(file.mtime * 1000))
      const finishing = new TaskPool(FILE_CREATION_CONCURRENCY)
      for (const file of manifest.files) {
        if (file.type === 'dir') continue
        await finishing.run(async () => {
          const at = time(file)
          if (file.type === 'symlink') {
            if (at) await lutimes(target(file), at, at)
            return
          }

          await chmod(target(file), file.mode & 0o7777)
          if (at) await utimes(target(file), at, at)
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

/** An empty file of its final size, so that chunks can be written at their offsets in any order. */
async function createSized(target: string, size: number): Promise<void> {
  const handle = await open(target, 'wx', 0o600)
  try {
    if (size > 0) await handle.truncate(size)
  } finally {
    await handle.close()
  }
}

async function writeAt(place: Placement, content: Buffer): Promise<void> {
  // One open per placement: a data directory has thousands of files, too many to keep open,
  // and an open costs microseconds next to a chunk's transfer.
  const handle = await open(place.file, 'r+')
  try {
    let written = 0
    while (written < content.length) {
      const {bytesWritten} = await handle.write(content, written, content.length - written, place.offset + written)
      written += bytesWritten
    }
  } finally {
    await handle.close()
  }
}

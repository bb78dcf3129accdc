import {chmodSync, lutimesSync, utimesSync} from 'node:fs'
import {mkdir, symlink} from 'node:fs/promises'
import path from 'node:path'

import type {ArchiveManifest, ManifestFile} from '../archive/manifest.js'
import type {Zenith} from '../context.js'
import {ZenithError} from '../errors.js'
import type {OnProgress} from '../progress.js'
import {addSnapshot} from '../snapshot/records.js'
import type {SnapshotRecord} from '../state/schema.js'
import type {TargetFile} from './chunk-writer.js'
import {ChunkWriters} from './chunk-writers.js'
import {TaskPool} from '../task-pool.js'

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
 * Where the chunks of a snapshot being written come from. `stored` returns a chunk as stored
 * (compressed, not yet checked) or says why it cannot be had; the writer threads check each
 * against its sha256 and expected size before they write it. It is called once per distinct
 * chunk, up to `concurrency` at a time.
 */
export interface ChunkSource {
  readonly concurrency: number
  stored(hash: string): Promise<Buffer | DamagedChunk>
  /** Called once a chunk from `stored` was found good (e.g. to keep it for a re-run). */
  verified?(hash: string, stored: Buffer): Promise<void>
  /** A second chance for a chunk `stored` gave damaged (e.g. fetched again instead of from a cache). */
  refetch?(hash: string): Promise<Buffer | DamagedChunk>
  /** The order in which to ask for the chunks (e.g. as they lie in the remote's packs); default: the manifest's. */
  order?(hashes: string[]): string[]
}

/**
 * Whether a file can be created with its final mode (one chmod less per file): a mode the umask
 * leaves alone, with no bits open(2) ignores, that still lets the owner reopen it for writing.
 */
function createdWithMode(mode: number): boolean {
  umask ??= process.umask()
  return (mode & 0o7777) === (mode & 0o777 & ~umask) && (mode & 0o200) !== 0
}

let umask: number | undefined

/**
 * Makes a local snapshot from a manifest: the folders are laid out in addSnapshot's scratch
 * folder, then each distinct chunk is obtained from `source` and handed to a writer thread,
 * which checks it and writes it at its place(s), each file created by its first chunk. A damaged chunk does not stop
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
    // What the files add up to, as the manifest says (and every chunk is checked against it).
    logicalBytes: manifest.totalBytes,
    async fill(dir) {
      // Folders and symlinks first (parents before children); regular files are created by
      // the writer threads, with their first chunk (empty ones when all are written).
      const target = (file: ManifestFile) => path.join(dir, ...file.path.split('/'))
      const time = (file: ManifestFile) => (file.mtime === undefined ? undefined : new Date(file.mtime * 1000))
      const files: TargetFile[] = []
      const placements = new Map<string, Array<[number, number]>>()
      for (const file of manifest.files) {
        if (file.type === 'dir') {
          await mkdir(target(file), {mode: 0o700})
        } else if (file.type === 'symlink') {
          await symlink(file.target ?? '', target(file))
        } else {
          const index = files.push({path: target(file), mode: file.mode, createdWithMode: createdWithMode(file.mode), mtime: file.mtime, places: file.chunks.length, size: file.size}) - 1
          file.chunks.forEach((hash, i) => {
            const at: [number, number] = [index, i * manifest.chunkSize]
            const list = placements.get(hash)
            if (list) list.push(at)
            else placements.set(hash, [at])
          })
        }
      }

      const sizes = chunkSizes(manifest)
      const pool = new TaskPool(source.concurrency)
      const writers = new ChunkWriters(files)
      const damaged: DamagedChunk[] = []
      let done = 0
      // Writes a chunk at all its places; false when it does not match its sha256 (nothing is written then).
      const write = async (hash: string, stored: Buffer): Promise<boolean> => {
        const reply = await writers.write(hash, sizes.get(hash)!, stored, placements.get(hash)!)
        if (!reply.ok && !reply.corrupt) throw Object.assign(new Error(reply.message), {code: reply.code})
        return reply.ok
      }

      try {
        const order = source.order ? source.order([...placements.keys()]) : [...placements.keys()]
        for (const hash of order) {
          await pool.run(async () => {
            let stored = await source.stored(hash)
            let good = Buffer.isBuffer(stored) && await write(hash, stored)
            if (!good && Buffer.isBuffer(stored) && source.refetch) {
              stored = await source.refetch(hash)
              good = Buffer.isBuffer(stored) && await write(hash, stored)
            }

            if (!Buffer.isBuffer(stored) || !good) {
              damaged.push(Buffer.isBuffer(stored) ? {hash, missing: false} : stored)
              return
            }

            await source.verified?.(hash, stored)
            done += sizes.get(hash)! * placements.get(hash)!.length
            options.onProgress({type: 'bytes', label, done, total: manifest.totalBytes})
          })
        }

        await pool.drain()
        if (damaged.length === 0) await writers.finish()
      } finally {
        // Nothing may still be writing into the folder when a failure has it removed.
        await pool.settle()
        await writers.close()
      }

      options.onProgress({type: 'bytes-end', label, done})
      if (damaged.length > 0) throw options.damaged(damaged)

      // The times of symlinks, then the modes and times of folders, children before parents, so
      // that a read-only folder does not block its own content. A few dozen calls: made
      // synchronously, as a round trip through libuv's thread pool costs more than each of them.
      for (const file of manifest.files) {
        const at = time(file)
        if (file.type === 'symlink' && at) lutimesSync(target(file), at, at)
      }

      for (const file of [...manifest.files].reverse()) {
        if (file.type !== 'dir') continue
        const at = time(file)
        chmodSync(target(file), file.mode & 0o7777)
        if (at) utimesSync(target(file), at, at)
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

import {chmod, lutimes, mkdir, open, symlink, utimes} from 'node:fs/promises'
import path from 'node:path'

import type {ArchiveManifest} from '../archive/manifest.js'
import type {Zenith} from '../context.js'
import {ZenithError} from '../errors.js'
import type {OnProgress} from '../progress.js'
import {openChunk} from '../remote/chunker.js'
import {addSnapshot} from '../snapshot/records.js'
import type {SnapshotRecord} from '../state/schema.js'
import type {ChunkCache} from './chunk-cache.js'

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

/**
 * Makes a local snapshot from a manifest whose chunks are all in the cache: the data directory
 * is written into addSnapshot's scratch folder, every chunk checked against its sha256 again on
 * the way, and only then does the snapshot become visible. Any failure leaves nothing.
 */
export async function assembleSnapshot(zenith: Zenith, options: {name: string; storage?: string; manifest: ArchiveManifest; cache: ChunkCache; onProgress: OnProgress}): Promise<SnapshotRecord> {
  const {manifest, cache} = options
  const label = `Writing ${options.name}`
  return addSnapshot(zenith, {
    name: options.name,
    storage: options.storage,
    method: 'import',
    async fill(dir) {
      let done = 0
      for (const file of manifest.files) {
        const target = path.join(dir, ...file.path.split('/'))
        if (file.type === 'dir') {
          await mkdir(target, {mode: 0o700})
        } else if (file.type === 'symlink') {
          await symlink(file.target ?? '', target)
        } else {
          const handle = await open(target, 'wx', 0o600)
          try {
            let written = 0
            for (const hash of file.chunks) {
              const content = await openChunk(await cache.read(hash), hash)
              if (!content) {
                throw new ZenithError('CHECKSUM_MISMATCH', `Chunk ${hash} of ${file.path} changed on disk after it was verified; nothing was created.`,
                  'Run the command again: the damaged chunk is fetched again.')
              }

              await handle.write(content, 0, content.length, written)
              written += content.length
              done += content.length
              options.onProgress({type: 'bytes', label, done, total: manifest.totalBytes})
            }

            if (written !== file.size) {
              throw new ZenithError('ARCHIVE_INVALID', `${file.path} should have ${file.size} bytes but its chunks hold ${written}.`, 'The manifest is damaged: push the snapshot again with --force.')
            }
          } finally {
            await handle.close()
          }
        }
      }

      // Modes and times last, children before parents, so that writing into a folder does not
      // change its time and a read-only folder does not block its own content.
      for (const file of [...manifest.files].reverse()) {
        const target = path.join(dir, ...file.path.split('/'))
        const time = file.mtime === undefined ? undefined : new Date(file.mtime)
        if (file.type === 'symlink') {
          if (time) await lutimes(target, time, time)
          continue
        }

        await chmod(target, file.mode & 0o7777)
        if (time) await utimes(target, time, time)
      }

      options.onProgress({type: 'bytes-end', label, done})
    },
  })
}

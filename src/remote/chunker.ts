import {createHash} from 'node:crypto'
import {lstat, open, readdir, readlink} from 'node:fs/promises'
import path from 'node:path'
import {promisify} from 'node:util'
import {constants as zlibConstants, gunzip, gzip} from 'node:zlib'

import {ARCHIVE_FORMAT, ARCHIVE_VERSION, type ArchiveManifest, type ManifestFile} from '../archive/manifest.js'

/**
 * Files are cut into fixed pieces of this size. Postgres writes 8 KiB pages in place, so a small
 * change to a database changes few pieces. Measured with bench/push-pull.mjs (pgbench scale 10,
 * s3rver): 128 KiB re-sends 2.4% (uncompressed) after a 1% change but pushes at 0.43x the raw SDK,
 * because every object costs a request; 1 MiB re-sends 3.4% (0.4% compressed) and pushes at 0.8x.
 */
export const CHUNK_SIZE = 1024 * 1024
export const CHUNK_COMPRESSION = 'gzip'

const gzipAsync = promisify(gzip)
const gunzipAsync = promisify(gunzip)

/** One entry of a data directory before its content is read: a manifest file without chunks. */
export type DataDirectoryEntry = Omit<ManifestFile, 'chunks'>

/**
 * Every directory, file and symlink under `root` (not `root` itself), parents before children,
 * in a stable order so that two scans of the same folder give the same manifest.
 */
export async function scanDataDirectory(root: string): Promise<DataDirectoryEntry[]> {
  const entries: DataDirectoryEntry[] = []
  const visit = async (relative: string): Promise<void> => {
    const names = (await readdir(path.join(root, relative))).sort()
    for (const name of names) {
      const entryPath = relative ? `${relative}/${name}` : name
      const absolute = path.join(root, entryPath)
      const info = await lstat(absolute)
      const mode = info.mode & 0o7777
      const mtime = Math.floor(info.mtimeMs)
      if (info.isSymbolicLink()) {
        entries.push({path: entryPath, type: 'symlink', mode, size: 0, mtime, target: await readlink(absolute)})
      } else if (info.isDirectory()) {
        entries.push({path: entryPath, type: 'dir', mode, size: 0, mtime})
        await visit(entryPath)
      } else if (info.isFile()) {
        entries.push({path: entryPath, type: 'file', mode, size: info.size, mtime})
      }
      // Sockets and FIFOs are not part of a data directory's state.
    }
  }

  await visit('')
  return entries
}

/** The pieces of a file, `chunkSize` bytes each (the last one shorter), read sequentially. */
export async function * readChunks(file: string, chunkSize = CHUNK_SIZE): AsyncIterable<Buffer> {
  const handle = await open(file, 'r')
  try {
    for (;;) {
      const buffer = Buffer.allocUnsafe(chunkSize)
      let filled = 0
      while (filled < chunkSize) {
        const {bytesRead} = await handle.read(buffer, filled, chunkSize - filled, null)
        if (bytesRead === 0) break
        filled += bytesRead
      }

      if (filled === 0) return
      yield filled === chunkSize ? buffer : buffer.subarray(0, filled)
      if (filled < chunkSize) return
    }
  } finally {
    await handle.close()
  }
}

export function hashChunk(content: Buffer): string {
  return createHash('sha256').update(content).digest('hex')
}

/** Level 1: data directories compress 3-5x even at the fastest level, and the CPU is the limit. */
export function compressChunk(content: Buffer): Promise<Buffer> {
  return gzipAsync(content, {level: zlibConstants.Z_BEST_SPEED})
}

/**
 * The content of a stored chunk, checked against the sha256 it is stored under. Returns
 * undefined when the object is not a valid compressed chunk or does not match. With the
 * expected size, zlib inflates into one buffer of that size (its default 16 KiB pieces make
 * decompression 2-3x slower) and stops at once if the object would inflate to more.
 */
export async function openChunk(stored: Buffer, expectedHash: string, expectedSize?: number): Promise<Buffer | undefined> {
  let content: Buffer
  try {
    content = await gunzipAsync(stored, expectedSize === undefined ? {} : {chunkSize: Math.max(expectedSize, 1024), maxOutputLength: Math.max(expectedSize, 1)})
  } catch {
    // Not gzip, truncated, or larger than it should be: the caller reports the chunk as corrupted.
    return undefined
  }

  if (expectedSize !== undefined && content.length !== expectedSize) return undefined
  return hashChunk(content) === expectedHash ? content : undefined
}

export function newManifest(snapshot: string, pgVersion: number, files: ManifestFile[], chunkSize = CHUNK_SIZE): ArchiveManifest {
  return {
    format: ARCHIVE_FORMAT,
    version: ARCHIVE_VERSION,
    snapshot,
    pgVersion,
    createdAt: new Date().toISOString(),
    chunkSize,
    compression: CHUNK_COMPRESSION,
    totalBytes: files.reduce((sum, file) => sum + file.size, 0),
    files,
  }
}

/** Whether two manifests describe the same data directory (times and names aside). */
export function sameContent(a: ArchiveManifest, b: ArchiveManifest): boolean {
  if (a.files.length !== b.files.length || a.chunkSize !== b.chunkSize) return false
  return a.files.every((file, i) => {
    const other = b.files[i]
    return file.path === other.path && file.type === other.type && file.mode === other.mode && file.size === other.size &&
      file.target === other.target && file.chunks.length === other.chunks.length && file.chunks.every((chunk, j) => chunk === other.chunks[j])
  })
}

/** Checks a manifest read from a remote before trusting its paths and hashes. */
export function validateManifest(value: unknown): value is ArchiveManifest {
  const manifest = value as ArchiveManifest
  if (!manifest || manifest.format !== ARCHIVE_FORMAT || typeof manifest.chunkSize !== 'number' || !Array.isArray(manifest.files)) return false
  return manifest.files.every((file) => typeof file.path === 'string' && file.path !== '' && !file.path.startsWith('/') &&
    !file.path.split('/').includes('..') && ['file', 'dir', 'symlink'].includes(file.type) && Array.isArray(file.chunks) &&
    file.chunks.every((chunk) => /^[0-9a-f]{64}$/.test(chunk)))
}

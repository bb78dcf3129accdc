import {createHash} from 'node:crypto'
import {open} from 'node:fs/promises'
import {promisify} from 'node:util'
import {constants as zlibConstants, gunzipSync, gzip} from 'node:zlib'

import {ARCHIVE_FORMAT, ARCHIVE_VERSION, type ArchiveManifest, type ManifestFile} from './manifest.js'

/**
 * Files are cut into fixed pieces of this size. Postgres writes 8 KiB pages in place, so a small
 * change to a database changes few pieces. Measured with bench/push-pull.mjs (pgbench scale 10,
 * s3rver): 128 KiB re-sends 2.4% (uncompressed) after a 1% change but pushes at 0.43x the raw SDK,
 * because every object costs a request; 1 MiB re-sends 3.4% (0.4% compressed) and pushes at 0.8x.
 */
export const CHUNK_SIZE = 1024 * 1024
export const CHUNK_COMPRESSION = 'gzip'

const gzipAsync = promisify(gzip)

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
 * decompression 2-3x slower) and stops at once if the object would inflate to more. It is
 * synchronous: a pull runs it in its writer threads (see receive/chunk-writers.ts), where the
 * chunk is written next, with no hand-over to libuv's thread pool.
 */
export function openChunk(stored: Uint8Array, expectedHash: string, expectedSize?: number): Buffer | undefined {
  let content: Buffer
  try {
    content = gunzipSync(stored, expectedSize === undefined ? {} : {chunkSize: Math.max(expectedSize, 1024), maxOutputLength: Math.max(expectedSize, 1)})
  } catch {
    // Not gzip, truncated, or larger than it should be: the caller reports the chunk as corrupted.
    return undefined
  }

  if (expectedSize !== undefined && content.length !== expectedSize) return undefined
  return hashChunk(content) === expectedHash ? content : undefined
}

/**
 * Version of the remote layout a manifest was written for. 2: file times in seconds (as in a
 * .zenith archive) and chunks stored in packs, located by `packs`. Manifests without it were
 * written by zenith versions that kept times in milliseconds and one object per chunk.
 */
export const REMOTE_LAYOUT = 2

/** Where a chunk is in a pack: its sha256, then the offset and length of its compressed bytes. */
export type PackEntry = [hash: string, offset: number, length: number]

/** The manifest of a snapshot at a remote: an archive manifest plus where its chunks are stored. */
export interface RemoteManifest extends ArchiveManifest {
  layout?: number
  /** Pack id -> the chunks of this snapshot stored in it. Chunks not listed are `chunks/<sha256>` objects (layout 1). */
  packs?: Record<string, PackEntry[]>
}

export function newManifest(snapshot: string, pgVersion: number, files: ManifestFile[], chunkSize = CHUNK_SIZE): RemoteManifest {
  return {
    layout: REMOTE_LAYOUT,
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
export function validateManifest(value: unknown): value is RemoteManifest {
  const manifest = value as RemoteManifest
  if (!manifest || manifest.format !== ARCHIVE_FORMAT || typeof manifest.chunkSize !== 'number' || !Array.isArray(manifest.files)) return false
  if (manifest.packs !== undefined && !validPacks(manifest.packs)) return false
  return manifest.files.every((file) => typeof file.path === 'string' && file.path !== '' && !file.path.startsWith('/') &&
    !file.path.split('/').includes('..') && ['file', 'dir', 'symlink'].includes(file.type) && Array.isArray(file.chunks) &&
    file.chunks.every((chunk) => /^[0-9a-f]{64}$/.test(chunk)))
}

/** A `packs` map (pack id -> [sha256, offset, length] entries) as a manifest or pack-index.json holds it. */
export function validPacks(packs: unknown): packs is Record<string, PackEntry[]> {
  if (!packs || typeof packs !== 'object') return false
  return Object.entries(packs).every(([id, entries]) => /^[0-9a-f]{64}$/.test(id) && Array.isArray(entries) &&
    (entries as unknown[]).every((entry) => Array.isArray(entry) && entry.length === 3 && /^[0-9a-f]{64}$/.test(String(entry[0])) &&
      Number.isSafeInteger(entry[1]) && entry[1] >= 0 && Number.isSafeInteger(entry[2]) && entry[2] > 0))
}

/**
 * A manifest as this version reads it: file times of manifests written before layout 2 were
 * milliseconds, now seconds (the unit of a .zenith archive).
 */
export function normalizeManifest(manifest: RemoteManifest): RemoteManifest {
  if ((manifest.layout ?? 1) >= 2) return manifest
  return {...manifest, files: manifest.files.map((file) => (file.mtime === undefined ? file : {...file, mtime: Math.floor(file.mtime / 1000)}))}
}

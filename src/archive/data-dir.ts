import {createReadStream} from 'node:fs'
import {lstat, open, readFile, readdir, readlink} from 'node:fs/promises'
import path from 'node:path'

import {ChunkHasher, DEFAULT_CHUNK_SIZE} from './chunks.js'
import {ARCHIVE_FORMAT, ARCHIVE_VERSION, type ArchiveManifest, type ManifestFile} from './manifest.js'

export interface DataDirEntry {
  /** Relative to the data directory, `/`-separated. */
  path: string
  type: 'file' | 'dir' | 'symlink'
  mode: number
  size: number
  mtime: number
  target?: string
}

/** Every entry of a data directory, parents before children, in a stable (sorted) order. */
export async function listDataDirectory(dir: string): Promise<DataDirEntry[]> {
  const entries: DataDirEntry[] = []
  const visit = async (relative: string): Promise<void> => {
    const names = (await readdir(path.join(dir, relative))).sort()
    for (const name of names) {
      const rel = relative ? `${relative}/${name}` : name
      const full = path.join(dir, rel)
      const info = await lstat(full)
      const base = {path: rel, mode: info.mode & 0o7777, mtime: Math.floor(info.mtimeMs / 1000)}
      if (info.isDirectory()) {
        entries.push({...base, type: 'dir', size: 0})
        await visit(rel)
      } else if (info.isSymbolicLink()) {
        entries.push({...base, type: 'symlink', size: 0, target: await readlink(full)})
      } else if (info.isFile()) {
        entries.push({...base, type: 'file', size: info.size})
      }
      // Sockets and fifos do not belong in a data directory; nothing to carry.
    }
  }

  await visit('')
  return entries
}

export interface ManifestInfo {
  snapshot: string
  pgVersion: number
  compression: string
  chunkSize?: number
  onBytes?: (done: number) => void
}

/**
 * The manifest of a data directory: reads every file once to checksum its chunks. Metadata that
 * Postgres keeps (system identifier, WAL range of the backup) is taken from the files themselves.
 */
export async function buildManifest(dir: string, info: ManifestInfo): Promise<ArchiveManifest> {
  const chunkSize = info.chunkSize ?? DEFAULT_CHUNK_SIZE
  const entries = await listDataDirectory(dir)
  const files: ManifestFile[] = []
  let done = 0
  for (const entry of entries) {
    const file: ManifestFile = {path: entry.path, type: entry.type, mode: entry.mode, size: entry.size, mtime: entry.mtime, chunks: []}
    if (entry.target !== undefined) file.target = entry.target
    if (entry.type === 'file') {
      const hasher = new ChunkHasher(chunkSize)
      for await (const data of createReadStream(path.join(dir, entry.path), {highWaterMark: readBufferSize(entry.size)})) {
        hasher.update(data as Buffer)
        done += (data as Buffer).length
        info.onBytes?.(done)
      }

      file.chunks = hasher.finish()
    }

    files.push(file)
  }

  const range = await backupWalRange(dir)
  return {
    format: ARCHIVE_FORMAT,
    version: ARCHIVE_VERSION,
    snapshot: info.snapshot,
    pgVersion: info.pgVersion,
    systemIdentifier: await systemIdentifier(dir),
    ...range,
    createdAt: new Date().toISOString(),
    chunkSize,
    compression: info.compression,
    totalBytes: files.reduce((sum, file) => sum + file.size, 0),
    files,
  }
}

/** The first field of global/pg_control is the cluster's 64-bit system identifier. */
export async function systemIdentifier(dir: string): Promise<string | undefined> {
  const handle = await open(path.join(dir, 'global', 'pg_control'), 'r').catch(() => undefined)
  if (!handle) return undefined
  try {
    const buffer = Buffer.alloc(8)
    const {bytesRead} = await handle.read(buffer, 0, 8, 0)
    return bytesRead === 8 ? buffer.readBigUInt64LE(0).toString() : undefined
  } finally {
    await handle.close()
  }
}

/** Start/end LSN and timeline from Postgres' backup_manifest (present in every basebackup). */
async function backupWalRange(dir: string): Promise<Pick<ArchiveManifest, 'startLsn' | 'endLsn' | 'timeline'>> {
  const text = await readFile(path.join(dir, 'backup_manifest'), 'utf8').catch(() => '')
  if (!text) return {}
  try {
    const ranges = (JSON.parse(text) as {'WAL-Ranges'?: Array<{Timeline: number; 'Start-LSN': string; 'End-LSN': string}>})['WAL-Ranges'] ?? []
    const first = ranges[0]
    const last = ranges.at(-1)
    return first && last ? {timeline: last.Timeline, startLsn: first['Start-LSN'], endLsn: last['End-LSN']} : {}
  } catch {
    // A damaged backup_manifest is reported by pg_verifybackup, not here: the range is optional.
    return {}
  }
}

/** Most files of a data directory are a few KB: a 1 MiB buffer for each would dominate the time. */
export function readBufferSize(fileSize: number): number {
  return Math.min(1024 * 1024, Math.max(64 * 1024, fileSize))
}

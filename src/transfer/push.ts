import path from 'node:path'

import {listDataDirectory} from '../archive/data-dir.js'
import type {ArchiveManifest, ManifestFile} from '../archive/manifest.js'
import {type Zenith, localStorage} from '../context.js'
import {ZenithError} from '../errors.js'
import type {OnProgress} from '../progress.js'
import {CHUNK_SIZE, compressChunk, hashChunk, newManifest, readChunks, sameContent} from '../remote/chunker.js'
import {resolveRemote} from '../remote/open.js'
import {readPgVersion} from '../snapshot/records.js'
import {TaskPool} from './pool.js'
import {RecvSink} from './recv-client.js'
import type {SnapshotSink} from './sink.js'
import {ObjectStoreSink} from './store-sink.js'

/** Chunks compressed (or, to a recv, uploaded) at once, and chunk requests of a pull in flight: bounded memory (N x chunk size). */
export const TRANSFER_CONCURRENCY = 16

export interface PushOptions {
  snapshot: string
  /** A storage name or a URL (s3://, file://, zenith://). */
  to: string
  /** Replace a snapshot of the same name with different content at the remote. */
  force?: boolean
  onProgress: OnProgress
  /** Chunk size of a new manifest (the benchmark varies it); chunks are CHUNK_SIZE otherwise. */
  chunkSize?: number
}

export interface PushResult {
  snapshot: string
  to: string
  /** Size of the data directory. */
  logicalBytes: number
  /** Bytes uploaded (compressed chunks, manifest aside). */
  sentBytes: number
  /** Logical bytes of the chunks that had to be sent. */
  changedBytes: number
  chunksSent: number
  chunksSkipped: number
  /** The remote already had this exact snapshot. */
  upToDate: boolean
}

/**
 * Sends a local snapshot to a remote: every file is read once, cut into chunks and hashed;
 * chunks the remote lacks are compressed and uploaded in parallel; the manifest goes last, so
 * an interrupted push leaves no visible snapshot and a re-run sends only what is missing.
 */
export async function pushSnapshot(zenith: Zenith, options: PushOptions): Promise<PushResult> {
  const data = await zenith.store.read()
  const record = data.snapshots[options.snapshot]
  if (!record || record.state !== 'ready') {
    throw new ZenithError('SNAPSHOT_NOT_FOUND', `There is no snapshot named "${options.snapshot}".`, 'See `zenith snapshot list`.')
  }

  const folder = localStorage(data, record.storage).snapshotPath(record.volume)
  const target = await resolveRemote(zenith, options.to)
  const sink: SnapshotSink = target.kind === 'store' ? new ObjectStoreSink(target.store, target.label) : new RecvSink(target)
  try {
    const remote = await sink.begin(record.name)
    const entries = await listDataDirectory(folder)
    const pgVersion = await readPgVersion(folder)
    const chunkSize = remote.manifest?.chunkSize ?? options.chunkSize ?? CHUNK_SIZE
    const base = {snapshot: record.name, to: target.label, logicalBytes: entries.reduce((sum, entry) => sum + entry.size, 0)}

    if (remote.manifest) {
      // Same name at the remote: hash first (no upload) to tell "already there" from a conflict.
      const local = newManifest(record.name, pgVersion, await hashFiles(folder, entries, chunkSize, options.onProgress), chunkSize)
      const same = sameContent(local, remote.manifest)
      // The same snapshot whose chunks are all still stored: nothing to do. If a pack of it was
      // removed (it was damaged), the push goes on and stores the missing chunks again.
      if (same && local.files.every((file) => file.chunks.every((hash) => remote.existing.has(hash)))) {
        return {...base, sentBytes: 0, changedBytes: 0, chunksSent: 0, chunksSkipped: countChunks(local), upToDate: true}
      }

      if (!same && !options.force) {
        throw new ZenithError('REMOTE_CONFLICT', `${target.label} already has a snapshot "${record.name}" with different content.`,
          `Push it under another name (\`zenith snapshot create\` a new tag), or replace the remote one with \`zenith snapshot push ${record.name} --to ${options.to} --force\`.`)
      }
    }

    const stats = {sentBytes: 0, changedBytes: 0, chunksSent: 0, chunksSkipped: 0}
    const claimed = new Set<string>()
    const pool = new TaskPool(TRANSFER_CONCURRENCY)
    const label = `Pushing ${record.name}`
    let done = 0
    const files: ManifestFile[] = []
    for await (const {content, hash} of chunksOf(folder, entries, chunkSize, files)) {
      done += content.length
      if (remote.existing.has(hash) || claimed.has(hash)) {
        stats.chunksSkipped++
      } else {
        claimed.add(hash)
        await pool.run(async () => {
          const stored = await compressChunk(content)
          await sink.putChunk(hash, stored)
          stats.sentBytes += stored.length
          stats.changedBytes += content.length
          stats.chunksSent++
        })
      }

      options.onProgress({type: 'bytes', label, done, total: base.logicalBytes})
    }

    await pool.drain()
    options.onProgress({type: 'bytes-end', label, done})
    const manifest: ArchiveManifest = newManifest(record.name, pgVersion, files, chunkSize)
    await sink.commit(manifest, {sentBytes: stats.sentBytes})
    return {...base, logicalBytes: manifest.totalBytes, ...stats, upToDate: false}
  } finally {
    await sink.close()
  }
}

/**
 * Reads every file of a data directory once, chunk by chunk, and hashes each chunk; `files`
 * receives the manifest entries (chunks and final sizes) as the walk goes.
 */
async function * chunksOf(folder: string, entries: Awaited<ReturnType<typeof listDataDirectory>>, chunkSize: number, files: ManifestFile[]): AsyncGenerator<{content: Buffer; hash: string}> {
  for (const entry of entries) {
    const file: ManifestFile = {...entry, chunks: []}
    files.push(file)
    if (entry.type !== 'file') continue
    let size = 0
    for await (const content of readChunks(path.join(folder, entry.path), chunkSize)) {
      const hash = hashChunk(content)
      file.chunks.push(hash)
      size += content.length
      yield {content, hash}
    }

    file.size = size
  }
}

async function hashFiles(folder: string, entries: Awaited<ReturnType<typeof listDataDirectory>>, chunkSize: number, onProgress: OnProgress): Promise<ManifestFile[]> {
  const files: ManifestFile[] = []
  const total = entries.reduce((sum, entry) => sum + entry.size, 0)
  let done = 0
  for await (const {content} of chunksOf(folder, entries, chunkSize, files)) {
    done += content.length
    onProgress({type: 'bytes', label: 'Comparing with the remote', done, total})
  }

  onProgress({type: 'bytes-end', label: 'Comparing with the remote', done})
  return files
}

function countChunks(manifest: ArchiveManifest): number {
  return manifest.files.reduce((sum, file) => sum + file.chunks.length, 0)
}

import {createHash} from 'node:crypto'
import path from 'node:path'

import type {ArchiveManifest} from '../archive/manifest.js'
import type {Zenith} from '../context.js'
import {ZenithError} from '../errors.js'
import type {OnProgress} from '../progress.js'
import {openChunk} from '../remote/chunker.js'
import {chunkKey, listSnapshotsIn, readManifest} from '../remote/layout.js'
import type {ObjectStore} from '../remote/object-store.js'
import {resolveRemote} from '../remote/open.js'
import {assertSnapshotNameFree} from '../snapshot/records.js'
import {parseSnapshotRef} from '../state/names.js'
import type {SnapshotRecord} from '../state/schema.js'
import {assembleSnapshot, chunkSizes, filesOfChunk} from './assemble.js'
import {ChunkCache} from './chunk-cache.js'
import {TaskPool} from './pool.js'
import {TRANSFER_CONCURRENCY} from './push.js'

export interface PullOptions {
  /** A storage name or a URL (s3://, file://). */
  from: string
  /** The remote snapshot; may be omitted when the remote holds exactly one. */
  snapshot?: string
  /** Local name (default: the remote name). */
  as?: string
  /** Local storage to create it in (default `local`). */
  storage?: string
  onProgress: OnProgress
}

export interface PullResult {
  snapshot: SnapshotRecord
  from: string
  remoteName: string
  logicalBytes: number
  /** Bytes downloaded (compressed chunks). */
  receivedBytes: number
  chunksFetched: number
  /** Chunks an earlier, interrupted pull had already fetched and verified. */
  chunksCached: number
}

/**
 * Fetches a snapshot from a remote: every chunk is checked against its sha256 as it arrives
 * and kept in a cache under ZENITH_HOME/cache; only when all of them are there is the data
 * directory written and the snapshot made visible. A missing or corrupted chunk stops the pull
 * with CHECKSUM_MISMATCH and creates nothing; a re-run fetches only what the cache lacks.
 */
export async function pullSnapshot(zenith: Zenith, options: PullOptions): Promise<PullResult> {
  const source = await resolveRemote(zenith, options.from)
  if (source.kind !== 'store') {
    throw new ZenithError('INVALID_ARGUMENT', `${options.from} is a receiver for \`zenith snapshot push\`, not a place to pull from.`,
      'Pull from an s3/dir storage or an s3:// or file:// URL; to send a snapshot to a `zenith snapshot recv`, push it.')
  }

  const {store} = source
  const remoteName = options.snapshot ?? await onlySnapshot(store, source.label)
  const localName = options.as ?? remoteName
  parseSnapshotRef(localName)
  assertSnapshotNameFree(await zenith.store.read(), localName)
  const manifest = await readManifest(store, remoteName)
  if (!manifest) {
    throw new ZenithError('SNAPSHOT_NOT_FOUND', `${source.label} has no snapshot named "${remoteName}".`,
      `See \`zenith snapshot list --storage ${options.from}\` for what it holds.`)
  }

  const cache = new ChunkCache(pullCacheDir(zenith, store.location, remoteName))
  const cached = await cache.open()
  const fetched = await fetchChunks(store, manifest, cache, options.onProgress)
  const snapshot = await assembleSnapshot(zenith, {name: localName, storage: options.storage, manifest, cache, onProgress: options.onProgress})
  await cache.remove()
  return {
    snapshot, from: source.label, remoteName, logicalBytes: manifest.totalBytes,
    receivedBytes: fetched.receivedBytes, chunksFetched: fetched.chunks, chunksCached: [...chunkSizes(manifest).keys()].filter((hash) => cached.has(hash)).length,
  }
}

/** One folder per remote and snapshot, so a re-run of the same pull finds what it fetched. */
function pullCacheDir(zenith: Zenith, location: string, snapshot: string): string {
  const key = createHash('sha256').update(`${location}\n${snapshot}`).digest('hex').slice(0, 16)
  return path.join(zenith.home, 'cache', `pull-${key}`)
}

async function onlySnapshot(store: ObjectStore, label: string): Promise<string> {
  const snapshots = await listSnapshotsIn(store)
  if (snapshots.length === 1) return snapshots[0].name
  throw new ZenithError('INVALID_ARGUMENT', snapshots.length === 0 ? `${label} holds no snapshots.` : `${label} holds ${snapshots.length} snapshots; name the one to pull.`,
    snapshots.length === 0 ? 'Push one first with `zenith snapshot push SNAP --to ...`.' : `Pull one of: ${snapshots.map((item) => item.name).join(', ')}.`)
}

async function fetchChunks(store: ObjectStore, manifest: ArchiveManifest, cache: ChunkCache, onProgress: OnProgress): Promise<{receivedBytes: number; chunks: number}> {
  const sizes = chunkSizes(manifest)
  const total = [...sizes.values()].reduce((sum, size) => sum + size, 0)
  const label = `Pulling ${manifest.snapshot}`
  const pool = new TaskPool(TRANSFER_CONCURRENCY)
  let done = 0
  let receivedBytes = 0
  let chunks = 0
  // A damaged chunk does not stop the others: the cache keeps every good one for the re-run,
  // and the error names all that are damaged.
  const damaged: Array<{hash: string; missing: boolean}> = []
  for (const [hash, size] of sizes) {
    if (cache.has(hash)) {
      done += size
      continue
    }

    await pool.run(async () => {
      const stored = await store.get(chunkKey(hash))
      if (!stored || !(await openChunk(stored, hash))) {
        damaged.push({hash, missing: !stored})
        return
      }

      await cache.put(hash, stored)
      receivedBytes += stored.length
      chunks++
      done += size
      onProgress({type: 'bytes', label, done, total})
    })
  }

  await pool.drain()
  onProgress({type: 'bytes-end', label, done})
  if (damaged.length > 0) throw damagedChunks(store, manifest, damaged)
  return {receivedBytes, chunks}
}

function damagedChunks(store: ObjectStore, manifest: ArchiveManifest, damaged: Array<{hash: string; missing: boolean}>): ZenithError {
  const [first] = damaged
  const more = damaged.length > 1 ? ` (and ${damaged.length - 1} more damaged chunk${damaged.length > 2 ? 's' : ''})` : ''
  const what = first.missing ? `is missing from ${store.location}` : `in ${store.location} is corrupted: its content does not match its sha256`
  return new ZenithError('CHECKSUM_MISMATCH', `Chunk ${first.hash} (of ${filesOfChunk(manifest, first.hash)}) ${what}${more}; nothing was created.`,
    first.missing
      ? `Push the snapshot again from a machine that has it (\`zenith snapshot push ${manifest.snapshot} --to ...\` re-sends missing chunks), then pull again: verified chunks are kept.`
      : `Delete chunks/${first.hash} at the remote, push the snapshot again from a machine that has it, then pull again: verified chunks are kept.`)
}

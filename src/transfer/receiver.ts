import type {ArchiveManifest} from '../archive/manifest.js'
import type {Zenith} from '../context.js'
import {localStorage} from '../context.js'
import {ZenithError} from '../errors.js'
import type {OnProgress} from '../progress.js'
import {normalizeManifest, openChunk, validateManifest} from '../remote/chunker.js'
import {assertSnapshotNameFree} from '../snapshot/records.js'
import {parseSnapshotRef} from '../state/names.js'
import type {SnapshotRecord} from '../state/schema.js'
import {assembleSnapshot, chunkSizes, filesOfChunk} from './assemble.js'
import {ChunkCache, reclaimCaches} from './chunk-cache.js'
import {TRANSFER_CONCURRENCY} from './push.js'

export interface ReceiveResult {
  snapshot: SnapshotRecord
  logicalBytes: number
  receivedBytes: number
}

export interface ReceiverOptions {
  /** Local storage to keep the snapshot in (default `local`). */
  storage?: string
  /** Local name (default: the name the sender gives). */
  as?: string
  onProgress: OnProgress
}

/**
 * The receiving end of a push, whatever carries it (HTTP for `snapshot recv`, a stream for a
 * push over ssh): `begin` names the snapshot and says which chunks are already here, `chunk`
 * verifies one as it arrives and keeps it in a cache folder, `commit` checks that every chunk
 * of the manifest arrived and writes the snapshot (each chunk checked again, since it sat on
 * disk). Nothing is visible before the commit succeeds.
 */
export class SnapshotReceiver {
  /** The name the sender gave. */
  snapshotName?: string
  receivedBytes = 0
  receivedLogical = 0
  chunksReceived = 0
  /** Chunks an earlier, interrupted attempt had already received and verified. */
  chunksCached = 0
  private committing = false

  private constructor(private readonly zenith: Zenith, private readonly cache: ChunkCache, private readonly options: ReceiverOptions) {}

  /**
   * A receiver with its own cache folder. `recv` caches are dropped as soon as their process is
   * gone (the URL's token died with it); `ssh` caches of a dead receiver of the same snapshot
   * are taken over, so that a push over ssh that was interrupted sends only what is missing.
   */
  static async open(zenith: Zenith, options: ReceiverOptions & {kind: 'recv' | 'ssh'; key: string}): Promise<SnapshotReceiver> {
    localStorage(await zenith.store.read(), options.storage ?? 'local')
    await reclaimCaches(zenith.home)
    const cache = await ChunkCache.claim(zenith.home, options.kind, options.key)
    return new SnapshotReceiver(zenith, cache, options)
  }

  /** The hashes already here (from an earlier, interrupted attempt). */
  async begin(snapshot: string): Promise<string[]> {
    parseSnapshotRef(snapshot)
    parseSnapshotRef(this.localName(snapshot))
    assertSnapshotNameFree(await this.zenith.store.read(), this.localName(snapshot))
    this.snapshotName = snapshot
    this.options.onProgress({type: 'step', message: `Receiving ${snapshot}`})
    const cached = this.cache.cached
    this.chunksCached = cached.length
    return cached
  }

  async chunk(hash: string, stored: Buffer): Promise<void> {
    if (!this.snapshotName) throw new ZenithError('INVALID_ARGUMENT', 'A chunk arrived before the push began.', 'Use `zenith snapshot push` to send here.')
    if (!/^[0-9a-f]{64}$/.test(hash)) throw new ZenithError('ARCHIVE_INVALID', `A chunk arrived under an invalid name (${hash.slice(0, 80)}).`, 'Push with `zenith snapshot push`.')
    const content = openChunk(stored, hash)
    if (!content) throw new ZenithError('CHECKSUM_MISMATCH', `Chunk ${hash} arrived damaged (its content does not match its sha256).`, 'Push again: the chunk is sent again.')
    await this.cache.put(hash, stored)
    this.chunksReceived++
    this.receivedBytes += stored.length
    this.receivedLogical += content.length
    this.options.onProgress({type: 'bytes', label: `Receiving ${this.snapshotName}`, done: this.receivedLogical})
  }

  async commit(sent: unknown): Promise<ReceiveResult> {
    if (this.committing) throw new ZenithError('PG_BUSY', 'A snapshot is already being written from this push.', 'Wait for it to finish.')
    if (!validateManifest(sent) || (sent as ArchiveManifest).snapshot !== this.snapshotName) {
      throw new ZenithError('ARCHIVE_INVALID', 'The pushed manifest is not valid.', 'Push again with the same zenith version on both sides.')
    }

    const manifest = {...normalizeManifest(sent), snapshot: this.localName(this.snapshotName!)}
    const missing = [...chunkSizes(manifest).keys()].find((hash) => !this.cache.has(hash))
    if (missing) throw new ZenithError('CHECKSUM_MISMATCH', `Chunk ${missing} (of ${filesOfChunk(manifest, missing)}) was never received; nothing was created.`, 'Push again: missing chunks are sent again.')
    this.committing = true
    try {
      this.options.onProgress({type: 'bytes-end', label: `Receiving ${this.snapshotName}`, done: this.receivedLogical})
      const snapshot = await assembleSnapshot(this.zenith, {
        name: manifest.snapshot, storage: this.options.storage, manifest, label: `Writing ${manifest.snapshot}`, onProgress: this.options.onProgress,
        // Chunks received earlier in this run, checked again by the writers: they sat on disk since they arrived.
        source: {concurrency: TRANSFER_CONCURRENCY, stored: (hash) => this.cache.read(hash)},
        damaged: ([first]) => new ZenithError('CHECKSUM_MISMATCH', `Chunk ${first.hash} (of ${filesOfChunk(manifest, first.hash)}) changed on disk after it was verified; nothing was created.`,
          'Push again: the damaged chunk is sent again.'),
      })
      return {snapshot, logicalBytes: manifest.totalBytes, receivedBytes: this.receivedBytes}
    } finally {
      this.committing = false
    }
  }

  private localName(sent: string): string {
    return this.options.as ?? sent
  }

  /** Removes the cache folder, or (`keep`, after a failed push over ssh) leaves it for a re-run to take over. */
  async close(options: {keep: boolean}): Promise<void> {
    await (options.keep ? this.cache.release() : this.cache.remove())
  }
}

import type {ArchiveManifest} from '../archive/manifest.js'
import type {Zenith} from '../context.js'
import {volumeStorage} from '../storage/registry.js'
import {ZenithError} from '../errors.js'
import type {OnProgress} from '../progress.js'
import {normalizeManifest, openChunk, validateManifest} from '../archive/chunker.js'
import {assertSnapshotNameFree} from '../snapshot/records.js'
import {parseSnapshotRef} from '../state/names.js'
import type {SnapshotRecord} from '../state/schema.js'
import {type DamagedChunk, assembleSnapshot, chunkSizes, filesOfChunk} from './assemble.js'
import {ChunkCache, reclaimCaches} from './chunk-cache.js'
import {TRANSFER_CONCURRENCY} from '../task-pool.js'

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
  private manifest?: ArchiveManifest

  private constructor(private readonly zenith: Zenith, private readonly cache: ChunkCache, private readonly options: ReceiverOptions) {}

  /**
   * A receiver with its own cache folder. `recv` caches are dropped as soon as their process is
   * gone (the URL's token died with it); `ssh` caches of a dead receiver of the same snapshot
   * are taken over, so that a push over ssh that was interrupted sends only what is missing.
   */
  static async open(zenith: Zenith, options: ReceiverOptions & {kind: 'recv' | 'ssh'; key: string}): Promise<SnapshotReceiver> {
    volumeStorage(await zenith.store.read(), options.storage ?? 'local')
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

  /**
   * A stream that sends the manifest first (a push or pull over ssh): checks it and the name,
   * and returns the hashes already here. receiveFrom then writes chunks into place as they arrive.
   */
  async beginWithManifest(snapshot: string, sent: unknown): Promise<string[]> {
    if (!validateManifest(sent) || (sent as ArchiveManifest).snapshot !== snapshot) {
      throw new ZenithError('ARCHIVE_INVALID', 'The manifest sent is not valid.', 'Use the same zenith version on both sides.')
    }

    const cached = await this.begin(snapshot)
    this.manifest = {...normalizeManifest(sent), snapshot: this.localName(snapshot)}
    return cached
  }

  /**
   * Writes the snapshot of beginWithManifest while its chunks arrive: those already here come
   * from the cache, the others from `arrivals`; the writer threads verify each, and each one
   * that arrived is kept in the cache once verified, so that a re-run need not send it again.
   */
  async receiveFrom(arrivals: ChunkArrivals): Promise<ReceiveResult> {
    const manifest = this.manifest!
    const snapshot = await assembleSnapshot(this.zenith, {
      name: manifest.snapshot, storage: this.options.storage, manifest, label: `Receiving ${this.snapshotName}`, onProgress: this.options.onProgress,
      source: {
        concurrency: TRANSFER_CONCURRENCY,
        stored: (hash) => (this.cache.has(hash) ? this.cache.read(hash) : arrivals.wait(hash)),
        verified: async (hash, stored) => {
          if (this.cache.has(hash)) return
          await this.cache.put(hash, stored)
          this.chunksReceived++
          this.receivedBytes += stored.length
        },
      },
      damaged: ([first, ...more]) => {
        const files = filesOfChunk(manifest, first.hash)
        const others = more.length > 0 ? ` (and ${more.length} more)` : ''
        return first.missing
          ? new ZenithError('CHECKSUM_MISMATCH', `Chunk ${first.hash} (of ${files}) was never sent${others}; nothing was created.`, 'Run the transfer again: what arrived is kept.')
          : new ZenithError('CHECKSUM_MISMATCH', `Chunk ${first.hash} (of ${files}) arrived damaged: its content does not match its sha256${others}; nothing was created.`,
            `Run the transfer again: the good chunks are kept. If it fails the same way, remove ${this.zenith.home}/cache/ssh-* on the receiving host first.`)
      },
    })
    return {snapshot, logicalBytes: manifest.totalBytes, receivedBytes: this.receivedBytes}
  }

  private localName(sent: string): string {
    return this.options.as ?? sent
  }

  /** Removes the cache folder, or (`keep`, after a failed push over ssh) leaves it for a re-run to take over. */
  async close(options: {keep: boolean}): Promise<void> {
    await (options.keep ? this.cache.release() : this.cache.remove())
  }
}

/**
 * Chunks arriving on a stream, handed to the writers that ask for them. The sender sends them in
 * the order the writers ask (the manifest's), give or take its parallel compression; what comes
 * early waits here, and past `limit` of those the stream is not read further until the writers
 * catch up, so memory stays bounded.
 */
export class ChunkArrivals {
  private readonly arrived = new Map<string, Buffer>()
  private readonly waiting = new Map<string, {resolve: (chunk: Buffer | DamagedChunk) => void; reject: (error: Error) => void}>()
  private roomWaiters: Array<() => void> = []
  private failure?: Error
  private finished = false

  constructor(private readonly limit = 64) {}

  async deliver(hash: string, stored: Buffer): Promise<void> {
    if (this.failure) throw this.failure
    const waiter = this.waiting.get(hash)
    if (waiter) {
      this.waiting.delete(hash)
      waiter.resolve(stored)
      return
    }

    this.arrived.set(hash, stored)
    while (this.arrived.size >= this.limit && !this.failure) await new Promise<void>((resolve) => this.roomWaiters.push(resolve))
    if (this.failure) throw this.failure
  }

  wait(hash: string): Promise<Buffer | DamagedChunk> {
    const ready = this.arrived.get(hash)
    if (ready) {
      this.arrived.delete(hash)
      this.wake()
      return Promise.resolve(ready)
    }

    if (this.failure) return Promise.reject(this.failure)
    if (this.finished) return Promise.resolve({hash, missing: true})
    return new Promise((resolve, reject) => this.waiting.set(hash, {resolve, reject}))
  }

  /** The sender is done: a chunk still awaited was never sent. */
  finish(): void {
    this.finished = true
    for (const [hash, waiter] of this.waiting) waiter.resolve({hash, missing: true})
    this.waiting.clear()
  }

  /** The stream failed (or the writers did): everyone waiting gets the error. */
  abort(error: Error): void {
    this.failure ??= error
    for (const waiter of this.waiting.values()) waiter.reject(error)
    this.waiting.clear()
    this.wake()
  }

  private wake(): void {
    const waiters = this.roomWaiters
    this.roomWaiters = []
    for (const resolve of waiters) resolve()
  }
}

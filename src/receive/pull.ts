import {createHash} from 'node:crypto'

import type {ArchiveManifest} from '../archive/manifest.js'
import type {Zenith} from '../context.js'
import {ZenithError, isZenithError} from '../errors.js'
import type {OnProgress} from '../progress.js'
import type {RemoteManifest} from '../archive/chunker.js'
import {chunkKey, listSnapshotsIn, readManifest} from '../remote/layout.js'
import type {ObjectStore} from '../storage/storage.js'
import {type ChunkLocation, type PackRange, packKey, planRanges} from '../archive/packs.js'
import {resolveRemote} from '../remote/open.js'
import {assertSnapshotNameFree} from '../snapshot/records.js'
import {parseSnapshotRef} from '../state/names.js'
import type {SnapshotRecord} from '../state/schema.js'
import {type ChunkSource, type DamagedChunk, assembleSnapshot, filesOfChunk} from './assemble.js'
import {ChunkCache, reclaimCaches} from './chunk-cache.js'
import {TRANSFER_CONCURRENCY} from '../task-pool.js'
import {receiveOverStream} from './recv-stream.js'
import {startSsh} from '../protocol/ssh.js'
import type {SshTarget} from '../urls.js'
import {timed} from '../timing.js'

export interface PullOptions {
  /** A storage name or a URL (s3://, file://, ssh://). */
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
 * Fetches a snapshot from a remote and writes it straight into a new local snapshot: chunks are
 * fetched in parallel and handed to writer threads, which decompress each once, check it
 * against its sha256 and write it at its place(s) in the data directory being built. The compressed chunk is also
 * kept in this pull's own cache folder, so that a pull that fails (a damaged chunk) or is killed
 * can be re-run and fetches only what it lacks. Only when every chunk has been verified does the
 * snapshot become visible; a missing or corrupted chunk stops the pull with CHECKSUM_MISMATCH
 * and creates nothing.
 */
export async function pullSnapshot(zenith: Zenith, options: PullOptions): Promise<PullResult> {
  const source = await resolveRemote(zenith, options.from)
  if (source.kind === 'ssh') return pullOverSsh(zenith, source, options)
  if (source.kind !== 'store') {
    throw new ZenithError('INVALID_ARGUMENT', `${options.from} is a receiver for \`zenith snapshot push\`, not a place to pull from.`,
      'Pull from an s3/dir storage or an s3://, file:// or ssh:// URL; to send a snapshot to a `zenith snapshot recv`, push it.')
  }

  const {store} = source
  const remoteName = options.snapshot ?? await onlySnapshot(store, source.label)
  const localName = options.as ?? remoteName
  parseSnapshotRef(localName)
  assertSnapshotNameFree(await zenith.store.read(), localName)
  const manifest = await timed('read the manifest (S3 client, first request)', () => readManifest(store, remoteName))
  if (!manifest) {
    throw new ZenithError('SNAPSHOT_NOT_FOUND', `${source.label} has no snapshot named "${remoteName}".`,
      `See \`zenith snapshot list --storage ${options.from}\` for what it holds.`)
  }

  await reclaimCaches(zenith.home)
  const cache = await ChunkCache.claim(zenith.home, 'pull', pullCacheKey(store.location, remoteName))
  const chunks = new RemoteChunks(store, cache, manifest)
  try {
    const snapshot = await timed('fetch, verify and write the chunks, record the snapshot', () => assembleSnapshot(zenith, {
      name: localName, storage: options.storage, manifest, source: chunks, label: `Pulling ${remoteName}`, onProgress: options.onProgress,
      damaged: (damaged) => damagedChunks(store, manifest, damaged),
    }))
    await cache.remove()
    return {
      snapshot, from: source.label, remoteName, logicalBytes: manifest.totalBytes,
      receivedBytes: chunks.receivedBytes, chunksFetched: chunks.fetched, chunksCached: chunks.fromCache,
    }
  } catch (error) {
    await cache.release()
    throw error
  }
}

/**
 * A pull from another host over ssh: that host runs `zenith snapshot push SNAP --to -` and this
 * one receives the stream as a push over ssh is received (recv-stream.ts): every chunk verified
 * as it arrives and kept for a re-run, the snapshot written only when all have arrived.
 */
async function pullOverSsh(zenith: Zenith, source: SshTarget, options: PullOptions): Promise<PullResult> {
  if (!options.snapshot) {
    throw new ZenithError('INVALID_ARGUMENT', `Name the snapshot to pull from ${source.label}.`, `See \`ssh ${source.host} zenith snapshot list\` for what it holds.`)
  }

  const localName = options.as ?? options.snapshot
  parseSnapshotRef(localName)
  assertSnapshotNameFree(await zenith.store.read(), localName)
  const session = startSsh(source, ['snapshot', 'push', options.snapshot, '--to', '-'])
  try {
    const result = await receiveOverStream(zenith, {
      input: session.child.stdout, output: session.child.stdin, storage: options.storage, as: options.as, onProgress: options.onProgress,
      cacheKey: pullCacheKey(source.label, options.snapshot), sender: source.label,
    }).catch(async (error: unknown) => {
      // The stream ended without a word from the other side: ssh says why.
      throw isZenithError(error, 'INTERRUPTED') ? await session.failure() : error
    })
    return {
      snapshot: result.snapshot, from: source.label, remoteName: options.snapshot, logicalBytes: result.logicalBytes,
      receivedBytes: result.receivedBytes, chunksFetched: result.chunksReceived, chunksCached: result.chunksCached,
    }
  } finally {
    await session.close()
  }
}

/** Pulls of the same snapshot from the same remote share a key: a re-run adopts what a failed one verified. */
function pullCacheKey(location: string, snapshot: string): string {
  return createHash('sha256').update(`${location}\n${snapshot}`).digest('hex').slice(0, 16)
}

/** Ranges fetched ahead of the one the writers are on: the next chunks are there when needed. */
const RANGES_AHEAD = 2

interface FetchedRange {
  range: PackRange
  body?: Promise<Buffer | undefined>
  /** Chunks of the range not yet handed out: its buffer is dropped when none is left. */
  pending: number
}

/**
 * Chunks from this pull's cache (left by an earlier attempt), else from the remote: byte ranges
 * of packs (neighbouring chunks in one request), or `chunks/<sha256>` objects of a remote
 * written before packs. Every chunk is verified on its own, so a damaged one is named and the
 * good ones of the same range are kept for a re-run.
 */
class RemoteChunks implements ChunkSource {
  readonly concurrency = TRANSFER_CONCURRENCY
  receivedBytes = 0
  fetched = 0
  fromCache = 0
  private readonly locations = new Map<string, ChunkLocation>()
  private readonly ranges: FetchedRange[]
  private readonly rangeOf = new Map<string, number>()
  /** Chunks whose range was handed out (a second fetch of one is a request of its own). */
  private readonly rangeUsed = new Set<string>()
  /** Chunks handed out from the cache, not yet found good. */
  private readonly servedFromCache = new Set<string>()

  constructor(private readonly store: ObjectStore, private readonly cache: ChunkCache, manifest: RemoteManifest) {
    for (const [pack, entries] of Object.entries(manifest.packs ?? {})) {
      for (const [hash, offset, length] of entries) this.locations.set(hash, {pack, offset, length})
    }

    const needed = [...this.locations].filter(([hash]) => !cache.has(hash)).map(([hash, where]) => ({hash, ...where}))
    this.ranges = planRanges(needed).map((range) => ({range, pending: range.hashes.length}))
    this.ranges.forEach(({range}, i) => {
      for (const hash of range.hashes) this.rangeOf.set(hash, i)
    })
  }

  /** Cached and chunks/ chunks first, then the ranges in order: each range is fetched once and soon freed. */
  order(hashes: string[]): string[] {
    const rank = (hash: string) => this.rangeOf.get(hash) ?? -1
    return [...hashes].sort((a, b) => rank(a) - rank(b))
  }

  /** From the cache when an earlier attempt left it there (checked by the writer like any other), else from the remote. */
  async stored(hash: string): Promise<Buffer | DamagedChunk> {
    if (this.cache.has(hash)) {
      this.servedFromCache.add(hash)
      return this.cache.read(hash)
    }

    return this.fetchChunk(hash)
  }

  /** A cached chunk that proved damaged (a crash may have cut it short) is fetched again. */
  async refetch(hash: string): Promise<Buffer | DamagedChunk> {
    if (!this.servedFromCache.delete(hash)) return {hash, missing: false}
    return this.fetchChunk(hash)
  }

  async verified(hash: string, stored: Buffer): Promise<void> {
    if (this.servedFromCache.has(hash)) {
      this.fromCache++
      return
    }

    await this.cache.put(hash, stored)
    this.fetched++
  }

  private async fetchChunk(hash: string): Promise<Buffer | DamagedChunk> {
    const where = this.locations.get(hash)
    let stored: Buffer | undefined
    if (!where) {
      stored = await this.store.get(chunkKey(hash))
      if (stored) this.receivedBytes += stored.length
    } else if (this.rangeOf.has(hash) && !this.rangeUsed.has(hash)) {
      this.rangeUsed.add(hash)
      stored = await this.fromRange(this.rangeOf.get(hash)!, where)
    } else {
      // Not in a planned range (its cached copy was damaged): fetched alone.
      stored = await this.store.getRange(packKey(where.pack), where.offset, where.offset + where.length - 1)
      if (stored) this.receivedBytes += stored.length
    }

    if (!stored) return {hash, missing: true, pack: where?.pack}
    if (where && stored.length !== where.length) return {hash, missing: false}
    return stored
  }

  private async fromRange(index: number, where: ChunkLocation): Promise<Buffer | undefined> {
    for (let i = index; i < Math.min(this.ranges.length, index + 1 + RANGES_AHEAD); i++) this.fetch(this.ranges[i])
    const fetched = this.ranges[index]
    try {
      const body = await fetched.body!
      // A copy: the range's buffer is dropped once its last chunk is handed out.
      return body && Buffer.from(body.subarray(where.offset - fetched.range.start, where.offset - fetched.range.start + where.length))
    } finally {
      if (--fetched.pending === 0) fetched.body = Promise.resolve(undefined)
    }
  }

  private fetch(fetched: FetchedRange): void {
    if (fetched.body) return
    const {pack, start, end} = fetched.range
    fetched.body = this.store.getRange(packKey(pack), start, end).then((body) => {
      if (body) this.receivedBytes += body.length
      return body
    })
    // Awaited by the chunks of this range; a failure is thrown there.
    fetched.body.catch(() => undefined)
  }
}

async function onlySnapshot(store: ObjectStore, label: string): Promise<string> {
  const snapshots = await listSnapshotsIn(store)
  if (snapshots.length === 1) return snapshots[0].name
  throw new ZenithError('INVALID_ARGUMENT', snapshots.length === 0 ? `${label} holds no snapshots.` : `${label} holds ${snapshots.length} snapshots; name the one to pull.`,
    snapshots.length === 0 ? 'Push one first with `zenith snapshot push SNAP --to ...`.' : `Pull one of: ${snapshots.map((item) => item.name).join(', ')}.`)
}

function damagedChunks(store: ObjectStore, manifest: ArchiveManifest, damaged: DamagedChunk[]): ZenithError {
  const [first] = damaged
  const more = damaged.length > 1 ? ` (and ${damaged.length - 1} more damaged chunk${damaged.length > 2 ? 's' : ''})` : ''
  const inPack = (manifest as RemoteManifest).packs
    ? Object.entries((manifest as RemoteManifest).packs!).find(([, entries]) => entries.some(([hash]) => hash === first.hash))?.[0]
    : undefined
  const object = inPack ? packKey(inPack) : chunkKey(first.hash)
  const what = first.missing
    ? (inPack ? `is missing: its pack ${object} is gone from ${store.location}` : `is missing from ${store.location}`)
    : `in ${store.location} (${object}) is corrupted: its content does not match its sha256`
  return new ZenithError('CHECKSUM_MISMATCH', `Chunk ${first.hash} (of ${filesOfChunk(manifest, first.hash)}) ${what}${more}; nothing was created.`,
    first.missing || inPack
      ? `${inPack ? `Remove ${object} and ${object}.idx at the remote, then push` : 'Push'} the snapshot again from a machine that has it (\`zenith snapshot push ${manifest.snapshot} --to ...\` re-sends the chunks the remote lacks), then pull again: verified chunks are kept.`
      : `Delete ${object} at the remote, push the snapshot again from a machine that has it, then pull again: verified chunks are kept.`)
}

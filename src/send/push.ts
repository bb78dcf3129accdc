import path from 'node:path'
import type {Readable, Writable} from 'node:stream'

import {listDataDirectory} from '../archive/data-dir.js'
import type {ArchiveManifest, ManifestFile} from '../archive/manifest.js'
import type {Zenith} from '../context.js'
import {volumeStorage} from '../storage/registry.js'
import {ZenithError} from '../errors.js'
import {readPgVersion} from '../pg/cluster.js'
import type {OnProgress} from '../progress.js'
import {silent} from '../progress.js'
import {CHUNK_SIZE, compressChunk, hashChunk, newManifest, readChunks, sameContent} from '../archive/chunker.js'
import {resolveRemote} from '../remote/open.js'
import {failurePayload, writeJsonFrame} from '../protocol/frames.js'
import {TRANSFER_CONCURRENCY, TaskPool} from '../task-pool.js'
import {RecvSink} from './recv-client.js'
import {SshSink, StreamSink} from './stream-sink.js'
import type {SnapshotSink} from './sink.js'
import {ObjectStoreSink} from './store-sink.js'


export interface PushOptions {
  snapshot: string
  /** A storage name or a URL (s3://, file://, zenith://, ssh://). */
  to: string
  /** Replace a snapshot of the same name with different content at the remote. */
  force?: boolean
  onProgress: OnProgress
  /** Chunk size of a new manifest (the benchmark varies it); chunks are CHUNK_SIZE otherwise. */
  chunkSize?: number
  /** With `to: '-'`: the stream protocol over these (what a pull over ssh runs on the other host). */
  stream?: {input: Readable; output: Writable}
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
  /** Distinct chunks uploaded. */
  chunksSent: number
  /** Distinct chunks the remote already had, so not uploaded. */
  chunksAtRemote: number
  /** Chunks repeated within the snapshot itself (e.g. zeroed pages): each distinct chunk is sent once. */
  chunksRepeated: number
  /** Chunks not uploaded: chunksAtRemote + chunksRepeated (chunksSent + chunksSkipped is every chunk of the snapshot). */
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

  const folder = volumeStorage(data, record.storage).snapshotPath(record.volume)
  const sink = await sinkFor(zenith, options)
  try {
    if (sink.manifestFirst) return await pushManifestFirst(sink, record.name, folder, options)
    const remote = await sink.begin(record.name)
    const entries = await listDataDirectory(folder)
    const pgVersion = await readPgVersion(folder)
    const chunkSize = remote.manifest?.chunkSize ?? options.chunkSize ?? CHUNK_SIZE
    const base = {snapshot: record.name, to: sink.label, logicalBytes: entries.reduce((sum, entry) => sum + entry.size, 0)}

    if (remote.manifest) {
      // Same name at the remote: hash first (no upload) to tell "already there" from a conflict.
      const local = newManifest(record.name, pgVersion, await hashFiles(folder, entries, chunkSize, options.onProgress), chunkSize)
      const same = sameContent(local, remote.manifest)
      // The same snapshot whose chunks are all still stored: nothing to do. If a pack of it was
      // removed (it was damaged), the push goes on and stores the missing chunks again.
      if (same && local.files.every((file) => file.chunks.every((hash) => remote.existing.has(hash)))) {
        const all = local.files.flatMap((file) => file.chunks)
        const distinct = new Set(all).size
        return {...base, sentBytes: 0, changedBytes: 0, chunksSent: 0, chunksAtRemote: distinct, chunksRepeated: all.length - distinct, chunksSkipped: all.length, upToDate: true}
      }

      if (!same && !options.force) {
        throw new ZenithError('REMOTE_CONFLICT', `${sink.label} already has a snapshot "${record.name}" with different content.`,
          `Push it under another name (\`zenith snapshot create\` a new tag), or replace the remote one with \`zenith snapshot push ${record.name} --to ${options.to} --force\`.`)
      }
    }

    const sender = new ChunkSender(sink, remote.existing)
    const label = `Pushing ${record.name}`
    let done = 0
    const files: ManifestFile[] = []
    for await (const {content, hash} of chunksOf(folder, entries, chunkSize, files)) {
      done += content.length
      await sender.offer(hash, content)
      options.onProgress({type: 'bytes', label, done, total: base.logicalBytes})
    }

    await sender.drain()
    options.onProgress({type: 'bytes-end', label, done})
    const manifest: ArchiveManifest = newManifest(record.name, pgVersion, files, chunkSize)
    await sink.commit(manifest, {sentBytes: sender.stats.sentBytes})
    return {...base, logicalBytes: manifest.totalBytes, ...sender.stats, upToDate: false}
  } finally {
    await sink.close()
  }
}

async function sinkFor(zenith: Zenith, options: PushOptions): Promise<SnapshotSink> {
  if (options.to === '-') {
    if (!options.stream) throw new ZenithError('INVALID_ARGUMENT', '--to - sends through standard output to a zenith reading it.', 'It is what `zenith snapshot pull --from ssh://...` runs on the other host.')
    return new StreamSink('the receiving side', options.stream.input, options.stream.output, async () =>
      new ZenithError('INTERRUPTED', 'The receiving side closed the stream before the snapshot was complete.', 'Pull again: chunks it verified are kept.'))
  }

  const target = await resolveRemote(zenith, options.to)
  if (target.kind === 'store') return new ObjectStoreSink(target.store, target.label)
  return target.kind === 'recv' ? new RecvSink(target) : new SshSink(target)
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

async function hashFiles(folder: string, entries: Awaited<ReturnType<typeof listDataDirectory>>, chunkSize: number, onProgress: OnProgress, label = 'Comparing with the remote'): Promise<ManifestFile[]> {
  const files: ManifestFile[] = []
  const total = entries.reduce((sum, entry) => sum + entry.size, 0)
  let done = 0
  for await (const {content} of chunksOf(folder, entries, chunkSize, files)) {
    done += content.length
    onProgress({type: 'bytes', label, done, total})
  }

  onProgress({type: 'bytes-end', label, done})
  return files
}

/**
 * A push to a stream (ssh): every file is read and hashed first, the manifest goes with the
 * first frame, then the chunks the receiver lacks follow in the manifest's order, so that it
 * writes each into place as it arrives. A snapshot never changes, so the second read finds the
 * content the first one hashed (and the receiver checks every chunk against the manifest).
 */
async function pushManifestFirst(sink: SnapshotSink, name: string, folder: string, options: PushOptions): Promise<PushResult> {
  sink.connect?.()
  const entries = await listDataDirectory(folder)
  const manifest = newManifest(name, await readPgVersion(folder), await hashFiles(folder, entries, CHUNK_SIZE, options.onProgress, `Reading ${name}`), CHUNK_SIZE)
  const {existing} = await sink.begin(name, manifest)
  const sender = new ChunkSender(sink, existing)
  const label = `Pushing ${name}`
  let done = 0
  for (const file of manifest.files) {
    if (file.type !== 'file' || file.chunks.length === 0) continue
    let index = 0
    for await (const content of readChunks(path.join(folder, file.path), manifest.chunkSize)) {
      const hash = file.chunks[index++]
      if (hash === undefined) {
        throw new ZenithError('INCOMPLETE_OPERATION', `${file.path} grew while it was being pushed.`, 'Snapshots never change: check that nothing writes into the storage\'s snapshots folder, then push again.')
      }

      done += content.length
      await sender.offer(hash, content)
      options.onProgress({type: 'bytes', label, done, total: manifest.totalBytes})
    }
  }

  await sender.drain()
  options.onProgress({type: 'bytes-end', label, done})
  await sink.commit(manifest, {sentBytes: sender.stats.sentBytes})
  return {snapshot: name, to: sink.label, logicalBytes: manifest.totalBytes, ...sender.stats, upToDate: false}
}

/**
 * Sends the chunks a sink lacks, each once, compressed a few at a time. Counts each distinct
 * chunk as sent or already at the remote, and every later occurrence of a chunk as repeated:
 * a first push to an empty remote skips only repeats, and must not say they were there.
 */
class ChunkSender {
  private readonly counts = {sentBytes: 0, changedBytes: 0, chunksSent: 0, chunksAtRemote: 0, chunksRepeated: 0}
  private readonly seen = new Set<string>()
  private readonly pool = new TaskPool(TRANSFER_CONCURRENCY)

  constructor(private readonly sink: SnapshotSink, private readonly existing: Set<string>) {}

  get stats(): typeof this.counts & {chunksSkipped: number} {
    return {...this.counts, chunksSkipped: this.counts.chunksAtRemote + this.counts.chunksRepeated}
  }

  /** Waits only while TRANSFER_CONCURRENCY chunks are being compressed or sent: memory stays bounded. */
  async offer(hash: string, content: Buffer): Promise<void> {
    if (this.seen.has(hash)) {
      this.counts.chunksRepeated++
      return
    }

    this.seen.add(hash)
    if (this.existing.has(hash)) {
      this.counts.chunksAtRemote++
      return
    }

    await this.pool.run(async () => {
      const stored = await compressChunk(content)
      await this.sink.putChunk(hash, stored)
      this.counts.sentBytes += stored.length
      this.counts.changedBytes += content.length
      this.counts.chunksSent++
    })
  }

  drain(): Promise<void> {
    return this.pool.drain()
  }
}

/**
 * `zenith snapshot push SNAP --to -`, which a pull over ssh runs on the host that has the
 * snapshot: the stream protocol on stdin/stdout, every failure sent as an F frame too.
 */
export async function pushToStdio(zenith: Zenith, snapshot: string): Promise<void> {
  try {
    await pushSnapshot(zenith, {snapshot, to: '-', stream: {input: process.stdin, output: process.stdout}, onProgress: silent})
  } catch (error) {
    await writeJsonFrame(process.stdout, 'F', failurePayload(error)).catch(() => undefined)
    throw error
  }
}

import type {ArchiveManifest} from '../archive/manifest.js'
import {chunkKey, manifestKey, readManifest, summary, updateIndex} from '../remote/layout.js'
import type {ObjectStore} from '../remote/object-store.js'
import type {SnapshotSink} from './sink.js'

/** A push into an s3 or dir storage. */
export class ObjectStoreSink implements SnapshotSink {
  constructor(private readonly store: ObjectStore, readonly label: string) {}

  async begin(snapshot: string): Promise<{existing: Set<string>; manifest?: ArchiveManifest}> {
    // One listing instead of a HEAD per chunk: also finds what an interrupted push stored.
    const existing = new Set<string>()
    for await (const item of this.store.list('chunks/')) {
      const hash = item.key.slice('chunks/'.length)
      if (/^[0-9a-f]{64}$/.test(hash)) existing.add(hash)
    }

    return {existing, manifest: await readManifest(this.store, snapshot)}
  }

  putChunk(hash: string, stored: Buffer): Promise<void> {
    return this.store.put(chunkKey(hash), stored)
  }

  async commit(manifest: ArchiveManifest, stats: {sentBytes: number}): Promise<void> {
    const body = Buffer.from(JSON.stringify(manifest))
    await this.store.put(manifestKey(manifest.snapshot), body)
    await updateIndex(this.store, (index, rebuilt) => {
      index.snapshots[manifest.snapshot] = summary(manifest)
      if (!rebuilt) index.storedBytes += stats.sentBytes + body.length
    }, (index) => index.snapshots[manifest.snapshot]?.createdAt === manifest.createdAt)
  }

  async close(): Promise<void> {
    // Nothing held open: the SDK's sockets close with the process.
  }
}

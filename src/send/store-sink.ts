import type {ArchiveManifest} from '../archive/manifest.js'
import type {PackEntry, RemoteManifest} from '../archive/chunker.js'
import {manifestKey, readManifest, summary, updateIndex} from '../remote/layout.js'
import {type RemoteLock, lockForPush} from '../remote/locks.js'
import type {ObjectStore} from '../storage/storage.js'
import {PackWriter, readPackIndexes, writePacksIndex} from '../remote/stored-packs.js'
import {type PackCatalog, addPack, emptyCatalog} from '../archive/packs.js'
import type {SnapshotSink} from './sink.js'

/**
 * A push into an s3 or dir storage: new chunks go into packs (a few large objects instead of
 * one per chunk); the manifest records where each of its chunks is.
 */
export class ObjectStoreSink implements SnapshotSink {
  private catalog: PackCatalog = emptyCatalog()
  private readonly writer: PackWriter
  private lock?: RemoteLock

  constructor(private readonly store: ObjectStore, readonly label: string) {
    this.writer = new PackWriter(store)
  }

  async begin(snapshot: string): Promise<{existing: Set<string>; manifest?: ArchiveManifest}> {
    // Held until the manifest is written: no destroy deletes the packs this push reuses meanwhile.
    this.lock = await lockForPush(this.store)
    // The pack indexes (one listing, one small read per pack) instead of a HEAD per chunk: also
    // finds the packs an interrupted push completed. chunks/ holds what zenith stored before packs.
    this.catalog = await readPackIndexes(this.store)
    const existing = new Set(this.catalog.locations.keys())
    for await (const item of this.store.list('chunks/')) {
      const hash = item.key.slice('chunks/'.length)
      if (/^[0-9a-f]{64}$/.test(hash)) existing.add(hash)
    }

    return {existing, manifest: await readManifest(this.store, snapshot)}
  }

  putChunk(hash: string, stored: Buffer): Promise<void> {
    return this.writer.add(hash, stored)
  }

  async commit(manifest: ArchiveManifest, stats: {sentBytes: number}): Promise<void> {
    await this.writer.finish()
    for (const [id, entries] of this.writer.packs) addPack(this.catalog, id, entries)
    const packs: Record<string, PackEntry[]> = {}
    const listed = new Set<string>()
    for (const file of manifest.files) {
      for (const hash of file.chunks) {
        if (listed.has(hash)) continue
        listed.add(hash)
        // Not in a pack: a chunks/<sha256> object of the older layout.
        const where = this.catalog.locations.get(hash)
        if (where) (packs[where.pack] ??= []).push([hash, where.offset, where.length])
      }
    }

    const remote: RemoteManifest = {...manifest, packs}
    const body = Buffer.from(JSON.stringify(remote))
    await this.store.put(manifestKey(manifest.snapshot), body)
    await updateIndex(this.store, (index, rebuilt) => {
      index.snapshots[manifest.snapshot] = summary(manifest)
      if (!rebuilt) index.storedBytes += stats.sentBytes + this.writer.indexBytes + body.length
    })
    // The next push reads one object instead of an index per pack.
    if (this.writer.packs.size > 0 || this.catalog.indexesRead > 0) {
      await writePacksIndex(this.store, this.catalog.packs)
    }
  }

  async close(): Promise<void> {
    // The SDK's sockets close with the process; the lock is what this push holds.
    await this.lock?.release()
  }
}

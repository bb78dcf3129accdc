import {randomBytes} from 'node:crypto'

import type {ArchiveManifest} from '../archive/manifest.js'
import {ZenithError} from '../errors.js'
import type {StorageRecord} from '../state/schema.js'
import {type RemoteManifest, normalizeManifest, validateManifest} from '../archive/chunker.js'
import type {ObjectStore} from '../storage/storage.js'
import {withIndexLock} from './locks.js'
import {objectStoreFor} from './open.js'

/**
 * The layout of a remote storage under its prefix:
 *   index.json                 snapshots with their sizes (listing needs no scan)
 *   manifests/<snapshot>.json  one ArchiveManifest per snapshot
 *   packs/<sha256>             chunks, each compressed on its own, concatenated (see packs.ts)
 *   packs/<sha256>.idx         where each chunk of that pack is, written after the pack
 *   chunks/<sha256>            one compressed chunk per object: written by zenith before packs, still read
 * A push writes packs, then the manifest, then the index: a manifest is only ever visible
 * once every chunk it names has been stored.
 */
export const INDEX_KEY = 'index.json'
export const INDEX_FORMAT = 'zenith-remote-index'

export const manifestKey = (snapshot: string) => `manifests/${snapshot}.json`
export const chunkKey = (hash: string) => `chunks/${hash}`

export interface RemoteSnapshot {
  name: string
  logicalBytes: number
  createdAt: string
  pgVersion: number
  chunks: number
}

export interface RemoteIndex {
  format: typeof INDEX_FORMAT
  version: 1
  /** Bytes of chunks and manifests stored, as counted by the pushes that stored them. */
  storedBytes: number
  snapshots: Record<string, Omit<RemoteSnapshot, 'name'>>
}

export async function readIndex(store: ObjectStore): Promise<RemoteIndex | undefined> {
  const body = await store.get(INDEX_KEY)
  if (!body) return undefined
  try {
    const index = JSON.parse(body.toString('utf8')) as RemoteIndex
    if (index.format === INDEX_FORMAT && index.snapshots && typeof index.snapshots === 'object') return index
  } catch {
    // Fall through: an unreadable index is rebuilt from the manifests.
  }

  return undefined
}

/** Read-modify-write of the index, one writer at a time (see withIndexLock): no update is lost. */
export async function updateIndex(store: ObjectStore, change: (index: RemoteIndex, rebuilt: boolean) => void): Promise<void> {
  await withIndexLock(store, async () => {
    const existing = await readIndex(store)
    // A rebuilt index already counts what this push stored.
    const index = existing ?? await rebuildIndex(store)
    change(index, existing === undefined)
    await store.put(INDEX_KEY, Buffer.from(JSON.stringify(index, null, 1)))
  })
}

/** An index built from the manifests (first push to an old storage, or a lost index). */
export async function rebuildIndex(store: ObjectStore): Promise<RemoteIndex> {
  const index: RemoteIndex = {format: INDEX_FORMAT, version: 1, storedBytes: 0, snapshots: {}}
  for await (const item of store.list('')) {
    index.storedBytes += item.size
    const name = /^manifests\/(.+)\.json$/.exec(item.key)?.[1]
    if (!name) continue
    const manifest = await readManifest(store, name)
    if (manifest) index.snapshots[name] = summary(manifest)
  }

  return index
}

export function summary(manifest: ArchiveManifest): Omit<RemoteSnapshot, 'name'> {
  return {
    logicalBytes: manifest.totalBytes,
    createdAt: manifest.createdAt,
    pgVersion: manifest.pgVersion,
    chunks: new Set(manifest.files.flatMap((file) => file.chunks)).size,
  }
}

export async function readManifest(store: ObjectStore, snapshot: string): Promise<RemoteManifest | undefined> {
  const body = await store.get(manifestKey(snapshot))
  if (!body) return undefined
  let manifest: unknown
  try {
    manifest = JSON.parse(body.toString('utf8'))
  } catch {
    manifest = undefined
  }

  if (!validateManifest(manifest)) {
    throw new ZenithError('ARCHIVE_INVALID', `The manifest of "${snapshot}" in ${store.location} is not a valid zenith manifest.`,
      'Push the snapshot again with --force, or remove manifests/' + `${snapshot}.json from the remote.`)
  }

  return normalizeManifest(manifest)
}

/** Snapshots stored in a remote storage (from its index; no bucket scan). */
export async function listRemoteSnapshots(record: StorageRecord): Promise<RemoteSnapshot[]> {
  return listSnapshotsIn(objectStoreFor(record))
}

export async function listSnapshotsIn(store: ObjectStore): Promise<RemoteSnapshot[]> {
  const index = (await readIndex(store)) ?? await rebuildIndex(store)
  return Object.entries(index.snapshots).map(([name, item]) => ({name, ...item})).sort((a, b) => a.name.localeCompare(b.name))
}

/** Space a remote storage uses, as recorded in its index by the pushes. */
export async function remoteUsage(record: StorageRecord): Promise<{usedBytes: number}> {
  const index = await readIndex(objectStoreFor(record))
  return {usedBytes: index?.storedBytes ?? 0}
}

/** Write, read back and delete a small object: proves the credentials, the bucket and the network. */
export async function probeStore(store: ObjectStore): Promise<void> {
  const key = `.zenith-probe-${randomBytes(6).toString('hex')}`
  const content = Buffer.from(`zenith probe ${new Date().toISOString()}`)
  await store.put(key, content)
  try {
    const back = await store.get(key)
    if (!back?.equals(content)) {
      throw new ZenithError('CHECKSUM_MISMATCH', `${store.location} returned different content for a probe object than was written.`,
        'The server corrupts objects: for an S3-compatible server attach with -c checksums=when-required.')
    }
  } finally {
    await store.delete(key)
  }
}

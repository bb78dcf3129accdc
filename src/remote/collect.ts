import type {Zenith} from '../context.js'
import {ZenithError, isZenithError} from '../errors.js'
import {chunkKey, manifestKey, readIndex, readManifest, updateIndex} from './layout.js'
import {LOCKS_PREFIX, RemoteLock} from './locks.js'
import type {ObjectStore} from '../storage/storage.js'
import {resolveRemote} from './open.js'
import {readPacksIndex, writePacksIndex} from './stored-packs.js'

export interface RemoteDestroyResult {
  name: string
  storage: string
  /** Unused packs (and chunk objects of the older layout) were looked for and deleted. */
  collected: boolean
  /** Why nothing was collected, when it was not. */
  notCollected?: string
  packsDeleted: number
  chunksDeleted: number
  freedBytes: number
  /** What the storage holds afterwards (every object but locks). */
  storedBytes: number
}

/**
 * Removes a snapshot from a remote storage (`snapshot destroy NAME --storage S`): its manifest,
 * then its entry in the index, then every pack no remaining manifest uses. Packs are shared
 * between snapshots, so only what no other snapshot names goes; a pack some other snapshot uses
 * even one chunk of stays whole. Collection is skipped (and said so) while a push to the same
 * storage runs, see locks.ts; the next destroy collects what this one left.
 */
export async function destroyRemoteSnapshot(zenith: Zenith, options: {storage: string; snapshot: string}): Promise<RemoteDestroyResult> {
  const target = await resolveRemote(zenith, options.storage)
  if (target.kind !== 'store') {
    throw new ZenithError('INVALID_ARGUMENT', target.kind === 'ssh'
      ? `${options.storage} is another host's zenith: destroy its snapshots there.`
      : `${options.storage} is a receiver for \`zenith snapshot push\`, not a storage to destroy snapshots in.`,
    target.kind === 'ssh' ? `Run \`ssh ${target.host} zenith snapshot destroy ${options.snapshot}\`.` : 'Destroy snapshots in an s3/dir storage or at an s3:// or file:// URL.')
  }

  const {store, label} = target
  const name = options.snapshot
  const listed = (await readIndex(store))?.snapshots[name] !== undefined
  if (!listed && !(await store.head(manifestKey(name)))) {
    throw new ZenithError('SNAPSHOT_NOT_FOUND', `${label} has no snapshot named "${name}".`, `See \`zenith snapshot list --storage ${options.storage}\` for what it holds.`)
  }

  // The manifest first: once it is gone the snapshot cannot be pulled, and a destroy killed
  // after it is finished by running it again (the index still lists the name).
  await store.delete(manifestKey(name))
  const collected = await collectUnused(store)
  await updateIndex(store, (index) => {
    delete index.snapshots[name]
    index.storedBytes = collected.storedBytes
  })
  return {name, storage: label, ...collected}
}

/**
 * Deletes the packs (each index first, then the pack) and `chunks/` objects that no manifest
 * uses, unless a push is running (it may be about to name packs no manifest names yet). One
 * listing of the storage serves the manifests, the packs, the chunk objects and the size of
 * what is left.
 */
export async function collectUnused(store: ObjectStore): Promise<Omit<RemoteDestroyResult, 'name' | 'storage'>> {
  const nothing = {packsDeleted: 0, chunksDeleted: 0, freedBytes: 0}
  const lock = await RemoteLock.write(store, 'gc')
  try {
    const objects: Array<{key: string; size: number}> = []
    for await (const item of store.list('')) {
      if (!item.key.startsWith(LOCKS_PREFIX)) objects.push(item)
    }

    const storedBytes = objects.reduce((sum, item) => sum + item.size, 0)
    const pushes = await lock.others('push')
    if (pushes.length > 0) {
      const [push] = pushes
      return {...nothing, storedBytes, collected: false, notCollected: `a push is running (${push.host}, pid ${push.pid}, since ${push.startedAt}): unused packs are collected by the next destroy`}
    }

    const usedPacks = new Set<string>()
    const usedChunks = new Set<string>()
    for (const item of objects) {
      const name = /^manifests\/(.+)\.json$/.exec(item.key)?.[1]
      if (!name) continue
      let manifest
      try {
        manifest = await readManifest(store, name)
      } catch (error) {
        if (!isZenithError(error, 'ARCHIVE_INVALID')) throw error
        return {...nothing, storedBytes, collected: false, notCollected: `the manifest of "${name}" is unreadable, so what it uses is unknown: nothing was collected`}
      }

      if (!manifest) continue
      const packed = new Set<string>()
      for (const [pack, entries] of Object.entries(manifest.packs ?? {})) {
        usedPacks.add(pack)
        for (const [hash] of entries) packed.add(hash)
      }

      for (const file of manifest.files) {
        for (const hash of file.chunks) {
          if (!packed.has(hash)) usedChunks.add(hash)
        }
      }
    }

    const unused: Array<{keys: string[]; bytes: number; pack: boolean}> = []
    const packs = new Map<string, {keys: string[]; bytes: number}>()
    for (const item of objects) {
      const pack = /^packs\/([0-9a-f]{64})(\.idx)?$/.exec(item.key)
      if (pack && !usedPacks.has(pack[1])) {
        const found = packs.get(pack[1]) ?? {keys: [], bytes: 0}
        found.keys.push(item.key)
        found.bytes += item.size
        packs.set(pack[1], found)
      }

      const chunk = /^chunks\/([0-9a-f]{64})$/.exec(item.key)
      if (chunk && !usedChunks.has(chunk[1])) unused.push({keys: [chunkKey(chunk[1])], bytes: item.size, pack: false})
    }

    for (const pack of packs.values()) unused.push({...pack, pack: true})
    // pack-index.json first: it must not name packs that are gone (readers would skip them anyway).
    const combined = packs.size > 0 ? await readPacksIndex(store) : undefined
    if (combined) {
      await writePacksIndex(store, new Map(Object.entries(combined.packs).filter(([id]) => !packs.has(id))))
    }

    // Every pack's index before any pack: a push never trusts a pack without its index.
    const keys = unused.flatMap((item) => item.keys)
    await store.deleteMany(keys.filter((key) => key.endsWith('.idx')))
    await store.deleteMany(keys.filter((key) => !key.endsWith('.idx')))
    const freedBytes = unused.reduce((sum, item) => sum + item.bytes, 0)
    return {
      collected: true,
      packsDeleted: unused.filter((item) => item.pack).length,
      chunksDeleted: unused.filter((item) => !item.pack).length,
      freedBytes,
      storedBytes: storedBytes - freedBytes,
    }
  } finally {
    await lock.release()
  }
}

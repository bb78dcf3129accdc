import {randomBytes} from 'node:crypto'

import type {Zenith} from '../context.js'
import {ZenithError} from '../errors.js'
import {type CreatePgOptions, type PgInfo, createPg, defaultStorageName} from '../pg/lifecycle.js'
import {silent} from '../progress.js'
import {fillFromSnapshot} from '../snapshot/clone.js'
import {destroySnapshot, resolveSnapshot} from '../snapshot/snapshots.js'
import {volumeStorage} from '../storage/registry.js'
import {importSnapshot, isSnapshotUrl} from './import.js'

/**
 * `pg create NAME --snapshot SNAP [--cow]`. SNAP may be a URL (basebackup://, http(s)://,
 * file://): it is imported as a temporary snapshot, the pg is made from it, and the temporary
 * snapshot is destroyed, as the proposal's `pg create --snapshot URL` session shows.
 */
export async function createPgFromSnapshot(zenith: Zenith, options: Omit<CreatePgOptions, 'fill'> & {snapshot: string; cow?: boolean}): Promise<PgInfo> {
  const onProgress = options.onProgress ?? silent
  if (options.readOnly && isSnapshotUrl(options.snapshot)) {
    throw new ZenithError('INVALID_ARGUMENT', '--read-only needs a snapshot of this zenith, not a URL.',
      `Import it first (zenith snapshot import ${options.snapshot} NAME), make a pg of it once to set zenith's password, snapshot that pg and use that snapshot.`)
  }

  if (!isSnapshotUrl(options.snapshot)) {
    // Resolve first, so an unknown snapshot fails before anything is reserved. The copy goes to
    // the snapshot's own storage unless -s says otherwise (a thin clone can only live there).
    const snapshot = resolveSnapshot(await zenith.store.read(), options.snapshot)
    if (options.readOnly && !snapshot.password) {
      // A standby cannot run the ALTER ROLE that gives zenith its password to the data.
      throw new ZenithError('INVALID_ARGUMENT', `${snapshot.name} came from outside zenith: a read-only pg of it could not get zenith's password.`,
        `Make a writable pg of it once (zenith pg create tmp --snapshot ${snapshot.name}), snapshot that (zenith snapshot create tmp@ready) and create the read-only pg from tmp@ready.`)
    }
    const cow = options.cow ?? false
    return createPg(zenith, {
      ...options, storage: options.storage ?? snapshot.storage, origin: {snapshot: snapshot.name, cow},
      fill: fillFromSnapshot(zenith, snapshot.name, {cow}),
    })
  }

  const storageName = options.storage ?? await defaultStorageName(zenith)
  const temporary = `import-${randomBytes(4).toString('hex')}`
  const imported = await importSnapshot(zenith, {from: options.snapshot, name: temporary, storage: storageName, onProgress})
  onProgress({type: 'step', message: 'Downloading snapshot... Done'})
  try {
    // The temporary snapshot goes away: share its blocks where the storage can, else copy.
    const thin = volumeStorage(await zenith.store.read(), storageName).capabilities.thinClone
    const fill = fillFromSnapshot(zenith, temporary, {cow: thin})
    const pg = await createPg(zenith, {
      ...options,
      storage: storageName,
      fill: async (target) => ({...await fill(target), origin: {snapshot: imported.source, cow: false}}),
    })
    return pg
  } finally {
    await destroySnapshot(zenith, temporary, {force: true})
    onProgress({type: 'step', message: 'Destroying snapshot... Done'})
  }
}

import {randomBytes} from 'node:crypto'

import {type Zenith, localStorage} from '../context.js'
import {ZenithError} from '../errors.js'
import {type CreatePgOptions, type PgInfo, createPg, defaultStorageName} from '../pg/lifecycle.js'
import {pgOsUser} from '../pg/os-user.js'
import {silent} from '../progress.js'
import {copyTree} from '../storage/local.js'
import {prepareDataDir} from './backup.js'
import {readPgVersion} from './records.js'
import {destroySnapshot, resolveSnapshot} from './snapshots.js'

/**
 * The `fill` of `pg create NAME --snapshot SNAP [--cow]`: a thin clone (btrfs snapshot or
 * reflink copy, sharing blocks with the snapshot) or a full, independent copy.
 */
export function fillFromSnapshot(zenith: Zenith, ref: string, options: {cow: boolean}): NonNullable<CreatePgOptions['fill']> {
  return async ({storage: storageName, volume, dataDir}) => {
    const data = await zenith.store.read()
    const snapshot = resolveSnapshot(data, ref)
    const target = localStorage(data, storageName)
    if (options.cow && snapshot.storage !== storageName) {
      throw new ZenithError('STORAGE_UNSUPPORTED', `--cow needs the snapshot and the new pg in one storage; ${snapshot.name} is in ${snapshot.storage}, the pg would be in ${storageName}.`,
        `Drop --cow for a full copy, or create the pg in ${snapshot.storage} (-s ${snapshot.storage}).`)
    }

    if (options.cow && target.copyMethod === 'copy') {
      throw new ZenithError('STORAGE_UNSUPPORTED', `Storage ${storageName} cannot share blocks (its filesystem has neither btrfs snapshots nor reflink), so --cow is not possible there.`,
        'Drop --cow for a full copy, or attach a btrfs or XFS (reflink=1) storage: zenith storage attach -t btrfs -n fast -c path=/mnt/btrfs')
    }

    if (snapshot.storage === storageName) {
      await target.cloneSnapshot(snapshot.volume, volume, options.cow ? 'thin' : 'full')
    } else {
      await target.createVolume(volume)
      await copyTree(localStorage(data, snapshot.storage).snapshotPath(snapshot.volume), dataDir, 'never', true)
    }

    await prepareDataDir(dataDir, await pgOsUser(zenith))
    return {
      pgVersion: snapshot.pgVersion || await readPgVersion(dataDir),
      origin: {snapshot: snapshot.name, cow: options.cow},
      password: snapshot.password,
    }
  }
}

/**
 * `pg create NAME --snapshot SNAP [--cow]`. SNAP may be a URL (basebackup://, http(s)://,
 * file://): it is imported as a temporary snapshot, the pg is made from it, and the temporary
 * snapshot is destroyed, as the proposal's `pg create --snapshot URL` session shows.
 */
export async function createPgFromSnapshot(zenith: Zenith, options: Omit<CreatePgOptions, 'fill'> & {snapshot: string; cow?: boolean}): Promise<PgInfo> {
  const onProgress = options.onProgress ?? silent
  const {importSnapshot, isSnapshotUrl} = await import('../transfer/import.js')
  if (!isSnapshotUrl(options.snapshot)) {
    // Resolve first, so an unknown snapshot fails before anything is reserved. The copy goes to
    // the snapshot's own storage unless -s says otherwise (a thin clone can only live there).
    const snapshot = resolveSnapshot(await zenith.store.read(), options.snapshot)
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
    const thin = localStorage(await zenith.store.read(), storageName).copyMethod !== 'copy'
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

import type {Zenith} from '../context.js'
import {volumeStorage} from '../storage/registry.js'
import {ZenithError} from '../errors.js'
import {readPgVersion} from '../pg/cluster.js'
import type {CreatePgOptions} from '../pg/lifecycle.js'
import {pgOsUser} from '../pg/os-user.js'
import {copyTree} from '../storage/folders.js'
import {prepareDataDir} from '../pg/data-dir.js'
import {resolveSnapshot} from './snapshots.js'

/**
 * The `fill` of `pg create NAME --snapshot SNAP [--cow]`: a thin clone (btrfs snapshot or
 * reflink copy, sharing blocks with the snapshot) or a full, independent copy.
 */
export function fillFromSnapshot(zenith: Zenith, ref: string, options: {cow: boolean}): NonNullable<CreatePgOptions['fill']> {
  return async ({storage: storageName, volume, dataDir}) => {
    const data = await zenith.store.read()
    const snapshot = resolveSnapshot(data, ref)
    const target = volumeStorage(data, storageName)
    if (options.cow && snapshot.storage !== storageName) {
      throw new ZenithError('STORAGE_UNSUPPORTED', `--cow needs the snapshot and the new pg in one storage; ${snapshot.name} is in ${snapshot.storage}, the pg would be in ${storageName}.`,
        `Drop --cow for a full copy, or create the pg in ${snapshot.storage} (-s ${snapshot.storage}).`)
    }

    if (options.cow && !target.capabilities.thinClone) {
      throw new ZenithError('STORAGE_UNSUPPORTED', `Storage ${storageName} cannot share blocks (its filesystem has neither btrfs snapshots nor reflink), so --cow is not possible there.`,
        'Drop --cow for a full copy, or attach a btrfs or XFS (reflink=1) storage: zenith storage attach -t btrfs -n fast -c path=/mnt/btrfs')
    }

    if (snapshot.storage === storageName) {
      await target.cloneSnapshot(snapshot.volume, volume, options.cow ? 'thin' : 'full')
    } else {
      await target.createVolume(volume)
      await copyTree(volumeStorage(data, snapshot.storage).snapshotPath(snapshot.volume), dataDir, 'never', true)
    }

    await prepareDataDir(dataDir, await pgOsUser(zenith))
    return {
      pgVersion: snapshot.pgVersion || await readPgVersion(dataDir),
      origin: {snapshot: snapshot.name, cow: options.cow},
      password: snapshot.password,
      logicalBytes: snapshot.logicalBytes || undefined,
    }
  }
}

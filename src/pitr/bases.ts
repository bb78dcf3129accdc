import {readdir, rm} from 'node:fs/promises'
import path from 'node:path'

import type {Zenith} from '../context.js'
import {ZenithError} from '../errors.js'
import {clusterStatus} from '../pg/cluster.js'
import {findPgBinaries} from '../pg/binaries.js'
import {removeRuntimeFiles} from '../pg/data-dir.js'
import {claimPg, pgConnection, releasePg} from '../pg/lifecycle.js'
import {pgOsUser} from '../pg/os-user.js'
import type {OnProgress} from '../progress.js'
import {copyWithBackupApi} from '../snapshot/backup.js'
import {snapshotVolumeName} from '../snapshot/records.js'
import type {PitrBase, PitrRecord, SnapshotRecord} from '../state/schema.js'
import {diskUsage} from '../storage/folders.js'
import {openStorage, volumeStorage} from '../storage/registry.js'
import {hasVolumes} from '../storage/storage.js'
import {parseLsn, segmentNameOf} from './lsn.js'
import {readControlData} from './wal-tools.js'

/**
 * A new base for an area: a copy of the pg's data directory with the backup API (running pg)
 * or of the stopped one, frozen as a snapshot folder of the area's storage when it holds
 * volumes, else pushed to the area's object storage as `pitr.<area>.base<N>`. Holds the pg's
 * claim while it copies, as `snapshot create` does.
 */
export async function takeBase(zenith: Zenith, area: PitrRecord, onProgress: OnProgress): Promise<PitrBase> {
  const id = await zenith.store.update((data) => {
    const current = data.pitr[area.name]
    const next = current.nextBaseId
    current.nextBaseId++
    return next
  })
  const pg = await claimPg(zenith, area.pg, 'snapshot')
  try {
    const data = await zenith.store.read()
    const local = volumeStorage(data, pg.storage)
    const target = openStorage(data, area.storage)
    const dataDir = local.volumePath(pg.volume)
    const volume = snapshotVolumeName(`pitr-${area.name}-base${id}`)
    const binaries = await findPgBinaries(zenith, pg.pgVersion)
    const {status} = await clusterStatus(dataDir)
    let base: Omit<PitrBase, 'kind' | 'location' | 'bytes'>
    onProgress({type: 'step', message: `Taking base ${id} of PITR area ${area.name} (${status === 'running' ? 'backup API' : 'copy of the stopped pg'})`})
    if (status === 'running') {
      const points = await copyWithBackupApi({
        connection: await pgConnection(zenith, pg.name), dataDir, label: `zenith pitr ${area.name} base ${id}`, osUser: await pgOsUser(zenith),
        copy: (finish) => local.snapshotVolume(pg.volume, volume, async (dir) => {
          const points = await finish(dir)
          await removeRuntimeFiles(dir)
          await pruneWal(dir, points.startFile, points.stopFile)
        }),
      })
      const timeline = Number.parseInt(points.startFile.slice(0, 8), 16)
      base = {
        id, timeline, startLsn: points.startLsn, stopLsn: points.stopLsn, startSegment: points.startFile, time: points.stoppedAt.toISOString(),
        nextXid: points.nextXid, pgVersion: pg.pgVersion, password: pg.password,
      }
    } else {
      const control = await readControlData(binaries, dataDir)
      if (control.state !== 'shut down') {
        throw new ZenithError('PG_NOT_RUNNING', `pg "${pg.name}" was not shut down cleanly (${control.state}): its data is no base for point-in-time recovery.`,
          `Start it (postgres recovers), then retry: zenith pg start ${pg.name}`)
      }

      await local.snapshotVolume(pg.volume, volume, removeRuntimeFiles)
      base = {
        id, timeline: control.timeline, startLsn: control.redoLsn, stopLsn: control.checkpointLsn,
        startSegment: segmentNameOf(parseLsn(control.redoLsn), control.timeline, control.segmentSize), time: control.checkpointTime.toISOString(),
        nextXid: control.nextXid, pgVersion: pg.pgVersion, password: pg.password,
      }
    }

    if (hasVolumes(target)) {
      return {...base, kind: 'volume', location: volume, bytes: await diskUsage(local.snapshotPath(volume))}
    }

    try {
      return {...base, kind: 'remote', location: remoteBaseName(area.name, id), bytes: await pushBase(zenith, {area, pgStorage: pg.storage, volume, id, pgVersion: pg.pgVersion, password: pg.password, onProgress})}
    } finally {
      await local.removeSnapshot(volume).catch(() => undefined)
    }
  } finally {
    await releasePg(zenith, area.pg)
  }
}

/**
 * A copy of a running data directory carries every file of pg_wal: old recycled segments and
 * WAL far past the backup. A base needs only the backup window (copied in again by the backup
 * API, see backup.ts); the rest comes from the area. Dropping the others keeps a base the size
 * of the data (pgBackRest's backups hold no pg_wal either).
 */
async function pruneWal(dir: string, first: string, last: string): Promise<void> {
  const wal = path.join(dir, 'pg_wal')
  for (const name of await readdir(wal)) {
    if (/^[0-9A-F]{24}$/.test(name) && (name < first || name > last)) await rm(path.join(wal, name), {force: true})
  }

  const status = path.join(wal, 'archive_status')
  for (const name of await readdir(status).catch(() => [] as string[])) {
    const segment = name.replace(/\.(ready|done)$/, '')
    if (/^[0-9A-F]{24}$/.test(segment) && (segment < first || segment > last)) await rm(path.join(status, name), {force: true})
  }
}

export function remoteBaseName(area: string, id: number): string {
  return `pitr.${area}.base${id}`
}

/** Pushes a base folder to the area's object storage through a snapshot record that exists only meanwhile. */
async function pushBase(zenith: Zenith, options: {area: PitrRecord; pgStorage: string; volume: string; id: number; pgVersion: number; password: string; onProgress: OnProgress}): Promise<number> {
  // A push sends a snapshot under its own name: the record is named as the remote base.
  const name = remoteBaseName(options.area.name, options.id)
  const record: SnapshotRecord = {
    name, storage: options.pgStorage, volume: options.volume, method: 'backup-api', pgVersion: options.pgVersion,
    logicalBytes: 0, createdAt: new Date().toISOString(), state: 'ready', password: options.password,
  }
  await zenith.store.update((data) => {
    if (data.snapshots[name]) throw new ZenithError('NAME_TAKEN', `A snapshot named "${name}" already exists; zenith needs the name for a PITR base.`, `Rename or destroy that snapshot.`)
    data.snapshots[name] = record
  })
  try {
    const {pushSnapshot} = await import('../send/push.js')
    const result = await pushSnapshot(zenith, {snapshot: name, to: options.area.storage, onProgress: options.onProgress})
    return result.logicalBytes
  } finally {
    await zenith.store.update((data) => {
      delete data.snapshots[name]
    })
  }
}

/** Removes a base's data (a snapshot folder, or the pushed snapshot and the packs only it used). */
export async function removeBase(zenith: Zenith, area: PitrRecord, base: PitrBase): Promise<void> {
  const data = await zenith.store.read()
  if (base.kind === 'volume') {
    await volumeStorage(data, area.storage).removeSnapshot(base.location)
    return
  }

  const {destroyRemoteSnapshot} = await import('../remote/collect.js')
  await destroyRemoteSnapshot(zenith, {storage: area.storage, snapshot: base.location}).catch((error: unknown) => {
    if ((error as {code?: string}).code !== 'SNAPSHOT_NOT_FOUND') throw error
  })
}


import {copyFile, mkdir, readdir, rm, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {newClient} from '../pg/client.js'
import type {OsUser} from '../pg/os-user.js'
import {giveTo} from '../pg/os-user.js'

export interface Connection {
  host: string
  port: number
  user: string
  password: string
  database: string
}

/** Where a backup taken with the backup API starts and becomes consistent. */
export interface BackupPoints {
  startLsn: string
  stopLsn: string
  /** WAL file names of both points (timeline + segment). */
  startFile: string
  stopFile: string
  /** When pg_backup_stop returned: the copy is consistent as of then. */
  stoppedAt: Date
  /** The next transaction id at the start (pg_current_snapshot's xmax). */
  nextXid: string
}

/**
 * A consistent copy of a *running* data directory through postgres' backup API:
 * pg_backup_start, copy (reflink or plain), pg_backup_stop, then the WAL written during the copy
 * and the backup_label go into the copy, so it recovers to a consistent state on start. A
 * temporary replication slot keeps that WAL from being recycled while the copy runs.
 */
export async function copyWithBackupApi(options: {
  connection: Connection
  dataDir: string
  label: string
  osUser?: OsUser
  copy: (finish: (copyDir: string) => Promise<BackupPoints>) => Promise<void>
}): Promise<BackupPoints> {
  const client = await newClient(options.connection)
  await client.connect()
  try {
    const slot = `zenith_backup_${process.pid}_${Date.now() % 1_000_000}`
    await client.query('select pg_create_physical_replication_slot($1, true, true)', [slot])
    const start = await client.query<{lsn: string; file: string; xid: string}>(
      'select lsn::text, pg_walfile_name(lsn) as file, pg_snapshot_xmax(pg_current_snapshot())::text as xid from pg_backup_start($1, true) as lsn', [options.label])
    let points: BackupPoints | undefined
    await options.copy(async (copyDir) => {
      const stop = await client.query<{lsn: string; file: string; labelfile: string; spcmapfile: string}>(
        'select lsn::text, pg_walfile_name(lsn) as file, labelfile, spcmapfile from pg_backup_stop(false)')
      const {lsn, file: last, labelfile, spcmapfile} = stop.rows[0]
      points = {startLsn: start.rows[0].lsn, stopLsn: lsn, startFile: start.rows[0].file, stopFile: last, stoppedAt: new Date(), nextXid: start.rows[0].xid}
      await refreshWal(options.dataDir, copyDir, start.rows[0].file, last, options.osUser)
      await writeOwned(path.join(copyDir, 'backup_label'), labelfile, options.osUser)
      if (spcmapfile) await writeOwned(path.join(copyDir, 'tablespace_map'), spcmapfile, options.osUser)
      return points
    })
    if (!points) throw new Error('the copy of a backup never called finish()')
    return points
  } finally {
    await client.end().catch(() => undefined)
  }
}

/** Copies the WAL segments from `first` to `last` (the backup window) again, now complete. */
async function refreshWal(dataDir: string, copyDir: string, first: string, last: string, osUser?: OsUser): Promise<void> {
  const timeline = first.slice(0, 8)
  const wal = path.join(dataDir, 'pg_wal')
  await mkdir(path.join(copyDir, 'pg_wal'), {recursive: true})
  for (const file of await readdir(wal)) {
    if (!/^[0-9A-F]{24}$/.test(file) || file.slice(0, 8) !== timeline || file < first || file > last) continue
    const target = path.join(copyDir, 'pg_wal', file)
    await rm(target, {force: true})
    await copyFile(path.join(wal, file), target)
    await giveTo(osUser, target)
  }
}

async function writeOwned(file: string, text: string, osUser?: OsUser): Promise<void> {
  await writeFile(file, text, {mode: 0o600})
  await giveTo(osUser, file)
}

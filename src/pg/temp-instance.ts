import {randomBytes} from 'node:crypto'
import {readdir, rm} from 'node:fs/promises'
import path from 'node:path'

import type {Zenith} from '../context.js'
import {volumeStorage} from '../storage/registry.js'
import {killWritersOf} from '../process.js'
import {leftByDeadProcess} from '../state/lock.js'
import type {SnapshotRecord} from '../state/schema.js'
import {type PgBinaries, findPgBinaries} from './binaries.js'
import {prepareDataDir} from './data-dir.js'
import {type Cluster, clusterStatus, readPgVersion, startCluster, stopCluster} from './cluster.js'
import {type OsUser, pgOsUser} from './os-user.js'
import {allocatePort} from './ports.js'

/** A postgres that exists only while a function runs: for export and dumps of a snapshot. */
export interface TempInstance {
  dataDir: string
  port: number
  socketDir: string
  /** The superuser to connect as over the (trusted) unix socket. */
  user: string
  binaries: PgBinaries
  osUser?: OsUser
  /** libpq settings that reach it. */
  connection: {host: string; port: string; user: string; dbname: string}
}

const PREFIX = '.temp-'

/** A started temporary instance and how to remove it (stop postgres, remove its volume and log). */
export interface StartedTempInstance extends TempInstance {
  /**
   * Stops postgres: `immediate` (the default) when nothing it holds is kept; `fast` writes every
   * page to the clone first (a shutdown checkpoint), for a caller that reads the files after.
   */
  stop(mode?: 'fast' | 'immediate'): Promise<void>
  remove(): Promise<void>
}

export interface TempInstanceOptions {
  /** Refuse writes in every session (diffs, which only read). */
  readOnly?: boolean
  /** A port chosen by the caller (who starts several at once); default the next free one. */
  port?: number
}

/**
 * Starts postgres on a thin clone of a snapshot (a hidden volume in the snapshot's storage, on
 * its own port, reachable only over the unix socket), runs `work`, then stops and removes it,
 * also when `work` fails. Starting recovers a snapshot taken from a running server (backup_label,
 * crash-consistent image); the snapshot itself is never touched.
 */
export async function withTempInstance<T>(zenith: Zenith, snapshot: SnapshotRecord, work: (instance: TempInstance) => Promise<T>, options: TempInstanceOptions = {}): Promise<T> {
  const instance = await startTempInstance(zenith, snapshot, options)
  try {
    return await work(instance)
  } finally {
    await instance.remove()
  }
}

/**
 * The start half of withTempInstance, for callers that run several at once (a diff starts one
 * per side in parallel). The caller must call `remove()`; what a killed process left is removed
 * by reclaimTempInstances. A failed start removes what it made before it throws.
 */
export async function startTempInstance(zenith: Zenith, snapshot: SnapshotRecord, options: TempInstanceOptions = {}): Promise<StartedTempInstance> {
  const data = await zenith.store.read()
  const storage = volumeStorage(data, snapshot.storage)
  await reclaimTempInstances(zenith, snapshot.storage)
  const binaries = await findPgBinaries(zenith, snapshot.pgVersion || undefined)
  const osUser = await pgOsUser(zenith)
  const volume = `${PREFIX}${snapshot.name.replaceAll(/[^A-Za-z0-9_.-]/g, '_')}.p${process.pid}.${randomBytes(3).toString('hex')}`
  const port = options.port ?? await allocatePort(Object.values(data.pgs).map((pg) => pg.port))
  const dataDir = storage.volumePath(volume)
  const cluster: Cluster = {
    dataDir, port, socketDir: zenith.socketDir, logFile: path.join(zenith.logDir, `${volume}.log`), osUser, binaries,
    settings: {
      // Socket only; settings of the server the data came from must not stop it from starting here.
      listen_addresses: '', ssl: 'off', archive_mode: 'off', wal_level: 'replica', max_wal_senders: '4',
      shared_buffers: '128MB', logging_collector: 'off', hot_standby: 'on',
      // Read-only, and no background work that would change pages while a caller reads them.
      ...(options.readOnly ? {default_transaction_read_only: 'on', autovacuum: 'off'} : {}),
    },
  }

  const stop = (mode: 'fast' | 'immediate' = 'immediate') => removeTempInstance(dataDir, binaries, osUser, mode)
  const remove = async () => {
    await stop()
    await storage.removeVolume(volume)
    await rm(cluster.logFile, {force: true})
  }

  try {
    await storage.cloneSnapshot(snapshot.volume, volume, 'thin')
    // A clone of a running server's image carries its pid file, and a pulled or received
    // snapshot's files were written by this (root) process: the whole tree goes to postgres.
    await prepareDataDir(dataDir, osUser)
    await startCluster(cluster)
  } catch (error) {
    // The failed start is what the user needs to read; what this cannot remove now is reclaimed
    // by the next command (reclaimTempInstances), since the volume names this process.
    await remove().catch(() => undefined)
    throw error
  }

  return {
    dataDir, port, socketDir: zenith.socketDir, user: 'postgres', binaries, osUser,
    connection: {host: zenith.socketDir, port: String(port), user: 'postgres', dbname: 'postgres'},
    stop, remove,
  }
}

async function removeTempInstance(dataDir: string, binaries: PgBinaries, osUser: OsUser | undefined, mode: 'fast' | 'immediate' = 'immediate'): Promise<void> {
  if ((await clusterStatus(dataDir)).status === 'running') await stopCluster({dataDir, osUser, binaries}, mode)
}

/**
 * Temporary instances of killed zenith processes (postgres outlives a kill): stopped and removed.
 * Returns the volumes it removed. Run by every command's repair and before a new instance starts.
 */
export async function reclaimTempInstances(zenith: Zenith, storageName: string): Promise<string[]> {
  const data = await zenith.store.read()
  const storage = volumeStorage(data, storageName)
  const volumes = path.dirname(storage.volumePath('x'))
  const removed: string[] = []
  for (const entry of await readdir(volumes).catch(() => [] as string[])) {
    const owner = Number(/^\.temp-.*\.p(\d+)\.[0-9a-f]+$/.exec(entry)?.[1])
    if (!leftByDeadProcess(owner)) continue
    const dataDir = storage.volumePath(entry)
    if ((await clusterStatus(dataDir)).status === 'running') {
      const version = await readPgVersion(dataDir)
      await stopCluster({dataDir, osUser: await pgOsUser(zenith), binaries: await findPgBinaries(zenith, version || undefined)}, 'immediate')
    }

    // A postmaster killed while it started (no pid file yet) is not seen by clusterStatus.
    await killWritersOf(dataDir)
    await storage.removeVolume(entry)
    await rm(path.join(zenith.logDir, `${entry}.log`), {force: true})
    removed.push(entry)
  }

  return removed
}

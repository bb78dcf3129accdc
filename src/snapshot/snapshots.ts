import type {Zenith} from '../context.js'
import {newClient} from '../pg/client.js'
import {volumeStorage} from '../storage/registry.js'
import {ZenithError} from '../errors.js'
import {clusterStatus} from '../pg/cluster.js'
import {assertWritable, pgBusy, pgConnection, pgRecord} from '../pg/lifecycle.js'
import {pgOsUser} from '../pg/os-user.js'
import {type PgSocket, ServerError, querySocket} from '../pg/socket-query.js'
import type {OnProgress} from '../progress.js'
import {silent} from '../progress.js'
import {parseNewSnapshotRef, parseSnapshotRef} from '../state/names.js'
import type {PgRecord, SnapshotRecord, StoreData} from '../state/schema.js'
import {removeRuntimeFiles} from '../pg/data-dir.js'
import {type Connection, copyWithBackupApi} from './backup.js'
import {diskUsage} from '../storage/folders.js'
import {timed} from '../timing.js'
import {assertSnapshotNameFree, snapshotVolumeName} from './records.js'

export interface SnapshotInfo {
  name: string
  pg?: string
  tag?: string
  storage: string
  parent?: string
  /**
   * With a parent: whether that snapshot still exists. A destroyed parent keeps its name here
   * (it is what this was made from), as git keeps a branch's upstream that is gone.
   */
  parentExists?: boolean
  /** Bytes the snapshot retains; `sizeExact` false when only the logical size is known. */
  sizeBytes: number
  sizeExact: boolean
  logicalBytes: number
  method: SnapshotRecord['method'] | 'live'
  pgVersion: number
  createdAt?: string
  implicit: boolean
  dependents: string[]
}

/**
 * `snapshot create PG@TAG`: an always-restorable image of a pg's data directory. btrfs: one
 * atomic subvolume snapshot (crash-consistent, even of a running pg). local reflink/copy: the
 * backup API for a running pg, a plain copy of a stopped one.
 */
export async function createSnapshot(zenith: Zenith, ref: string, options: {onProgress?: OnProgress} = {}): Promise<SnapshotInfo> {
  const onProgress = options.onProgress ?? silent
  // `my_pg/replica-1@tag`: a replica is no name a snapshot can carry, and has nothing of its own to snapshot.
  const replica = (await zenith.store.read()).pgs[ref.slice(0, ref.indexOf('@'))]
  if (replica?.replica) assertWritable(replica, 'be snapshotted (its data is its primary\'s)')
  const {pg: pgName, tag, name} = parseNewSnapshotRef(ref)
  const {pg, record} = await zenith.store.update((data) => {
    const pg = pgRecord(data, pgName)
    assertWritable(pg, 'be snapshotted (it never changes)')
    assertSnapshotNameFree(data, name)
    if (pg.state !== 'ready') throw pgBusy(pg)
    pg.state = 'snapshot'
    pg.pid = process.pid
    const record: SnapshotRecord = {
      name, pg: pgName, tag, storage: pg.storage, volume: snapshotVolumeName(name), parent: pg.base, method: 'stopped-copy',
      pgVersion: pg.pgVersion, logicalBytes: 0, createdAt: new Date().toISOString(), state: 'creating', pid: process.pid, password: pg.password,
    }
    data.snapshots[name] = record
    return {pg: {...pg}, record}
  })

  const storage = volumeStorage(await zenith.store.read(), pg.storage)
  const dataDir = storage.volumePath(pg.volume)
  let measured: Promise<number> | undefined
  try {
    const {status} = await clusterStatus(dataDir)
    const osUser = await pgOsUser(zenith)
    if (storage.capabilities.atomicSnapshot) {
      onProgress({type: 'step', message: `Snapshotting ${pgName} (${storage.driver}, atomic)`})
      record.method = 'fs-snapshot'
      // The image is crash-consistent either way; a checkpoint first (when much WAL has been
      // written since the last one) means clones of it have little WAL to replay, so they start
      // in about constant time whatever the write load was.
      if (status === 'running') await timed('checkpoint if behind', async () => checkpointIfBehind(await pgConnection(zenith, pgName), {socketDir: zenith.socketDir, port: pg.port}))
      await storage.snapshotVolume(pg.volume, record.volume, async (dir) => {
        await removeRuntimeFiles(dir)
        // Where the image is made in place (btrfs), its size is measured while it is frozen.
        if (dir === storage.snapshotPath(record.volume)) measured = diskUsage(dir)
      })
    } else if (status === 'running') {
      onProgress({type: 'step', message: `Snapshotting running ${pgName} with the backup API (${storage.driver})`})
      record.method = 'backup-api'
      await copyWithBackupApi({
        connection: await pgConnection(zenith, pgName), dataDir, label: `zenith ${name}`, osUser,
        copy: (finish) => storage.snapshotVolume(pg.volume, record.volume, async (dir) => {
          await finish(dir)
          await removeRuntimeFiles(dir)
        }),
      })
    } else {
      onProgress({type: 'step', message: `Snapshotting stopped ${pgName} (${storage.driver})`})
      record.method = 'stopped-copy'
      await storage.snapshotVolume(pg.volume, record.volume, removeRuntimeFiles)
    }

    const ready: SnapshotRecord = {...record, logicalBytes: await (measured ?? diskUsage(storage.snapshotPath(record.volume))), state: 'ready', pid: undefined}
    await zenith.store.update((data) => {
      data.snapshots[name] = ready
      const current = data.pgs[pgName]
      if (current?.pid === process.pid) {
        current.state = 'ready'
        delete current.pid
      }
    })
  } catch (error) {
    await storage.removeSnapshot(record.volume).catch(() => undefined)
    await zenith.store.update((data) => {
      if (data.snapshots[name]?.pid === process.pid) delete data.snapshots[name]
      const current = data.pgs[pgName]
      if (current?.pid === process.pid) {
        current.state = 'ready'
        delete current.pid
      }
    })
    throw error
  }

  return showSnapshot(zenith, name)
}

/**
 * WAL a clone may replay at start without a noticeable delay. Replay of a bulk load's WAL (full
 * page images) runs at ~50 MB/s here, so 1 MiB is ~20 ms; the 64 MiB this once was cost every
 * clone of a freshly loaded snapshot a second.
 */
const REPLAY_BUDGET_BYTES = 1024 * 1024

export async function checkpointIfBehind(connection: Connection, socket?: PgSocket): Promise<void> {
  const behind = 'select pg_wal_lsn_diff(pg_current_wal_lsn(), redo_lsn) as behind from pg_control_checkpoint()'
  if (socket) {
    // One statement over the trusted socket; the pg client (TCP, password) where the socket is not trusted.
    const asked = await querySocket(socket, behind).catch((error: unknown) => {
      if (error instanceof ServerError) throw error
      return undefined
    })
    if (asked) {
      if (Number(asked[0]?.[0]) > REPLAY_BUDGET_BYTES) await querySocket(socket, 'checkpoint')
      return
    }
  }

  const client = await newClient(connection)
  await client.connect()
  try {
    const {rows} = await client.query<{behind: string}>(behind)
    if (Number(rows[0].behind) > REPLAY_BUDGET_BYTES) await client.query('checkpoint')
  } finally {
    await client.end().catch(() => undefined)
  }
}

/** Every snapshot, plus the implicit PG@CURRENT of each pg. */
export async function listSnapshots(zenith: Zenith, options: {pg?: string} = {}): Promise<SnapshotInfo[]> {
  const data = await zenith.store.read()
  if (options.pg) pgRecord(data, options.pg)
  const snapshots = Object.values(data.snapshots)
    .filter((snapshot) => snapshot.state === 'ready' && (!options.pg || snapshot.pg === options.pg))
    .sort((a, b) => a.createdAt.localeCompare(b.createdAt))
  // A replica's data is its primary's: it has no CURRENT of its own to list.
  const pgs = Object.values(data.pgs).filter((pg) => !pg.replica && (!options.pg || pg.name === options.pg)).sort((a, b) => a.name.localeCompare(b.name))
  return [
    ...await Promise.all(snapshots.map((snapshot) => describeSnapshot(data, snapshot))),
    ...await Promise.all(pgs.map((pg) => describeCurrent(data, pg))),
  ]
}

export async function showSnapshot(zenith: Zenith, ref: string): Promise<SnapshotInfo> {
  const data = await zenith.store.read()
  const parsed = parseSnapshotRef(ref)
  if (parsed.kind === 'current') return describeCurrent(data, pgRecord(data, parsed.pg))
  return describeSnapshot(data, resolveSnapshot(data, ref))
}

/** The stored snapshot a reference names (not CURRENT, which is the live data directory). */
export function resolveSnapshot(data: StoreData, ref: string): SnapshotRecord {
  const parsed = parseSnapshotRef(ref)
  if (parsed.kind === 'current') {
    throw new ZenithError('INVALID_REF', `${ref} is the live data directory of ${parsed.pg}, not a stored snapshot.`,
      `Take one first: zenith snapshot create ${parsed.pg}@some-tag`)
  }

  const snapshot = data.snapshots[parsed.name]
  if (!snapshot || snapshot.state !== 'ready') {
    const hint = parsed.kind === 'named' || !data.pgs[parsed.pg]
      ? 'See `zenith snapshot list`.'
      : `Snapshots of ${parsed.pg}: ${Object.values(data.snapshots).filter((item) => item.pg === parsed.pg).map((item) => item.name).join(', ') || 'none'} (zenith snapshot list --pg ${parsed.pg}).`
    throw new ZenithError('SNAPSHOT_NOT_FOUND', `There is no snapshot named "${ref}".`, hint)
  }

  return snapshot
}

/**
 * Refuses while thin clones were made from it (or a checkout is rolling back to it), unless
 * forced: their blocks stay shared, but they lose the snapshot they are a view of. Full copies
 * never depend on their snapshot.
 */
export async function destroySnapshot(zenith: Zenith, ref: string, options: {force?: boolean} = {}): Promise<{name: string}> {
  const record = await zenith.store.update((data) => {
    const snapshot = resolveSnapshot(data, ref)
    const dependents = dependentsOf(data, snapshot.name)
    // Not even --force takes a snapshot away from a copy or checkout that is reading it now.
    const reading = Object.values(data.pgs).find((pg) => (pg.origin?.snapshot === snapshot.name && pg.state === 'creating') || pg.checkout?.target === snapshot.name)
    if (reading && options.force) throw pgBusy(reading)
    if (dependents.length > 0 && !options.force) {
      throw new ZenithError('HAS_DEPENDENTS', `Snapshot ${snapshot.name} has dependents: ${dependents.join(', ')}.`,
        'Destroy them first, or pass --force (clones keep their data: the shared blocks stay until the last user is gone).')
    }

    snapshot.state = 'destroying'
    snapshot.pid = process.pid
    return {...snapshot}
  })
  await volumeStorage(await zenith.store.read(), record.storage).removeSnapshot(record.volume)
  await zenith.store.update((data) => {
    delete data.snapshots[record.name]
  })
  return {name: record.name}
}

function dependentsOf(data: StoreData, name: string): string[] {
  return Object.values(data.pgs)
    .filter((pg) => (pg.origin?.snapshot === name && (pg.origin.cow || pg.state === 'creating')) || pg.checkout?.target === name)
    .map((pg) => (pg.checkout?.target === name ? `pg ${pg.name} (checking it out)` : pg.state === 'creating' ? `pg ${pg.name} (being copied from it)` : `clone ${pg.name}`))
}

async function describeSnapshot(data: StoreData, snapshot: SnapshotRecord): Promise<SnapshotInfo> {
  const storage = volumeStorage(data, snapshot.storage)
  // A snapshot never changes: where only its logical size is known, that is the recorded one.
  // Some media (btrfs) can say how much it retains, which changes as other snapshots come and go.
  const size = storage.capabilities.exactSize
    ? await storage.sizeOf({snapshot: snapshot.volume, logicalBytes: snapshot.logicalBytes}).catch(() => ({bytes: snapshot.logicalBytes, exclusive: false}))
    : {bytes: snapshot.logicalBytes, exclusive: false}
  return {
    name: snapshot.name, pg: snapshot.pg, tag: snapshot.tag, storage: snapshot.storage, ...parentOf(data, snapshot.parent),
    sizeBytes: size.bytes, sizeExact: size.exclusive, logicalBytes: snapshot.logicalBytes, method: snapshot.method,
    pgVersion: snapshot.pgVersion, createdAt: snapshot.createdAt, implicit: false, dependents: dependentsOf(data, snapshot.name),
  }
}

function parentOf(data: StoreData, parent: string | undefined): Pick<SnapshotInfo, 'parent' | 'parentExists'> {
  if (!parent) return {}
  return {parent, parentExists: data.snapshots[parent]?.state === 'ready'}
}

async function describeCurrent(data: StoreData, pg: PgRecord): Promise<SnapshotInfo> {
  const storage = volumeStorage(data, pg.storage)
  const size = pg.state === 'creating' ? {bytes: 0, exclusive: false} : await storage.sizeOf({volume: pg.volume}).catch(() => ({bytes: 0, exclusive: false}))
  return {
    name: `${pg.name}@CURRENT`, pg: pg.name, tag: 'CURRENT', storage: pg.storage, ...parentOf(data, pg.base), sizeBytes: size.bytes,
    sizeExact: size.exclusive, logicalBytes: size.bytes, method: 'live', pgVersion: pg.pgVersion, implicit: true, dependents: [],
  }
}

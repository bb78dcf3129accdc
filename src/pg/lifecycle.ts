import {randomBytes} from 'node:crypto'
import {chmod, rmdir} from 'node:fs/promises'
import path from 'node:path'

import type {Zenith} from '../context.js'
import {DEFAULT_STORAGE, volumeStorage} from '../storage/registry.js'
import {ZenithError} from '../errors.js'
import type {OnProgress} from '../progress.js'
import {silent} from '../progress.js'
import {getSetting} from '../settings.js'
import {isAlive} from '../state/lock.js'
import {validateName} from '../state/names.js'
import type {PgRecord, StoreData} from '../state/schema.js'
import {findPgBinaries} from './binaries.js'
import {newClient} from './client.js'
import {type Cluster, type ClusterStatus, clusterStatus, initCluster, setSuperuserPassword, startCluster, stopCluster, validateSetting} from './cluster.js'
import {type OsUser, giveTo, pgOsUser} from './os-user.js'
import {allocatePort, checkPortFree, isPortFree, validatePort} from './ports.js'
import {archiveSettings, installAgent} from '../wal-agent/install.js'
import {TIMELINE_FORK_SETTINGS} from './timeline-fork.js'
import {makeStandby} from './data-dir.js'
import {type ReplicationState, dropSlots, replicasOf, replicationSettings, replicationStates, withConnection} from './replication.js'
import {timed} from '../timing.js'

export type PgStatus = ClusterStatus | 'creating' | 'busy'

export interface PgInfo {
  name: string
  role: string
  storage: string
  status: PgStatus
  port: number
  endpoint: string
  usedBytes: number
  dataDir: string
  logFile: string
  pgVersion: number
  createdAt: string
  origin?: {snapshot: string; cow: boolean}
  settings: Record<string, string>
  checkouts: number
  /** Replicas only: the pg it follows, and how far behind it is (when that pg runs). */
  primary?: string
  replication?: ReplicationState
  /** Clones made through the REST API (`zenith serve`): protection and auto-delete. */
  clone?: PgRecord['clone']
}

export interface CreatePgOptions {
  name?: string
  storage?: string
  port?: number
  settings?: string[]
  start?: boolean
  onProgress?: OnProgress
  /**
   * The snapshot the new pg is made from, recorded from the start: a `snapshot destroy` during
   * the copy sees the pg that depends on it.
   */
  origin?: PgRecord['origin']
  /** A hot standby over the filled data, never promoted (needs `fill`): role `read-only`. */
  readOnly?: boolean
  /** The REST API's record of a clone it makes, stored with the pg from the start. */
  clone?: PgRecord['clone']
  /** Fills the new, empty volume instead of initdb (used by clones of snapshots). */
  /** Fills the new volume; `logicalBytes`, where the fill knows what it copied, saves the walk that would measure it for the reply. */
  fill?: (target: {storage: string; volume: string; dataDir: string}) => Promise<{pgVersion: number; origin: PgRecord['origin']; password?: string; logicalBytes?: number}>
}

/**
 * The storage a new pg goes to when neither -s nor a snapshot decides: the `default-storage`
 * setting, `local` unless the user set another.
 */
export async function defaultStorageName(zenith: Zenith): Promise<string> {
  const setting = await getSetting(zenith.home, 'default-storage')
  if (setting.source === 'set' && !(await zenith.store.read()).storages[setting.value]) {
    throw new ZenithError('STORAGE_NOT_FOUND', `The default storage "${setting.value}" (setting default-storage) is not attached.`,
      `Attach it, pass -s STORAGE, or go back to ${DEFAULT_STORAGE} with \`zenith config unset default-storage\`.`)
  }

  return setting.value
}

/**
 * What a read-only pg cannot do: its data is the snapshot it was made from and never changes.
 * `action` completes "cannot ..." in the message.
 */
export function assertWritable(pg: PgRecord, action: string): void {
  if (pg.replica) {
    throw new ZenithError('PG_READ_ONLY', `pg "${pg.name}" is a replica of ${pg.replica.primary}: it cannot ${action}.`,
      `Act on ${pg.replica.primary} instead, or make this one a primary of its own with \`zenith pg promote ${pg.name}\`.`)
  }

  if (pg.role !== 'read-only') return
  const origin = pg.origin?.snapshot
  throw new ZenithError('PG_READ_ONLY', `pg "${pg.name}" is read-only (a hot standby over ${origin ?? 'a snapshot'}): it cannot ${action}.`,
    origin ? `Its data is ${origin} as it is: use that snapshot, or make a writable copy with \`zenith pg create NAME --snapshot ${origin}\`.` : 'Make a writable copy with `zenith pg create NAME --snapshot SNAP`.')
}

/** initdb into a storage and, unless told otherwise, start postgres on it. */
export async function createPg(zenith: Zenith, options: CreatePgOptions = {}): Promise<PgInfo> {
  const onProgress = options.onProgress ?? silent
  const settings = Object.fromEntries((options.settings ?? []).map((pair) => validateSetting(pair)))
  if (options.name !== undefined) validateName('pg', options.name)
  if (options.readOnly && !options.fill) throw new ZenithError('INVALID_ARGUMENT', 'A read-only pg is made from a snapshot.', 'zenith pg create NAME --snapshot SNAP --read-only')
  if (options.port !== undefined) await checkPortFree(options.port)
  const binaries = options.fill ? undefined : await findPgBinaries(zenith)
  const osUser = await pgOsUser(zenith)
  const storageName = options.storage ?? await defaultStorageName(zenith)

  const record = await zenith.store.update(async (data) => {
    const storage = volumeStorage(data, storageName)
    const name = options.name ?? nextDefaultName(data)
    if (data.pgs[name]) throw new ZenithError('NAME_TAKEN', `A pg named "${name}" already exists.`, 'Choose another name, or destroy it first with `zenith pg destroy`.')
    const volumeHolder = Object.values(data.pgs).find((pg) => pg.volume === name && pg.storage === storage.name)
    if (volumeHolder) throw new ZenithError('NAME_TAKEN', `The name "${name}" is the folder of ${volumeHolder.name} in storage ${storage.name}.`, 'Choose another name.')
    // The snapshot it copies must still be there when the copy is reserved (a destroy may have
    // taken it since it was resolved); from then on the reservation keeps it.
    if (options.origin && data.snapshots[options.origin.snapshot]?.state !== 'ready') {
      throw new ZenithError('SNAPSHOT_NOT_FOUND', `There is no snapshot named "${options.origin.snapshot}" (it was just destroyed).`, 'See `zenith snapshot list`.')
    }
    const port = options.port ?? await allocatePort(Object.values(data.pgs).map((pg) => pg.port))
    const holder = Object.values(data.pgs).find((pg) => pg.port === port)
    if (holder) throw new ZenithError('PORT_IN_USE', `Port ${port} belongs to pg "${holder.name}".`, 'Choose another port with --port, or leave it out to get a free one.')
    const pg: PgRecord = {
      name, storage: storage.name, volume: name, port, role: options.readOnly ? 'read-only' : 'primary', osUser: osUser?.name,
      password: randomBytes(18).toString('base64url'), settings, pgVersion: binaries?.major ?? 0,
      createdAt: new Date().toISOString(), checkouts: 0, state: 'creating', pid: process.pid, origin: options.origin,
      ...(options.clone ? {clone: options.clone} : {}),
    }
    data.pgs[name] = pg
    return pg
  })

  const storage = volumeStorage(await zenith.store.read(), record.storage)
  const dataDir = storage.volumePath(record.volume)
  let copiedBytes: number | undefined
  try {
    if (options.fill) {
      const filled = await timed('fill the volume', () => options.fill!({storage: storage.name, volume: record.volume, dataDir}))
      copiedBytes = filled.logicalBytes
      record.pgVersion = filled.pgVersion
      record.origin = filled.origin
      record.base = filled.origin?.snapshot
      // Data from elsewhere has its own role passwords: ours is set on the first start.
      if (filled.password) record.password = filled.password
      else record.passwordPending = true
      if (options.readOnly) await makeStandby(dataDir, osUser)
    } else {
      onProgress({type: 'step', message: `Initializing ${record.name} in storage ${storage.name}`})
      await storage.createVolume(record.volume)
      await giveTo(osUser, dataDir)
      await chmod(dataDir, 0o700)
      await initCluster(clusterOf(zenith, record, dataDir, binaries!, osUser), record.password)
    }

    // The claim goes straight from creating to starting: no other command may start, stop or
    // snapshot the new pg between its creation and its first start.
    const start = options.start !== false
    await zenith.store.update((data) => {
      data.pgs[record.name] = start ? {...record, state: 'starting', pid: process.pid} : {...record, state: 'ready', pid: undefined}
    })
    if (start) await startClaimed(zenith, {...record, state: 'starting'}, onProgress)
  } catch (error) {
    // A pg whose creation or first start failed is removed whole (its log stays for a look):
    // the user retries with other flags instead of meeting NAME_TAKEN.
    await storage.removeVolume(record.volume).catch(() => undefined)
    await zenith.store.update((data) => {
      if (data.pgs[record.name]?.pid === process.pid) delete data.pgs[record.name]
    })
    throw error
  }

  if (options.start !== false) await releasePg(zenith, record.name)
  return showPg(zenith, record.name, copiedBytes)
}

/** `pg start`: holds the pg's claim from the first check to the end of the start. */
export async function startPg(zenith: Zenith, name: string, options: {port?: number; onProgress?: OnProgress} = {}): Promise<PgInfo> {
  const port = options.port
  // The port is checked before anything is saved; it is kept only if postgres starts on it.
  if (port !== undefined) await validatePort(port)
  const pg = await claimPg(zenith, name, 'starting', (data, current) => {
    if (port === undefined || port === current.port) return
    const holder = Object.values(data.pgs).find((other) => other.port === port && other.name !== name)
    if (holder) throw new ZenithError('PORT_IN_USE', `Port ${port} belongs to pg "${holder.name}".`, 'Choose another port.')
    current.port = port
  })
  try {
    await startClaimed(zenith, pg, options.onProgress ?? silent)
  } catch (error) {
    await releasePg(zenith, name, (current) => {
      if (port !== undefined) current.port = pg.previousPort ?? current.port
    })
    throw error
  }

  await releasePg(zenith, name)
  return showPg(zenith, name)
}

export async function stopPg(zenith: Zenith, name: string, options: {mode?: 'fast' | 'immediate' | 'smart'; onProgress?: OnProgress} = {}): Promise<PgInfo> {
  // Its replicas first: a replica whose primary is gone only retries and fills its log.
  const data = await zenith.store.read()
  pgRecord(data, name)
  for (const replica of replicasOf(data, name)) {
    if ((await clusterStatus(dataDirOf(data, replica))).status !== 'running') continue
    await withClaim(zenith, replica.name, 'stopping', (claimed) => stopClaimed(zenith, claimed, options))
  }

  await withClaim(zenith, name, 'stopping', (pg) => stopClaimed(zenith, pg, options))
  return showPg(zenith, name)
}

export async function restartPg(zenith: Zenith, name: string, options: {mode?: 'fast' | 'immediate'; onProgress?: OnProgress} = {}): Promise<PgInfo> {
  await withClaim(zenith, name, 'restarting', async (pg) => {
    if ((await clusterStatus(dataDirOf(await zenith.store.read(), pg))).status === 'running') await stopClaimed(zenith, pg, options)
    await startClaimed(zenith, pg, options.onProgress ?? silent)
  })
  return showPg(zenith, name)
}

/**
 * Starts postgres on a pg this process has claimed, and finishes a pending password step. Used
 * by start, restart, create and checkout, each under its own claim.
 */
export async function startClaimed(zenith: Zenith, pg: PgRecord, onProgress: OnProgress): Promise<void> {
  const dataDir = dataDirOf(await zenith.store.read(), pg)
  const {status} = await clusterStatus(dataDir)
  if (status === 'running') throw new ZenithError('PG_RUNNING', `pg "${pg.name}" is already running on localhost:${pg.port}.`, `Stop it first (zenith pg stop ${pg.name}) or use \`zenith pg restart ${pg.name}\`.`)
  if (!(await isPortFree(pg.port))) {
    throw new ZenithError('PORT_IN_USE', `Port ${pg.port} of pg "${pg.name}" is in use by another process.`,
      `Find it with \`ss -ltnp 'sport = :${pg.port}'\` and stop it, or start on another port: zenith pg start ${pg.name} --port N.`)
  }

  const binaries = await findPgBinaries(zenith, pg.pgVersion)
  onProgress({type: 'step', message: `Starting postgres on ${pg.name}`})
  if (pg.archiving) await installAgent(zenith.home)
  const cluster = clusterOf(zenith, pg, dataDir, binaries, await pgOsUser(zenith))
  cluster.settings = {...cluster.settings, ...replicationSettings(await zenith.store.read(), pg, zenith.socketDir)}
  if (pg.timelineFork) cluster.settings = {...cluster.settings, ...TIMELINE_FORK_SETTINGS}
  await startCluster(cluster)
  if (pg.staleSlots?.length) await dropStaleSlots(zenith, pg.name)
  if (pg.timelineFork) await finishTimelineFork(zenith, pg.name, cluster, onProgress)
  if (pg.passwordPending) await finishPasswordStep(zenith, pg.name, cluster)
}

/**
 * A replica's slot keeps WAL on its primary: once the replica is gone (destroyed or promoted) it
 * is dropped now, or, when the primary is stopped or refuses, on the primary's next start.
 */
export async function releaseSlot(zenith: Zenith, primaryName: string, slot: string): Promise<void> {
  const data = await zenith.store.read()
  const primary = data.pgs[primaryName]
  if (!primary) return
  const running = (await clusterStatus(dataDirOf(data, primary))).status === 'running'
  const left = running ? await withConnection(await pgConnection(zenith, primaryName), (client) => dropSlots(client, [slot])).catch(() => [slot]) : [slot]
  if (left.length === 0) return
  await zenith.store.update((current) => {
    const record = current.pgs[primaryName]
    if (record && !record.staleSlots?.includes(slot)) record.staleSlots = [...record.staleSlots ?? [], slot]
  })
}

/**
 * Slots of replicas destroyed while their primary was stopped: dropped once it runs again, so
 * they do not hold WAL (up to max_slot_wal_keep_size) for a replica that is gone.
 */
async function dropStaleSlots(zenith: Zenith, name: string): Promise<void> {
  const pg = pgRecord(await zenith.store.read(), name)
  const stale = pg.staleSlots ?? []
  const left = await withConnection(await pgConnection(zenith, name), (client) => dropSlots(client, stale)).catch(() => stale)
  await zenith.store.update((data) => {
    const current = data.pgs[name]
    if (!current) return
    if (left.length > 0) current.staleSlots = left
    else delete current.staleSlots
  })
}

/** Waits for the promotion onto the new timeline (see timeline-fork.ts), then forgets the fork. */
async function finishTimelineFork(zenith: Zenith, name: string, cluster: Cluster, onProgress: OnProgress): Promise<void> {
  onProgress({type: 'step', message: `Starting ${name} on a new WAL timeline (its PITR areas keep the old one)`})
  const deadline = Date.now() + 600_000
  for (;;) {
    const client = await newClient({host: cluster.socketDir, port: cluster.port, user: 'postgres', database: 'postgres'})
    try {
      await client.connect()
      const {rows} = await client.query<{recovering: boolean}>('select pg_is_in_recovery() as recovering')
      if (!rows[0].recovering) break
    } catch (error) {
      const code = (error as {code?: string}).code
      if (code !== '57P03' && code !== 'ECONNREFUSED' && code !== 'ENOENT') throw error
    } finally {
      await client.end().catch(() => undefined)
    }

    if (Date.now() > deadline) throw new ZenithError('PG_START_FAILED', `${name} did not finish its recovery onto a new timeline.`, `See \`zenith pg logs ${name}\`.`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }

  await zenith.store.update((data) => {
    if (data.pgs[name]) delete data.pgs[name].timelineFork
  })
}

/**
 * Data from elsewhere has its own role passwords: ours is set on its first start. A start
 * killed before this step is finished by the next command's repair (see recovery.ts).
 */
export async function finishPasswordStep(zenith: Zenith, name: string, cluster?: Cluster, waitSeconds = 0): Promise<void> {
  const data = await zenith.store.read()
  const pg = pgRecord(data, name)
  if (!pg.passwordPending) return
  cluster ??= clusterOf(zenith, pg, dataDirOf(data, pg), await findPgBinaries(zenith, pg.pgVersion), await pgOsUser(zenith))
  await setSuperuserPassword(cluster, pg.password, waitSeconds)
  await zenith.store.update((current) => {
    if (current.pgs[name]) delete current.pgs[name].passwordPending
  })
}

async function stopClaimed(zenith: Zenith, pg: PgRecord, options: {mode?: 'fast' | 'immediate' | 'smart'; onProgress?: OnProgress}): Promise<void> {
  const dataDir = dataDirOf(await zenith.store.read(), pg)
  const {status} = await clusterStatus(dataDir)
  if (status !== 'running') {
    throw new ZenithError('PG_NOT_RUNNING', `pg "${pg.name}" is not running${status === 'crashed' ? ' (it crashed)' : ''}.`,
      status === 'crashed' ? `Start it again with \`zenith pg start ${pg.name}\`; postgres recovers on start.` : `Start it with \`zenith pg start ${pg.name}\`.`)
  }

  options.onProgress?.({type: 'step', message: `Stopping postgres on ${pg.name}`})
  // The segment being written is archived only once it is full: switch, so that every commit
  // up to the stop reaches the PITR areas (the archiver sends what is ready before it exits).
  if (pg.archiving && options.mode !== 'immediate') await switchWal(await pgConnection(zenith, pg.name)).catch(() => undefined)
  await stopCluster({dataDir, osUser: await pgOsUser(zenith), binaries: await findPgBinaries(zenith, pg.pgVersion)}, options.mode ?? 'fast')
}

/** Closes the current WAL segment so that it is archived; returns the switch's end LSN. */
export async function switchWal(connection: {host: string; port: number; user: string; password: string; database: string}): Promise<string> {
  const client = await newClient(connection)
  await client.connect()
  try {
    const {rows} = await client.query<{lsn: string}>('select pg_switch_wal()::text as lsn')
    return rows[0].lsn
  } finally {
    await client.end().catch(() => undefined)
  }
}

export async function destroyPg(zenith: Zenith, name: string, options: {force?: boolean; onProgress?: OnProgress} = {}): Promise<{name: string; snapshotsDestroyed: string[]; replicasDestroyed: string[]}> {
  // Its replicas go with it (and their slots): they are copies that follow it, nothing of their
  // own. They go first, once the pg itself is known to be destroyable.
  const before = await zenith.store.read()
  const replicas = replicasOf(before, name).map((replica) => replica.name)
  if (replicas.length > 0) {
    const refusal = destroyRefusal(before, pgRecord(before, name), options.force)
    if (refusal) throw refusal
    for (const replica of replicas) await destroyPg(zenith, replica, {onProgress: options.onProgress})
  }

  let owned: string[] = []
  const pg = await claimPg(zenith, name, 'destroying', (data, current) => {
    owned = Object.values(data.snapshots).filter((snapshot) => snapshot.pg === name).map((snapshot) => snapshot.name)
    const refusal = destroyRefusal(data, current, options.force)
    if (refusal) throw refusal
    // Marked in the same update: a copy that starts after this sees them gone.
    if (options.force) for (const snapshot of owned) Object.assign(data.snapshots[snapshot], {state: 'destroying', pid: process.pid})
  })
  await finishDestroy(zenith, pg, options.onProgress)
  return {name, snapshotsDestroyed: owned, replicasDestroyed: replicas}
}

/** Why a pg cannot be destroyed now (its PITR areas, its snapshots without --force, a copy of one being made). */
function destroyRefusal(data: StoreData, pg: PgRecord, force: boolean | undefined): ZenithError | undefined {
  const name = pg.name
  const owned = Object.values(data.snapshots).filter((snapshot) => snapshot.pg === name).map((snapshot) => snapshot.name)
  // A copy being made from one of its snapshots holds them, --force or not.
  const copying = Object.values(data.pgs).find((other) => other.state === 'creating' && other.origin && owned.includes(other.origin.snapshot))
  if (copying) return pgBusy(copying)
  const areas = Object.values(data.pitr).filter((area) => area.pg === name).map((area) => area.name)
  if (areas.length > 0) {
    return new ZenithError('HAS_DEPENDENTS', `pg "${name}" has PITR areas: ${areas.join(', ')}.`,
      `Destroy them first (zenith pitr destroy ${areas[0]}), or pass --force to destroy them with the pg.`)
  }

  if (owned.length > 0 && !force) {
    return new ZenithError('HAS_DEPENDENTS', `pg "${name}" has snapshots: ${owned.join(', ')}.`,
      `Destroy them first (zenith snapshot destroy ...), or pass --force to destroy them with the pg.`)
  }

  return undefined
}

/** Stops and removes a pg marked `destroying`, with its snapshots; safe to run again. */
export async function finishDestroy(zenith: Zenith, pg: PgRecord, onProgress: OnProgress = silent): Promise<void> {
  const data = await zenith.store.read()
  const storage = volumeStorage(data, pg.storage)
  const dataDir = storage.volumePath(pg.volume)
  if ((await clusterStatus(dataDir)).status === 'running') {
    onProgress({type: 'step', message: `Stopping postgres on ${pg.name}`})
    await stopCluster({dataDir, osUser: await pgOsUser(zenith), binaries: await findPgBinaries(zenith, pg.pgVersion)}, 'immediate')
  }

  onProgress({type: 'step', message: `Removing ${pg.name}`})
  for (const snapshot of Object.values(data.snapshots).filter((item) => item.pg === pg.name)) {
    await volumeStorage(data, snapshot.storage).removeSnapshot(snapshot.volume)
  }

  await storage.removeVolume(pg.volume)
  if (pg.baseSnapshotVolume) await storage.removeSnapshot(pg.baseSnapshotVolume)
  // Before the record goes: a destroy killed after this is finished again, and a second drop is harmless.
  if (pg.replica) await releaseSlot(zenith, pg.replica.primary, pg.replica.slot)
  const left = await zenith.store.update((current) => {
    for (const snapshot of Object.values(current.snapshots)) if (snapshot.pg === pg.name) delete current.snapshots[snapshot.name]
    delete current.pgs[pg.name]
    return Object.keys(current.pgs).length
  })
  // The last pg of this home takes the socket folder with it; a pg started meanwhile keeps its
  // socket in it, and then rmdir fails on the non-empty folder, as it should.
  if (left === 0) await rmdir(zenith.socketDir).catch(() => undefined)
}

/** Every pg by name, each primary followed by its replicas. */
export async function listPgs(zenith: Zenith): Promise<PgInfo[]> {
  const data = await zenith.store.read()
  const primaries = Object.values(data.pgs).filter((pg) => !pg.replica).sort((a, b) => a.name.localeCompare(b.name))
  const ordered = primaries.flatMap((pg) => [pg, ...replicasOf(data, pg.name)])
  // A replica whose primary record is gone (never so but by hand) is still listed, at the end.
  ordered.push(...Object.values(data.pgs).filter((pg) => !ordered.includes(pg)))
  const states = new Map<string, Promise<Map<string, ReplicationState>>>()
  const sizes = volumeSizes(data, ordered)
  return Promise.all(ordered.map((pg) => describe(zenith, data, pg, states, sizes.get(pg.name))))
}

/** What each pg's volume holds, asked of each storage once for all its pgs (one `du` instead of one per pg). */
function volumeSizes(data: StoreData, pgs: PgRecord[]): Map<string, Promise<number>> {
  const sizes = new Map<string, Promise<number>>()
  for (const storageName of new Set(pgs.map((pg) => pg.storage))) {
    const members = pgs.filter((pg) => pg.storage === storageName && pg.state !== 'creating')
    if (members.length === 0) continue
    const storage = volumeStorage(data, storageName)
    const all = storage.sizesOf(members.map((pg) => ({volume: pg.volume})))
    members.forEach((pg, i) => {
      // One missing volume fails the batch: then each is asked alone, and a failure counts 0.
      sizes.set(pg.name, all.then((list) => list[i].bytes, () => storage.sizeOf({volume: pg.volume}).then((size) => size.bytes, () => 0)))
    })
  }

  return sizes
}

/** `usedBytes`, when the caller knows it (what a clone just copied), is reported instead of measured. */
export async function showPg(zenith: Zenith, name: string, usedBytes?: number): Promise<PgInfo> {
  const data = await zenith.store.read()
  return describe(zenith, data, pgRecord(data, name), new Map(), usedBytes === undefined ? undefined : Promise.resolve(usedBytes))
}

/** The replicas of a pg, described with one question to the primary. */
export async function showReplicas(zenith: Zenith, primary: string): Promise<PgInfo[]> {
  const data = await zenith.store.read()
  const states = new Map<string, Promise<Map<string, ReplicationState>>>()
  return Promise.all(replicasOf(data, pgRecord(data, primary).name).map((pg) => describe(zenith, data, pg, states)))
}

/**
 * The replication state of every replica of a primary, asked of the primary once per listing
 * (an empty map when it is stopped or does not answer: the replicas then show as disconnected).
 */
export function primaryStates(zenith: Zenith, data: StoreData, primary: string, cache = new Map<string, Promise<Map<string, ReplicationState>>>()): Promise<Map<string, ReplicationState>> {
  let states = cache.get(primary)
  if (!states) {
    const slots = replicasOf(data, primary).map((replica) => replica.replica!.slot)
    const pg = data.pgs[primary]
    states = (async () => {
      if (!pg || slots.length === 0 || (await clusterStatus(dataDirOf(data, pg))).status !== 'running') return new Map<string, ReplicationState>()
      return withConnection(await pgConnection(zenith, primary), (client) => replicationStates(client, slots)).catch(() => new Map<string, ReplicationState>())
    })()
    cache.set(primary, states)
  }

  return states
}

export async function pgUrl(zenith: Zenith, name: string, database = 'postgres'): Promise<string> {
  const pg = pgRecord(await zenith.store.read(), name)
  return `postgresql://postgres:${encodeURIComponent(pg.password)}@localhost:${pg.port}/${encodeURIComponent(database)}`
}

/** Connection settings for libpq clients (psql, pg_dump, the pg module). */
export async function pgConnection(zenith: Zenith, name: string): Promise<{host: string; port: number; user: string; password: string; database: string}> {
  const pg = pgRecord(await zenith.store.read(), name)
  return {host: 'localhost', port: pg.port, user: 'postgres', password: pg.password, database: 'postgres'}
}

/** `my_pg/replica-1` logs to `my_pg.replica-1.log`. */
export function logFileOf(zenith: Zenith, name: string): string {
  return path.join(zenith.logDir, `${name.replaceAll('/', '.')}.log`)
}

export function pgRecord(data: StoreData, name: string): PgRecord {
  const pg = data.pgs[name]
  if (!pg) {
    const known = Object.keys(data.pgs)
    throw new ZenithError('PG_NOT_FOUND', `There is no pg named "${name}".`,
      known.length > 0 ? `Known pgs: ${known.join(', ')} (zenith pg list).` : 'Create one with `zenith pg create`.')
  }

  return pg
}

export function clusterOf(zenith: Zenith, pg: PgRecord, dataDir: string, binaries: Cluster['binaries'], osUser: OsUser | undefined): Cluster {
  const settings = pg.archiving ? {...pg.settings, ...archiveSettings(zenith.home, pg.name)} : pg.settings
  return {dataDir, port: pg.port, socketDir: zenith.socketDir, logFile: logFileOf(zenith, pg.name), osUser, binaries, settings}
}

/** What a claim is for; `ready` means no command holds the pg. */
export type PgClaim = Exclude<PgRecord['state'], 'ready'>

/**
 * Claims a ready pg for this process: every command that starts, stops, snapshots, checks out
 * or destroys a pg holds its claim (state + pid in the store) for its whole duration, so two of
 * them never act on one data directory at once; the loser gets PG_BUSY. `check` runs inside the
 * same store update and may refuse (throw) or change the record. A claim whose process died is
 * released by the next command's repair.
 */
export async function claimPg(zenith: Zenith, name: string, state: PgClaim, check?: (data: StoreData, pg: PgRecord) => void): Promise<PgRecord & {previousPort?: number}> {
  return zenith.store.update((data) => {
    const pg = data.pgs[name]
    if (!pg || pg.state !== 'ready') throw busy(name, pg)
    const previousPort = pg.port
    check?.(data, pg)
    pg.state = state
    pg.pid = process.pid
    return {...pg, previousPort}
  })
}

/** Gives back this process's claim, with last changes to the record made under the same lock. */
export async function releasePg(zenith: Zenith, name: string, change?: (pg: PgRecord) => void): Promise<void> {
  await zenith.store.update((data) => {
    const pg = data.pgs[name]
    if (!pg || pg.pid !== process.pid) return
    change?.(pg)
    pg.state = 'ready'
    delete pg.pid
  })
}

async function withClaim<T>(zenith: Zenith, name: string, state: PgClaim, work: (pg: PgRecord) => Promise<T>): Promise<T> {
  const pg = await claimPg(zenith, name, state)
  try {
    return await work(pg)
  } finally {
    await releasePg(zenith, name)
  }
}

export function dataDirOf(data: StoreData, pg: PgRecord): string {
  return volumeStorage(data, pg.storage).volumePath(pg.volume)
}

function busy(name: string, pg: PgRecord | undefined): ZenithError {
  if (!pg) return new ZenithError('PG_NOT_FOUND', `There is no pg named "${name}".`, 'See `zenith pg list`.')
  return pgBusy(pg)
}

/** A pg another command works on: still working (PG_BUSY), or killed before it finished. */
export function pgBusy(pg: PgRecord): ZenithError {
  return pg.pid !== undefined && isAlive(pg.pid)
    ? new ZenithError('PG_BUSY', `pg "${pg.name}" is busy (${pg.state} by process ${pg.pid}).`, 'Wait for that command to finish.')
    : new ZenithError('INCOMPLETE_OPERATION', `pg "${pg.name}" was left ${pg.state} by a command that was interrupted.`, 'Run any zenith command again (e.g. `zenith pg list`) to repair it.')
}

function nextDefaultName(data: StoreData): string {
  for (let n = 1; ; n++) if (!data.pgs[`pgdata${n}`]) return `pgdata${n}`
}

async function describe(zenith: Zenith, data: StoreData, pg: PgRecord, states: Map<string, Promise<Map<string, ReplicationState>>>, size?: Promise<number>): Promise<PgInfo> {
  const storage = volumeStorage(data, pg.storage)
  const dataDir = storage.volumePath(pg.volume)
  const status: PgStatus = pg.state === 'creating' ? 'creating' : pg.state === 'ready' ? (await clusterStatus(dataDir)).status : 'busy'
  const used = status === 'creating' ? 0 : await (size ?? storage.sizeOf({volume: pg.volume}).then((item) => item.bytes, () => 0))
  const info: PgInfo = {
    name: pg.name, role: pg.role, storage: pg.storage, status, port: pg.port, endpoint: `localhost:${pg.port}`,
    usedBytes: used, dataDir, logFile: logFileOf(zenith, pg.name), pgVersion: pg.pgVersion, createdAt: pg.createdAt,
    origin: pg.origin, settings: pg.settings, checkouts: pg.checkouts,
  }
  if (pg.clone) info.clone = pg.clone
  if (pg.replica) {
    info.primary = pg.replica.primary
    const state = (await primaryStates(zenith, data, pg.replica.primary, states)).get(pg.replica.slot)
    // The primary may still list a just-stopped replica's connection: a replica that is not running is disconnected (or cut off).
    info.replication = state?.state === 'cut-off' ? state : status === 'running' ? state ?? {state: 'disconnected'} : {state: 'disconnected', lagBytes: state?.lagBytes}
  }

  return info
}

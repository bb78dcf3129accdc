import {chmod, rename, stat} from 'node:fs/promises'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import type {Zenith} from '../context.js'
import {ZenithError} from '../errors.js'
import type {OnProgress} from '../progress.js'
import {silent} from '../progress.js'
import {copyWithBackupApi} from '../snapshot/backup.js'
import {snapshotVolumeName} from '../snapshot/records.js'
import {checkpointIfBehind} from '../snapshot/snapshots.js'
import {validateName} from '../state/names.js'
import type {PgRecord} from '../state/schema.js'
import {volumeStorage} from '../storage/registry.js'
import {runBasebackup} from '../pg/basebackup.js'
import {findPgBinaries} from '../pg/binaries.js'
import {clusterStatus, writeZenithConf} from '../pg/cluster.js'
import {makeStandby, removeRuntimeFiles} from '../pg/data-dir.js'
import {
  type PgInfo, claimPg, clusterOf, dataDirOf, finishDestroy, logFileOf, pgBusy, pgConnection, pgRecord, primaryStates, releasePg, releaseSlot, showPg, startClaimed,
} from '../pg/lifecycle.js'
import {type OsUser, giveTo, pgOsUser} from '../pg/os-user.js'
import {allocatePort} from '../pg/ports.js'
import {createSlot, replicaName, replicaNumber, replicasOf, replicationSettings, slotName, withConnection} from '../pg/replication.js'

/**
 * `pg start NAME --replica [--count N]`: streaming replicas of a running primary. Each is a thin
 * clone of an image of the primary taken now where the storage can (an atomic snapshot, or the
 * backup API over reflinks: seconds at any size), else a `pg_basebackup` through its slot; it
 * starts in hot standby on the next free port and streams from the primary over zenith's socket.
 */
export async function createReplicas(zenith: Zenith, primary: string, options: {count?: number; onProgress?: OnProgress} = {}): Promise<PgInfo[]> {
  const count = options.count ?? 1
  if (!Number.isInteger(count) || count < 1 || count > 32) throw new ZenithError('INVALID_ARGUMENT', `--count ${count} is not a number of replicas.`, 'Give 1 to 32.')
  const made: PgInfo[] = []
  for (let i = 0; i < count; i++) made.push(await createReplica(zenith, primary, options.onProgress ?? silent))
  return made
}

async function createReplica(zenith: Zenith, primaryName: string, onProgress: OnProgress): Promise<PgInfo> {
  const osUser = await pgOsUser(zenith)
  const {primary, replica} = await zenith.store.update(async (data) => {
    const primary = pgRecord(data, primaryName)
    assertCanHaveReplicas(primary)
    if (primary.state !== 'ready') throw pgBusy(primary)
    const storage = volumeStorage(data, primary.storage)
    const taken = new Set(replicasOf(data, primaryName).map((pg) => replicaNumber(pg)))
    let n = 1
    while (taken.has(n)) n++
    const name = replicaName(primaryName, n)
    const volume = `${primaryName}.replica-${n}`
    const holder = Object.values(data.pgs).find((pg) => pg.name === volume || (pg.storage === storage.name && pg.volume === volume))
    if (holder) throw new ZenithError('NAME_TAKEN', `The folder ${volume} of a new replica is taken by pg "${holder.name}".`, `Rename or destroy ${holder.name}.`)
    const replica: PgRecord = {
      name, storage: storage.name, volume, port: await allocatePort(Object.values(data.pgs).map((pg) => pg.port)), role: `replica-${n}`,
      osUser: osUser?.name, password: primary.password, settings: {...primary.settings}, pgVersion: primary.pgVersion,
      createdAt: new Date().toISOString(), checkouts: 0, state: 'creating', pid: process.pid,
      replica: {primary: primaryName, slot: slotName(n)},
      // Named before it exists: a kill while it is made leaves a record whose repair removes it.
      baseSnapshotVolume: storage.capabilities.thinClone ? snapshotVolumeName(`${primaryName}.replica-${n}`) : undefined,
    }
    data.pgs[name] = replica
    // The primary is held while its image is taken: no stop, checkout or destroy meanwhile.
    primary.state = 'snapshot'
    primary.pid = process.pid
    return {primary: {...primary}, replica}
  })

  try {
    await makeReplicaVolume(zenith, primary, replica, osUser, onProgress)
    await releasePg(zenith, primaryName)
    await zenith.store.update((data) => {
      data.pgs[replica.name] = {...replica, state: 'starting', pid: process.pid}
    })
    onProgress({type: 'step', message: `Starting ${replica.name} on localhost:${replica.port}`})
    await startClaimed(zenith, {...replica, state: 'starting'}, onProgress)
    await releasePg(zenith, replica.name)
  } catch (error) {
    await releasePg(zenith, primaryName)
    const current = (await zenith.store.read()).pgs[replica.name]
    if (current?.pid === process.pid) await finishDestroy(zenith, {...current, state: 'destroying'}).catch(() => undefined)
    throw error
  }

  await waitForStreaming(zenith, replica, onProgress)
  return showPg(zenith, replica.name)
}

function assertCanHaveReplicas(pg: PgRecord): void {
  if (pg.replica) {
    throw new ZenithError('INVALID_ARGUMENT', `pg "${pg.name}" is itself a replica.`, `Add replicas to its primary: zenith pg start ${pg.replica.primary} --replica.`)
  }

  if (pg.role === 'read-only') {
    throw new ZenithError('PG_READ_ONLY', `pg "${pg.name}" is read-only (a hot standby over ${pg.origin?.snapshot ?? 'a snapshot'}): it has no WAL to stream to replicas.`,
      'Make another read-only pg of the same snapshot instead (zenith pg create NAME --snapshot SNAP --read-only).')
  }
}

/** The replica's data directory: an image of the primary now, as a standby of it. */
async function makeReplicaVolume(zenith: Zenith, primary: PgRecord, replica: PgRecord, osUser: OsUser | undefined, onProgress: OnProgress): Promise<void> {
  const data = await zenith.store.read()
  const storage = volumeStorage(data, primary.storage)
  const primaryDir = dataDirOf(data, primary)
  if ((await clusterStatus(primaryDir)).status !== 'running') {
    throw new ZenithError('PG_NOT_RUNNING', `pg "${primary.name}" is not running: a replica streams from a running primary.`, `Start it first: zenith pg start ${primary.name}.`)
  }

  const connection = await pgConnection(zenith, primary.name)
  // The slot first: from now on the primary keeps every WAL segment the replica will ask for.
  await withConnection(connection, (client) => createSlot(client, replica.replica!.slot))
  // A primary with replicas bounds what their slots keep (max_slot_wal_keep_size): a reload applies it now.
  await reloadPrimary(zenith, primary.name)
  const dir = storage.volumePath(replica.volume)
  if (replica.baseSnapshotVolume) {
    const base = replica.baseSnapshotVolume
    if (storage.capabilities.atomicSnapshot) {
      onProgress({type: 'step', message: `Imaging ${primary.name} (${storage.driver}, atomic) for ${replica.name}`})
      await checkpointIfBehind(connection)
      await storage.snapshotVolume(primary.volume, base, removeRuntimeFiles)
    } else {
      onProgress({type: 'step', message: `Imaging ${primary.name} with the backup API (${storage.driver}) for ${replica.name}`})
      await copyWithBackupApi({
        connection, dataDir: primaryDir, label: `zenith ${replica.name}`, osUser,
        copy: (finish) => storage.snapshotVolume(primary.volume, base, async (copy) => {
          await finish(copy)
          await removeRuntimeFiles(copy)
        }),
      })
    }

    onProgress({type: 'step', message: `Cloning ${replica.name} (copy-on-write)`})
    await storage.cloneSnapshot(base, replica.volume, 'thin')
  } else {
    onProgress({type: 'step', message: `Copying ${primary.name} with pg_basebackup for ${replica.name}`})
    let copied = 0
    await storage.createVolume(replica.volume)
    await giveTo(osUser, dir)
    await chmod(dir, 0o700)
    await runBasebackup({
      binaries: await findPgBinaries(zenith, primary.pgVersion), osUser, dir, slot: replica.replica!.slot, source: primary.name,
      connection: {host: zenith.socketDir, port: String(primary.port), user: 'postgres'},
      onBytes: (done, total) => {
        copied = done
        onProgress({type: 'bytes', label: `pg_basebackup ${replica.name}`, done, total})
      },
    })
    onProgress({type: 'bytes-end', label: `pg_basebackup ${replica.name}`, done: copied})
  }

  // Where to stream from is written into zenith.conf at every start (lifecycle startClaimed).
  await makeStandby(dir, osUser, {dropSlots: true})
}

/**
 * A primary with replicas bounds the WAL their slots keep (max_slot_wal_keep_size, see
 * replication.ts): its zenith.conf is written again as its next start would write it, and reloaded.
 */
async function reloadPrimary(zenith: Zenith, name: string): Promise<void> {
  const data = await zenith.store.read()
  const pg = pgRecord(data, name)
  const cluster = clusterOf(zenith, pg, dataDirOf(data, pg), await findPgBinaries(zenith, pg.pgVersion), await pgOsUser(zenith))
  cluster.settings = {...cluster.settings, ...replicationSettings(data, pg, zenith.socketDir)}
  await writeZenithConf(cluster)
  await withConnection(await pgConnection(zenith, name), (client) => client.query('select pg_reload_conf()'))
}

/** Until the primary reports the replica streaming (or 60 s): rows written then are on it within moments. */
async function waitForStreaming(zenith: Zenith, replica: PgRecord, onProgress: OnProgress): Promise<void> {
  onProgress({type: 'step', message: `Waiting for ${replica.name} to stream from ${replica.replica!.primary}`})
  const deadline = Date.now() + 60_000
  while (Date.now() < deadline) {
    const data = await zenith.store.read()
    const state = (await primaryStates(zenith, data, replica.replica!.primary)).get(replica.replica!.slot)
    if (state?.state === 'streaming') return
    await sleep(100)
  }
}

/**
 * `pg promote PRIMARY/replica-N [NAME]`: the replica leaves recovery (pg_promote) and becomes a
 * primary of its own named NAME (default `PRIMARY-replica-N`); its slot on the old primary goes.
 */
export async function promoteReplica(zenith: Zenith, name: string, options: {newName?: string; onProgress?: OnProgress} = {}): Promise<PgInfo> {
  const onProgress = options.onProgress ?? silent
  const before = pgRecord(await zenith.store.read(), name)
  if (!before.replica) throw new ZenithError('INVALID_ARGUMENT', `pg "${name}" is not a replica.`, 'See the replicas in `zenith pg list` (ROLE replica-N).')
  const newName = validateName('pg', options.newName ?? `${before.replica.primary}-${before.role}`)
  const pg = await claimPg(zenith, name, 'promoting', (data, current) => {
    if (data.pgs[newName]) throw new ZenithError('NAME_TAKEN', `A pg named "${newName}" already exists.`, `Give the new primary another name: zenith pg promote ${name} NAME.`)
    // Journaled: a promote killed after pg_promote is finished by the next command (recovery.ts).
    current.promoteTo = newName
  })
  try {
    const data = await zenith.store.read()
    if ((await clusterStatus(dataDirOf(data, pg))).status !== 'running') {
      throw new ZenithError('PG_NOT_RUNNING', `Replica ${name} is not running: it is promoted from what it has replayed.`, `Start it first: zenith pg start ${name}.`)
    }

    onProgress({type: 'step', message: `Promoting ${name}`})
    await withConnection(await pgConnection(zenith, name), async (client) => {
      const {rows} = await client.query<{promoted: boolean}>('select pg_promote(true, 120) as promoted')
      if (!rows[0].promoted) throw new ZenithError('PG_START_FAILED', `${name} did not finish its promotion within 2 minutes.`, `See \`zenith pg logs ${name}\`.`)
    })
  } catch (error) {
    await releasePg(zenith, name, (current) => {
      delete current.promoteTo
    })
    throw error
  }

  await finishPromotion(zenith, pgRecord(await zenith.store.read(), name), onProgress)
  return showPg(zenith, newName)
}

/**
 * After pg_promote: the record becomes a primary named `promoteTo` (its folder keeps its name),
 * its log follows it, and its slot on the old primary is dropped. Also what the repair of a
 * killed promote runs once the data directory shows the promotion happened (no standby.signal).
 */
export async function finishPromotion(zenith: Zenith, pg: PgRecord, onProgress: OnProgress = silent): Promise<void> {
  const newName = pg.promoteTo!
  const oldPrimary = pg.replica?.primary
  const slot = pg.replica?.slot
  await rename(logFileOf(zenith, pg.name), logFileOf(zenith, newName)).catch(() => undefined)
  await zenith.store.update((data) => {
    const record = data.pgs[pg.name]
    if (!record) return
    delete data.pgs[pg.name]
    const promoted: PgRecord = {...record, name: newName, role: 'primary', state: 'ready'}
    delete promoted.replica
    delete promoted.promoteTo
    delete promoted.pid
    data.pgs[newName] = promoted
  })
  if (oldPrimary && slot) {
    onProgress({type: 'step', message: `Dropping the slot of ${pg.name} on ${oldPrimary}`})
    await releaseSlot(zenith, oldPrimary, slot)
  }
}

/** Whether a replica's data directory has left recovery (postgres removes standby.signal when promoted). */
export async function wasPromoted(dataDir: string): Promise<boolean> {
  return stat(path.join(dataDir, 'standby.signal')).then(() => false, () => true)
}

import type {Zenith} from '../context.js'
import {volumeStorage} from '../storage/registry.js'
import {ZenithError} from '../errors.js'
import {clusterStatus, stopCluster} from '../pg/cluster.js'
import {findPgBinaries} from '../pg/binaries.js'
import {type PgInfo, assertWritable, pgBusy, pgRecord, releasePg, showPg, startClaimed} from '../pg/lifecycle.js'
import {pgOsUser} from '../pg/os-user.js'
import {replicasOf} from '../pg/replication.js'
import type {OnProgress} from '../progress.js'
import {silent} from '../progress.js'
import {parseSnapshotRef} from '../state/names.js'
import type {CheckoutJournal, PgRecord, SnapshotRecord} from '../state/schema.js'
import {diskUsage} from '../storage/folders.js'
import {removeRuntimeFiles} from '../pg/data-dir.js'
import {prepareTimelineFork} from '../pg/timeline-fork.js'
import {snapshotVolumeName} from './records.js'
import {resolveSnapshot} from './snapshots.js'

/**
 * `pg checkout PG@TAG`: stop, save the old CURRENT as PG@HEAD{n}, roll the data directory back to
 * the snapshot, start again (if it was running). Port and credentials stay. Every step is
 * journaled in the pg's record, so a killed checkout is finished by `finishCheckout` and the
 * old CURRENT is never lost: it is saved before anything is rolled back.
 */
export async function checkout(zenith: Zenith, ref: string, options: {onProgress?: OnProgress} = {}): Promise<PgInfo & {head: string; target: string}> {
  const onProgress = options.onProgress ?? silent
  const parsed = parseSnapshotRef(ref)
  if (parsed.kind === 'named') {
    throw new ZenithError('INVALID_REF', `"${ref}" does not name a pg.`, 'Write PG@TAG or PG@HEAD{n}, e.g. zenith pg checkout dev@before-migration.')
  }

  if (parsed.kind === 'current') {
    throw new ZenithError('INVALID_REF', `${ref} is already the live data directory.`, `Check out a snapshot of ${parsed.pg}: see zenith snapshot list --pg ${parsed.pg}.`)
  }

  const binaries = await findPgBinaries(zenith)
  const {pg, journal} = await zenith.store.update(async (data) => {
    const pg = pgRecord(data, parsed.pg)
    assertWritable(pg, 'check out another snapshot')
    const replicas = replicasOf(data, pg.name)
    if (replicas.length > 0) {
      // A replica follows its primary's WAL; after a rollback that history is gone, so they would have to be made anew.
      throw new ZenithError('HAS_DEPENDENTS', `pg "${pg.name}" has replicas (${replicas.map((replica) => replica.name).join(', ')}): a checkout would leave them following a history that no longer exists.`,
        `Destroy them first (zenith pg destroy ${replicas[0].name}), check out, then add them again with \`zenith pg start ${pg.name} --replica\`.`)
    }
    const target = resolveSnapshot(data, ref)
    if (pg.state !== 'ready') throw pgBusy(pg)
    if (target.storage !== pg.storage) {
      throw new ZenithError('STORAGE_UNSUPPORTED', `${target.name} is in storage ${target.storage}, ${pg.name} in ${pg.storage}.`, 'Check out snapshots of the same storage.')
    }

    let n = pg.checkouts
    while (data.snapshots[`${pg.name}@HEAD{${n}}`]) n++
    const dataDir = volumeStorage(data, pg.storage).volumePath(pg.volume)
    const journal: CheckoutJournal = {
      target: target.name, head: `${pg.name}@HEAD{${n}}`, headVolume: snapshotVolumeName(`${pg.name}@HEAD{${n}}`),
      stage: 'started', wasRunning: (await clusterStatus(dataDir)).status === 'running',
    }
    pg.state = 'checkout'
    pg.pid = process.pid
    pg.checkout = journal
    return {pg: {...pg}, journal}
  })

  if (journal.wasRunning) {
    onProgress({type: 'step', message: `Stopping postgres on ${pg.name}`})
    const storage = volumeStorage(await zenith.store.read(), pg.storage)
    await stopCluster({dataDir: storage.volumePath(pg.volume), osUser: await pgOsUser(zenith), binaries: await findPgBinaries(zenith, pg.pgVersion).catch(() => binaries)}, 'fast')
  }

  // The claim is held until postgres runs again: a `pg start` racing this checkout can never
  // start postgres on a data directory that is about to be swapped.
  await finishCheckout(zenith, pg, journal, {onProgress, keepClaim: journal.wasRunning})
  if (journal.wasRunning) {
    try {
      await startClaimed(zenith, pgRecord(await zenith.store.read(), pg.name), onProgress)
    } finally {
      await releasePg(zenith, pg.name)
    }
  } else onProgress({type: 'step', message: `${pg.name} was stopped before the checkout; start it with \`zenith pg start ${pg.name}\``})
  return {...await showPg(zenith, pg.name), head: journal.head, target: journal.target}
}

/**
 * Runs the remaining steps of a journaled checkout (postgres already stopped). Idempotent. With
 * `keepClaim` the pg stays claimed (as `starting`) for the caller's start.
 */
export async function finishCheckout(zenith: Zenith, pg: PgRecord, journal: CheckoutJournal, options: {onProgress?: OnProgress; keepClaim?: boolean} = {}): Promise<void> {
  const onProgress = options.onProgress ?? silent
  const data = await zenith.store.read()
  const storage = volumeStorage(data, pg.storage)
  // A checkout killed before its stop finished leaves postgres running; nothing may be copied
  // or swapped under a live server.
  const dataDir = storage.volumePath(pg.volume)
  if (journal.stage !== 'restored' && (await clusterStatus(dataDir)).status === 'running') {
    await stopCluster({dataDir, osUser: await pgOsUser(zenith), binaries: await findPgBinaries(zenith, pg.pgVersion)}, 'fast')
  }

  if (journal.stage === 'started') {
    // A half-made HEAD from an earlier, killed attempt is discarded: the volume is still intact.
    await storage.removeSnapshot(journal.headVolume)
    await storage.snapshotVolume(pg.volume, journal.headVolume, removeRuntimeFiles)
    const head: SnapshotRecord = {
      name: journal.head, pg: pg.name, tag: journal.head.slice(pg.name.length + 1), storage: pg.storage, volume: journal.headVolume,
      parent: pg.base, method: 'checkout', pgVersion: pg.pgVersion, logicalBytes: await diskUsage(storage.snapshotPath(journal.headVolume)),
      createdAt: new Date().toISOString(), state: 'ready', password: pg.password,
    }
    await zenith.store.update((current) => {
      current.snapshots[head.name] = head
      current.pgs[pg.name].checkout = {...journal, stage: 'saved'}
    })
    journal = {...journal, stage: 'saved'}
  }

  if (journal.stage === 'saved') {
    onProgress({type: 'step', message: `Rolling back ${pg.name}@CURRENT to ${journal.target}`})
    const target = resolveSnapshot(await zenith.store.read(), journal.target)
    await storage.restoreVolume(target.volume, pg.volume)
    if ((await zenith.store.read()).pgs[pg.name]?.archiving) await prepareTimelineFork(zenith, pg)
    await zenith.store.update((current) => {
      current.pgs[pg.name].checkout = {...journal, stage: 'restored'}
    })
  }

  await zenith.store.update((current) => {
    const record = current.pgs[pg.name]
    const n = Number(/\{(\d+)\}$/.exec(journal.head)?.[1] ?? record.checkouts)
    record.checkouts = Math.max(record.checkouts, n + 1)
    record.base = journal.target
    delete record.checkout
    if (options.keepClaim) {
      record.state = 'starting'
      record.pid = process.pid
    } else {
      record.state = 'ready'
      delete record.pid
    }
  })
}

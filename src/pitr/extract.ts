import {randomBytes} from 'node:crypto'
import {constants} from 'node:fs'
import {copyFile, readFile, rm, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import type {Zenith} from '../context.js'
import {ZenithError} from '../errors.js'
import {findPgBinaries} from '../pg/binaries.js'
import {newClient} from '../pg/client.js'
import {type Cluster, clusterStatus, startCluster, stopCluster} from '../pg/cluster.js'
import {prepareDataDir, removeRuntimeFiles} from '../pg/data-dir.js'
import {pgConnection, pgRecord, switchWal} from '../pg/lifecycle.js'
import {giveTo, pgOsUser} from '../pg/os-user.js'
import {allocatePort} from '../pg/ports.js'
import type {OnProgress} from '../progress.js'
import {silent} from '../progress.js'
import {assertSnapshotNameFree, snapshotVolumeName} from '../snapshot/records.js'
import {type SnapshotInfo, destroySnapshot, showSnapshot} from '../snapshot/snapshots.js'
import {parseSnapshotRef} from '../state/names.js'
import type {PitrBase, PitrRecord, SnapshotRecord, StoreData} from '../state/schema.js'
import {diskUsage} from '../storage/folders.js'
import {DEFAULT_STORAGE, volumeStorage} from '../storage/registry.js'
import type {WalArea, WalSegment} from '../storage/storage.js'
import {TaskPool} from '../task-pool.js'
import {claimArea, inspectArea, pitrRecord, reachTimes, releaseArea} from './areas.js'
import {type Lsn, formatLsn, parseLsn, segmentNameOf} from './lsn.js'
import {type RecoveryTarget, describeTarget} from './targets.js'
import {type BaseReach, type PitrWindow, baseForLsn, baseForXid, basesForTime} from './window.js'

export interface ExtractOptions {
  area: string
  target: RecoveryTarget
  /** Name of the new snapshot (default `<area>-<time of the target>`). */
  snapshot?: string
  /** Local storage for a snapshot extracted from a dir/s3 area (default: the pg's storage). */
  storage?: string
  /** How long to wait for the archiver when the target lies beyond the archived WAL (seconds). */
  waitSeconds?: number
  onProgress?: OnProgress
}

export interface ExtractResult {
  snapshot: SnapshotInfo
  area: string
  target: string
  base: number
  /** WAL bytes replayed onto the base. */
  replayedBytes: number
  /** Where recovery stopped, as postgres logged it. */
  stoppedAt?: string
  seconds: number
}

/**
 * `pitr extract-snapshot`: a new, ordinary snapshot holding the state at a point of the area's
 * window. The newest base before the target is cloned (thin where the storage can), the WAL
 * from it to the target is put into its pg_wal, and postgres replays it with recovery_target_*
 * on a socket-only port, promotes, and is stopped cleanly; the result is frozen as the snapshot.
 * Nothing is created when the target is outside the window (PITR_TARGET_OUT_OF_RANGE).
 */
export async function extractSnapshot(zenith: Zenith, options: ExtractOptions): Promise<ExtractResult> {
  const started = Date.now()
  const onProgress = options.onProgress ?? silent
  const name = options.snapshot ?? defaultName(options.area, options.target)
  const ref = parseSnapshotRef(name)
  if (ref.kind !== 'named' && ref.kind !== 'tag') throw new ZenithError('INVALID_NAME', `"${name}" is reserved by zenith.`, 'Name the snapshot NAME or PG@TAG.')
  const data = await zenith.store.read()
  pitrRecord(data, options.area)
  if (ref.kind === 'tag') pgRecord(data, ref.pg)
  assertSnapshotNameFree(data, name)
  const area = await claimArea(zenith, options.area, 'extract')
  try {
    const {reach, wal, stop} = await chooseBase(zenith, area, options.target, options.waitSeconds ?? 60, onProgress)
    return await recoverInto(zenith, {area, reach, wal, stop, name, ref, target: options.target, storage: options.storage, onProgress, started})
  } finally {
    await releaseArea(zenith, options.area)
  }
}

function defaultName(area: string, target: RecoveryTarget): string {
  const suffix = target.kind === 'time' ? target.time.toISOString().slice(0, 19).replaceAll(/[-:]/g, '').replace('T', '-')
    : target.kind === 'lsn' ? formatLsn(target.lsn).replace('/', '-') : `xid${target.xid}`
  return `${area}-${suffix}`
}

/** Where replay stops: at the target, or at the end of the WAL when nothing after the target time was committed. */
type Stop = 'target' | 'end'

interface Choice {
  reach?: BaseReach
  stop: Stop
  /** The archived WAL may end before the target: with the pg running, switch WAL and look again. */
  beyond: boolean
  toTime?: Date
}

/**
 * The base to start from. A target past (or at the edge of) the archived WAL of a running pg is
 * not refused at once: zenith switches WAL and waits for the archiver (up to waitSeconds), then
 * looks again.
 */
async function chooseBase(zenith: Zenith, area: PitrRecord, target: RecoveryTarget, waitSeconds: number, onProgress: OnProgress): Promise<{reach: BaseReach; wal: WalArea; stop: Stop}> {
  for (let attempt = 0; ; attempt++) {
    const data = await zenith.store.read()
    const current = data.pitr[area.name]
    const {wal, reaches, window} = await inspectArea(data, current)
    const found = await findBase(zenith, current, wal, reaches, target)
    if (found.reach && !found.beyond) return {reach: found.reach, wal, stop: found.stop}
    if (found.beyond && attempt === 0 && await pgRunning(data, current.pg)) {
      await catchUp(zenith, current, wal, waitSeconds, onProgress)
      continue
    }

    // Best effort (a stopped pg, an xid): postgres tells if the WAL ends before the target.
    if (found.reach) return {reach: found.reach, wal, stop: found.stop}
    throw outOfRange(current, target, window, found.toTime)
  }
}

async function findBase(zenith: Zenith, area: PitrRecord, wal: WalArea, reaches: BaseReach[], target: RecoveryTarget): Promise<Choice> {
  const usable = reaches.filter((reach) => reach.usable)
  if (target.kind === 'lsn') {
    const reach = baseForLsn(reaches, target.lsn)
    if (!reach) return {stop: 'target', beyond: usable.length === 0 || usable.some((item) => target.lsn > item.endLsn!)}
    // Replay stops at the first record at or after the LSN: one that must be archived too. In
    // the last archived segment it may not be yet.
    const inLast = segmentNameOf(target.lsn, reach.base.timeline, area.segmentSize) >= reach.endSegment!
    return {reach, stop: 'target', beyond: inLast}
  }

  if (target.kind === 'xid') {
    // Whether a transaction committed inside the WAL shows only by replaying it: with the pg
    // running, its newest WAL is archived first.
    return {reach: usable.length > 0 ? baseForXid(reaches, target.xid) : undefined, stop: 'target', beyond: true}
  }

  let toTime: Date | undefined
  for (const reach of basesForTime(reaches, target.time)) {
    const {lastCommit, archivedThrough} = await reachTimes(zenith, area, wal, reach.endSegment!, reach.endLsn!)
    toTime = [lastCommit, archivedThrough].filter((time): time is Date => time !== undefined).sort((a, b) => b.getTime() - a.getTime())[0]
    // A commit after the target is archived: replay stops before it.
    if (lastCommit && lastCommit > target.time) return {reach, stop: 'target', beyond: false, toTime}
    // Nothing committed after the target, and all WAL written until then is archived: the state
    // at the target is the end of the archived WAL (postgres would not find a commit to stop at).
    if (archivedThrough && archivedThrough >= target.time) return {reach, stop: 'end', beyond: false, toTime}
    return {reach, stop: 'end', beyond: true, toTime}
  }

  const earliest = usable.map((reach) => Date.parse(reach.base.time)).sort((a, b) => a - b)[0]
  return {stop: 'target', beyond: earliest !== undefined && target.time.getTime() >= earliest, toTime}
}

function outOfRange(area: PitrRecord, target: RecoveryTarget, window: PitrWindow | undefined, toTime: Date | undefined): ZenithError {
  if (!window) {
    return new ZenithError('PITR_TARGET_OUT_OF_RANGE', `PITR area ${area.name} has no usable window yet (its first base's WAL is not archived).`,
      `See \`zenith pitr show ${area.name}\`: the archiver may be failing.`)
  }

  const to = `${window.to.lsn}${toTime ? ` (${toTime.toISOString()})` : ''}`
  return new ZenithError('PITR_TARGET_OUT_OF_RANGE',
    `${describeTarget(target)} is outside the window of PITR area ${area.name}: from ${window.from.lsn} (${window.from.time}) to ${to}; nothing was created.`,
    `Choose a target inside the window (zenith pitr show ${area.name}).`)
}

async function pgRunning(data: StoreData, pg: string): Promise<boolean> {
  const record = data.pgs[pg]
  if (!record) return false
  return (await clusterStatus(volumeStorage(data, record.storage).volumePath(record.volume))).status === 'running'
}

/** Switches WAL on the running pg and waits until the switched segment is in the area. */
async function catchUp(zenith: Zenith, area: PitrRecord, wal: WalArea, waitSeconds: number, onProgress: OnProgress): Promise<void> {
  const before = new Date()
  const connection = await pgConnection(zenith, area.pg)
  const client = await newClient(connection)
  await client.connect()
  let wanted: string
  let lsn: string
  try {
    // A record after the target, so that replay finds where to stop (a restore point is a
    // cheap one), then the switch that makes its segment go to the archive.
    await client.query("select pg_create_restore_point('zenith')")
    lsn = await switchWal(connection)
    // The switch's end lies in the next segment's first byte: the switched one is the segment before it.
    const {rows} = await client.query<{file: string}>('select pg_walfile_name($1::pg_lsn) as file', [lsn])
    wanted = rows[0].file
  } finally {
    await client.end().catch(() => undefined)
  }

  onProgress({type: 'step', message: `Waiting up to ${waitSeconds}s for the archiver to store ${wanted} (WAL switched to reach the target)`})
  const deadline = Date.now() + waitSeconds * 1000
  while (!(await wal.list()).some((segment) => segment.name === wanted)) {
    if (Date.now() > deadline) {
      const {readAreaStatus} = await import('../wal-agent/config.js')
      const {areaStateDir} = await import('../wal-agent/install.js')
      const status = await readAreaStatus(areaStateDir(zenith.home, area.pg, area.name))
      throw new ZenithError('PITR_ARCHIVE_FAILING', `The archiver did not store ${wanted} in PITR area ${area.name} within ${waitSeconds}s${status.lastError ? `: ${status.lastError}` : ''}.`,
        'Fix what the error says (`zenith pitr show` has the last one), or choose an earlier target; pass --wait N to wait longer.')
    }

    await sleep(250)
  }

  await zenith.store.update((data) => {
    if (data.pitr[area.name]) data.pitr[area.name].archivedThrough = {time: before.toISOString(), lsn}
  })
}

interface RecoverOptions {
  area: PitrRecord
  reach: BaseReach
  wal: WalArea
  stop: Stop
  name: string
  ref: ReturnType<typeof parseSnapshotRef>
  target: RecoveryTarget
  storage?: string
  onProgress: OnProgress
  started: number
}

async function recoverInto(zenith: Zenith, options: RecoverOptions): Promise<ExtractResult> {
  const {area, reach, onProgress} = options
  const base = reach.base
  const data = await zenith.store.read()
  const destinationName = base.kind === 'volume' ? area.storage : options.storage ?? data.pgs[area.pg]?.storage ?? DEFAULT_STORAGE
  const destination = volumeStorage(data, destinationName)
  const record: SnapshotRecord = {
    name: options.name, pg: options.ref.kind === 'tag' ? options.ref.pg : undefined, tag: options.ref.kind === 'tag' ? options.ref.tag : undefined,
    storage: destination.name, volume: snapshotVolumeName(options.name), method: 'pitr', pgVersion: base.pgVersion, logicalBytes: 0,
    createdAt: new Date().toISOString(), state: 'creating', pid: process.pid, password: base.password,
  }
  await zenith.store.update((current) => {
    assertSnapshotNameFree(current, options.name)
    current.snapshots[options.name] = record
  })

  const work = `.temp-pitr-${options.name.replaceAll(/[^A-Za-z0-9_.-]/g, '_')}.p${process.pid}.${randomBytes(3).toString('hex')}`
  const workDir = destination.volumePath(work)
  const osUser = await pgOsUser(zenith)
  const binaries = await findPgBinaries(zenith, base.pgVersion || undefined)
  const logFile = path.join(zenith.logDir, `${work}.log`)
  let pulled: string | undefined
  try {
    if (base.kind === 'volume') {
      onProgress({type: 'step', message: `Cloning base ${base.id} of ${area.name}`})
      await destination.cloneSnapshot(base.location, work, 'thin')
    } else {
      pulled = `${base.location}.p${process.pid}`
      const {pullSnapshot} = await import('../receive/pull.js')
      const result = await pullSnapshot(zenith, {from: area.storage, snapshot: base.location, as: pulled, storage: destination.name, onProgress})
      await destination.cloneSnapshot(result.snapshot.volume, work, 'thin')
    }

    await prepareDataDir(workDir, osUser)
    const last = lastSegmentNeeded(area, reach, options.target)
    const staged = await stageWal(options.wal, await options.wal.list(), base, last, path.join(workDir, 'pg_wal'), osUser, onProgress)
    await writeFile(path.join(workDir, 'recovery.signal'), '', {mode: 0o600})
    await giveTo(osUser, path.join(workDir, 'recovery.signal'))
    const cluster: Cluster = {
      dataDir: workDir, port: await allocatePort(Object.values(data.pgs).map((pg) => pg.port)), socketDir: zenith.socketDir, logFile, osUser, binaries,
      settings: {...recoverySettings(options.target, options.stop), listen_addresses: '', archive_mode: 'off', hot_standby: 'on', logging_collector: 'off', ssl: 'off', shared_buffers: '128MB'},
    }
    onProgress({type: 'step', message: `Replaying WAL from base ${base.id} to ${describeTarget(options.target)}`})
    await startCluster(cluster)
    const replayedBytes = await waitForPromotion(cluster, base, staged, options.target, onProgress)
    const log = await readFile(logFile, 'utf8').catch(() => '')
    const stoppedAt = /recovery stopping (?:before|after) [^\n]*/.exec(log)?.[0]
    await stopCluster(cluster, 'fast')
    // Recovery settings must not follow the snapshot into its clones (each start writes its own zenith.conf).
    await rm(path.join(workDir, 'zenith.conf'), {force: true})
    onProgress({type: 'step', message: `Freezing snapshot ${options.name}`})
    await destination.snapshotVolume(work, record.volume, removeRuntimeFiles)
    await zenith.store.update(async (current) => {
      current.snapshots[options.name] = {...record, logicalBytes: await diskUsage(destination.snapshotPath(record.volume)), state: 'ready', pid: undefined}
    })
    return {snapshot: await showSnapshot(zenith, options.name), area: area.name, target: describeTarget(options.target), base: base.id, replayedBytes, stoppedAt, seconds: (Date.now() - options.started) / 1000}
  } catch (error) {
    await destination.removeSnapshot(record.volume).catch(() => undefined)
    await zenith.store.update((current) => {
      if (current.snapshots[options.name]?.pid === process.pid) delete current.snapshots[options.name]
    })
    throw await explainFailure(error, logFile, area, options.target)
  } finally {
    if ((await clusterStatus(workDir)).status === 'running') await stopCluster({dataDir: workDir, osUser, binaries}, 'immediate').catch(() => undefined)
    await destination.removeVolume(work).catch(() => undefined)
    if (pulled) await destroySnapshot(zenith, pulled, {force: true}).catch(() => undefined)
    await rm(logFile, {force: true})
  }
}

function recoverySettings(target: RecoveryTarget, stop: Stop): Record<string, string> {
  // Nothing is fetched by restore_command: the WAL is in pg_wal already (stageWal), and postgres
  // reads pg_wal when the command finds nothing. Timeline history files are there too.
  const common = {restore_command: 'false', recovery_target_action: 'promote', recovery_target_timeline: 'current'}
  // Without a target postgres replays all it has, then promotes.
  if (stop === 'end') return {restore_command: common.restore_command, recovery_target_timeline: common.recovery_target_timeline}
  if (target.kind === 'lsn') {
    // Not inclusive: stop before the first record at or after the LSN, so the state is exactly
    // what pg_current_wal_lsn() = LSN saw (inclusive would also apply the record that starts there).
    return {...common, recovery_target_lsn: formatLsn(target.lsn), recovery_target_inclusive: 'off'}
  }

  if (target.kind === 'xid') return {...common, recovery_target_xid: String(target.xid), recovery_target_inclusive: 'on'}
  return {...common, recovery_target_time: target.text, recovery_target_inclusive: 'on'}
}

/** The last segment replay may read: the one after the target LSN's (the stop shows only at the next record), or the reach's end. */
function lastSegmentNeeded(area: PitrRecord, reach: BaseReach, target: RecoveryTarget): string {
  if (target.kind !== 'lsn') return reach.endSegment!
  const next = segmentNameOf(target.lsn + BigInt(area.segmentSize), reach.base.timeline, area.segmentSize)
  return next < reach.endSegment! ? next : reach.endSegment!
}

/**
 * Puts the base's WAL, from its start segment to `last`, and every timeline history file into
 * its pg_wal: copies (a reflink where the filesystem can), never hard links, because postgres
 * recycles segment files in place. Returns the total bytes to replay.
 */
async function stageWal(wal: WalArea, segments: WalSegment[], base: PitrBase, last: string, pgWal: string, osUser: Awaited<ReturnType<typeof pgOsUser>>, onProgress: OnProgress): Promise<Lsn> {
  const timeline = base.startSegment.slice(0, 8)
  const wanted = segments.filter((segment) => segment.name.endsWith('.history')
    || (/^[0-9A-F]{24}$/.test(segment.name) && segment.name.slice(0, 8) === timeline && segment.name >= base.startSegment && segment.name <= last))
  const total = wanted.reduce((sum, segment) => sum + segment.size, 0)
  let done = 0
  const label = 'WAL staged'
  await new TaskPool(4).forEach(wanted, async (segment) => {
    const target = path.join(pgWal, segment.name)
    await rm(target, {force: true})
    if (wal.folder) await copyFile(path.join(wal.folder, segment.name), target, constants.COPYFILE_FICLONE)
    else await writeFile(target, await wal.read(segment.name), {mode: 0o600})
    await giveTo(osUser, target)
    done += segment.size
    onProgress({type: 'bytes', label, done, total})
  })
  onProgress({type: 'bytes-end', label, done})
  return BigInt(total)
}

/**
 * Replay runs until postgres promotes (pg_is_in_recovery() false); progress is the replayed
 * LSN against the target. A server that stops during recovery failed: explainFailure reads why.
 */
async function waitForPromotion(cluster: Cluster, base: PitrBase, stagedBytes: bigint, target: RecoveryTarget, onProgress: OnProgress): Promise<number> {
  const start = parseLsn(base.startLsn)
  const end = target.kind === 'lsn' ? target.lsn : start + stagedBytes
  const total = Number(end > start ? end - start : 0n)
  const label = 'WAL replayed'
  let replayed = 0
  for (;;) {
    if ((await clusterStatus(cluster.dataDir)).status !== 'running') throw new ZenithError('PITR_RECOVERY_FAILED', 'postgres stopped during recovery.', `See ${cluster.logFile}.`)
    const client = await newClient({host: cluster.socketDir, port: cluster.port, user: 'postgres', database: 'postgres'})
    try {
      await client.connect()
      const {rows} = await client.query<{recovering: boolean; lsn: string | null}>('select pg_is_in_recovery() as recovering, coalesce(pg_last_wal_replay_lsn(), pg_current_wal_lsn())::text as lsn')
      replayed = Math.max(replayed, Number(parseLsn(rows[0].lsn ?? '0/0') - start))
      onProgress({type: 'bytes', label, done: Math.min(replayed, total || replayed), total: total || undefined})
      if (!rows[0].recovering) {
        onProgress({type: 'bytes-end', label, done: replayed})
        return replayed
      }
    } catch (error) {
      const code = (error as {code?: string}).code
      if (code !== '57P03' && code !== 'ECONNREFUSED' && code !== 'ENOENT' && code !== '57P01') throw error
    } finally {
      await client.end().catch(() => undefined)
    }

    await sleep(100)
  }
}

/** What postgres said when recovery failed, as an error the user can act on. */
async function explainFailure(error: unknown, logFile: string, area: PitrRecord, target: RecoveryTarget): Promise<unknown> {
  const log = await readFile(logFile, 'utf8').catch(() => '')
  if (/recovery ended before configured recovery target was reached/.test(log)) {
    return new ZenithError('PITR_TARGET_OUT_OF_RANGE', `The WAL in PITR area ${area.name} ends before ${describeTarget(target)}${target.kind === 'xid' ? ' (no commit of that transaction in the window)' : ''}; nothing was created.`,
      `Choose a target inside the window (zenith pitr show ${area.name}).`)
  }

  if (/before consistent recovery point/.test(log)) {
    return new ZenithError('PITR_TARGET_OUT_OF_RANGE', `${describeTarget(target)} lies before the base of PITR area ${area.name} is consistent; nothing was created.`,
      `Choose a later target (zenith pitr show ${area.name}).`)
  }

  if (error instanceof ZenithError && error.code === 'PITR_RECOVERY_FAILED' || error instanceof ZenithError && error.code === 'PG_START_FAILED') {
    const lines = log.split('\n').filter((line) => /FATAL|PANIC|ERROR/.test(line)).slice(-4).join('\n')
    return new ZenithError('PITR_RECOVERY_FAILED', `Recovery to ${describeTarget(target)} failed:\n${lines || error.message}`, 'Nothing was created. Check that the area has no gap (zenith pitr show).')
  }

  return error
}

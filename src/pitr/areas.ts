import {chmod, mkdir, rename, rm, writeFile} from 'node:fs/promises'
import path from 'node:path'

import type {Zenith} from '../context.js'
import {ZenithError} from '../errors.js'
import {findPgBinaries} from '../pg/binaries.js'
import {newClient} from '../pg/client.js'
import {clusterStatus} from '../pg/cluster.js'
import {assertWritable, pgBusy, pgConnection, pgRecord, restartPg} from '../pg/lifecycle.js'
import {type OsUser, asUser, giveTo, pgOsUser} from '../pg/os-user.js'
import type {OnProgress} from '../progress.js'
import {silent} from '../progress.js'
import {run} from '../process.js'
import {isAlive} from '../state/lock.js'
import {validateName} from '../state/names.js'
import type {PitrBase, PitrRecord, StoreData} from '../state/schema.js'
import {openStorage, volumeStorage} from '../storage/registry.js'
import {type Storage, type WalArea, type WalSegment, hasVolumes} from '../storage/storage.js'
import {type AreaConfig, type ArchiveConfig, readAreaStatus} from '../wal-agent/config.js'
import {type DrainReport, spoolCount} from '../wal-agent/archive.js'
import {agentCommand, archiveConfigFile, archiveSettings, areaStateDir, installAgent, pgPitrDir, pitrRoot} from '../wal-agent/install.js'
import {removeBase, takeBase} from './bases.js'
import {parseLsn, segmentNameOf} from './lsn.js'
import {BASE_EVERY_BYTES, BASE_EVERY_SECONDS, formatTtl, parseSizeLimit, parseTtl, planGc} from './policy.js'
import {lastCommitTime, readControlData} from './wal-tools.js'
import {type BaseReach, type PitrWindow, reachOfBases, windowOf} from './window.js'

export interface CreatePitrOptions {
  name: string
  pg: string
  storage?: string
  ttl?: string
  sizeLimit?: string
  onProgress?: OnProgress
}

export interface PitrInfo {
  name: string
  pg: string
  storage: string
  /** The window: from the oldest usable base to the end of the WAL it reaches (undefined until the first base's WAL is archived). */
  from?: {lsn: string; time: string}
  to?: {lsn: string; time?: string}
  timeline?: number
  sizeBytes: number
  ttl: string
  sizeLimit: string
  ttlSeconds?: number
  sizeLimitBytes?: number
  status: 'archiving' | 'failing' | 'stopped' | 'busy'
  /** With status `failing`: the archive command's last error. */
  lastError?: string
  lastArchived?: string
  lastArchivedAt?: string
  createdAt: string
}

export interface PitrDetails extends PitrInfo {
  bases: Array<Pick<PitrBase, 'id' | 'timeline' | 'startLsn' | 'stopLsn' | 'time' | 'bytes' | 'kind'> & {usable: boolean}>
  segments: number
  walBytes: number
  basesBytes: number
  /** Age of the last archived segment, in seconds. */
  lastArchivedAgeSeconds?: number
  lastErrorAt?: string
  /** Segments waiting in this area's spool (the area failed while another area took them). */
  backlog: number
  gaps: string[]
  timelines: number[]
  bytesByStorage: Array<{storage: string; bytes: number}>
  notes: string[]
}

/**
 * `pitr create`: the pg's WAL goes to a new area from now on (archive_mode needs one restart
 * of a running pg that does not archive yet), and a first base is taken at once.
 */
export async function createPitr(zenith: Zenith, options: CreatePitrOptions): Promise<PitrDetails & {restarted: boolean}> {
  const onProgress = options.onProgress ?? silent
  validateName('pitr', options.name)
  const ttlSeconds = options.ttl === undefined ? undefined : parseTtl(options.ttl)
  const sizeLimitBytes = options.sizeLimit === undefined ? undefined : parseSizeLimit(options.sizeLimit)
  const osUser = await pgOsUser(zenith)
  const record = await zenith.store.update((data) => {
    if (data.pitr[options.name]) throw new ZenithError('NAME_TAKEN', `A PITR area named "${options.name}" already exists.`, 'Choose another name, or destroy it first with `zenith pitr destroy`.')
    const pg = pgRecord(data, options.pg)
    assertWritable(pg, 'archive WAL (it writes none)')
    if (pg.state !== 'ready') throw pgBusy(pg)
    const storage = openStorage(data, options.storage ?? pg.storage)
    checkAreaStorage(storage, pg.storage)
    const own = Object.keys(pg.settings).find((key) => key === 'archive_mode' || key === 'archive_command' || key === 'archive_library')
    if (own) {
      throw new ZenithError('INVALID_ARGUMENT', `pg "${pg.name}" was created with its own ${own} (--set ${own}=...), which PITR areas would replace.`,
        'Archive with zenith instead: create a new pg without that setting, or keep your own archiving.')
    }

    const area: PitrRecord = {
      name: options.name, pg: pg.name, storage: storage.name, ttlSeconds, sizeLimitBytes, createdAt: new Date().toISOString(),
      state: 'creating', pid: process.pid, segmentSize: 0, systemId: '', bases: [], nextBaseId: 1,
    }
    data.pitr[area.name] = area
    return area
  })

  let restarted = false
  try {
    const data = await zenith.store.read()
    const pg = pgRecord(data, record.pg)
    const storage = openStorage(data, record.storage)
    const local = volumeStorage(data, pg.storage)
    const binaries = await findPgBinaries(zenith, pg.pgVersion)
    const control = await readControlData(binaries, local.volumePath(pg.volume))
    await zenith.store.update((current) => {
      Object.assign(current.pitr[record.name], {segmentSize: control.segmentSize, systemId: control.systemId})
    })
    onProgress({type: 'step', message: `Preparing PITR area ${record.name} in storage ${storage.name}`})
    await prepareArea(zenith, record, storage, osUser)
    await writeArchiveConfig(zenith, record.pg, {include: record.name})
    await checkAgentRuns(zenith, osUser)
    await zenith.store.update((current) => {
      current.pgs[record.pg].archiving = true
    })
    if ((await clusterStatus(local.volumePath(pg.volume))).status === 'running') {
      const {mode, command} = await archiveState(zenith, pg.name)
      if (mode !== 'on' || command !== archiveSettings(zenith.home, pg.name).archive_command) {
        onProgress({type: 'step', message: `Restarting ${pg.name} once: archive_mode takes effect only on a restart`})
        await restartPg(zenith, pg.name, {onProgress})
        restarted = true
      }
    }

    const base = await takeBase(zenith, {...record, segmentSize: control.segmentSize}, onProgress)
    await zenith.store.update((current) => {
      current.pitr[record.name].bases.push(base)
    })
    await waitForBaseWal(zenith, record.name, base, onProgress)
  } catch (error) {
    await removeArea(zenith, record.name).catch(() => undefined)
    throw error
  }

  await releaseArea(zenith, record.name)
  return {...await showPitr(zenith, record.name), restarted}
}

/** An area lives in the pg's own storage (bases are snapshots of its data directory there) or in an object storage (dir, s3). */
function checkAreaStorage(storage: Storage, pgStorage: string): void {
  if (!storage.capabilities.wal) {
    throw new ZenithError('STORAGE_UNSUPPORTED', `Storage "${storage.name}" (${storage.type}) cannot hold WAL.`, 'Use the pg\'s own storage, or a dir or s3 storage.')
  }

  if (hasVolumes(storage) && storage.name !== pgStorage) {
    throw new ZenithError('STORAGE_UNSUPPORTED', `Storage "${storage.name}" holds data directories, but not the pg's (it is on "${pgStorage}").`,
      `Put the area on the pg's own storage (leave out --storage) or on a dir or s3 storage (zenith storage attach -t dir ...).`)
  }
}

async function prepareArea(zenith: Zenith, area: PitrRecord, storage: Storage, osUser: OsUser | undefined): Promise<void> {
  await mkdir(pitrRoot(zenith.home), {recursive: true, mode: 0o711})
  await ownedFolder(pgPitrDir(zenith.home, area.pg), osUser)
  await ownedFolder(areaStateDir(zenith.home, area.pg, area.name), osUser)
  const folder = storage.walArea(area.name).folder
  if (folder) {
    await mkdir(path.dirname(folder), {recursive: true, mode: 0o711})
    await chmod(path.dirname(folder), 0o711)
    await ownedFolder(folder, osUser)
    if (osUser) {
      const reachable = await run('runuser', ['-u', osUser.name, '--', 'test', '-w', folder])
      if (reachable.exitCode !== 0) {
        throw new ZenithError('PERMISSION_DENIED', `The OS user "${osUser.name}" that runs postgres cannot write to ${folder}.`,
          `Let it traverse every parent folder of the storage (chmod o+x on each), or put the area on another storage.`)
      }
    }
  }
}

async function ownedFolder(folder: string, osUser: OsUser | undefined): Promise<void> {
  await mkdir(folder, {recursive: true, mode: 0o700})
  await giveTo(osUser, folder)
  await chmod(folder, 0o700)
}

/** archive.json of a pg: every area that archives its WAL (and `include`, being created). */
export async function writeArchiveConfig(zenith: Zenith, pg: string, options: {include?: string; exclude?: string} = {}): Promise<void> {
  const data = await zenith.store.read()
  const areas = Object.values(data.pitr)
    .filter((area) => area.pg === pg && area.name !== options.exclude && (area.state !== 'creating' || area.name === options.include) && area.state !== 'destroying')
    .sort((a, b) => a.name.localeCompare(b.name))
  const config: ArchiveConfig = {version: 1, pg, areas: await Promise.all(areas.map((area) => areaConfig(zenith, data, area)))}
  const file = archiveConfigFile(zenith.home, pg)
  const temporary = `${file}.${process.pid}.tmp`
  await writeFile(temporary, JSON.stringify(config, null, 2) + '\n', {mode: 0o600})
  await giveTo(await pgOsUser(zenith), temporary)
  await rename(temporary, file)
}

async function areaConfig(zenith: Zenith, data: StoreData, area: PitrRecord): Promise<AreaConfig> {
  const storage = openStorage(data, area.storage)
  const stateDir = areaStateDir(zenith.home, area.pg, area.name)
  const folder = storage.walArea(area.name).folder
  if (folder) return {name: area.name, stateDir, target: {kind: 'folder', dir: folder}}
  const {S3Storage} = await import('../storage/drivers/s3.js')
  if (!(storage instanceof S3Storage)) throw new Error(`storage ${storage.name} has a WAL area that is neither a folder nor in S3`)
  return {name: area.name, stateDir, target: {kind: 's3', location: await storage.agentLocation(), keyPrefix: `wal/${area.name}/`}}
}

/**
 * The postgres OS user must be able to run node and read the agent (or run the single
 * executable): checked before postgres relies on it. Without arguments the agent exits 2.
 */
async function checkAgentRuns(zenith: Zenith, osUser: OsUser | undefined): Promise<void> {
  await installAgent(zenith.home)
  const args = agentCommand(zenith.home)
  const result = osUser ? await run('runuser', ['-u', osUser.name, '--', ...args]) : await run(args[0], args.slice(1))
  if (result.exitCode !== 2) {
    throw new ZenithError('PERMISSION_DENIED', `The archive command cannot run as ${osUser ? `the OS user "${osUser.name}"` : 'this user'}: ${result.stderr.trim().split('\n').at(-1) ?? ''}`,
      `It runs ${args.join(' ')}: every folder on the way to each file must be readable and traversable by that user (chmod o+rx).`)
  }
}

async function archiveState(zenith: Zenith, pg: string): Promise<{mode: string; command: string}> {
  const client = await newClient(await pgConnection(zenith, pg))
  await client.connect()
  try {
    const {rows} = await client.query<{mode: string; command: string}>("select current_setting('archive_mode') as mode, current_setting('archive_command') as command")
    return rows[0]
  } finally {
    await client.end().catch(() => undefined)
  }
}

/**
 * A running pg archives the segment that holds the base's stop point only once it is full; the
 * backup's end switched WAL, so it goes now: waited for (30 s at most) so that the area is
 * usable when the command returns. A slow or failing archiver is reported, not an error: the
 * base becomes usable as soon as that segment arrives.
 */
async function waitForBaseWal(zenith: Zenith, name: string, base: PitrBase, onProgress: OnProgress): Promise<void> {
  const data = await zenith.store.read()
  const area = data.pitr[name]
  const pg = pgRecord(data, area.pg)
  if ((await clusterStatus(volumeStorage(data, pg.storage).volumePath(pg.volume))).status !== 'running') return
  const wanted = segmentNameOf(parseLsn(base.stopLsn), base.timeline, area.segmentSize)
  onProgress({type: 'step', message: `Waiting for the archiver to store ${wanted}`})
  const wal = openStorage(data, area.storage).walArea(area.name)
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    if ((await wal.list()).some((segment) => segment.name === wanted)) return
    await new Promise((resolve) => setTimeout(resolve, 200))
  }

  onProgress({type: 'step', message: `The archiver has not stored ${wanted} yet; the area is usable once it has (see \`zenith pitr show ${name}\`).`})
}

export async function listPitr(zenith: Zenith): Promise<PitrInfo[]> {
  const data = await zenith.store.read()
  const areas = Object.values(data.pitr).filter((area) => area.state !== 'creating').sort((a, b) => a.name.localeCompare(b.name))
  return Promise.all(areas.map(async (area) => summary(await describe(zenith, data, area))))
}

export async function showPitr(zenith: Zenith, name: string): Promise<PitrDetails> {
  const data = await zenith.store.read()
  return describe(zenith, data, pitrRecord(data, name))
}

function summary(details: PitrDetails): PitrInfo {
  return {
    name: details.name, pg: details.pg, storage: details.storage, from: details.from, to: details.to, timeline: details.timeline,
    sizeBytes: details.sizeBytes, ttl: details.ttl, sizeLimit: details.sizeLimit, ttlSeconds: details.ttlSeconds, sizeLimitBytes: details.sizeLimitBytes,
    status: details.status, lastError: details.lastError, lastArchived: details.lastArchived, lastArchivedAt: details.lastArchivedAt, createdAt: details.createdAt,
  }
}

export function pitrRecord(data: StoreData, name: string): PitrRecord {
  const area = data.pitr[name]
  if (!area) {
    const known = Object.keys(data.pitr)
    throw new ZenithError('PITR_NOT_FOUND', `There is no PITR area named "${name}".`,
      known.length > 0 ? `Known areas: ${known.join(', ')} (zenith pitr list).` : 'Create one with `zenith pitr create NAME --pg PG`.')
  }

  return area
}

/** The area's segments and bases, and how far each base reaches. */
export async function inspectArea(data: StoreData, area: PitrRecord): Promise<{wal: WalArea; segments: WalSegment[]; reaches: BaseReach[]; window?: PitrWindow}> {
  const wal = openStorage(data, area.storage).walArea(area.name)
  const segments = await wal.list()
  const reaches = reachOfBases(area.bases, segments, area.segmentSize || 16 * 1024 * 1024)
  return {wal, segments, reaches, window: windowOf(reaches)}
}

/**
 * How far in time the WAL up to `segment` reaches: its newest commit (pg_waldump of the last
 * segments that have any, cached in the record by segment name), and the time of a WAL switch
 * zenith saw archived within it (all WAL written before then is in the area).
 */
export async function reachTimes(zenith: Zenith, area: PitrRecord, wal: WalArea, segment: string, endLsn: bigint): Promise<{lastCommit?: Date; archivedThrough?: Date}> {
  let lastCommit: Date | undefined
  if (area.tail?.segment === segment) {
    lastCommit = area.tail.lastCommit ? new Date(area.tail.lastCommit) : undefined
  } else {
    const binaries = await findPgBinaries(zenith, area.bases[0]?.pgVersion || undefined)
    const names = (await wal.list()).map((item) => item.name).filter((name) => /^[0-9A-F]{24}$/.test(name) && name.slice(0, 8) === segment.slice(0, 8) && name <= segment)
    for (const name of names.reverse().slice(0, 8)) {
      lastCommit = await lastCommitTime(binaries, {name, body: await wal.read(name)})
      if (lastCommit) break
    }

    await zenith.store.update((data) => {
      if (data.pitr[area.name]) data.pitr[area.name].tail = {segment, lastCommit: lastCommit?.toISOString()}
    })
  }

  const archivedThrough = area.archivedThrough && parseLsn(area.archivedThrough.lsn) <= endLsn ? new Date(area.archivedThrough.time) : undefined
  return {lastCommit, archivedThrough}
}

async function describe(zenith: Zenith, data: StoreData, area: PitrRecord): Promise<PitrDetails> {
  const stateDir = areaStateDir(zenith.home, area.pg, area.name)
  const status = await readAreaStatus(stateDir)
  let inspected: Awaited<ReturnType<typeof inspectArea>>
  try {
    inspected = await inspectArea(data, area)
  } catch (error) {
    // An area that cannot be read now (S3 down) is listed as failing, not an error of the list.
    if (!(error instanceof ZenithError) || !['SOURCE_UNREACHABLE', 'AUTH_FAILED', 'PERMISSION_DENIED'].includes(error.code)) throw error
    status.lastError = `cannot read the area: ${error.message}`
    status.lastErrorAt = new Date().toISOString()
    inspected = {wal: openStorage(data, area.storage).walArea(area.name), segments: [], reaches: []}
  }

  const {wal, segments, reaches, window} = inspected
  const walBytes = segments.reduce((sum, segment) => sum + segment.size, 0)
  const basesBytes = area.bases.reduce((sum, base) => sum + base.bytes, 0)
  const endReach = window ? reaches.find((reach) => reach.endSegment === window.to.segment) : undefined
  const times = window && endReach ? await reachTimes(zenith, area, wal, window.to.segment, endReach.endLsn!).catch(() => undefined) : undefined
  const toTime = [times?.lastCommit, times?.archivedThrough].filter((time): time is Date => time !== undefined).sort((a, b) => b.getTime() - a.getTime())[0]
  const pg = data.pgs[area.pg]
  const running = pg ? (await clusterStatus(volumeStorage(data, pg.storage).volumePath(pg.volume))).status === 'running' : false
  const failing = status.lastErrorAt !== undefined && (status.lastArchivedAt === undefined || status.lastErrorAt > status.lastArchivedAt)
  const state: PitrInfo['status'] = area.state !== 'ready' ? 'busy' : failing ? 'failing' : running ? 'archiving' : 'stopped'
  return {
    name: area.name, pg: area.pg, storage: area.storage, timeline: window?.timeline,
    from: window?.from, to: window ? {lsn: window.to.lsn, time: toTime?.toISOString()} : undefined,
    sizeBytes: walBytes + basesBytes, ttl: formatTtl(area.ttlSeconds), sizeLimit: area.sizeLimitBytes === undefined ? 'inf' : formatSize(area.sizeLimitBytes),
    ttlSeconds: area.ttlSeconds, sizeLimitBytes: area.sizeLimitBytes,
    status: state, lastError: failing ? status.lastError : undefined, lastArchived: status.lastArchived, lastArchivedAt: status.lastArchivedAt,
    createdAt: area.createdAt,
    bases: reaches.map((reach) => ({id: reach.base.id, kind: reach.base.kind, timeline: reach.base.timeline, startLsn: reach.base.startLsn, stopLsn: reach.base.stopLsn, time: reach.base.time, bytes: reach.base.bytes, usable: reach.usable})),
    segments: segments.filter((segment) => /^[0-9A-F]{24}$/.test(segment.name)).length, walBytes, basesBytes,
    lastArchivedAgeSeconds: status.lastArchivedAt ? Math.max(0, Math.round((Date.now() - Date.parse(status.lastArchivedAt)) / 1000)) : undefined,
    lastErrorAt: status.lastErrorAt, backlog: await spoolCount({stateDir}),
    gaps: [...new Set(reaches.map((reach) => reach.gapAt).filter((gap): gap is string => gap !== undefined))],
    timelines: [...new Set(area.bases.map((base) => base.timeline))].sort((a, b) => a - b),
    bytesByStorage: [{storage: area.storage, bytes: walBytes + basesBytes}],
    notes: status.notes ?? [],
  }
}

function formatSize(bytes: number): string {
  for (const [unit, size] of [['T', 1024 ** 4], ['G', 1024 ** 3], ['M', 1024 ** 2]] as const) if (bytes % size === 0) return `${bytes / size}${unit}`
  return `${bytes}`
}

export interface GcResult {
  name: string
  basesDropped: number[]
  segmentsDropped: number
  bytesFreed: number
  baseTaken?: number
  spoolSent: number
  /** Why the spool could not go (the area still fails): it stays, and goes at the next try. */
  spoolError?: string
  overLimit: boolean
}

/**
 * Sends the area's spool through the archive command's own code, as the OS user postgres runs
 * as (main.js drain): files stored by root would be unreadable to the archive command, which
 * reads a segment back when postgres sends it again.
 */
async function sendSpool(zenith: Zenith, area: PitrRecord): Promise<DrainReport> {
  const stateDir = areaStateDir(zenith.home, area.pg, area.name)
  if ((await spoolCount({stateDir})) === 0) return {area: area.name, sent: 0, backlog: 0}
  await installAgent(zenith.home)
  const [program, ...first] = agentCommand(zenith.home)
  const [command, args] = asUser(await pgOsUser(zenith), program, [...first, 'drain', archiveConfigFile(zenith.home, area.pg), area.name])
  const result = await run(command, args)
  if (result.exitCode !== 0) return {area: area.name, sent: 0, backlog: await spoolCount({stateDir}), error: result.stderr.trim() || `the archive command exited ${result.exitCode}`}
  return JSON.parse(result.stdout) as DrainReport
}

/**
 * `pitr gc`: sends what waits in the spool, drops the bases and segments the TTL and the size
 * limit no longer keep (planGc), and takes a new base when one is due (BASE_EVERY_BYTES of WAL
 * or BASE_EVERY_SECONDS since the newest, on a running pg). Run it from cron (docs/pitr.md).
 */
export async function gcPitr(zenith: Zenith, name: string, options: {now?: Date; newBase?: boolean; onProgress?: OnProgress} = {}): Promise<GcResult> {
  const onProgress = options.onProgress ?? silent
  const area = await claimArea(zenith, name, 'gc')
  try {
    let spoolSent = 0
    let baseTaken: number | undefined
    if (options.newBase) {
      const base = await takeBase(zenith, area, onProgress)
      baseTaken = base.id
      await zenith.store.update((current) => {
        current.pitr[name].bases.push(base)
      })
      await waitForBaseWal(zenith, name, base, onProgress)
    }

    const data = await zenith.store.read()
    const drained = await sendSpool(zenith, area)
    spoolSent = drained.sent
    const {wal, segments} = await inspectArea(data, area)
    const current = data.pitr[name]
    const plan = planGc(current.bases, segments, {ttlSeconds: current.ttlSeconds, sizeLimitBytes: current.sizeLimitBytes}, options.now ?? new Date())
    for (const base of plan.drop) {
      onProgress({type: 'step', message: `Dropping base ${base.id} of ${name}`})
      await removeBase(zenith, area, base)
      await zenith.store.update((current) => {
        current.pitr[name].bases = current.pitr[name].bases.filter((item) => item.id !== base.id)
      })
    }

    const dropped = new Set(plan.dropSegments)
    await wal.remove(plan.dropSegments)
    const bytesFreed = segments.filter((segment) => dropped.has(segment.name)).reduce((sum, segment) => sum + segment.size, 0) + plan.drop.reduce((sum, base) => sum + base.bytes, 0)
    baseTaken ??= await takeBaseIfDue(zenith, await zenith.store.read(), name, options.now ?? new Date(), onProgress)
    return {name, basesDropped: plan.drop.map((base) => base.id), segmentsDropped: plan.dropSegments.length, bytesFreed, baseTaken, spoolSent, spoolError: drained.error, overLimit: plan.overLimit}
  } finally {
    await releaseArea(zenith, name)
  }
}

async function takeBaseIfDue(zenith: Zenith, data: StoreData, name: string, now: Date, onProgress: OnProgress): Promise<number | undefined> {
  const area = data.pitr[name]
  const pg = data.pgs[area.pg]
  if (!pg || pg.state !== 'ready') return undefined
  if ((await clusterStatus(volumeStorage(data, pg.storage).volumePath(pg.volume))).status !== 'running') return undefined
  const newest = [...area.bases].sort((a, b) => b.time.localeCompare(a.time))[0]
  let due = !newest || now.getTime() - Date.parse(newest.time) >= BASE_EVERY_SECONDS * 1000
  if (!due && newest) {
    const client = await newClient(await pgConnection(zenith, pg.name))
    await client.connect()
    try {
      const {rows} = await client.query<{bytes: string}>('select pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::text as bytes', [newest.startLsn])
      due = Number(rows[0].bytes) >= BASE_EVERY_BYTES
    } finally {
      await client.end().catch(() => undefined)
    }
  }

  if (!due) return undefined
  const base = await takeBase(zenith, area, onProgress)
  await zenith.store.update((current) => {
    current.pitr[name].bases.push(base)
  })
  return base.id
}

/** `pitr destroy`: the pg stops sending WAL to the area, then its bases and WAL are deleted. */
export async function destroyPitr(zenith: Zenith, name: string, options: {onProgress?: OnProgress} = {}): Promise<{name: string; archivingStopped: boolean}> {
  const area = await claimArea(zenith, name, 'destroying')
  options.onProgress?.({type: 'step', message: `Destroying PITR area ${name}`})
  const archivingStopped = await removeArea(zenith, area.name)
  return {name, archivingStopped}
}

/**
 * After a checkout the pg writes WAL on a new timeline that no base reaches: each of its areas
 * gets a base on it (run after `pg checkout` and `pg start`; nothing to do otherwise).
 */
export async function refreshBasesAfterFork(zenith: Zenith, pg: string, onProgress: OnProgress = silent): Promise<number[]> {
  const data = await zenith.store.read()
  const areas = Object.values(data.pitr).filter((area) => area.pg === pg && area.state === 'ready')
  const record = data.pgs[pg]
  if (areas.length === 0 || !record || record.timelineFork) return []
  if ((await clusterStatus(volumeStorage(data, record.storage).volumePath(record.volume))).status !== 'running') return []
  const client = await newClient(await pgConnection(zenith, pg))
  await client.connect()
  let timeline: number
  try {
    const {rows} = await client.query<{file: string}>('select pg_walfile_name(pg_current_wal_lsn()) as file')
    timeline = Number.parseInt(rows[0].file.slice(0, 8), 16)
  } finally {
    await client.end().catch(() => undefined)
  }

  const taken: number[] = []
  for (const area of areas.filter((item) => !item.bases.some((base) => base.timeline === timeline))) {
    const claimed = await claimArea(zenith, area.name, 'base')
    try {
      const base = await takeBase(zenith, claimed, onProgress)
      await zenith.store.update((current) => {
        current.pitr[area.name].bases.push(base)
      })
      await waitForBaseWal(zenith, area.name, base, onProgress)
      taken.push(base.id)
    } finally {
      await releaseArea(zenith, area.name)
    }
  }

  return taken
}

/** `pg destroy --force`: every PITR area of the pg goes first. */
export async function destroyPitrOfPg(zenith: Zenith, pg: string, options: {onProgress?: OnProgress} = {}): Promise<string[]> {
  const data = await zenith.store.read()
  pgRecord(data, pg)
  const names = Object.values(data.pitr).filter((area) => area.pg === pg).map((area) => area.name)
  for (const name of names) await destroyPitr(zenith, name, options)
  return names
}

/**
 * Removes an area whatever state it is in (destroy, a failed create, the repair of a killed
 * one): out of archive.json first, so the archive command no longer writes into it; the last
 * area of a pg turns its archiving off (from its next start; until then the archive command
 * accepts WAL without keeping it, so postgres never holds WAL back for an area that is gone).
 * Returns whether the pg has no area left.
 */
export async function removeArea(zenith: Zenith, name: string): Promise<boolean> {
  const data = await zenith.store.read()
  const area = data.pitr[name]
  if (!area) return false
  const last = !Object.values(data.pitr).some((other) => other.pg === area.pg && other.name !== name)
  if (data.pgs[area.pg]) await writeArchiveConfig(zenith, area.pg, {exclude: name})
  if (last) {
    await zenith.store.update((current) => {
      if (current.pgs[area.pg]) delete current.pgs[area.pg].archiving
    })
  }

  for (const base of area.bases) await removeBase(zenith, area, base)
  const storage = data.storages[area.storage] ? openStorage(data, area.storage) : undefined
  if (storage) {
    const wal = storage.walArea(area.name)
    await wal.remove((await wal.list()).map((segment) => segment.name))
    if (wal.folder) await rm(wal.folder, {recursive: true, force: true})
  }

  await rm(areaStateDir(zenith.home, area.pg, area.name), {recursive: true, force: true})
  await zenith.store.update((current) => {
    delete current.pitr[name]
  })
  return last
}

export async function claimArea(zenith: Zenith, name: string, state: PitrRecord['state']): Promise<PitrRecord> {
  return zenith.store.update((data) => {
    const area = pitrRecord(data, name)
    if (area.state !== 'ready') {
      throw area.pid !== undefined && isAlive(area.pid)
        ? new ZenithError('PG_BUSY', `PITR area "${name}" is busy (${area.state} by process ${area.pid}).`, 'Wait for that command to finish.')
        : new ZenithError('INCOMPLETE_OPERATION', `PITR area "${name}" was left ${area.state} by a command that was interrupted.`, 'Run any zenith command again (e.g. `zenith pitr list`) to repair it.')
    }

    area.state = state
    area.pid = process.pid
    return {...area}
  })
}

export async function releaseArea(zenith: Zenith, name: string): Promise<void> {
  await zenith.store.update((data) => {
    const area = data.pitr[name]
    if (!area || area.pid !== process.pid) return
    area.state = 'ready'
    delete area.pid
  })
}

/**
 * Repairs an area a killed command left: a half-made one is removed, a half-destroyed one
 * finished, others released, after removing what the killed command was making (a base folder
 * no base names, the temporary snapshot record of a base being pushed or pulled).
 */
export async function repairArea(zenith: Zenith, area: PitrRecord): Promise<string> {
  if (area.state === 'creating' || area.state === 'destroying') {
    await removeArea(zenith, area.name)
    return area.state === 'creating' ? 'removed a PITR area whose creation was interrupted' : 'finished destroying the PITR area'
  }

  const left = await removeUnfinishedBases(zenith, area)
  await releaseArea(zenith, area.name)
  return `released it from an interrupted ${area.state}${left > 0 ? ` and removed ${left} unfinished base ${left === 1 ? 'copy' : 'copies'}` : ''}`
}

async function removeUnfinishedBases(zenith: Zenith, area: PitrRecord): Promise<number> {
  const data = await zenith.store.read()
  let removed = 0
  const temporary = new RegExp(`^pitr\\.${escapeRegExp(area.name)}\\.base\\d+(\\.p\\d+)?$`)
  for (const snapshot of Object.values(data.snapshots).filter((item) => temporary.test(item.name))) {
    await volumeStorage(data, snapshot.storage).removeSnapshot(snapshot.volume)
    await zenith.store.update((current) => {
      delete current.snapshots[snapshot.name]
    })
    removed++
  }

  const pg = data.pgs[area.pg]
  if (!pg) return removed
  const storage = volumeStorage(data, pg.storage)
  const kept = new Set(area.bases.filter((base) => base.kind === 'volume').map((base) => base.location))
  const folder = new RegExp(`^pitr-${escapeRegExp(area.name)}-base\\d+\\.[0-9a-f]{6}$`)
  const {readdir} = await import('node:fs/promises')
  for (const entry of await readdir(path.dirname(storage.snapshotPath('x'))).catch(() => [] as string[])) {
    if (!folder.test(entry) || kept.has(entry)) continue
    await storage.removeSnapshot(entry)
    removed++
  }

  return removed
}

function escapeRegExp(text: string): string {
  return text.replaceAll(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

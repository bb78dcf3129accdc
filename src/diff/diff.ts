import {open} from 'node:fs/promises'
import path from 'node:path'

import type {Zenith} from '../context.js'
import {ZenithError, isZenithError} from '../errors.js'
import {interruptible} from '../import-export/interrupt.js'
import {allocatePort} from '../pg/ports.js'
import {type StartedTempInstance, startTempInstance} from '../pg/temp-instance.js'
import {type OnProgress, silent} from '../progress.js'
import {createSnapshot, destroySnapshot, resolveSnapshot} from '../snapshot/snapshots.js'
import {parseSnapshotRef} from '../state/names.js'
import type {SnapshotRecord} from '../state/schema.js'
import {volumeStorage} from '../storage/registry.js'
import {isUrl} from '../urls.js'
import {type Catalog, DEFAULT_DATABASE, readCatalog} from './catalog.js'
import {type RowDiffResult, type RowDiffOptions, diffRows, rowDiffStatements} from './rows.js'
import {type SchemaChange, diffSchemas} from './schema.js'
import {type SizeDiff, diffSizes} from './size.js'
import {temporaryDiffTag} from './temporary.js'

export type DiffMode = 'size' | 'schema' | 'data'

export interface DiffRequest {
  mode: DiffMode
  /** --data: tables to compare (`schema.name`, `name` for public, `db:schema.name`); default every table. */
  tables?: string[]
  /** --data: rows shown per table. */
  limit?: number
  onProgress?: OnProgress
  /** Aborts the diff as Ctrl-C does: the temporary instances and snapshots are removed all the same. */
  signal?: AbortSignal
}

interface Sides {
  before: string
  after: string
  seconds: number
}

export type SnapshotDiff =
  | ({mode: 'size'} & Sides & SizeDiff)
  | ({mode: 'schema'} & Sides & {objects: SchemaChange[]})
  | ({mode: 'data'} & Sides & RowDiffResult & {databases: {added: string[]; removed: string[]}})

/**
 * `snapshot diff SNAP1 SNAP2`: what changed between two snapshots. Size: bytes changed per
 * relation, reading only what the storage cannot show to be shared. Schema and data: compared
 * on temporary read-only postgres instances over thin clones of both, started in parallel and
 * removed also on failure or Ctrl-C (a kill leaves them to the next command's repair). A live
 * pg (`PG@CURRENT`) is snapshotted first, and that snapshot removed afterwards.
 */
export async function diffSnapshots(zenith: Zenith, beforeRef: string, afterRef: string, request: DiffRequest): Promise<SnapshotDiff> {
  const onProgress = request.onProgress ?? silent
  const started = Date.now()
  const sides = {before: beforeRef, after: afterRef}
  return withDiffSides(zenith, beforeRef, afterRef, request, async ({before, after, startInstance, startInstances}) => {
    if (request.mode === 'size') {
      const data = await zenith.store.read()
      const [storageBefore, storageAfter] = [volumeStorage(data, before.storage), volumeStorage(data, after.storage)]
      await assertSameCluster(beforeRef, storageBefore.snapshotPath(before.volume), afterRef, storageAfter.snapshotPath(after.volume))
      if (storageBefore.capabilities.thinClone && storageAfter.capabilities.thinClone) {
        // A snapshot's files are what the disk held when it was taken: pages still in postgres'
        // buffers then are only in its WAL (an atomic snapshot of a running pg is exact only
        // after recovery). So both sides are compared as recovered clones, stopped with a
        // shutdown checkpoint; on a copy-on-write storage they cost nothing to make and still
        // share the blocks of every page that did not change.
        const [left, right] = await startInstances()
        const catalogs = await Promise.all([readCatalog(left), readCatalog(right)])
        await Promise.all([left.stop('fast'), right.stop('fast')])
        onProgress({type: 'step', message: `Comparing the pages of ${beforeRef} and ${afterRef}`})
        const size = await diffSizes(left.dataDir, right.dataDir, {
          extents: before.storage === after.storage, ignore: isRuntimeFile,
          catalogAfter: async () => catalogs[1], catalogBefore: async () => catalogs[0],
        })
        return {mode: 'size', ...sides, ...size, seconds: seconds(started)}
      }

      // Elsewhere a clone is a full copy: the snapshots' own files are compared. Those were taken
      // after a checkpoint (backup API) or of a stopped server, so only what was written during
      // the copy can be missing. Names come from the catalog of `after`, read while the files
      // are compared, and from the one of `before` only when files `after` does not name are left.
      const catalogAfter = startInstance('after').then((instance) => readCatalog(instance))
      // Awaited by diffSizes once the pages are compared; a failure before then is not unhandled.
      catalogAfter.catch(() => undefined)
      onProgress({type: 'step', message: `Comparing the pages of ${beforeRef} and ${afterRef}`})
      try {
        const size = await diffSizes(storageBefore.snapshotPath(before.volume), storageAfter.snapshotPath(after.volume), {
          extents: false,
          catalogAfter: () => catalogAfter,
          catalogBefore: async () => readCatalog(await startInstance('before')),
        })
        return {mode: 'size', ...sides, ...size, seconds: seconds(started)}
      } finally {
        // The instance is removed only once its start has ended, one way or the other.
        await catalogAfter.catch(() => undefined)
      }
    }

    const [left, right] = await startInstances()
    const [catalogBefore, catalogAfter] = await Promise.all([readCatalog(left), readCatalog(right)])
    if (request.mode === 'schema') {
      onProgress({type: 'step', message: 'Comparing the schemas (pg_dump --schema-only)'})
      const objects = await diffSchemas(left, right, {before: catalogBefore.databases, after: catalogAfter.databases})
      return {mode: 'schema', ...sides, objects, seconds: seconds(started)}
    }

    onProgress({type: 'step', message: 'Comparing rows'})
    const result = await diffData(left, right, catalogBefore, catalogAfter, request)
    return {mode: 'data', ...sides, ...result, seconds: seconds(started)}
  })
}

/**
 * `--format sql`: the statements that turn SNAP1's data into SNAP2's, every row (no limit),
 * streamed to `write` as they are found.
 */
export async function diffSnapshotsAsSql(zenith: Zenith, beforeRef: string, afterRef: string, request: Omit<DiffRequest, 'mode'>, write: (statement: string) => void): Promise<{statements: number}> {
  return withDiffSides(zenith, beforeRef, afterRef, request, async ({startInstances}) => {
    const [left, right] = await startInstances()
    const [catalogBefore, catalogAfter] = await Promise.all([readCatalog(left), readCatalog(right)])
    assertTablesFound(request.tables, commonDatabases(catalogBefore, catalogAfter))
    let statements = 0
    for (const database of commonDatabases(catalogBefore, catalogAfter)) {
      const tables = tablesIn(request.tables, database)
      if (tables?.length === 0) continue
      if (database !== DEFAULT_DATABASE) write(`\\connect ${database}`)
      for await (const statement of rowDiffStatements({...left.connection, dbname: database}, {...right.connection, dbname: database}, {tables})) {
        write(statement)
        statements++
      }
    }

    return {statements}
  })
}

interface DiffSides {
  before: SnapshotRecord
  after: SnapshotRecord
  /** Starts a temporary read-only postgres on each side, in parallel. */
  startInstances(): Promise<[StartedTempInstance, StartedTempInstance]>
  /** Starts the one of a side only. */
  startInstance(side: 'before' | 'after'): Promise<StartedTempInstance>
}

/**
 * Resolves both sides (snapshotting a live pg), runs `work`, and removes every temporary
 * instance and snapshot it made, also on failure and on abort: an abort stops the instances at
 * once, which fails the queries in flight, and the removal follows.
 */
async function withDiffSides<T>(zenith: Zenith, beforeRef: string, afterRef: string, request: Omit<DiffRequest, 'mode'>, work: (sides: DiffSides) => Promise<T>): Promise<T> {
  const onProgress = request.onProgress ?? silent
  const temporary: string[] = []
  const instances: StartedTempInstance[] = []
  const stopAll = () => {
    // The removal in finally reports what fails; stopping early only makes the queries end.
    for (const instance of instances) instance.stop().catch(() => undefined)
  }

  return interruptible(async (signal) => {
    signal.addEventListener('abort', stopAll)
    try {
      const before = await diffSide(zenith, beforeRef, temporary, onProgress)
      const after = await diffSide(zenith, afterRef, temporary, onProgress)
      throwIfAborted(signal)
      // Ports are chosen before postgres binds them: each start reserves its port here first,
      // so that two starts at once never pick the same one.
      const reserved: number[] = []
      let allocating: Promise<unknown> = Promise.resolve()
      const reservePort = async (): Promise<number> => {
        const data = await zenith.store.read()
        const port = await allocatePort([...Object.values(data.pgs).map((pg) => pg.port), ...reserved])
        reserved.push(port)
        return port
      }

      const startInstance = async (side: 'before' | 'after'): Promise<StartedTempInstance> => {
        const next = allocating.then(reservePort)
        allocating = next.catch(() => undefined)
        const port = await next
        const instance = await startTempInstance(zenith, side === 'before' ? before : after, {readOnly: true, port})
        instances.push(instance)
        throwIfAborted(signal)
        return instance
      }

      const startInstances = async (): Promise<[StartedTempInstance, StartedTempInstance]> => {
        onProgress({type: 'step', message: `Starting temporary postgres on ${beforeRef} and ${afterRef}`})
        const started = await Promise.allSettled([startInstance('before'), startInstance('after')])
        const failed = started.find((result) => result.status === 'rejected')
        if (failed) throw failed.reason
        return [(started[0] as PromiseFulfilledResult<StartedTempInstance>).value, (started[1] as PromiseFulfilledResult<StartedTempInstance>).value]
      }

      return await work({before, after, startInstance, startInstances})
    } finally {
      signal.removeEventListener('abort', stopAll)
      await cleanUp(zenith, instances, temporary)
    }
  }, request.signal)
}

async function diffData(left: StartedTempInstance, right: StartedTempInstance, catalogBefore: Catalog, catalogAfter: Catalog, request: DiffRequest): Promise<RowDiffResult & {databases: {added: string[]; removed: string[]}}> {
  const common = commonDatabases(catalogBefore, catalogAfter)
  assertTablesFound(request.tables, common)

  const merged: RowDiffResult = {tables: [], tablesCompared: 0, rowsCompared: 0, peakRowsHeld: 0}
  for (const database of common) {
    const tables = tablesIn(request.tables, database)
    if (tables?.length === 0) continue
    const options: RowDiffOptions = {tables, limit: request.limit ?? 20}
    const result = await diffRows({...left.connection, dbname: database}, {...right.connection, dbname: database}, options)
    const prefix = database === DEFAULT_DATABASE ? '' : `${database}:`
    merged.tables.push(...result.tables.map((table) => ({...table, name: `${prefix}${table.name}`})))
    merged.tablesCompared += result.tablesCompared
    merged.rowsCompared += result.rowsCompared
    merged.peakRowsHeld = Math.max(merged.peakRowsHeld, result.peakRowsHeld)
  }

  return {
    ...merged,
    databases: {
      added: catalogAfter.databases.filter((name) => !catalogBefore.databases.includes(name)),
      removed: catalogBefore.databases.filter((name) => !catalogAfter.databases.includes(name)),
    },
  }
}

/** --table names in a database that is not on both sides (the engine checks the tables themselves). */
function assertTablesFound(tables: string[] | undefined, common: string[]): void {
  const unknown = (tables ?? []).filter((table) => !common.includes(databaseOf(table)))
  if (unknown.length > 0) {
    throw new ZenithError('TABLE_NOT_FOUND', `No database of ${unknown.join(', ')} is in both snapshots.`, `Databases in both: ${common.join(', ')}; write db:schema.table for a table outside ${DEFAULT_DATABASE}.`)
  }
}

function commonDatabases(before: Catalog, after: Catalog): string[] {
  return before.databases.filter((name) => after.databases.includes(name))
}

function databaseOf(table: string): string {
  const colon = table.indexOf(':')
  return colon === -1 ? DEFAULT_DATABASE : table.slice(0, colon)
}

/** The --table names that belong to `database`, without their `db:` part; undefined: every table. */
function tablesIn(tables: string[] | undefined, database: string): string[] | undefined {
  if (!tables || tables.length === 0) return undefined
  return tables.filter((table) => databaseOf(table) === database).map((table) => (table.includes(':') ? table.slice(table.indexOf(':') + 1) : table))
}

/**
 * The snapshot a side names. `PG@CURRENT` is the live data directory: a temporary snapshot of it
 * (tagged with this process' pid, so that a kill leaves it to the next command's repair).
 */
async function diffSide(zenith: Zenith, ref: string, temporary: string[], onProgress: OnProgress): Promise<SnapshotRecord> {
  if (isUrl(ref)) {
    throw new ZenithError('SNAPSHOT_REMOTE', `${ref} is on a remote storage; a diff reads two local snapshots.`, `Pull it first: zenith snapshot pull ${ref}, then diff the pulled snapshot.`)
  }

  const parsed = parseSnapshotRef(ref)
  if (parsed.kind === 'current') {
    const name = `${parsed.pg}@${temporaryDiffTag()}`
    onProgress({type: 'step', message: `Snapshotting ${ref}`})
    temporary.push(name)
    await createSnapshot(zenith, name)
    return resolveSnapshot(await zenith.store.read(), name)
  }

  try {
    return resolveSnapshot(await zenith.store.read(), ref)
  } catch (error) {
    if (isZenithError(error) && error.code === 'SNAPSHOT_NOT_FOUND') {
      throw new ZenithError('SNAPSHOT_NOT_FOUND', error.message, `${error.hint ?? ''} A snapshot on a remote storage must be pulled first (zenith snapshot pull).`.trim())
    }

    throw error
  }
}

/**
 * Relation file nodes mean something only within one cluster: two snapshots of different
 * clusters (two initdbs) are not compared page by page. pg_control begins with the cluster's
 * system identifier, which every copy, clone and checkout keeps.
 */
async function assertSameCluster(beforeRef: string, before: string, afterRef: string, after: string): Promise<void> {
  const [a, b] = await Promise.all([systemIdentifier(before), systemIdentifier(after)])
  if (a !== b) {
    throw new ZenithError('DIFF_UNRELATED', `${beforeRef} and ${afterRef} are snapshots of different clusters (system identifiers ${a} and ${b}): their files cannot be compared page by page.`,
      'Compare what they hold instead: zenith snapshot diff --schema, or --data.')
  }
}

async function systemIdentifier(dataDir: string): Promise<string> {
  const handle = await open(path.join(dataDir, 'global', 'pg_control'), 'r')
  try {
    const buffer = Buffer.alloc(8)
    await handle.read(buffer, 0, 8, 0)
    return buffer.readBigUInt64LE(0).toString()
  } finally {
    await handle.close()
  }
}

async function cleanUp(zenith: Zenith, instances: StartedTempInstance[], temporary: string[]): Promise<void> {
  const failures: unknown[] = []
  await Promise.all(instances.map((instance) => instance.remove().catch((error: unknown) => failures.push(error))))
  for (const name of temporary) {
    await destroySnapshot(zenith, name, {force: true}).catch((error: unknown) => {
      // Never made (the snapshot itself failed): nothing to remove.
      if (!(isZenithError(error) && error.code === 'SNAPSHOT_NOT_FOUND')) failures.push(error)
    })
  }

  if (failures.length > 0) throw failures[0]
}

/**
 * Files of a temporary instance that say how it ran, not what it holds: its settings (port),
 * pid and options files, statistics written at shutdown, the renamed backup label, and the
 * relation cache files that each start writes anew.
 */
function isRuntimeFile(file: string): boolean {
  return ['zenith.conf', 'postmaster.pid', 'postmaster.opts', 'backup_label.old', 'tablespace_map.old'].includes(file) ||
    /^pg_stat(_tmp)?\//.test(file) || file.endsWith('/pg_internal.init')
}

/** Between steps: interruptible turns this into its INTERRUPTED error. */
function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw new Error('aborted')
}

function seconds(started: number): number {
  return (Date.now() - started) / 1000
}

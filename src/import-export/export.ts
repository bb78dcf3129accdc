import {constants as fsConstants, createWriteStream} from 'node:fs'
import {access, chmod, rename, rm, stat} from 'node:fs/promises'
import path from 'node:path'
import {Transform, type Writable} from 'node:stream'
import {pipeline} from 'node:stream/promises'


import {type Compression, DEFAULT_COMPRESSION} from '../archive/compression.js'
import type {Zenith} from '../context.js'
import {volumeStorage} from '../storage/registry.js'
import {ExternalCommandError, ZenithError, tail} from '../errors.js'
import {runBasebackup} from '../pg/basebackup.js'
import {giveTo} from '../pg/os-user.js'
import {type TempInstance, withTempInstance} from '../pg/temp-instance.js'
import {run, tiedToZenith} from '../process.js'
import {type OnProgress, silent} from '../progress.js'
import {resolveSnapshot} from '../snapshot/snapshots.js'
import type {SnapshotRecord} from '../state/schema.js'
import {interruptible} from './interrupt.js'
import {partialName, recordPartialOutput} from './partial-output.js'

export const EXPORT_FORMATS = ['zenith', 'tar', 'dump', 'sql'] as const
export type ExportFormat = (typeof EXPORT_FORMATS)[number]

export interface ExportOptions {
  /** A snapshot name (`pg@tag` or an imported name). */
  snapshot: string
  /** A file path, or a stream (stdout); default: `<snapshot>.<ext>` in the current folder. */
  output?: string | Writable
  format?: ExportFormat
  /** For `zenith` (default gzip) and `tar` (default none, gzip when the file name ends in .gz). */
  compression?: Compression
  /** Replace an existing output file. */
  force?: boolean
  onProgress?: OnProgress
  signal?: AbortSignal
}

export interface ExportResult {
  snapshot: string
  format: ExportFormat
  /** The file written, or `-` for a stream. */
  output: string
  compression?: Compression
  /** Bytes written to the output. */
  bytes: number
  /** Bytes of the exported data (uncompressed files, or dump output). */
  contentBytes: number
  seconds: number
  /** For dump/sql: the databases included. */
  databases?: string[]
}

const EXTENSIONS: Record<ExportFormat, string> = {zenith: 'zenith', tar: 'tar', dump: 'dump.tar', sql: 'sql'}

export function defaultExportPath(snapshot: string, format: ExportFormat): string {
  return `${snapshot}.${EXTENSIONS[format]}`
}

/**
 * Exports a snapshot through a temporary postgres started on a thin clone of it (so a snapshot
 * of a running server is recovered first, and Postgres itself writes the backup_manifest):
 * `zenith` (the archive), `tar` (a plain basebackup tar that passes pg_verifybackup when
 * extracted), `dump` (a tar of globals.sql and one pg_dump custom-format file per database),
 * `sql` (pg_dumpall: roles, tablespaces and every database as plain SQL).
 * A file output appears only when complete.
 */
export async function exportSnapshot(zenith: Zenith, options: ExportOptions): Promise<ExportResult> {
  const started = Date.now()
  const format = options.format ?? 'zenith'
  if (!(EXPORT_FORMATS as readonly string[]).includes(format)) {
    throw new ZenithError('INVALID_ARGUMENT', `"${format}" is not an export format.`, `Use one of: ${EXPORT_FORMATS.join(', ')}.`)
  }

  const data = await zenith.store.read()
  const snapshot = resolveSnapshot(data, options.snapshot)
  const outputPath = typeof options.output === 'string' || options.output === undefined ? path.resolve(options.output ?? defaultExportPath(snapshot.name, format)) : undefined
  if (outputPath && !options.force && await access(outputPath).then(() => true, () => false)) {
    throw new ZenithError('NAME_TAKEN', `${outputPath} already exists.`, 'Choose another file with -o, or pass --force to replace it.')
  }

  if (outputPath) await checkOutputFolder(outputPath)

  const compression = options.compression ?? (format === 'zenith' ? DEFAULT_COMPRESSION : format === 'tar' && outputPath?.endsWith('.gz') ? 'gzip' : 'none')
  if ((format === 'dump' || format === 'sql') && options.compression && options.compression !== 'none') {
    throw new ZenithError('INVALID_ARGUMENT', `--compression applies to the zenith and tar formats, not ${format}.`, format === 'dump' ? 'pg_dump custom-format files are compressed already.' : 'Pipe the output through gzip: -o - | gzip > dump.sql.gz')
  }

  const context: ExportContext = {zenith, snapshot, compression, onProgress: options.onProgress ?? silent, outputLabel: outputPath ?? 'stdout'}
  const result = await interruptible(async (signal) => {
    context.signal = signal
    return writeOutput(zenith, options.output, outputPath, signal, (out) => {
      if (format === 'sql') return exportSql(context, out)
      return withScratch(zenith, snapshot, async (scratch) => {
        if (format === 'dump') return exportDump(context, scratch, out)
        return exportBasebackup(context, scratch, out, format)
      })
    })
  }, options.signal)
  return {
    snapshot: snapshot.name, format, output: outputPath ?? '-', compression: format === 'zenith' || format === 'tar' ? compression : undefined,
    ...result, seconds: (Date.now() - started) / 1000,
  }
}

interface ExportContext {
  zenith: Zenith
  snapshot: SnapshotRecord
  compression: Compression
  onProgress: OnProgress
  outputLabel: string
  signal?: AbortSignal
}

type Written = {bytes: number; contentBytes: number; databases?: string[]}

async function exportBasebackup(context: ExportContext, scratch: string, out: Writable, format: 'zenith' | 'tar'): Promise<Written> {
  const {snapshot, onProgress, signal} = context
  const copyLabel = `Copying ${snapshot.name}`
  let copied = 0
  onProgress({type: 'step', message: `Starting a temporary postgres on ${snapshot.name}`})
  await withTempInstance(context.zenith, snapshot, (instance) => runBasebackup({
    binaries: instance.binaries, osUser: instance.osUser, connection: instance.connection, dir: scratch, signal, source: `the temporary postgres of ${snapshot.name}`,
    onBytes(done, total) {
      copied = done
      onProgress({type: 'bytes', label: copyLabel, done, total})
    },
  }))
  onProgress({type: 'bytes-end', label: copyLabel, done: copied})

  const {buildManifest, listDataDirectory} = await import('../archive/data-dir.js')
  const {writeArchive} = await import('../archive/write.js')
  const entries = await listDataDirectory(scratch)
  const total = entries.reduce((sum, entry) => sum + entry.size, 0)
  let manifest
  if (format === 'zenith') {
    const label = `Checksumming ${snapshot.name}`
    manifest = await buildManifest(scratch, {
      snapshot: snapshot.name, pgVersion: snapshot.pgVersion, compression: context.compression,
      onBytes: (done) => onProgress({type: 'bytes', label, done, total}),
    })
    onProgress({type: 'bytes-end', label, done: total})
  }

  const label = `Writing ${context.outputLabel}`
  const {bytesWritten} = await writeArchive(scratch, out, {
    manifest, entries, compression: context.compression, signal,
    onBytes: (done) => onProgress({type: 'bytes', label, done, total}),
  })
  onProgress({type: 'bytes-end', label, done: total})
  return {bytes: bytesWritten, contentBytes: total}
}

/** globals.sql plus one `pg_dump -Fc` file per database, packed as a plain tar. */
async function exportDump(context: ExportContext, scratch: string, out: Writable): Promise<Written> {
  const {snapshot, onProgress, signal} = context
  onProgress({type: 'step', message: `Starting a temporary postgres on ${snapshot.name}`})
  const databases = await withTempInstance(context.zenith, snapshot, async (instance) => {
    const names = await listDatabases(instance)
    await runTool(instance, 'pg_dumpall', ['--globals-only', '-f', path.join(scratch, 'globals.sql')], signal)
    for (const database of names) {
      onProgress({type: 'step', message: `Dumping database ${database}`})
      await runTool(instance, 'pg_dump', ['-Fc', '-f', path.join(scratch, `${encodeURIComponent(database)}.dump`), '-d', database], signal)
    }

    return names
  })
  const {listDataDirectory} = await import('../archive/data-dir.js')
  const {writeArchive} = await import('../archive/write.js')
  const entries = await listDataDirectory(scratch)
  const total = entries.reduce((sum, entry) => sum + entry.size, 0)
  const label = `Writing ${context.outputLabel}`
  const {bytesWritten} = await writeArchive(scratch, out, {entries, compression: 'none', signal, onBytes: (done) => onProgress({type: 'bytes', label, done, total})})
  onProgress({type: 'bytes-end', label, done: total})
  return {bytes: bytesWritten, contentBytes: total, databases}
}

/** pg_dumpall streamed straight to the output: roles, tablespaces and every database. */
async function exportSql(context: ExportContext, out: Writable): Promise<Written> {
  const {snapshot, onProgress, signal} = context
  onProgress({type: 'step', message: `Starting a temporary postgres on ${snapshot.name}`})
  return withTempInstance(context.zenith, snapshot, async (instance) => {
    const databases = await listDatabases(instance)
    const args = connectionArgs(instance)
    const [command, fullArgs] = tiedToZenith(instance.binaries.path('pg_dumpall'), args, instance.osUser)
    // execa streams stdout with a kill that escalates; loaded here, as no other command needs it.
    const {execa} = await import('execa')
    const child = execa(command, fullArgs, {reject: false, cwd: '/', stdin: 'ignore', buffer: {stdout: false, stderr: true}, cancelSignal: signal, forceKillAfterDelay: 5000})
    const label = `Writing ${context.outputLabel}`
    let written = 0
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        written += chunk.length
        onProgress({type: 'bytes', label, done: written})
        callback(null, chunk)
      },
    })
    const [, result] = await Promise.all([pipeline(child.stdout!, counter, out, {end: false}), child])
    if (result.exitCode !== 0) throw new ExternalCommandError('pg_dumpall', args, tail(String(result.stderr)), result.exitCode)
    onProgress({type: 'bytes-end', label, done: written})
    return {bytes: written, contentBytes: written, databases}
  })
}

async function listDatabases(instance: TempInstance): Promise<string[]> {
  const args = [...connectionArgs(instance), '-AtX', '-c', 'select datname from pg_database where datallowconn and not datistemplate order by datname']
  const result = await run(instance.binaries.path('psql'), args, {cwd: '/', user: instance.osUser})
  if (result.exitCode !== 0) throw new ExternalCommandError('psql', args, tail(result.stderr), result.exitCode)
  return result.stdout.split('\n').filter(Boolean)
}

async function runTool(instance: TempInstance, tool: 'pg_dump' | 'pg_dumpall', extra: string[], signal?: AbortSignal): Promise<void> {
  const args = [...connectionArgs(instance), ...extra]
  const result = await run(instance.binaries.path(tool), args, {cwd: '/', user: instance.osUser, signal})
  if (result.exitCode !== 0) throw new ExternalCommandError(tool, args, tail(result.stderr), result.exitCode)
}

function connectionArgs(instance: TempInstance): string[] {
  return ['-h', instance.socketDir, '-p', String(instance.port), '-U', instance.user]
}

/**
 * A folder for intermediate files in the snapshot's storage (same disk, so no surprise about
 * space in /tmp), in its scratch area so that the repair reclaims what a killed export left.
 */
async function withScratch<T>(zenith: Zenith, snapshot: SnapshotRecord, work: (dir: string) => Promise<T>): Promise<T> {
  const storage = volumeStorage(await zenith.store.read(), snapshot.storage)
  const dir = await storage.scratchFolder(`export-${snapshot.volume}`)
  const {pgOsUser} = await import('../pg/os-user.js')
  await giveTo(await pgOsUser(zenith), dir)
  await chmod(dir, 0o700)
  try {
    return await work(dir)
  } finally {
    await rm(dir, {recursive: true, force: true})
  }
}

/**
 * The folder of `-o FILE` must exist and be writable, and FILE must not be a folder: checked
 * before any work starts (a temporary postgres, a backup), so a bad path changes nothing.
 */
async function checkOutputFolder(outputPath: string): Promise<void> {
  const folder = path.dirname(outputPath)
  const info = await stat(folder).catch(() => undefined)
  if (!info?.isDirectory()) {
    throw new ZenithError('INVALID_ARGUMENT', `Cannot write ${outputPath}: the folder ${folder} does not exist.`, `Create it first (mkdir -p ${folder}) or choose another file with -o.`)
  }

  if ((await stat(outputPath).catch(() => undefined))?.isDirectory()) {
    throw new ZenithError('INVALID_ARGUMENT', `${outputPath} is a folder.`, `Name a file in it: -o ${path.join(outputPath, 'NAME.zenith')}.`)
  }

  if (!(await access(folder, fsConstants.W_OK).then(() => true, () => false))) {
    throw new ZenithError('PERMISSION_DENIED', `Cannot write ${outputPath}: the folder ${folder} is not writable for this user.`, 'Choose a folder you can write to with -o.')
  }
}

/**
 * A file output is written under a temporary name and renamed when complete; a record names the
 * temporary file so that the next command removes it when this one is killed.
 */
async function writeOutput(zenith: Zenith, output: string | Writable | undefined, outputPath: string | undefined, signal: AbortSignal, write: (out: Writable) => Promise<Written>): Promise<Written> {
  if (!outputPath) return write(output as Writable)
  const partial = partialName(outputPath)
  const forgetPartial = await recordPartialOutput(zenith.home, partial)
  try {
    return await writeThroughPartial(partial, outputPath, signal, write)
  } finally {
    await forgetPartial()
  }
}

async function writeThroughPartial(partial: string, outputPath: string, signal: AbortSignal, write: (out: Writable) => Promise<Written>): Promise<Written> {
  const file = createWriteStream(partial, {mode: 0o600})
  const closed = new Promise<void>((resolve, reject) => {
    file.once('close', resolve)
    file.once('error', reject)
  })
  // A write error (a full disk) also fails `write`, which is awaited first; until the catch
  // below awaits `closed`, its rejection must not count as unhandled and kill the process.
  closed.catch(() => undefined)
  try {
    const result = await write(file)
    if (!file.writableEnded) file.end()
    await closed
    signal.throwIfAborted()
    const info = await stat(partial)
    await rename(partial, outputPath)
    return {...result, bytes: info.size}
  } catch (error) {
    file.destroy()
    await closed.catch(() => undefined)
    await rm(partial, {force: true})
    throw error
  }
}

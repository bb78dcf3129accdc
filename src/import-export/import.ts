import {createReadStream} from 'node:fs'
import {access, chmod, copyFile, readdir, stat} from 'node:fs/promises'
import path from 'node:path'
import {Readable} from 'node:stream'

import type {ArchiveManifest} from '../archive/manifest.js'
import type {Zenith} from '../context.js'
import {ZenithError, tail} from '../errors.js'
import {runBasebackup} from '../pg/basebackup.js'
import {findPgBinaries} from '../pg/binaries.js'
import {clusterStatus, readPgVersion} from '../pg/cluster.js'
import {type OsUser, giveTo, pgOsUser} from '../pg/os-user.js'
import {run} from '../process.js'
import {type OnProgress, silent} from '../progress.js'
import {displayUrl, maskPasswords} from '../secrets.js'
import {prepareDataDir} from '../pg/data-dir.js'
import {addSnapshot} from '../snapshot/records.js'
import {validateName} from '../state/names.js'
import type {SnapshotRecord} from '../state/schema.js'
import {copyTree} from '../storage/folders.js'
import {type BasebackupSource, parseUrl, urlKind} from '../urls.js'
import {interruptible} from './interrupt.js'

export interface ImportOptions {
  /** basebackup://user[:password]@host:port[/?sslmode=...], a path, file://, http(s)://, or `-`. */
  from: string
  /** Snapshot name; default: derived from the source (host, file name, the archive's snapshot). */
  name?: string
  storage?: string
  onProgress?: OnProgress
  /** What `-` reads (default: process.stdin). */
  stdin?: Readable
  signal?: AbortSignal
}

export type ImportKind = 'basebackup' | 'data-directory' | 'archive' | 'tar'

export interface ImportResult {
  snapshot: string
  storage: string
  /** The source, without any password. */
  source: string
  kind: ImportKind
  pgVersion: number
  /** Bytes of the data directory as stored. */
  bytes: number
  seconds: number
  /** How the content was checked before it became visible. */
  verified: 'sha256' | 'pg_verifybackup' | 'none'
}

/** Sources that are not local snapshot names: what `pg create --snapshot` imports first. */
export function isSnapshotUrl(value: string): boolean {
  const kind = urlKind(value)
  return kind === 'basebackup' || kind === 'http' || kind === 'file'
}

/**
 * Imports a snapshot from outside: a running server over the replication protocol, a stopped
 * data directory, a basebackup (directory or tar), a `.zenith` archive from a file, a URL or
 * stdin. The snapshot becomes visible only when complete and verified; on any failure, Ctrl-C
 * or SIGTERM nothing is left (a kill -9 is cleaned up by the next command's recovery).
 */
export async function importSnapshot(zenith: Zenith, options: ImportOptions): Promise<ImportResult> {
  const started = Date.now()
  const onProgress = options.onProgress ?? silent
  if (options.name !== undefined) validateName('snapshot', options.name)
  const base = {zenith, options, onProgress}
  const result = await interruptible(async (signal) => {
    const from = options.from
    if (from === '-') {
      return importStream(base, {stream: options.stdin ?? process.stdin, source: 'stdin', fallbackName: 'imported', signal})
    }

    if (!isSnapshotUrl(from)) return importPath(base, path.resolve(from), signal)
    // A malformed http(s) URL is explained by the download's error.
    if (urlKind(from) === 'http') return importUrl(base, from, signal)
    const url = parseUrl(from)
    if (url?.kind === 'basebackup') return importBasebackup(base, url, signal)
    if (url?.kind === 'file') return importPath(base, url.path, signal)
    throw new ZenithError('INVALID_ARGUMENT', `"${maskPasswords(from)}" is not a file URL zenith can read.`, 'Write file:///absolute/path (no host), or give the path itself.')
  }, options.signal)
  return {...result, seconds: (Date.now() - started) / 1000}
}

interface Context {
  zenith: Zenith
  options: ImportOptions
  onProgress: OnProgress
}

type Imported = Omit<ImportResult, 'seconds'>

async function importBasebackup(context: Context, source: BasebackupSource, signal: AbortSignal): Promise<Imported> {
  const {zenith, options, onProgress} = context
  const binaries = await findPgBinaries(zenith)
  const osUser = await pgOsUser(context.zenith)
  const name = options.name ?? defaultName(source.host)
  const label = `Importing ${name}`
  let copied = 0
  if (source.password !== undefined) {
    // Too late to hide it from this run's `ps`, but not from the next one.
    onProgress({type: 'step', message: 'Warning: a password in the URL is visible to other users of this machine (ps, shell history); set PGPASSWORD or put it in ~/.pgpass instead'})
  }

  onProgress({type: 'step', message: `Taking a base backup of ${source.display} into snapshot ${name}`})
  const record = await addSnapshot(zenith, {
    // pg_basebackup fsyncs every file and folder it wrote before it exits.
    name, storage: options.storage, method: 'import', durable: true,
    async fill(dir) {
      await giveTo(osUser, dir)
      await chmod(dir, 0o700)
      await runBasebackup({
        binaries, osUser, connection: source.connection, password: source.password, dir, signal, source: source.display,
        onBytes(done, total) {
          copied = done
          onProgress({type: 'bytes', label, done, total})
        },
      })
      await finishDataDir(dir, osUser)
    },
  })
  onProgress({type: 'bytes-end', label, done: copied})
  return describe(record, source.display, 'basebackup', 'none')
}

async function importUrl(context: Context, url: string, signal: AbortSignal): Promise<Imported> {
  const display = displayUrl(url)
  // fetch refuses a URL with credentials (and would quote it, password and all, in its error):
  // send them as HTTP basic authentication, as curl does.
  const {href, headers} = withoutCredentials(url)
  let response: Response
  try {
    response = await fetch(href, {signal, headers})
  } catch (error) {
    if (signal.aborted) throw error
    const cause = (error as {cause?: {message?: string; code?: string}}).cause
    throw new ZenithError('SOURCE_UNREACHABLE', `Cannot download ${display}: ${maskPasswords(cause?.message ?? (error as Error).message)}.`, 'Check the URL and your network connection.')
  }

  if (!response.ok || !response.body) {
    await response.body?.cancel()
    throw new ZenithError('SOURCE_UNREACHABLE', `Cannot download ${display}: HTTP ${response.status} ${response.statusText}.`,
      response.status === 404 ? 'Check the URL: the server has no such file.' : response.status === 401 || response.status === 403 ? 'The server wants credentials; use a URL that grants access (for example a pre-signed URL).' : 'Try again later, or download it and import the file.')
  }

  const length = Number(response.headers.get('content-length'))
  const stream = Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>)
  return importStream(context, {
    stream, source: display, sourceSize: Number.isFinite(length) && length > 0 ? length : undefined,
    fallbackName: nameFromFile(decodeURIComponent(new URL(url).pathname.split('/').findLast(Boolean) ?? '')), signal,
  })
}

/** A URL's user and password as an Authorization header, and the URL without them. */
function withoutCredentials(url: string): {href: string; headers: Record<string, string>} {
  const parsed = new URL(url)
  if (!parsed.username && !parsed.password) return {href: url, headers: {}}
  const basic = Buffer.from(`${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`).toString('base64')
  parsed.username = ''
  parsed.password = ''
  return {href: parsed.href, headers: {authorization: `Basic ${basic}`}}
}

async function importPath(context: Context, source: string, signal: AbortSignal): Promise<Imported> {
  const info = await stat(source).catch(() => undefined)
  if (!info) {
    throw new ZenithError('INVALID_ARGUMENT', `${source} does not exist.`,
      'Give a data directory, a basebackup (directory, base.tar, base.tar.gz), a .zenith file, a URL (basebackup://, https://, file://) or - for stdin.')
  }

  if (info.isDirectory()) {
    if (await exists(path.join(source, 'PG_VERSION'))) return importDataDirectory(context, source, signal)
    for (const tarName of ['base.tar', 'base.tar.gz']) {
      if (await exists(path.join(source, tarName))) return importPath(context, path.join(source, tarName), signal)
    }

    throw new ZenithError('INVALID_ARGUMENT', `${source} is neither a data directory (it has no PG_VERSION) nor a tar-format basebackup (no base.tar).`,
      'Give the data directory itself (the folder with PG_VERSION), or a .zenith / base.tar file.')
  }

  return importStream(context, {
    stream: createReadStream(source, {highWaterMark: 1024 * 1024}), source, sourceSize: info.size,
    fallbackName: nameFromFile(path.basename(source)), signal, tarSiblings: path.dirname(source),
  })
}

/** A stopped data directory or a basebackup directory: copied (sharing blocks where it can). */
async function importDataDirectory(context: Context, source: string, signal: AbortSignal): Promise<Imported> {
  const {zenith, options, onProgress} = context
  const running = await clusterStatus(source)
  if (running.status === 'running') {
    throw new ZenithError('PG_RUNNING', `${source} is the data directory of a running postgres (pid ${running.pid}); a copy of it would not be consistent.`,
      'Import the running server over the replication protocol instead: zenith snapshot import --from basebackup://USER@localhost:PORT/ (or stop it first).')
  }

  const version = await readPgVersion(source)
  await findPgBinaries(zenith, version || undefined)
  const osUser = await pgOsUser(context.zenith)
  const name = options.name ?? defaultName(path.basename(source))
  const isBasebackup = await exists(path.join(source, 'backup_manifest')) && await exists(path.join(source, 'backup_label'))
  onProgress({type: 'step', message: `Copying ${source} into snapshot ${name}`})
  const record = await addSnapshot(zenith, {
    name, storage: options.storage, method: 'import',
    async fill(dir) {
      await copyTree(source, dir, 'auto', true)
      signal.throwIfAborted()
      await finishDataDir(dir, osUser)
      if (isBasebackup) await verifyBackup(zenith, dir, osUser, version)
    },
  })
  onProgress({type: 'bytes-end', label: `Importing ${name}`, done: record.logicalBytes})
  return describe(record, source, 'data-directory', isBasebackup ? 'pg_verifybackup' : 'none')
}

interface StreamSource {
  stream: Readable
  /** For messages. */
  source: string
  sourceSize?: number
  fallbackName: string
  signal: AbortSignal
  /** For a base.tar: the folder that may also hold pg_wal.tar(.gz) and backup_manifest. */
  tarSiblings?: string
}

/**
 * A `.zenith` archive or a plain tar, streamed straight into the storage. The snapshot's name
 * and Postgres version are known from the manifest before a single file is written.
 */
async function importStream(context: Context, input: StreamSource): Promise<Imported> {
  const {zenith, options, onProgress} = context
  const {extractArchive} = await import('../archive/read.js')
  const osUser = await pgOsUser(context.zenith)
  let name = options.name ?? input.fallbackName
  let label = `Importing ${name}`
  let done = 0
  let snapshot: Promise<SnapshotRecord> | undefined
  let kind = 'tar' as 'zenith' | 'tar'
  let verifiedByPostgres = false
  // eslint-disable-next-line prefer-const -- assigned once, read by `fill` after it is assigned
  let extraction: Promise<unknown>
  const chooseTarget = (manifest: ArchiveManifest | undefined) => new Promise<string>((resolve, reject) => {
    if (manifest) kind = 'zenith'
    if (manifest && options.name === undefined) name = defaultName(manifest.snapshot)
    label = `Importing ${name}`
    const check = manifest ? findPgBinaries(zenith, manifest.pgVersion) : Promise.resolve(undefined)
    check.then(() => {
      onProgress({type: 'step', message: `Importing ${input.source} into snapshot ${name}`})
      snapshot = addSnapshot(zenith, {
        name, storage: options.storage, method: 'import',
        async fill(dir) {
          resolve(dir)
          await extraction
          if (kind === 'tar' && input.tarSiblings) await addTarSiblings(input.tarSiblings, dir, input.signal)
          await finishDataDir(dir, osUser)
          const version = await readPgVersion(dir)
          await findPgBinaries(zenith, version)
          if (kind === 'tar' && await exists(path.join(dir, 'backup_manifest'))) {
            await verifyBackup(zenith, dir, osUser, version)
            verifiedByPostgres = true
          }
        },
      })
      snapshot.catch(reject)
    }, reject)
  })

  extraction = extractArchive(input.stream, chooseTarget, {
    sourceSize: input.sourceSize, signal: input.signal,
    onBytes(bytes, total) {
      done = bytes
      onProgress({type: 'bytes', label, done: bytes, total})
    },
  })
  try {
    await extraction
  } catch (error) {
    // `fill` fails with the same error and addSnapshot removes the scratch and the record.
    await snapshot?.catch(() => undefined)
    throw error
  }

  const record = await snapshot!
  onProgress({type: 'bytes-end', label, done})
  return describe(record, input.source, kind === 'zenith' ? 'archive' : 'tar', kind === 'zenith' ? 'sha256' : verifiedByPostgres ? 'pg_verifybackup' : 'none')
}

/** pg_basebackup -Ft writes base.tar, pg_wal.tar and backup_manifest side by side. */
async function addTarSiblings(folder: string, dir: string, signal: AbortSignal): Promise<void> {
  const {extractArchive} = await import('../archive/read.js')
  for (const wal of ['pg_wal.tar', 'pg_wal.tar.gz']) {
    const file = path.join(folder, wal)
    if (await exists(file)) await extractArchive(createReadStream(file), path.join(dir, 'pg_wal'), {signal})
  }

  const manifest = path.join(folder, 'backup_manifest')
  if (!(await exists(path.join(dir, 'backup_manifest'))) && await exists(manifest)) await copyFile(manifest, path.join(dir, 'backup_manifest'))
}

/** Owned by the postgres OS user, 0700, without the pid file of the server it came from. */
async function finishDataDir(dir: string, osUser: OsUser | undefined): Promise<void> {
  if (!(await exists(path.join(dir, 'PG_VERSION')))) {
    throw new ZenithError('ARCHIVE_INVALID', 'The imported files are not a Postgres data directory (there is no PG_VERSION).', 'Import a data directory, a basebackup or a .zenith archive.')
  }

  await prepareDataDir(dir, osUser)
}

/** Postgres' own check of a basebackup against its backup_manifest (checksums of every file, WAL). */
async function verifyBackup(zenith: Zenith, dir: string, osUser: OsUser | undefined, version: number): Promise<void> {
  const binaries = await findPgBinaries(zenith, version || undefined)
  const walFiles = await readdir(path.join(dir, 'pg_wal')).catch(() => [] as string[])
  const args = [...(walFiles.some((file) => /^[0-9A-F]{24}$/.test(file)) ? [] : ['--no-parse-wal']), dir]
  const result = await run(binaries.path('pg_verifybackup'), args, {cwd: '/', user: osUser})
  if (result.exitCode !== 0) {
    throw new ZenithError('CHECKSUM_MISMATCH', `pg_verifybackup found the basebackup damaged:\n${tail(result.stderr)}`,
      'Take the backup again; nothing was imported.')
  }
}

function describe(record: SnapshotRecord, source: string, kind: ImportKind, verified: ImportResult['verified']): Imported {
  return {snapshot: record.name, storage: record.storage, source, kind, pgVersion: record.pgVersion, bytes: record.logicalBytes, verified}
}

/** A valid snapshot name from a host, file or snapshot name: `dev@v1` -> `dev-v1`. */
export function defaultName(raw: string): string {
  const cleaned = raw.replaceAll(/[^A-Za-z0-9_.-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '').replaceAll('..', '.').slice(0, 63).replace(/[-.]+$/, '')
  return validateName('snapshot', cleaned || 'imported')
}

/** `prod.zenith` -> prod, `base.tar.gz` -> base. */
export function nameFromFile(file: string): string {
  return defaultName(file.replace(/(\.zenith|\.tar\.gz|\.tgz|\.tar|\.gz)$/i, '') || 'imported')
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(() => true, () => false)
}

import {chmod, mkdir, open, symlink, utimes} from 'node:fs/promises'
import path from 'node:path'
import {Transform, type Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import {ZenithError} from '../errors.js'
import {ChunkVerifier} from './chunks.js'
import {decompressor, detectCodec, peek} from './compression.js'
import {type ArchiveManifest, type ManifestFile, isSafeRelativePath, parseManifest} from './manifest.js'
import {MANIFEST_ENTRY} from './write.js'

export interface ExtractOptions {
  /** Size of the (compressed) input when known: a file's size, an HTTP Content-Length. */
  sourceSize?: number
  /**
   * Progress: compressed bytes read against `sourceSize` when it is known, else content bytes
   * written against the manifest's total.
   */
  onBytes?: (done: number, total?: number) => void
  /** Refuse a plain tar: only a `.zenith` archive (with a manifest) will do. */
  requireManifest?: boolean
  signal?: AbortSignal
}

/**
 * Where to extract, decided once the first entry is read (so the manifest can name the
 * snapshot, or its Postgres version be checked, before anything is written).
 */
export type ExtractTarget = (manifest: ArchiveManifest | undefined) => Promise<string>

export interface ExtractResult {
  kind: 'zenith' | 'tar'
  manifest?: ArchiveManifest
  /** Content bytes written. */
  bytes: number
}

const WRITE_BUFFER = 1024 * 1024

/**
 * Extracts a `.zenith` archive or a plain (optionally gzip'd) tar into `dir` as it streams in.
 * For an archive every chunk of every file is checked against the manifest, and every file the
 * manifest lists must arrive; the caller makes the result visible only when this resolves.
 */
export async function extractArchive(input: Readable, target: string | ExtractTarget, options: ExtractOptions = {}): Promise<ExtractResult> {
  let dir = typeof target === 'string' ? target : ''
  const tar = await import('tar-stream')
  const {head, stream: source} = await peek(input).catch((error: unknown) => {
    throw readFailure(error)
  })
  if (head.length === 0) throw new ZenithError('ARCHIVE_INVALID', 'The input is empty, not an archive.', 'Give a .zenith archive, a base.tar or base.tar.gz, or a data directory.')

  let read = 0
  let written = 0
  let manifest: ArchiveManifest | undefined
  const report = () => {
    if (options.sourceSize) options.onBytes?.(read, options.sourceSize)
    else options.onBytes?.(written, manifest?.totalBytes)
  }

  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      read += chunk.length
      callback(null, chunk)
    },
  })
  const extract = tar.extract()
  const codec = detectCodec(head)
  const feeding = pipeline(source, counter, decompressor(codec), extract, {signal: options.signal})
  // Its failure is also seen by the loop below (the extract stream is destroyed with it).
  feeding.catch(() => undefined)

  const expected = new Map<string, ManifestFile>()
  const seen = new Set<string>()
  const symlinks: string[] = []
  let kind: ExtractResult['kind'] | undefined
  try {
    for await (const entry of extract) {
      const name = normalizeName(entry.header.name)
      if (kind === undefined) {
        kind = name === MANIFEST_ENTRY ? 'zenith' : 'tar'
        if (kind === 'tar' && options.requireManifest) {
          throw new ZenithError('ARCHIVE_INVALID', `The archive does not start with ${MANIFEST_ENTRY}: it is a plain tar, not a .zenith archive.`, 'Import it from a file path instead, or export a .zenith archive with `zenith snapshot export`.')
        }

        if (kind === 'zenith') {
          manifest = parseManifest(Buffer.concat(await collect(entry)).toString('utf8'))
          for (const file of manifest.files) expected.set(file.path, file)
        }

        if (typeof target !== 'string') dir = await target(manifest)
        await mkdir(dir, {recursive: true, mode: 0o700})
        if (kind === 'zenith') continue
      }

      if (name === '' && entry.header.type === 'directory') {
        entry.resume()
        continue
      }

      if (!isSafeRelativePath(name) || symlinks.some((link) => name.startsWith(`${link}/`))) {
        throw new ZenithError('ARCHIVE_INVALID', `The archive has an unsafe path: ${entry.header.name}.`, 'Only import archives from sources you trust; this one tries to write outside its folder.')
      }

      const type = entry.header.type === 'directory' ? 'dir' : entry.header.type === 'symlink' ? 'symlink' : entry.header.type === 'file' ? 'file' : undefined
      if (!type) throw new ZenithError('ARCHIVE_INVALID', `The archive has an entry of type ${String(entry.header.type)} (${name}), which a data directory never has.`, 'Export the data directory again with `zenith snapshot export` or pg_basebackup.')
      const listed = expected.get(name)
      if (kind === 'zenith' && (!listed || listed.type !== type || seen.has(name))) {
        throw new ZenithError('ARCHIVE_INVALID', `The archive holds ${name}, which its manifest does not list${listed ? ' like this' : ''}.`, 'The file is damaged or was altered; export or download it again.')
      }

      seen.add(name)
      const file = path.join(dir, name)
      const mode = (listed?.mode ?? entry.header.mode ?? 0o600) & 0o7777
      await mkdir(path.dirname(file), {recursive: true, mode: 0o700})
      if (type === 'dir') {
        await mkdir(file, {recursive: true, mode: 0o700})
        await chmod(file, mode | 0o700)
        entry.resume()
      } else if (type === 'symlink') {
        await symlink(entry.header.linkname ?? '', file)
        symlinks.push(name)
        entry.resume()
      } else {
        const verifier = listed ? new ChunkVerifier(listed.chunks, manifest!.chunkSize) : undefined
        const handle = await open(file, 'wx', mode | 0o600)
        try {
          let pending: Buffer[] = []
          let pendingBytes = 0
          const flush = async () => {
            if (pendingBytes === 0) return
            const data = pending.length === 1 ? pending[0] : Buffer.concat(pending)
            pending = []
            pendingBytes = 0
            const bad = verifier?.update(data)
            if (bad !== undefined) throw checksumMismatch(name, bad)
            await handle.write(data)
            written += data.length
            report()
          }

          for await (const chunk of entry) {
            pending.push(chunk as Buffer)
            pendingBytes += (chunk as Buffer).length
            if (pendingBytes >= WRITE_BUFFER) await flush()
          }

          await flush()
          const bad = verifier?.finish()
          if (bad !== undefined) throw checksumMismatch(name, bad)
        } finally {
          await handle.close()
        }
      }

      const mtime = listed?.mtime ?? (entry.header.mtime ? entry.header.mtime.getTime() / 1000 : undefined)
      if (mtime !== undefined && type !== 'symlink') await utimes(file, mtime, mtime)
    }

    await feeding
  } catch (error) {
    input.destroy()
    if (error instanceof ZenithError) throw error
    // The loop sees a destroyed entry stream; the cause (zlib, tar-stream) is the pipeline's error.
    extract.destroy()
    const cause = await feeding.then(() => undefined, (error_: unknown) => error_)
    // Once a compressed stream has yielded a valid manifest it is a zenith archive: what breaks
    // after that is damage to its bytes, not a wrong kind of input.
    throw readFailure(cause && (error as {code?: string}).code === 'STREAM_DESTROYED' ? cause : error, kind === 'zenith' && codec !== 'none')
  }

  if (kind === undefined) throw new ZenithError('ARCHIVE_INVALID', 'The archive holds no files.', 'Give a .zenith archive, a base.tar or base.tar.gz, or a data directory.')
  if (kind === 'zenith') {
    const missing = [...expected.keys()].filter((name) => !seen.has(name))
    if (missing.length > 0) {
      throw new ZenithError('ARCHIVE_INVALID', `The archive is truncated: ${missing.length} of ${expected.size} entries are missing (first: ${missing[0]}).`,
        'The transfer stopped early; export or download it again.')
    }
  }

  return {kind, manifest, bytes: written}
}

function checksumMismatch(name: string, chunk: number): ZenithError {
  return new ZenithError('CHECKSUM_MISMATCH', `Chunk ${chunk} of ${name} does not match its sha256 in the archive manifest.`,
    'The archive is corrupted (a bad disk, a broken transfer); export or download it again. Nothing was imported.')
}

/**
 * Turns what zlib and tar-stream throw into one clear archive error; zenith errors pass through.
 * A gzip stream (recognised by its magic number) that fails to inflate, or a damaged archive
 * (`damaged`: a compressed .zenith whose manifest was read), is CHECKSUM_MISMATCH like a chunk
 * whose sha256 differs: the bytes were altered. Truncation and other input are ARCHIVE_INVALID.
 */
function readFailure(error: unknown, damaged = false): unknown {
  if (error instanceof ZenithError) return error
  const err = error as NodeJS.ErrnoException
  if (err?.name === 'AbortError' || err?.code === 'ABORT_ERR') return new ZenithError('INTERRUPTED', 'The import was interrupted; nothing was kept.', 'Run it again.')
  const message = err?.message ?? String(error)
  if (err?.code === 'Z_BUF_ERROR' || /unexpected end/i.test(message)) {
    return new ZenithError('ARCHIVE_INVALID', `The archive is truncated (${message}).`, 'The transfer stopped early; export or download it again. Nothing was imported.')
  }

  const streamBroken = typeof err?.code === 'string' && (err.code.startsWith('ERR__') || err.code.startsWith('Z_')) || /tar header|invalid/i.test(message)
  if (err?.code === 'Z_DATA_ERROR' || (damaged && streamBroken)) {
    return new ZenithError('CHECKSUM_MISMATCH', `The archive's compressed stream is damaged (${message}).`, 'The archive is corrupted (a bad disk, a broken transfer); export or download it again. Nothing was imported.')
  }

  if (typeof err?.code === 'string' && err.code.startsWith('ERR__') || err?.code?.startsWith?.('Z_') || /tar header|invalid/i.test(message)) {
    return new ZenithError('ARCHIVE_INVALID', `The input is not a readable archive (${message}).`, 'Give a .zenith archive, a base.tar or base.tar.gz, or a data directory; if it is one, it is damaged.')
  }

  return error
}

function normalizeName(name: string): string {
  let result = name
  while (result.startsWith('./')) result = result.slice(2)
  if (result === '.') return ''
  return result.replace(/\/+$/, '')
}

async function collect(stream: AsyncIterable<unknown>): Promise<Buffer[]> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of stream) {
    chunks.push(chunk as Buffer)
    size += (chunk as Buffer).length
    if (size > 256 * 1024 * 1024) throw new ZenithError('ARCHIVE_INVALID', 'The archive manifest is implausibly large.', 'The file is damaged; export or download it again.')
  }

  return chunks
}

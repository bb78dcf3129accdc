import {ZenithError} from '../errors.js'

/**
 * The manifest of a snapshot in its portable form: first entry of a `.zenith` archive, and the
 * per-snapshot object of a remote storage (whose chunks are stored content-addressed by sha256).
 */
export const ARCHIVE_FORMAT = 'zenith-archive'
export const ARCHIVE_VERSION = 1

export interface ManifestFile {
  /** Path relative to the data directory, with `/` separators. */
  path: string
  type: 'file' | 'dir' | 'symlink'
  mode: number
  size: number
  mtime?: number
  /** For symlinks. */
  target?: string
  /** sha256 (hex) of each `chunkSize` piece of the uncompressed content, in order. */
  chunks: string[]
}

export interface ArchiveManifest {
  format: typeof ARCHIVE_FORMAT
  version: number
  snapshot: string
  pgVersion: number
  systemIdentifier?: string
  startLsn?: string
  endLsn?: string
  timeline?: number
  createdAt: string
  chunkSize: number
  compression: string
  totalBytes: number
  files: ManifestFile[]
}

/**
 * Reads and checks a manifest (the first entry of an archive): anything that is not one, or is
 * of a newer format version, is refused with ARCHIVE_INVALID before any file is written.
 */
export function parseManifest(text: string): ArchiveManifest {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw new ZenithError('ARCHIVE_INVALID', 'The archive manifest is not valid JSON.', 'The file is damaged; export or download it again.')
  }

  const manifest = value as Partial<ArchiveManifest> | null
  if (!manifest || typeof manifest !== 'object' || manifest.format !== ARCHIVE_FORMAT) {
    throw new ZenithError('ARCHIVE_INVALID', 'The file is not a zenith archive (its manifest has no "format": "zenith-archive").', 'Import a file written by `zenith snapshot export`.')
  }

  if (typeof manifest.version !== 'number' || manifest.version > ARCHIVE_VERSION || manifest.version < 1) {
    throw new ZenithError('ARCHIVE_INVALID', `The archive has format version ${String(manifest.version)}; this zenith reads version ${ARCHIVE_VERSION}.`,
      'Upgrade zenith on this machine (npm install -g zenith-pg), or export with the older zenith.')
  }

  const filesOk = Array.isArray(manifest.files) && manifest.files.every((file) =>
    file && typeof file.path === 'string' && ['file', 'dir', 'symlink'].includes(file.type) && typeof file.size === 'number' &&
    typeof file.mode === 'number' && Array.isArray(file.chunks) && isSafeRelativePath(file.path))
  if (!filesOk || typeof manifest.chunkSize !== 'number' || manifest.chunkSize <= 0 || typeof manifest.pgVersion !== 'number') {
    throw new ZenithError('ARCHIVE_INVALID', 'The archive manifest is incomplete or lists unsafe paths.', 'The file is damaged; export or download it again.')
  }

  return manifest as ArchiveManifest
}

/** A path an archive may write: relative, `/`-separated, never climbing out with `..`. */
export function isSafeRelativePath(name: string): boolean {
  if (name === '' || name.startsWith('/') || name.includes('\\') || name.includes('\0')) return false
  return name.split('/').every((part) => part !== '..' && part !== '')
}

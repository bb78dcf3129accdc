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

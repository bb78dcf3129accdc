import type {ArchiveManifest} from '../archive/manifest.js'

/**
 * Where a push writes a snapshot: an object store (s3, dir) or a `zenith snapshot recv` on
 * another host. The push streams chunks the sink lacks, then commits the manifest.
 */
export interface SnapshotSink {
  readonly label: string
  /** What the sink holds already: chunk hashes, and the manifest stored under this name if any. */
  begin(snapshot: string): Promise<{existing: Set<string>; manifest?: ArchiveManifest}>
  /** Stores one compressed chunk under the sha256 of its content. */
  putChunk(hash: string, stored: Buffer): Promise<void>
  /** Makes the snapshot visible at the sink; called after every chunk is stored. */
  commit(manifest: ArchiveManifest, stats: {sentBytes: number}): Promise<void>
  close(): Promise<void>
}

import type {ArchiveManifest} from '../archive/manifest.js'

/**
 * Where a push writes a snapshot: an object store (s3, dir), a `zenith snapshot recv` on
 * another host, or zenith over ssh. The push streams chunks the sink lacks, then commits the
 * manifest. A sink that wants the manifest first (`manifestFirst`, a stream whose receiver
 * writes chunks into place as they come) gets it with `begin`, and the chunks in its order.
 */
export interface SnapshotSink {
  readonly label: string
  readonly manifestFirst?: boolean
  /** Starts connecting while the push prepares (reads the snapshot); `begin` follows. */
  connect?(): void
  /** What the sink holds already: chunk hashes, and the manifest stored under this name if any. */
  begin(snapshot: string, manifest?: ArchiveManifest): Promise<{existing: Set<string>; manifest?: ArchiveManifest}>
  /** Stores one compressed chunk under the sha256 of its content. */
  putChunk(hash: string, stored: Buffer): Promise<void>
  /** Makes the snapshot visible at the sink; called after every chunk is stored. */
  commit(manifest: ArchiveManifest, stats: {sentBytes: number}): Promise<void>
  close(): Promise<void>
}

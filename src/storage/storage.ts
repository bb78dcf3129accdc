import type {CopyMethod, StorageRecord, StorageType} from '../state/schema.js'

/**
 * One interface for every place data lives. Local drivers (local, btrfs, zfs) hold *volumes*
 * (writable data directories of pgs) and *snapshots* (read-only images of a volume); remote
 * drivers (s3, dir) hold only snapshots and WAL, through the archive format.
 *
 * Every operation that creates something is atomic from the caller's view: it either leaves the
 * finished volume/snapshot in place or nothing (partial work goes to a scratch area that
 * `reclaim()` empties).
 */
export interface LocalStorage {
  readonly kind: 'local'
  readonly record: StorageRecord
  readonly name: string
  readonly type: StorageType
  readonly copyMethod: CopyMethod

  volumePath(volume: string): string
  snapshotPath(snapshot: string): string
  /** An empty, writable folder (a subvolume on btrfs) for a new data directory. */
  createVolume(volume: string): Promise<string>
  /**
   * Freezes a volume into a read-only snapshot, sharing blocks where the filesystem can.
   * `prepare` may still change the copy (backup_label, WAL) before it is frozen.
   */
  snapshotVolume(volume: string, snapshot: string, prepare?: (dir: string) => Promise<void>): Promise<void>
  /** A writable volume made from a snapshot: `thin` shares blocks with it, `full` is independent. */
  cloneSnapshot(snapshot: string, volume: string, mode: 'thin' | 'full'): Promise<void>
  /** Replaces a volume's content by a snapshot's (used by checkout). */
  restoreVolume(snapshot: string, volume: string): Promise<void>
  /** Fills a new snapshot from a writer (import/pull): `fill` writes into the folder it is given. */
  createSnapshotFrom(snapshot: string, fill: (dir: string) => Promise<void>): Promise<void>
  removeVolume(volume: string): Promise<void>
  removeSnapshot(snapshot: string): Promise<void>
  renameSnapshot(from: string, to: string): Promise<void>
  /** Bytes the item retains: exclusive bytes where the filesystem can tell, else its logical size. */
  sizeOf(item: {volume?: string; snapshot?: string}): Promise<{bytes: number; exclusive: boolean}>
  usage(): Promise<{usedBytes: number; freeBytes: number; totalBytes: number}>
  /**
   * Removes leftovers of interrupted work (scratch folders of dead processes, after killing any
   * process still writing into them); returns the names of what it removed.
   */
  reclaim(): Promise<string[]>
}

export type Storage = LocalStorage

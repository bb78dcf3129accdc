import type {Readable} from 'node:stream'

import type {StorageRecord, StorageType} from '../state/schema.js'

/**
 * What a storage can do. Domain code branches on these, never on a storage's type or driver,
 * so that a new medium (zfs, LVM, a cloud disk) is a new driver file and a line in the registry.
 */
export interface StorageCapabilities {
  /** Holds data directories of pgs (and snapshots of them as folders): see VolumeStorage. */
  readonly volumes: boolean
  /** A snapshot of a running pg's data directory is crash-consistent by itself (no backup API needed). */
  readonly atomicSnapshot: boolean
  /** A clone of a snapshot shares unchanged blocks with it (`pg create --cow`). */
  readonly thinClone: boolean
  /** Can tell the bytes a snapshot retains exclusively, not only its logical size. */
  readonly exactSize: boolean
  /** Can hold WAL areas (see WalArea). */
  readonly wal: boolean
}

/** A volume or a snapshot of a storage, by its folder name. */
export interface SizedItem {
  volume?: string
  snapshot?: string
  /** Its logical size where already known (a snapshot's record has it). */
  logicalBytes?: number
}

/** One interface for every place data lives; each driver in drivers/ implements it. */
export interface Storage {
  readonly record: StorageRecord
  readonly name: string
  readonly type: StorageType
  /** The driver's name in the registry (`copy`, `reflink`, `btrfs`, `s3`, `dir`): for messages only. */
  readonly driver: string
  readonly capabilities: StorageCapabilities
  /** Where the data lives, for messages: a folder or `s3://bucket/prefix`. */
  readonly location: string
  /**
   * The WAL area named `area` (one per PITR area): segments stored durably, never overwritten with
   * different content. Throws STORAGE_UNSUPPORTED when `capabilities.wal` is false.
   */
  walArea(area: string): WalArea
  /**
   * Removes leftovers of interrupted work (scratch folders of dead processes, after killing any
   * process still writing into them); returns the names of what it removed.
   */
  reclaim(): Promise<string[]>
  /**
   * Whether the storage can be used now, for `zenith doctor`: its folder, filesystem or bucket
   * answers and can be written (a small probe that is removed again), and the room left there.
   * Never throws: what is wrong is a `fail` note with the command that fixes it. Gives up after
   * `timeoutMs` for a storage across the network.
   */
  checkHealth(options: {timeoutMs: number}): Promise<StorageHealth>
}

/** One finding of a health check: `warn` still works (with a drawback), `fail` does not. */
export interface HealthNote {
  status: 'ok' | 'warn' | 'fail'
  detail: string
  /** The command or step that fixes a warn or fail. */
  fix?: string
}

export interface StorageHealth {
  /** The storage answers and can be written; for folders also what its filesystem can do. */
  access: HealthNote
  /** Room left where it writes (a folder's filesystem, a ZFS dataset), when the storage can tell (not a bucket). */
  space?: {freeBytes: number; totalBytes: number}
}

/**
 * A storage with `capabilities.volumes`: it holds *volumes* (writable data directories of pgs)
 * and *snapshots* (read-only images of a volume) as folders.
 *
 * Every operation that creates something is atomic from the caller's view: it either leaves the
 * finished volume/snapshot in place or nothing (partial work goes to a scratch area that
 * `reclaim()` empties).
 */
export interface VolumeStorage extends Storage {
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
  /**
   * Fills a new snapshot from a writer (import/pull): `fill` writes into the folder it is given.
   * `durable`: the writer flushed every file it wrote (pg_basebackup does), so no filesystem-wide
   * sync is needed before the snapshot counts as stored.
   */
  createSnapshotFrom(snapshot: string, fill: (dir: string) => Promise<void>, options?: {durable?: boolean}): Promise<void>
  /**
   * A new, empty folder (0700) in the storage's scratch area for intermediate files of work
   * named `label` (an export's basebackup): on the same disk as the data, and removed by
   * `reclaim()` once this process is dead. The caller removes it when done.
   */
  scratchFolder(label: string): Promise<string>
  removeVolume(volume: string): Promise<void>
  removeSnapshot(snapshot: string): Promise<void>
  renameSnapshot(from: string, to: string): Promise<void>
  /**
   * Bytes the item retains: exclusive bytes where the filesystem can tell, else its logical size
   * (`logicalBytes` when the caller knows it: a snapshot's is recorded, and never changes).
   */
  sizeOf(item: SizedItem): Promise<{bytes: number; exclusive: boolean}>
  /** sizeOf of several items at once, in their order: one walk instead of one per item where the medium walks. */
  sizesOf(items: readonly SizedItem[]): Promise<{bytes: number; exclusive: boolean}[]>
  usage(): Promise<{usedBytes: number; freeBytes: number; totalBytes: number}>
}

/**
 * A flat key/value store of immutable objects: what a storage without volumes (an S3 bucket, a
 * plain folder) offers the remote layer, which keeps snapshots there as manifests plus
 * content-addressed packs (see remote/layout.ts). Keys are relative to the storage's prefix and
 * use `/` separators.
 */
export interface ObjectStore {
  /** Where the objects live, for messages: `s3://bucket/prefix` or a folder path. */
  readonly location: string
  /** Writes an object atomically (readers see the old object or the whole new one) and checks what landed. */
  put(key: string, body: Buffer): Promise<void>
  /** Reads a whole (small) object; undefined when it does not exist. */
  get(key: string): Promise<Buffer | undefined>
  /**
   * Bytes `start` to `end` (inclusive) of an object; undefined when it does not exist. Fewer
   * bytes come back when the object is shorter than asked.
   */
  getRange(key: string, start: number, end: number): Promise<Buffer | undefined>
  /** Streams an object; undefined when it does not exist. */
  getStream(key: string): Promise<Readable | undefined>
  head(key: string): Promise<{size: number} | undefined>
  /** Every object whose key starts with `prefix`, in pages, without loading all of them at once. */
  list(prefix: string): AsyncIterable<{key: string; size: number}>
  /** Removes an object; removing a missing one is not an error. */
  delete(key: string): Promise<void>
  /** Removes objects, as many at once as the medium allows; missing ones are not an error. */
  deleteMany(keys: string[]): Promise<void>
}

/** A storage that keeps snapshots as objects (s3, dir): `capabilities.volumes` is false. */
export interface ObjectStorage extends Storage, ObjectStore {
  readonly location: string
  /** Creates what must exist before the first write (a dir storage's folder); nothing for a bucket. */
  prepare(): Promise<void>
}

export interface WalSegment {
  /** The file name postgres gives it: `000000010000000000000001`, `00000002.history`, `...backup`, `...partial`. */
  name: string
  size: number
}

/**
 * A continuous WAL archive in a storage, written by postgres' archive_command (which retries a
 * failed segment and never recycles an unarchived one). A segment is stored durably before
 * `append` returns, and never replaced by different content.
 */
export interface WalArea {
  /** The local folder that holds the segments (folder-backed areas); undefined in an object store. */
  readonly folder?: string
  /**
   * Stores a segment. Sending the same content again (a retried archive_command) is accepted
   * and reported as `identical`; different content under an existing name fails with
   * WAL_CONFLICT and leaves the stored segment as it was.
   */
  append(name: string, body: Buffer): Promise<'stored' | 'identical'>
  /** Every segment, sorted by name (which is WAL order within a timeline). */
  list(): Promise<WalSegment[]>
  /** A segment's content; WAL_SEGMENT_NOT_FOUND when it is not stored. */
  read(name: string): Promise<Buffer>
  /** Removes the segments whose names sort from `from` to `to`, both included; returns their names. */
  deleteRange(from: string, to: string): Promise<string[]>
  /** Removes these files (segments, history, backup labels); missing ones are not an error. */
  remove(names: string[]): Promise<void>
}

export function hasVolumes(storage: Storage): storage is VolumeStorage {
  return storage.capabilities.volumes
}

export function holdsObjects(storage: Storage): storage is ObjectStorage {
  return !storage.capabilities.volumes && typeof (storage as Partial<ObjectStorage>).put === 'function'
}

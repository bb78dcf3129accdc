/**
 * The metadata store's records. Bump SCHEMA_VERSION and add a migration (migrations.ts) when a
 * shape changes. 2: every storage record names its driver.
 */
export const SCHEMA_VERSION = 2

export type StorageType = 'local' | 'btrfs' | 'zfs' | 's3' | 'dir'
/** How a storage makes a copy of a data directory; detected once when the storage is attached. */
export type CopyMethod = 'btrfs' | 'reflink' | 'copy'

export interface StorageRecord {
  name: string
  type: StorageType
  /** Local folder for local/btrfs/dir storages. */
  path?: string
  /** The user's -c key=value options (never secrets). */
  options: Record<string, string>
  /** How its folder copies data (local/btrfs storages), as `storage list` shows it. */
  copyMethod?: CopyMethod
  createdAt: string
  /** The registry's driver that opens it (storage/registry.ts): copy, reflink, btrfs, s3, dir. */
  driver: string
}

/** `read-only`: a hot standby over a snapshot, never promoted (pg create --read-only). */
export type PgRole = 'primary' | `replica-${number}` | 'read-only'

export interface PgRecord {
  name: string
  storage: string
  /** Folder name of its data directory (a volume) inside the storage. */
  volume: string
  port: number
  role: PgRole
  /** OS user postgres runs as (set when zenith runs as root). */
  osUser?: string
  /** Password of the `postgres` role for TCP connections; the store file is 0600. */
  password: string
  settings: Record<string, string>
  pgVersion: number
  createdAt: string
  /** Number of checkouts so far: the next one saves CURRENT as HEAD{checkouts}. */
  checkouts: number
  /** The snapshot it was created from, if any, and whether it shares blocks with it. */
  origin?: {snapshot: string; cow: boolean}
  /** The snapshot its current data descends from (origin, then the last checkout target). */
  base?: string
  /** Set when the data came from elsewhere: the password is set on the next start. */
  passwordPending?: boolean
  /** `ready` unless a command holds it (see claimPg); `pid` names that command's process. */
  state: 'creating' | 'ready' | 'starting' | 'stopping' | 'restarting' | 'snapshot' | 'checkout' | 'destroying' | 'promoting'
  pid?: number
  /** The journal of a checkout in progress, so a killed one can be finished. */
  checkout?: CheckoutJournal
  /** Set while PITR areas archive its WAL: every start adds archive_mode and zenith's archive_command. */
  archiving?: boolean
  /** Set by a checkout of an archiving pg: its next start promotes onto a new timeline (pg/timeline-fork.ts). */
  timelineFork?: boolean
  /** A streaming replica (`pg start --replica`): the pg it follows and its slot there (pg/replicas.ts). */
  replica?: {primary: string; slot: string}
  /** A snapshot folder of its storage that its volume is a thin clone of (a replica's base): removed with it. */
  baseSnapshotVolume?: string
  /** Set while `pg promote` turns this replica into the primary of this name. */
  promoteTo?: string
  /** Slots of destroyed replicas, dropped when this primary next runs (it was stopped then). */
  staleSlots?: string[]
  /** Set for a clone made through the REST API (`zenith serve`, src/api/clones.ts): what the API keeps about it. */
  clone?: ApiClone
}

/** The REST API's bookkeeping of a clone; its status while work runs is derived from the pg's state. */
export interface ApiClone {
  /** The snapshot it was made from (or last reset to). */
  snapshot: string
  /** A protected clone is never deleted, by a request or by the server's auto-delete. */
  protected: boolean
  /** ISO time after which the server destroys it. */
  deleteAt?: string
  /** The server destroys it after this many minutes without client connections. */
  maxIdleMinutes?: number
  /** Seconds from the request to a clone that accepts connections. */
  cloningTime?: number
  /** Why the last reset failed (status FATAL until the next reset succeeds). */
  failure?: string
  /**
   * The login role the request asked for (`db: {username, password}`): made in the clone, and
   * again after every reset. Only the SCRAM verifier of the password is kept, never the password.
   */
  dbUser?: {username: string; verifier: string}
}

export interface CheckoutJournal {
  target: string
  /** `pg@HEAD{n}`: where the old CURRENT is saved, and its folder. */
  head: string
  headVolume: string
  stage: 'started' | 'saved' | 'restored'
  wasRunning: boolean
}

export type SnapshotMethod = 'fs-snapshot' | 'backup-api' | 'stopped-copy' | 'checkout' | 'import' | 'pitr'

export interface SnapshotRecord {
  /** `pg@tag` for snapshots of a pg, a bare name for imported ones. */
  name: string
  pg?: string
  tag?: string
  storage: string
  /** Folder name of the snapshot inside the storage. */
  volume: string
  /** The snapshot this one was made on top of (a pg's origin), if any. */
  parent?: string
  method: SnapshotMethod
  pgVersion: number
  /** Logical size of the data directory when the snapshot was taken. */
  logicalBytes: number
  createdAt: string
  state: 'creating' | 'ready' | 'destroying'
  pid?: number
  /** The `postgres` role's password inside this data (for snapshots of zenith pgs). */
  password?: string
}

/** A base of a PITR area: a backup (backup API, or a copy of the stopped pg) that WAL is replayed onto. */
export interface PitrBase {
  id: number
  /** `volume`: a snapshot folder of the area's own storage; `remote`: a snapshot pushed to its object storage. */
  kind: 'volume' | 'remote'
  /** The folder name (volume) or the remote snapshot's name. */
  location: string
  timeline: number
  /** Where replay starts (the backup's checkpoint redo point), and from where it is consistent. */
  startLsn: string
  stopLsn: string
  /** The first WAL segment the base needs from the area (gc never drops it while the base is kept). */
  startSegment: string
  /** When it became consistent: the earliest time it can be recovered to. */
  time: string
  /** The next transaction id when it was taken (targets by --xid before it need an older base). */
  nextXid: string
  bytes: number
  pgVersion: number
  /** The `postgres` role's password inside this data. */
  password: string
}

export interface PitrRecord {
  name: string
  pg: string
  storage: string
  ttlSeconds?: number
  sizeLimitBytes?: number
  createdAt: string
  /** `ready` unless a command holds it; `pid` names that command's process. */
  state: 'creating' | 'ready' | 'base' | 'gc' | 'extract' | 'destroying'
  pid?: number
  /** wal_segment_size of the pg (bytes). */
  segmentSize: number
  systemId: string
  bases: PitrBase[]
  nextBaseId: number
  /** A WAL switch zenith made and saw archived: all WAL written before `time` is in the area (up to `lsn`). */
  archivedThrough?: {time: string; lsn: string}
  /** The newest commit time found in the area's last segment (pg_waldump), cached by segment name. */
  tail?: {segment: string; lastCommit?: string}
}

export interface StoreData {
  version: number
  storages: Record<string, StorageRecord>
  pgs: Record<string, PgRecord>
  snapshots: Record<string, SnapshotRecord>
  pitr: Record<string, PitrRecord>
}

export function emptyStore(): StoreData {
  return {version: SCHEMA_VERSION, storages: {}, pgs: {}, snapshots: {}, pitr: {}}
}

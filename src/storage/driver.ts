import type {StorageRecord, StorageType} from '../state/schema.js'
import type {Storage, StorageCapabilities} from './storage.js'

/** One medium: what it can do, and how to open a storage recorded with its name. */
export interface StorageDriver {
  /** The key in the registry and the `driver` of the storage records it opens. */
  readonly name: string
  readonly capabilities: StorageCapabilities
  open(record: StorageRecord): Storage
}

/** What attaching needs from the layers above storage/ (which know the OS user postgres runs as). */
export interface AttachContext {
  /** As root: proves that the OS user postgres runs as can enter a folder that will hold data directories. */
  checkReachable(folder: string): Promise<void>
}

/** A storage record before its driver is known (a `local` folder picks one by probing). */
export type StorageDraft = Omit<StorageRecord, 'driver'>

/** What `storage attach -t TYPE` does for one type. */
export interface StorageKind {
  readonly type: StorageType
  /** Checks the user's -c options and turns them into a draft record; touches nothing. */
  configure(name: string, options: Record<string, string>): StorageDraft
  /** Makes the storage usable and proves it works (folders, probes); returns the record to save. */
  attach(draft: StorageDraft, context: AttachContext): Promise<StorageRecord>
}

import {mkdir} from 'node:fs/promises'

import type {StorageRecord} from '../../state/schema.js'
import {copyTree} from '../folders.js'
import type {HealthNote, StorageCapabilities} from '../storage.js'
import {type FolderDriver, FolderStorage} from './folder.js'

const capabilities: StorageCapabilities = {volumes: true, atomicSnapshot: false, thinClone: false, exactSize: false, wal: true}

/** A folder on a filesystem that cannot share blocks (ext4): every snapshot and clone is a full copy. */
export class CopyStorage extends FolderStorage {
  readonly driver = 'copy'
  readonly capabilities = capabilities

  protected async makeFolder(target: string): Promise<void> {
    await mkdir(target, {mode: 0o700})
  }

  protected async copyInto(source: string, target: string): Promise<void> {
    await copyTree(source, target, 'never')
  }

  protected async filesystemHealth(): Promise<HealthNote> {
    return {status: 'ok', detail: 'writable; plain copies (its filesystem cannot share blocks, so --cow is refused)'}
  }
}

export const copyDriver: FolderDriver = {
  name: 'copy',
  capabilities,
  open: (record: StorageRecord) => new CopyStorage(record),
  // Any folder can be copied into: the fallback.
  probe: async () => true,
}

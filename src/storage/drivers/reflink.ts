import {constants} from 'node:fs'
import {copyFile, mkdir, rm, writeFile} from 'node:fs/promises'
import path from 'node:path'

import type {StorageRecord} from '../../state/schema.js'
import {copyTree} from '../folders.js'
import type {HealthNote, StorageCapabilities} from '../storage.js'
import {type FolderDriver, FolderStorage} from './folder.js'

const capabilities: StorageCapabilities = {volumes: true, atomicSnapshot: false, thinClone: true, exactSize: false, wal: true}

/**
 * A folder on a filesystem with reflinks (XFS reflink=1, btrfs without the tool): copies share
 * blocks until written, but a copy of a running pg is not atomic (the backup API makes it
 * consistent) and the filesystem cannot say what a copy retains.
 */
export class ReflinkStorage extends FolderStorage {
  readonly driver = 'reflink'
  readonly capabilities = capabilities

  protected async makeFolder(target: string): Promise<void> {
    await mkdir(target, {mode: 0o700})
  }

  protected async copyInto(source: string, target: string, mode: 'thin' | 'full'): Promise<void> {
    await copyTree(source, target, mode === 'thin' ? 'always' : 'never')
  }

  protected async filesystemHealth(): Promise<HealthNote> {
    if (await reflinkDriver.probe(this.root)) return {status: 'ok', detail: 'writable; reflink copies (blocks shared)'}
    return {status: 'fail', detail: `writable, but its filesystem no longer shares blocks (reflink), which clones and snapshots here rely on`,
      fix: `Mount the reflink filesystem (XFS with reflink=1) at ${this.root} again`}
  }
}

export const reflinkDriver: FolderDriver = {
  name: 'reflink',
  capabilities,
  open: (record: StorageRecord) => new ReflinkStorage(record),
  async probe(folder) {
    const probe = path.join(folder, `.reflink-probe.${process.pid}`)
    try {
      await writeFile(probe, 'zenith')
      await copyFile(probe, `${probe}.clone`, constants.COPYFILE_FICLONE_FORCE)
      return true
    } catch {
      // ENOTSUP/EXDEV/EINVAL: this filesystem cannot share blocks between files.
      return false
    } finally {
      await rm(probe, {force: true})
      await rm(`${probe}.clone`, {force: true})
    }
  },
}

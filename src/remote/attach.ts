import type {Zenith} from '../context.js'
import {ZenithError} from '../errors.js'
import {validateName} from '../state/names.js'
import {assertDataFilesystem} from '../storage/filesystem.js'
import type {StorageRecord} from '../state/schema.js'
import {probeStore} from './layout.js'
import {dirPath, objectStoreFor, s3Options} from './open.js'
import {DirObjectStore} from './dir-store.js'

export interface AttachRemoteOptions {
  type: 's3' | 'dir'
  name: string
  /** The user's -c key=value options; for s3 never credentials. */
  options: Record<string, string>
}

/**
 * Attaches an s3 bucket/prefix or a plain folder as a storage for snapshots, after proving
 * it works: a probe object is written, read back and deleted, so wrong credentials, a missing
 * bucket or no network fail here and not in the middle of the first push.
 */
export async function attachRemoteStorage(zenith: Zenith, options: AttachRemoteOptions): Promise<StorageRecord> {
  const name = validateName('storage', options.name)
  const existing = (await zenith.store.read()).storages[name]
  if (existing) throw nameTaken(name)

  const record: StorageRecord = {name, type: options.type, options: {}, createdAt: new Date().toISOString()}
  if (options.type === 'dir') {
    record.path = dirPath(options.options)
    await assertDataFilesystem(record.path)
    record.options = {path: record.path}
  } else {
    s3Options(options.options)
    record.options = {...options.options}
  }

  const store = objectStoreFor(record)
  if (store instanceof DirObjectStore) await store.ensureRoot()
  await probeStore(store)
  await zenith.store.update((data) => {
    if (data.storages[name]) throw nameTaken(name)
    data.storages[name] = record
  })
  return record
}

function nameTaken(name: string): ZenithError {
  return new ZenithError('NAME_TAKEN', `A storage named "${name}" already exists.`, 'Choose another name, or detach it first with `zenith storage detach`.')
}

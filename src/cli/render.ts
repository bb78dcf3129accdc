/** Field formats more than one command shows (the writer renders them; see writer.ts). */
import {maskPasswords} from '../secrets.js'
import type {StorageInfo} from '../storages.js'

/**
 * The OPTIONS of a storage: what was attached with -c (the path has its own column), then
 * whether clones share blocks. `copy=copy` said nothing; `cow=no` says a clone is a full copy.
 */
export function storageOptions(storage: Pick<StorageInfo, 'options' | 'copyMethod'>): string {
  const given = Object.entries(storage.options).filter(([key]) => key !== 'path').map(([key, value]) => `${key}=${maskPasswords(value)}`)
  const cow = storage.copyMethod ? [`cow=${storage.copyMethod === 'copy' ? 'no' : storage.copyMethod}`] : []
  return [...given, ...cow].join(',')
}

/** The one way a remote storage that could not be read is shown (storage list/show, pg show). */
export function unreachableLine(error: string): string {
  return `unreachable: ${error}`
}

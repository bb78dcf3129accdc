import type {Zenith} from '../context.js'
import {ZenithError} from '../errors.js'
import {maskPasswords} from '../secrets.js'
import type {StorageRecord} from '../state/schema.js'
import {DirStorage} from '../storage/drivers/dir.js'
import {S3Storage, s3Options} from '../storage/drivers/s3.js'
import {objectStorage, openRecord} from '../storage/registry.js'
import {type ObjectStore, holdsObjects} from '../storage/storage.js'
import {type RecvUrl, type SshTarget, isUrl, parseUrl, urlKind} from '../urls.js'

/** Where a push goes or a pull comes from: an object store (s3, dir), a `zenith snapshot recv`, or zenith on another host over ssh. */
export type RemoteTarget = {kind: 'store'; store: ObjectStore; label: string} | RecvUrl | SshTarget

/** What push, pull and a remote destroy accept: the hint of their errors about the target. */
const REMOTE_HINT = 'Name an s3 or dir storage (see `zenith storage list`; attach one with `zenith storage attach -t s3 -n NAME -c bucket=B` or `-t dir -n NAME -c path=/some/folder`), ' +
  'or give a URL: s3://bucket/prefix, file:///path, ssh://[user@]host[:port][/zenith/home] or zenith://host:port/TOKEN (a `zenith snapshot recv`).'

/**
 * A storage name or a URL (see urls.ts): `s3://bucket/prefix[?endpoint=URL&region=R]`, `file:///path`,
 * `zenith://host:port/TOKEN`, `ssh://[user@]host[:port][/ZENITH_HOME]`. An s3 URL without `endpoint=` uses $ZENITH_S3_ENDPOINT,
 * $AWS_ENDPOINT_URL_S3 or $AWS_ENDPOINT_URL, else AWS itself.
 */
export async function resolveRemote(zenith: Zenith, nameOrUrl: string): Promise<RemoteTarget> {
  if (!isUrl(nameOrUrl)) {
    const data = await zenith.store.read()
    const record = data.storages[nameOrUrl]
    // storageRecord's own hint (attach a local folder) names a storage push and pull refuse.
    if (!record) {
      throw new ZenithError('STORAGE_NOT_FOUND', `There is no storage named "${nameOrUrl}", and it is not a URL.`, REMOTE_HINT)
    }

    const storage = openRecord(record)
    if (!holdsObjects(storage)) {
      throw new ZenithError('STORAGE_UNSUPPORTED', `Storage "${record.name}" is a ${record.type} storage, not a remote one.`, REMOTE_HINT)
    }

    return {kind: 'store', store: storage, label: record.name}
  }

  return parseRemoteUrl(nameOrUrl)
}

export function parseRemoteUrl(text: string): RemoteTarget {
  const kind = urlKind(text)
  // Import sources (basebackup://, http(s)://) are not remotes, whatever mistakes they hold.
  const url = kind === 's3' || kind === 'file' || kind === 'ssh' || kind === 'recv' ? parseUrl(text) : undefined
  switch (url?.kind) {
    case 's3': {
      const store = new S3Storage(s3Options({...url.options, bucket: url.bucket, prefix: url.prefix}))
      return {kind: 'store', store, label: store.location}
    }

    case 'file': {
      return {kind: 'store', store: new DirStorage(url.path), label: url.path}
    }

    case 'ssh':
    case 'recv': {
      return url
    }

    default: {
      throw invalidUrl(text)
    }
  }
}

/** The object store of an attached s3 or dir storage. */
export function objectStoreFor(record: StorageRecord): ObjectStore {
  return objectStorage(record)
}

function invalidUrl(text: string): ZenithError {
  return new ZenithError('INVALID_ARGUMENT', `"${maskPasswords(text)}" is not a storage name or a remote URL zenith knows.`,
    'Use an attached s3/dir storage name, s3://bucket/prefix, file:///path, zenith://host:port/TOKEN or ssh://[user@]host[:port][/zenith/home].')
}

import type {Zenith} from '../context.js'
import {ZenithError} from '../errors.js'
import {maskPasswords} from '../secrets.js'
import type {StorageRecord} from '../state/schema.js'
import {DirStorage} from '../storage/drivers/dir.js'
import {S3Storage, s3Options} from '../storage/drivers/s3.js'
import {objectStorage, openRecord, storageRecord} from '../storage/registry.js'
import {type ObjectStore, holdsObjects} from '../storage/storage.js'

// Parsed by their drivers; exported here too for the callers that parse URLs.
export {dirPath} from '../storage/drivers/dir.js'
export {type S3Options, s3Options} from '../storage/drivers/s3.js'

/** Where a push goes or a pull comes from: an object store (s3, dir), a `zenith snapshot recv`, or zenith on another host over ssh. */
export type RemoteTarget =
  | {kind: 'store'; store: ObjectStore; label: string}
  | {kind: 'recv'; host: string; port: number; token: string; label: string}
  | SshTarget

/**
 * A storage name or a URL: `s3://bucket/prefix[?endpoint=URL&region=R]`, `file:///path`,
 * `zenith://host:port/TOKEN`, `ssh://[user@]host[:port][/ZENITH_HOME]`. An s3 URL without `endpoint=` uses $ZENITH_S3_ENDPOINT,
 * $AWS_ENDPOINT_URL_S3 or $AWS_ENDPOINT_URL, else AWS itself.
 */
export async function resolveRemote(zenith: Zenith, nameOrUrl: string): Promise<RemoteTarget> {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(nameOrUrl)) {
    const record = storageRecord(await zenith.store.read(), nameOrUrl)
    const storage = openRecord(record)
    if (!holdsObjects(storage)) {
      throw new ZenithError('STORAGE_UNSUPPORTED', `Storage "${record.name}" is a ${record.type} storage, not a remote one.`,
        'Push and pull go to s3 or dir storages (`zenith storage attach -t s3|dir`) or to URLs (s3://, file://, zenith://).')
    }

    return {kind: 'store', store: storage, label: record.name}
  }

  return parseRemoteUrl(nameOrUrl)
}

export function parseRemoteUrl(text: string): RemoteTarget {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw invalidUrl(text)
  }

  switch (url.protocol) {
    case 's3:': {
      if (!url.hostname) throw invalidUrl(text)
      const options = Object.fromEntries(url.searchParams.entries())
      const store = new S3Storage(s3Options({...options, bucket: url.hostname, prefix: decodeURIComponent(url.pathname)}))
      return {kind: 'store', store, label: store.location}
    }

    case 'file:': {
      if (url.host) throw invalidUrl(text)
      const folder = decodeURIComponent(url.pathname)
      return {kind: 'store', store: new DirStorage(folder), label: folder}
    }

    case 'ssh:': {
      return parseSshUrl(url, text)
    }

    case 'zenith:': {
      const token = url.pathname.replace(/^\/+/, '')
      const port = Number(url.port)
      if (!url.hostname || !port || !/^[\w-]{16,}$/.test(token)) throw invalidUrl(text)
      return {kind: 'recv', host: url.hostname.replace(/^\[|\]$/g, ''), port, token, label: `zenith://${url.host}/`}
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

/**
 * `ssh://[user@]host[:port][/ZENITH_HOME][?zenith=COMMAND&storage=S]`: another host reached with
 * the system's ssh client (its keys, agent, ~/.ssh/config and known_hosts), where zenith is
 * installed (see transfer/ssh.ts). The path, when given, is that host's ZENITH_HOME;
 * `zenith=` is the command that runs zenith there (default `zenith`, e.g.
 * `zenith=/opt/zenith/bin/run.js`); `storage=` the local storage there that keeps the snapshot.
 */
export interface SshTarget {
  kind: 'ssh'
  user?: string
  host: string
  port?: number
  home?: string
  zenith: string[]
  storage?: string
  label: string
}

export function parseSshUrl(url: URL, text: string): SshTarget {
  const user = decodeURIComponent(url.username)
  const host = url.hostname.replace(/^\[|\]$/g, '')
  // A leading "-" would be read by ssh as an option.
  if (!host || host.startsWith('-') || user.startsWith('-') || url.password) {
    throw new ZenithError('INVALID_ARGUMENT', `"${text}" is not a valid ssh URL.`, 'Use ssh://[user@]host[:port][/remote/zenith/home] (keys, not passwords, go in ~/.ssh).')
  }

  const home = decodeURIComponent(url.pathname)
  const zenith = (url.searchParams.get('zenith') ?? 'zenith').trim().split(/\s+/)
  return {
    kind: 'ssh', user: user || undefined, host, port: url.port ? Number(url.port) : undefined,
    home: home && home !== '/' ? home : undefined, zenith, storage: url.searchParams.get('storage') ?? undefined,
    label: `ssh://${user ? `${user}@` : ''}${url.host}${home && home !== '/' ? home : ''}`,
  }
}

function invalidUrl(text: string): ZenithError {
  return new ZenithError('INVALID_ARGUMENT', `"${maskPasswords(text)}" is not a storage name or a remote URL zenith knows.`,
    'Use an attached s3/dir storage name, s3://bucket/prefix, file:///path, zenith://host:port/TOKEN or ssh://[user@]host[/zenith/home].')
}

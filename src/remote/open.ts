import path from 'node:path'

import type {Zenith} from '../context.js'
import {storageRecord} from '../context.js'
import {ZenithError} from '../errors.js'
import {maskPasswords} from '../secrets.js'
import type {StorageRecord} from '../state/schema.js'
import {type RecvUrl, type SshTarget, isUrl, parseUrl, urlKind} from '../urls.js'
import {DirObjectStore} from './dir-store.js'
import type {ObjectStore} from './object-store.js'
import {S3ObjectStore, type S3Options} from './s3-store.js'

/** Where a push goes or a pull comes from: an object store (s3, dir), a `zenith snapshot recv`, or zenith on another host over ssh. */
export type RemoteTarget = {kind: 'store'; store: ObjectStore; label: string} | RecvUrl | SshTarget

/** What push, pull and a remote destroy accept: the hint of their errors about the target. */
const REMOTE_HINT = 'Name an s3 or dir storage (see `zenith storage list`; attach one with `zenith storage attach -t s3 -n NAME -c bucket=B` or `-t dir -n NAME -c path=/some/folder`), ' +
  'or give a URL: s3://bucket/prefix, file:///path, ssh://[user@]host[:port][/zenith/home] or zenith://host:port/TOKEN (a `zenith snapshot recv`).'

const ENDPOINT_VARIABLES = ['ZENITH_S3_ENDPOINT', 'AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL'] as const

/**
 * A storage name or a URL (see urls.ts): `s3://bucket/prefix[?endpoint=URL&region=R]`, `file:///path`,
 * `zenith://host:port/TOKEN`, `ssh://[user@]host[:port][/ZENITH_HOME]`. An s3 URL without `endpoint=` uses $ZENITH_S3_ENDPOINT,
 * $AWS_ENDPOINT_URL_S3 or $AWS_ENDPOINT_URL, else AWS itself.
 */
export async function resolveRemote(zenith: Zenith, nameOrUrl: string): Promise<RemoteTarget> {
  if (!isUrl(nameOrUrl)) {
    const data = await zenith.store.read()
    // storageRecord's own hint (attach a local folder) names a storage push and pull refuse.
    if (!data.storages[nameOrUrl]) {
      throw new ZenithError('STORAGE_NOT_FOUND', `There is no storage named "${nameOrUrl}", and it is not a URL.`, REMOTE_HINT)
    }

    const record = storageRecord(data, nameOrUrl)
    if (record.type !== 's3' && record.type !== 'dir') {
      throw new ZenithError('STORAGE_UNSUPPORTED', `Storage "${record.name}" is a ${record.type} storage, not a remote one.`, REMOTE_HINT)
    }

    return {kind: 'store', store: objectStoreFor(record), label: record.name}
  }

  return parseRemoteUrl(nameOrUrl)
}

export function parseRemoteUrl(text: string): RemoteTarget {
  const kind = urlKind(text)
  // Import sources (basebackup://, http(s)://) are not remotes, whatever mistakes they hold.
  const url = kind === 's3' || kind === 'file' || kind === 'ssh' || kind === 'recv' ? parseUrl(text) : undefined
  switch (url?.kind) {
    case 's3': {
      const store = new S3ObjectStore(s3Options({...url.options, bucket: url.bucket, prefix: url.prefix}))
      return {kind: 'store', store, label: store.location}
    }

    case 'file': {
      return {kind: 'store', store: new DirObjectStore(url.path), label: url.path}
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
  if (record.type === 'dir') {
    const folder = record.path ?? record.options.path
    if (!folder) throw new Error(`dir storage ${record.name} has no path`)
    return new DirObjectStore(folder)
  }

  if (record.type === 's3') return new S3ObjectStore(s3Options(record.options))
  throw new Error(`storage ${record.name} (${record.type}) is not a remote storage`)
}

/** Completes the user's -c options with defaults; an endpoint implies an S3-compatible server. */
export function s3Options(options: Record<string, string>, env: NodeJS.ProcessEnv = process.env): S3Options {
  const known = new Set(['bucket', 'prefix', 'region', 'endpoint', 'force-path-style', 'checksums'])
  const unknown = Object.keys(options).filter((key) => !known.has(key))
  if (unknown.length > 0) {
    throw new ZenithError('INVALID_ARGUMENT', `Unknown s3 option${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}.`,
      'Known options: bucket, prefix, region, endpoint, force-path-style, checksums (credentials come from the environment, never from -c).')
  }

  const bucket = options.bucket
  if (!bucket || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new ZenithError('INVALID_ARGUMENT', bucket ? `"${bucket}" is not a valid bucket name.` : 'An s3 storage needs a bucket.',
      'Pass -c bucket=NAME (3-63 lowercase letters, digits, dots and hyphens).')
  }

  const endpoint = options.endpoint ?? ENDPOINT_VARIABLES.map((name) => env[name]).find(Boolean)
  if (endpoint && !/^https?:\/\/[^/]+/.test(endpoint)) {
    throw new ZenithError('INVALID_ARGUMENT', `"${endpoint}" is not an http(s) endpoint URL.`, 'Pass -c endpoint=http://host:port (or https://).')
  }

  const checksums = options.checksums ?? (endpoint ? 'when-required' : 'when-supported')
  if (checksums !== 'when-required' && checksums !== 'when-supported') {
    throw new ZenithError('INVALID_ARGUMENT', `checksums must be when-required or when-supported, not "${checksums}".`, 'Use -c checksums=when-required for S3-compatible servers.')
  }

  const pathStyle = options['force-path-style'] ?? (endpoint ? 'true' : 'false')
  if (pathStyle !== 'true' && pathStyle !== 'false') {
    throw new ZenithError('INVALID_ARGUMENT', `force-path-style must be true or false, not "${pathStyle}".`, 'Use -c force-path-style=true for most S3-compatible servers.')
  }

  return {
    bucket,
    prefix: (options.prefix ?? '').replace(/^\/+|\/+$/g, ''),
    region: options.region,
    endpoint,
    forcePathStyle: pathStyle === 'true',
    checksums,
  }
}

export function dirPath(options: Record<string, string>): string {
  const unknown = Object.keys(options).filter((key) => key !== 'path')
  if (unknown.length > 0) throw new ZenithError('INVALID_ARGUMENT', `Unknown dir option${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}.`, 'A dir storage takes only -c path=/some/folder.')
  if (!options.path) throw new ZenithError('INVALID_ARGUMENT', 'A dir storage needs a folder.', 'Pass -c path=/some/folder (e.g. a mounted share).')
  return path.resolve(options.path)
}

function invalidUrl(text: string): ZenithError {
  return new ZenithError('INVALID_ARGUMENT', `"${maskPasswords(text)}" is not a storage name or a remote URL zenith knows.`,
    'Use an attached s3/dir storage name, s3://bucket/prefix, file:///path, zenith://host:port/TOKEN or ssh://[user@]host[:port][/zenith/home].')
}

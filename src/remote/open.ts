import path from 'node:path'

import type {Zenith} from '../context.js'
import {storageRecord} from '../context.js'
import {ZenithError} from '../errors.js'
import {maskPasswords} from '../secrets.js'
import type {StorageRecord} from '../state/schema.js'
import {DirObjectStore} from './dir-store.js'
import type {ObjectStore} from './object-store.js'
import {S3ObjectStore, type S3Options} from './s3-store.js'

/** Where a push goes or a pull comes from: an object store (s3, dir), a `zenith snapshot recv`, or zenith on another host over ssh. */
export type RemoteTarget =
  | {kind: 'store'; store: ObjectStore; label: string}
  | {kind: 'recv'; host: string; port: number; token: string; label: string}
  | SshTarget

const ENDPOINT_VARIABLES = ['ZENITH_S3_ENDPOINT', 'AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL'] as const

/**
 * A storage name or a URL: `s3://bucket/prefix[?endpoint=URL&region=R]`, `file:///path`,
 * `zenith://host:port/TOKEN`, `ssh://[user@]host[:port][/ZENITH_HOME]`. An s3 URL without `endpoint=` uses $ZENITH_S3_ENDPOINT,
 * $AWS_ENDPOINT_URL_S3 or $AWS_ENDPOINT_URL, else AWS itself.
 */
export async function resolveRemote(zenith: Zenith, nameOrUrl: string): Promise<RemoteTarget> {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(nameOrUrl)) {
    const record = storageRecord(await zenith.store.read(), nameOrUrl)
    if (record.type !== 's3' && record.type !== 'dir') {
      throw new ZenithError('STORAGE_UNSUPPORTED', `Storage "${record.name}" is a ${record.type} storage, not a remote one.`,
        'Push and pull go to s3 or dir storages (`zenith storage attach -t s3|dir`) or to URLs (s3://, file://, zenith://).')
    }

    return {kind: 'store', store: objectStoreFor(record), label: record.name}
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
      const store = new S3ObjectStore(s3Options({...options, bucket: url.hostname, prefix: decodeURIComponent(url.pathname)}))
      return {kind: 'store', store, label: store.location}
    }

    case 'file:': {
      if (url.host) throw invalidUrl(text)
      const folder = decodeURIComponent(url.pathname)
      return {kind: 'store', store: new DirObjectStore(folder), label: folder}
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

/**
 * `ssh://[user@]host[:port][/ZENITH_HOME][?zenith=COMMAND&storage=S]`: another host reached with
 * the system's ssh client (its keys, agent, ~/.ssh/config and known_hosts), where zenith is
 * installed (see protocol/ssh.ts). The path, when given, is that host's ZENITH_HOME;
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

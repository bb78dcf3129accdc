import {fileURLToPath} from 'node:url'

import {ZenithError} from './errors.js'
import {maskPasswords} from './secrets.js'

// The URL forms zenith accepts, parsed in one place. Which forms a command takes is its own
// business (a push goes to s3, file, zenith or ssh; an import reads basebackup, http(s) or file):
// each caller keeps the kinds it knows and names the rest in its own words.

/** `s3://bucket/prefix[?endpoint=URL&region=R&...]`: the query holds the -c options of an s3 storage. */
export interface S3Url {
  kind: 's3'
  bucket: string
  /** The path, decoded, with its leading `/` (the s3 options strip it). */
  prefix: string
  options: Record<string, string>
}

/** `file:///path`: a folder (a dir storage, or a file to import). */
export interface FileUrl {
  kind: 'file'
  path: string
}

/** `zenith://host:port/TOKEN`: a `zenith snapshot recv` waiting for one push. */
export interface RecvUrl {
  kind: 'recv'
  host: string
  port: number
  token: string
  label: string
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

/** `http://` or `https://`: an archive to download. */
export interface HttpUrl {
  kind: 'http'
  url: string
}

/** `basebackup://user[:password]@host[:port][/][?sslmode=require&...]`: a running server (query keys are libpq settings). */
export interface BasebackupSource {
  kind: 'basebackup'
  connection: Record<string, string>
  password?: string
  host: string
  /** The URL without the password, for messages. */
  display: string
}

export type ZenithUrl = S3Url | FileUrl | RecvUrl | SshTarget | HttpUrl | BasebackupSource
export type UrlKind = ZenithUrl['kind']

/** Whether `text` is written as a URL (`scheme://...`) rather than a name or a path. */
export function isUrl(text: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(text)
}

/** The kind of URL `text` is by its scheme alone (nothing else is checked), if zenith knows it. */
export function urlKind(text: string): UrlKind | undefined {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(text)?.[1].toLowerCase()
  switch (scheme) {
    case 's3': {
      return 's3'
    }

    case 'file': {
      return 'file'
    }

    case 'zenith': {
      return 'recv'
    }

    case 'ssh': {
      return 'ssh'
    }

    case 'http':
    case 'https': {
      return 'http'
    }

    case 'basebackup': {
      return 'basebackup'
    }

    default: {
      return undefined
    }
  }
}

/**
 * Parses a URL of one of the forms above. Returns undefined for a scheme zenith does not know or
 * a URL malformed for its scheme (the caller says what it takes); a form with a mistake of its
 * own (an ssh option, a basebackup setting) throws an INVALID_ARGUMENT that names it.
 */
export function parseUrl(text: string): ZenithUrl | undefined {
  const kind = urlKind(text)
  if (!kind) return undefined
  let url: URL
  try {
    url = new URL(text)
  } catch {
    if (kind === 'basebackup') throw notBasebackup(text)
    return undefined
  }

  switch (kind) {
    case 's3': {
      if (!url.hostname) return undefined
      return {kind, bucket: url.hostname, prefix: decodeURIComponent(url.pathname), options: Object.fromEntries(url.searchParams.entries())}
    }

    case 'file': {
      if (url.host) return undefined
      try {
        return {kind, path: fileURLToPath(url)}
      } catch {
        return undefined
      }
    }

    case 'recv': {
      const token = url.pathname.replace(/^\/+/, '')
      const port = Number(url.port)
      if (!url.hostname || !port || !/^[\w-]{16,}$/.test(token)) return undefined
      return {kind, host: url.hostname.replace(/^\[|\]$/g, ''), port, token, label: `zenith://${url.host}/`}
    }

    case 'ssh': {
      return sshTarget(url, text)
    }

    case 'http': {
      return {kind, url: text}
    }

    case 'basebackup': {
      return basebackupSource(url)
    }
  }
}

function sshTarget(url: URL, text: string): SshTarget {
  const user = decodeURIComponent(url.username)
  const host = url.hostname.replace(/^\[|\]$/g, '')
  // A leading "-" would be read by ssh as an option.
  if (!host || host.startsWith('-') || user.startsWith('-') || url.password) {
    throw new ZenithError('INVALID_ARGUMENT', `"${maskPasswords(text)}" is not a valid ssh URL.`, 'Use ssh://[user@]host[:port][/remote/zenith/home] (keys, not passwords, go in ~/.ssh).')
  }

  const home = decodeURIComponent(url.pathname)
  const zenith = (url.searchParams.get('zenith') ?? 'zenith').trim().split(/\s+/)
  return {
    kind: 'ssh', user: user || undefined, host, port: url.port ? Number(url.port) : undefined,
    home: home && home !== '/' ? home : undefined, zenith, storage: url.searchParams.get('storage') ?? undefined,
    label: `ssh://${user ? `${user}@` : ''}${url.host}${home && home !== '/' ? home : ''}`,
  }
}

function basebackupSource(url: URL): BasebackupSource {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1')
  if (!host) throw new ZenithError('INVALID_ARGUMENT', 'The basebackup:// URL names no host.', 'Write basebackup://USER@HOST[:PORT]/ (the password in PGPASSWORD or ~/.pgpass).')
  const connection: Record<string, string> = {host, port: url.port || '5432', connect_timeout: '10'}
  if (url.username) connection.user = decodeURIComponent(url.username)
  for (const [key, setting] of url.searchParams) {
    if (!/^[a-z_]+$/.test(key) || key === 'password' || key === 'replication' || key === 'dbname') {
      throw new ZenithError('INVALID_ARGUMENT', `"${key}" is not a connection setting zenith passes on.`, 'Use libpq settings such as ?sslmode=require&sslrootcert=/path/ca.pem; give the password in PGPASSWORD or ~/.pgpass.')
    }

    connection[key] = setting
  }

  const password = url.password ? decodeURIComponent(url.password) : undefined
  const display = `basebackup://${url.username ? `${url.username}@` : ''}${url.host}/`
  return {kind: 'basebackup', connection, password, host, display}
}

function notBasebackup(text: string): ZenithError {
  return new ZenithError('INVALID_ARGUMENT', `"${maskPasswords(text)}" is not a basebackup:// URL.`, 'Write basebackup://USER@HOST[:PORT]/, for example basebackup://replication@db.example.com:5432/, with the password in PGPASSWORD or ~/.pgpass.')
}

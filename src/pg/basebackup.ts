import os from 'node:os'

import {ExternalCommandError, ZenithError, tail} from '../errors.js'
import {run} from '../process.js'
import type {PgBinaries} from './binaries.js'
import type {OsUser} from './os-user.js'
import {lookupPgpass} from './pgpass.js'

export interface BasebackupOptions {
  binaries: PgBinaries
  osUser?: OsUser
  /** libpq connection settings (host, port, user, sslmode, ...), without the password. */
  connection: Record<string, string>
  /** From the URL; else PGPASSWORD, else the user's ~/.pgpass (see basebackupPassword). */
  password?: string
  /** An empty folder the OS user can write to. */
  dir: string
  /** Bytes copied so far and the server's estimate of the total (pg_basebackup -P). */
  onBytes?: (done: number, total?: number) => void
  signal?: AbortSignal
  /** What the source is called in messages (the URL without its password). */
  source: string
  /** A physical slot (that exists) to stream the WAL through: a replica's, which it goes on with. */
  slot?: string
}

/**
 * `pg_basebackup -D DIR -X stream -c fast -P`: a consistent copy of a running server with the WAL
 * it needs, written as plain files (tar to stdout cannot stream WAL). The password goes through
 * the environment, never the command line, so `ps` does not show it. It dies with zenith: left
 * running after a kill -9 it would write on into a folder the next command's repair removes.
 */
export async function runBasebackup(options: BasebackupOptions): Promise<void> {
  const password = await basebackupPassword(options.connection, options.password)
  const conninfo = Object.entries(options.connection).map(([key, value]) => `${key}='${value.replaceAll('\\', '\\\\').replaceAll("'", String.raw`\'`)}'`).join(' ')
  const args = ['-D', options.dir, '-X', 'stream', '-c', 'fast', '-P', '--no-password', ...options.slot ? ['-S', options.slot] : [], '-d', conninfo]
  const result = await run(options.binaries.path('pg_basebackup'), args, {
    cwd: '/', user: options.osUser, signal: options.signal, env: password === undefined ? undefined : {PGPASSWORD: password},
    onStderr(text) {
      // -P redraws "12345/67890 kB (18%), 0/1 tablespace" with carriage returns.
      const last = [...text.matchAll(/(\d+)\/(\d+) kB/g)].at(-1)
      if (last) options.onBytes?.(Number(last[1]) * 1024, Number(last[2]) * 1024)
    },
  })
  if (options.signal?.aborted) throw new ZenithError('INTERRUPTED', `The base backup of ${options.source} was interrupted; nothing was kept.`, 'Run it again.')
  if (result.exitCode !== 0) throw explainBasebackupFailure(result.stderr, options.source, options.binaries, args, result.exitCode)
}

/**
 * The password as libpq would find it for the user who runs zenith: the URL's, else PGPASSWORD,
 * else a matching line of PGPASSFILE or ~/.pgpass. Resolved here because pg_basebackup may run
 * as another OS user (see pgpass.ts).
 */
export async function basebackupPassword(connection: Record<string, string>, fromUrl: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  if (fromUrl !== undefined) return fromUrl
  if (env.PGPASSWORD) return env.PGPASSWORD
  const user = connection.user ?? env.PGUSER ?? os.userInfo().username
  return lookupPgpass({host: connection.host, port: connection.port ?? '5432', database: 'replication', user}, env)
}

/** pg_basebackup's messages, sorted by who can fix them: the network, the credentials, the version. */
export function explainBasebackupFailure(stderr: string, source: string, binaries: PgBinaries, args: string[], exitCode?: number): ZenithError {
  const text = stderr.replaceAll('\r', '\n')
  const last = tail(text.split('\n').filter((line) => !/^\s*\d+\/\d+ kB/.test(line)).join('\n'), 6)
  if (/password authentication failed|no password supplied|no pg_hba\.conf entry|role ".*" does not exist|authentication failed/i.test(text)) {
    return new ZenithError('AUTH_FAILED', `${source} refused the credentials: ${last}`,
      'Check the user and the password (set PGPASSWORD, or a `HOST:PORT:replication:USER:PASSWORD` line in ~/.pgpass, mode 0600; a password in the URL is visible in `ps`), and that pg_hba.conf on the server has a `host replication USER ...` line for this machine.')
  }

  if (/must be superuser or replication role|permission denied to start WAL sender|REPLICATION privilege/i.test(text)) {
    return new ZenithError('AUTH_FAILED', `The user in ${source} may not stream a base backup: ${last}`,
      'On the server: ALTER ROLE that_user WITH REPLICATION; (or connect as a superuser).')
  }

  const version = /incompatible server version (\d+)/i.exec(text)
  if (version) {
    const major = Number.parseInt(version[1], 10)
    return new ZenithError('PG_VERSION_MISMATCH', `${source} runs PostgreSQL ${major}; the pg_basebackup here is ${binaries.major}.`,
      `Install PostgreSQL ${major} (Debian/Ubuntu: apt-get install postgresql-${major}; macOS: brew install postgresql@${major}) or point ZENITH_PG_BIN at its bin directory.`)
  }

  if (/could not connect|connection refused|could not translate host name|timeout expired|no route to host|network is unreachable|server closed the connection|Name or service not known/i.test(text)) {
    return new ZenithError('SOURCE_UNREACHABLE', `Cannot reach ${source}: ${last}`,
      'Check the host and port, that postgres listens there (listen_addresses), and that no firewall is in between.')
  }

  if (/max_wal_senders|replication slots|number of requested standby connections/i.test(text)) {
    return new ZenithError('SOURCE_UNREACHABLE', `${source} has no free WAL sender for a base backup: ${last}`,
      'Raise max_wal_senders on the server (it needs 2 for a backup with streamed WAL), or wait for other backups to finish.')
  }

  return new ExternalCommandError('pg_basebackup', args.map((arg, i) => (args[i - 1] === '-d' ? '<connection>' : arg)), last, exitCode)
}

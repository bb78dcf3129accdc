import {readFile, stat} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

/**
 * libpq's password file (`PGPASSFILE`, else `~/.pgpass`), read by zenith itself: when zenith
 * runs as root, pg_basebackup runs as the postgres OS user, whose HOME is not the user's and
 * who may not read the user's 0600 file. The password then goes to pg_basebackup through
 * PGPASSWORD in its environment, never its command line.
 */
export interface PgpassEntry {
  host: string
  port: string
  database: string
  user: string
  password: string
}

/** `host:port:database:user:password` lines; `\:` and `\\` escape; `#` starts a comment line. */
export function parsePgpass(text: string): PgpassEntry[] {
  const entries: PgpassEntry[] = []
  for (const line of text.split(/\r?\n/)) {
    if (line.trim() === '' || line.startsWith('#')) continue
    const fields: string[] = []
    let field = ''
    for (let i = 0; i < line.length; i++) {
      const char = line[i]
      if (char === '\\' && i + 1 < line.length) field += line[++i]
      else if (char === ':' && fields.length < 4) {
        fields.push(field)
        field = ''
      } else field += char
    }

    fields.push(field)
    if (fields.length !== 5) continue
    const [host, port, database, user, password] = fields
    entries.push({host, port, database, user, password})
  }

  return entries
}

/** The password of the first line that matches, as libpq picks it (`*` matches anything). */
export function pgpassPassword(entries: PgpassEntry[], wanted: Omit<PgpassEntry, 'password'>): string | undefined {
  const matches = (pattern: string, value: string) => pattern === '*' || pattern === value
  return entries.find((entry) => matches(entry.host, wanted.host) && matches(entry.port, wanted.port)
    && matches(entry.database, wanted.database) && matches(entry.user, wanted.user))?.password
}

/**
 * The password for a connection from the user's password file, or undefined. Like libpq, a
 * file that others may read is ignored (libpq warns; so does the hint of a refused login).
 */
export async function lookupPgpass(wanted: Omit<PgpassEntry, 'password'>, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const file = env.PGPASSFILE || path.join(os.homedir(), '.pgpass')
  const info = await stat(file).catch(() => undefined)
  if (!info?.isFile() || (info.mode & 0o077) !== 0) return undefined
  return pgpassPassword(parsePgpass(await readFile(file, 'utf8')), wanted)
}

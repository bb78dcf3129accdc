import {access, mkdir, readFile, readdir, realpath, rename, rm, stat, writeFile} from 'node:fs/promises'
import {constants} from 'node:fs'
import path from 'node:path'

import {ZenithError} from '../errors.js'
import {run} from '../process.js'

export interface PgBinaries {
  dir: string
  major: number
  version: string
  path(tool: PgTool): string
}

export type PgTool = 'initdb' | 'pg_ctl' | 'postgres' | 'psql' | 'pg_basebackup' | 'pg_dump' | 'pg_dumpall' | 'pg_restore' |
  'pg_controldata' | 'pg_verifybackup' | 'pg_amcheck' | 'pg_isready' | 'pg_waldump' | 'pg_receivewal' | 'pg_resetwal'

const found = new Map<string, PgBinaries | undefined>()

/**
 * Finds postgres binaries, in this order: ZENITH_PG_BIN, `pg_config --bindir`, the PATH, then the
 * usual install places (Debian /usr/lib/postgresql/N/bin, RHEL /usr/pgsql-N/bin, Homebrew).
 * With `major`, only binaries of that major version will do (a snapshot's PG_VERSION).
 */
export async function findPgBinaries(zenith: {home: string}, major?: number): Promise<PgBinaries> {
  const file = cacheFile(zenith.home)
  const fromCache = await readCache(file, major)
  if (fromCache) return fromCache
  const seen = await listPgBinaries(process.env.ZENITH_PG_BIN)
  await writeCache(file, seen)
  const match = seen.find((binaries) => major === undefined || binaries.major === major)
  if (match) return match

  if (major !== undefined && seen.length > 0) {
    throw new ZenithError('PG_VERSION_MISMATCH',
      `This data needs PostgreSQL ${major}, but only ${[...new Set(seen.map((b) => b.major))].join(', ')} is installed here.`,
      `Install PostgreSQL ${major} (Debian/Ubuntu: apt-get install postgresql-${major}; macOS: brew install postgresql@${major}) or point ZENITH_PG_BIN at its bin directory.`)
  }

  const wanted = major ?? 15
  throw new ZenithError('PG_BINARIES_NOT_FOUND',
    `No PostgreSQL${major === undefined ? '' : ` ${major}`} server binaries (initdb, pg_ctl, postgres) were found.`,
    `Install them (Debian/Ubuntu: apt-get install postgresql-${wanted}; RHEL: dnf install postgresql${wanted}-server; macOS: brew install postgresql@${wanted}) or set ZENITH_PG_BIN to their directory.`)
}

/**
 * Every postgres bin directory the search finds, in its order (the first is what a pg without a
 * major uses), without the cache: what `zenith doctor` lists. `pgBin` stands for ZENITH_PG_BIN
 * (undefined: search as if it were not set).
 */
export async function listPgBinaries(pgBin: string | undefined): Promise<PgBinaries[]> {
  const seen: PgBinaries[] = []
  for (const dir of await candidateDirs(pgBin)) {
    const binaries = await probe(dir)
    if (binaries && !seen.some((other) => other.dir === binaries.dir)) seen.push(binaries)
  }

  return seen
}

/**
 * Probing spawns `pg_config` and `postgres --version` per candidate: ~50 ms on every command.
 * The result is kept in ZENITH_HOME/cache, valid for the same ZENITH_PG_BIN and PATH while
 * each binary keeps its modification time.
 */
interface CacheEntry {
  dir: string
  major: number
  version: string
  mtimeMs: number
}

function cacheFile(home: string): string {
  return path.join(home, 'cache', 'pg-binaries.json')
}

function cacheKey(): string {
  return JSON.stringify([process.env.ZENITH_PG_BIN ?? '', process.env.PATH ?? ''])
}

async function readCache(file: string, major?: number): Promise<PgBinaries | undefined> {
  try {
    const cache = JSON.parse(await readFile(file, 'utf8')) as {key: string; found: CacheEntry[]}
    if (cache.key !== cacheKey()) return undefined
    const entry = cache.found.find((item) => major === undefined || item.major === major)
    if (!entry || (await stat(path.join(entry.dir, 'postgres'))).mtimeMs !== entry.mtimeMs) return undefined
    return {dir: entry.dir, major: entry.major, version: entry.version, path: (tool) => path.join(entry.dir, tool)}
  } catch {
    // No cache yet, or an unreadable one: search afresh.
    return undefined
  }
}

async function writeCache(file: string, found: PgBinaries[]): Promise<void> {
  const entries: CacheEntry[] = []
  for (const binaries of found) {
    const info = await stat(binaries.path('postgres')).catch(() => undefined)
    if (info) entries.push({dir: binaries.dir, major: binaries.major, version: binaries.version, mtimeMs: info.mtimeMs})
  }

  const temporary = `${file}.${process.pid}.tmp`
  try {
    await mkdir(path.dirname(file), {recursive: true, mode: 0o700})
    await writeFile(temporary, JSON.stringify({key: cacheKey(), found: entries}))
    await rename(temporary, file)
  } catch {
    // A cache that cannot be written only costs the next command a search.
    await rm(temporary, {force: true}).catch(() => undefined)
  }
}

async function candidateDirs(pgBin: string | undefined): Promise<string[]> {
  const dirs: string[] = []
  if (pgBin) return [pgBin]
  const pgConfig = await run('pg_config', ['--bindir'])
  if (pgConfig.exitCode === 0) dirs.push(pgConfig.stdout.trim())
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) if (dir) dirs.push(dir)
  dirs.push(...await versionedDirs('/usr/lib/postgresql', (v) => path.join('/usr/lib/postgresql', v, 'bin')))
  dirs.push(...await versionedDirs('/usr', (v) => path.join('/usr', v, 'bin'), /^pgsql-(\d+)$/))
  for (const brew of ['/opt/homebrew/opt', '/usr/local/opt']) {
    dirs.push(...await versionedDirs(brew, (v) => path.join(brew, v, 'bin'), /^postgresql@(\d+)$/))
  }

  return [...new Set(dirs)]
}

/** Subfolders of `parent` whose names carry a major version, newest first. */
async function versionedDirs(parent: string, toDir: (entry: string) => string, pattern = /^(\d+)$/): Promise<string[]> {
  const entries = await readdir(parent).catch(() => [] as string[])
  return entries
    .map((entry) => ({entry, match: pattern.exec(entry)}))
    .filter((item) => item.match)
    .sort((a, b) => Number(b.match![1]) - Number(a.match![1]))
    .map((item) => toDir(item.entry))
}

async function probe(dir: string): Promise<PgBinaries | undefined> {
  if (found.has(dir)) return found.get(dir)
  let result: PgBinaries | undefined
  try {
    for (const tool of ['initdb', 'pg_ctl', 'postgres']) await access(path.join(dir, tool), constants.X_OK)
    // /usr/local/bin/postgres may be a link into the real bin directory, which has every tool.
    const binDir = path.dirname(await realpath(path.join(dir, 'postgres')))
    const {exitCode, stdout} = await run(path.join(binDir, 'postgres'), ['--version'])
    const match = /(\d+)(?:\.(\d+))?/.exec(stdout)
    if (exitCode === 0 && match) {
      result = {dir: binDir, major: Number(match[1]), version: match[0], path: (tool) => path.join(binDir, tool)}
    }
  } catch {
    // Not a postgres bin directory (or a broken one): keep looking.
    result = undefined
  }

  found.set(dir, result)
  return result
}

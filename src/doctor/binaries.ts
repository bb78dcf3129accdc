import {constants} from 'node:fs'
import {access} from 'node:fs/promises'
import path from 'node:path'

import {type PgBinaries, type PgTool, listPgBinaries} from '../pg/binaries.js'
import type {Check} from './check.js'

/** What zenith runs: the server tools (without them a bin folder is not found at all), then the clients imports, exports and `pg psql` use. */
const TOOLS: PgTool[] = ['initdb', 'pg_ctl', 'postgres', 'pg_basebackup', 'psql', 'pg_dump']
const SERVER_TOOLS: PgTool[] = ['initdb', 'pg_ctl', 'postgres']

/**
 * Every postgres bin folder zenith would use, the first being the default (what `pg create`
 * without a snapshot uses), and which of its tools are there; a failing check when none is found.
 * `found` is for the pg checks: the majors their data needs.
 */
export async function binaryChecks(): Promise<{checks: Check[]; found: PgBinaries[]}> {
  const pgBin = process.env.ZENITH_PG_BIN
  const found = await listPgBinaries(pgBin)
  if (found.length === 0) return {checks: [await missingBinaries(pgBin)], found}
  const majors = found.map((binaries) => binaries.major)
  const checks = await Promise.all(found.map(async (binaries, index): Promise<Check> => {
    const missing = (await Promise.all(TOOLS.map(async (tool) => (await isExecutable(binaries.path(tool)) ? undefined : tool)))).filter((tool) => tool !== undefined)
    const present = TOOLS.filter((tool) => !missing.includes(tool))
    const name = majors.indexOf(binaries.major) === majors.lastIndexOf(binaries.major) ? `postgres ${binaries.major}` : `postgres ${binaries.major} (${binaries.dir})`
    const where = `${binaries.version} in ${binaries.dir}${pgBin ? ' (ZENITH_PG_BIN)' : ''}${index === 0 ? ', the default' : ''}`
    if (missing.length === 0) return {name, status: 'ok', detail: `${where}: ${present.join(', ')}`}
    return {name, status: 'warn', detail: `${where}: ${present.join(', ')}; missing ${missing.join(', ')} (imports, exports and pg psql need them)`,
      fix: `Install the client tools of PostgreSQL ${binaries.major} (Debian/Ubuntu: apt-get install postgresql-client-${binaries.major}; RHEL: dnf install postgresql${binaries.major})`}
  }))
  return {checks, found}
}

async function missingBinaries(pgBin: string | undefined): Promise<Check> {
  const install = 'Debian/Ubuntu: apt-get install postgresql-15; RHEL: dnf install postgresql15-server; macOS: brew install postgresql@15'
  if (!pgBin) {
    return {name: 'postgres', status: 'fail', detail: 'no PostgreSQL server binaries (initdb, pg_ctl, postgres) in pg_config --bindir, the PATH or the usual install folders',
      fix: `Install them (${install}), or set ZENITH_PG_BIN to their folder`}
  }

  const missing = (await Promise.all(SERVER_TOOLS.map(async (tool) => (await isExecutable(path.join(pgBin, tool)) ? undefined : tool)))).filter(Boolean)
  // Without ZENITH_PG_BIN the search may find some: the fix can name them.
  const elsewhere = await listPgBinaries(undefined)
  return {name: 'postgres', status: 'fail',
    detail: `ZENITH_PG_BIN=${pgBin} has no PostgreSQL server binaries (missing ${missing.length > 0 ? missing.join(', ') : 'a working postgres --version'})`,
    fix: elsewhere.length > 0
      ? `unset ZENITH_PG_BIN (zenith then finds PostgreSQL ${elsewhere[0].version} in ${elsewhere[0].dir}), or point it at a folder with initdb, pg_ctl and postgres`
      : `Point ZENITH_PG_BIN at a folder with initdb, pg_ctl and postgres, or install them (${install})`}
}

async function isExecutable(file: string): Promise<boolean> {
  return access(file, constants.X_OK).then(() => true, () => false)
}

import type {Zenith} from '../context.js'
import {run} from '../process.js'
import {findPgBinaries} from './binaries.js'
import {pgConnection, pgRecord} from './lifecycle.js'

/** Runs psql on the terminal, connected to a pg; returns psql's exit code. */
export async function runPsql(zenith: Zenith, name: string, args: string[]): Promise<number> {
  const pg = pgRecord(await zenith.store.read(), name)
  const connection = await pgConnection(zenith, name)
  const binaries = await findPgBinaries(zenith, pg.pgVersion).catch(() => findPgBinaries(zenith))
  const result = await run(binaries.path('psql'), args, {
    stdio: 'inherit',
    env: {PGHOST: connection.host, PGPORT: String(connection.port), PGUSER: connection.user, PGPASSWORD: connection.password, PGDATABASE: connection.database},
  })
  return result.exitCode
}

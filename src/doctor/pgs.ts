import {readFile, stat} from 'node:fs/promises'
import path from 'node:path'

import type {PgBinaries} from '../pg/binaries.js'
import {clusterStatus} from '../pg/cluster.js'
import {isPortFree} from '../pg/ports.js'
import {isAlive} from '../state/lock.js'
import type {PgRecord, StoreData} from '../state/schema.js'
import {volumeStorage} from '../storage/registry.js'
import {type Check, settle} from './check.js'

/** Every pg: its data directory is there, its major is installed, and its port is free or held by its own postgres. */
export async function pgChecks(data: StoreData, binaries: Promise<PgBinaries[]>): Promise<Check[]> {
  const pgs = Object.values(data.pgs).sort((a, b) => a.name.localeCompare(b.name))
  return (await Promise.all(pgs.map((pg) => settle(`pg ${pg.name}`, pgCheck(data, pg, binaries))))).flat()
}

async function pgCheck(data: StoreData, pg: PgRecord, binaries: Promise<PgBinaries[]>): Promise<Check> {
  const name = `pg ${pg.name}`
  // A command holds it right now (starting, snapshotting): its port and files are in motion.
  if (pg.state !== 'ready' && pg.pid !== undefined && isAlive(pg.pid)) return {name, status: 'ok', detail: `busy: a zenith command (pid ${pg.pid}) is working on it (${pg.state})`}
  const dataDir = volumeStorage(data, pg.storage).volumePath(pg.volume)
  if (!(await stat(path.join(dataDir, 'PG_VERSION')).then(() => true, () => false))) {
    return {name, status: 'fail', detail: `its data directory ${dataDir} is missing (storage ${pg.storage})`,
      fix: `Restore the folder of storage ${pg.storage} (see its check), or remove the pg: zenith pg destroy ${pg.name}`}
  }

  const installed = await binaries
  if (!installed.some((item) => item.major === pg.pgVersion)) {
    return {name, status: 'fail', detail: `its data needs PostgreSQL ${pg.pgVersion}, ${installed.length > 0 ? `but only ${[...new Set(installed.map((item) => item.major))].join(', ')} is installed` : 'but zenith finds no PostgreSQL binaries (see the postgres check)'}`,
      fix: `Install PostgreSQL ${pg.pgVersion} (Debian/Ubuntu: apt-get install postgresql-${pg.pgVersion}; macOS: brew install postgresql@${pg.pgVersion}) or point ZENITH_PG_BIN at its bin folder`}
  }

  const {status, pid} = await clusterStatus(dataDir)
  if (status === 'running') {
    const listening = await postmasterPort(dataDir)
    if (listening !== pg.port) {
      return {name, status: 'warn', detail: `running (pid ${pid}) on port ${listening ?? '?'}, not on its recorded port ${pg.port}`, fix: `zenith pg restart ${pg.name}`}
    }

    return {name, status: 'ok', detail: `running (pid ${pid}); port ${pg.port} is held by its own postgres`}
  }

  const free = await isPortFree(pg.port)
  const state = status === 'crashed' ? 'crashed (its postmaster is gone)' : 'stopped'
  if (!free) {
    return {name, status: 'fail', detail: `${state}; its port ${pg.port} is held by another process, so it cannot start there`,
      fix: `Find it with \`ss -ltnp 'sport = :${pg.port}'\` and stop it, or move the pg: zenith pg start ${pg.name} --port N`}
  }

  if (status === 'crashed') return {name, status: 'warn', detail: `${state}; port ${pg.port} is free`, fix: `zenith pg start ${pg.name} (it recovers on start; zenith pg logs ${pg.name} says why it died)`}
  return {name, status: 'ok', detail: `${state}; port ${pg.port} is free`}
}

/** The port in postmaster.pid (its fourth line): where the running postmaster listens. */
async function postmasterPort(dataDir: string): Promise<number | undefined> {
  const text = await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8').catch(() => '')
  const port = Number(text.split('\n')[3])
  return Number.isInteger(port) && port > 0 ? port : undefined
}

import {createHash} from 'node:crypto'
import {chmod, mkdir, stat} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {ZenithError} from './errors.js'
import {Store} from './state/store.js'

/** Everything a domain function needs: where zenith keeps its state, and the store itself. */
export interface Zenith {
  home: string
  store: Store
  /** A short folder for postgres' unix sockets (socket paths are limited to ~107 bytes). */
  socketDir: string
  logDir: string
}

// Not pg/os-user's runningAsRoot: the context sits below every folder that uses it.
const asRoot = () => typeof process.getuid === 'function' && process.getuid() === 0

/**
 * ZENITH_HOME, else ~/.zenith; as root /var/lib/zenith, because the OS user postgres runs as
 * must be able to reach the data directories and /root is closed to it.
 */
export function resolveHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.ZENITH_HOME) return path.resolve(env.ZENITH_HOME)
  return asRoot() ? '/var/lib/zenith' : path.join(os.homedir(), '.zenith')
}

/** The context of a ZENITH_HOME (created if missing). openZenith (home.ts) also sets up its default storage. */
export async function createContext(home = resolveHome()): Promise<Zenith> {
  // As root the home must be traversable (not listable) by the postgres OS user.
  const mode = asRoot() ? 0o711 : 0o700
  await mkdir(home, {recursive: true, mode})
  const info = await stat(home)
  if (!info.isDirectory()) throw new ZenithError('INVALID_ARGUMENT', `ZENITH_HOME ${home} is not a directory.`, 'Point ZENITH_HOME at a directory.')
  if (asRoot() && (info.mode & 0o011) !== 0o011) await chmod(home, (info.mode & 0o777) | 0o011)
  return {home, store: new Store(home), socketDir: socketDirOf(home), logDir: path.join(home, 'logs')}
}

/** The short folder for the unix sockets of a home's pgs (see Zenith.socketDir); made by the first start. */
export function socketDirOf(home: string): string {
  const hash = createHash('sha256').update(home).digest('hex').slice(0, 10)
  return path.join(os.tmpdir().length <= 20 ? os.tmpdir() : '/tmp', `zenith-${hash}`)
}

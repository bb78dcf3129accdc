import {chmod, readdir, rm, stat, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {runChecked} from '../process.js'
import {type OsUser, giveTo} from './os-user.js'

/** Files of a copied data directory that belong to the running server, not to the data. */
export async function removeRuntimeFiles(copyDir: string): Promise<void> {
  await rm(path.join(copyDir, 'postmaster.pid'), {force: true})
  await rm(path.join(copyDir, 'postmaster.opts'), {force: true})
}

/** A copied data directory must belong to the OS user postgres runs as, mode 0700, no pid file. */
export async function prepareDataDir(dataDir: string, osUser: OsUser | undefined): Promise<void> {
  await removeRuntimeFiles(dataDir)
  const info = await stat(dataDir)
  if (osUser && (info.uid !== osUser.uid || info.gid !== osUser.gid)) {
    await runChecked('chown', ['-R', `${osUser.uid}:${osUser.gid}`, dataDir])
  }

  await chmod(dataDir, 0o700)
}

/**
 * Turns a filled data directory into a hot standby: standby.signal (which stays over restarts),
 * no recovery.signal. A read-only pg has no upstream and stays at the snapshot's data; a replica
 * also drops the slots copied from its primary (a slot in a standby would hold WAL there for
 * nobody) and is told where to stream from at every start.
 */
export async function makeStandby(dataDir: string, osUser: OsUser | undefined, options: {dropSlots?: boolean} = {}): Promise<void> {
  await rm(path.join(dataDir, 'recovery.signal'), {force: true})
  if (options.dropSlots) {
    const slots = path.join(dataDir, 'pg_replslot')
    for (const entry of await readdir(slots).catch(() => [] as string[])) await rm(path.join(slots, entry), {recursive: true, force: true})
  }

  await writeFile(path.join(dataDir, 'standby.signal'), '', {mode: 0o600})
  await giveTo(osUser, path.join(dataDir, 'standby.signal'))
}

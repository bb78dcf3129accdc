import {chmod, rm, stat} from 'node:fs/promises'
import path from 'node:path'

import {runChecked} from '../process.js'
import type {OsUser} from './os-user.js'

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

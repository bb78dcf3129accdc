import {stat} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {type OsUser, pgOsUser, runningAsRoot} from '../pg/os-user.js'
import {run} from '../process.js'
import {getSetting} from '../settings.js'
import type {StoreData} from '../state/schema.js'
import {findDriver} from '../storage/registry.js'
import type {Check} from './check.js'

/**
 * Who zenith runs as, and who postgres runs as: the same user, or (as root, since postgres
 * refuses root) the `pg-user` OS user, which must exist and be able to enter ZENITH_HOME and the
 * folders of every storage that holds data directories.
 */
export async function userCheck(home: string, data: StoreData | undefined): Promise<Check> {
  if (!runningAsRoot()) {
    const me = os.userInfo()
    return {name: 'user', status: 'ok', detail: `running as ${me.username} (uid ${me.uid}), not root: postgres runs as this user too`}
  }

  const setting = await getSetting(home, 'pg-user')
  const source = setting.source === 'env' ? 'ZENITH_PG_USER' : setting.source === 'set' ? 'the pg-user setting' : 'the default'
  // Throws PERMISSION_DENIED (with the useradd fix) when the user does not exist.
  const user = await pgOsUser({home}) as OsUser
  const folders = [home, ...Object.values(data?.storages ?? {})
    .filter((record) => record.path && findDriver(record.driver)?.capabilities.volumes)
    .map((record) => record.path!)]
  const existing = (await Promise.all(folders.map(async (folder) => (await stat(folder).then(() => true, () => false)) ? folder : undefined))).filter((folder) => folder !== undefined)
  const results = await Promise.all(existing.map(async (folder) => ({folder, exitCode: (await run('runuser', ['-u', user.name, '--', 'test', '-x', folder])).exitCode})))
  if (results.some((result) => result.exitCode === 127)) {
    return {name: 'user', status: 'fail', detail: 'running as root, but runuser (util-linux) is missing: zenith starts postgres through it', fix: 'Install util-linux'}
  }

  const blocked = results.filter((result) => result.exitCode !== 0).map((result) => result.folder)

  const who = `running as root: postgres runs as the OS user ${user.name} (uid ${user.uid}, ${source})`
  if (blocked.length > 0) {
    const closed = [...new Set((await Promise.all(blocked.map((folder) => closedParents(folder, user)))).flat())]
    return {name: 'user', status: 'fail', detail: `${who}, which cannot enter ${blocked.join(', ')}`,
      fix: closed.length > 0 ? `chmod o+x ${closed.join(' ')}` : `Let ${user.name} enter ${blocked.join(', ')} (every parent folder needs o+x)`}
  }

  const storages = existing.filter((folder) => folder !== home).length
  const entered = [...(existing.includes(home) ? ['ZENITH_HOME'] : []), ...(storages > 0 ? [`${storages} storage folder${storages === 1 ? '' : 's'}`] : [])]
  return {name: 'user', status: 'ok', detail: entered.length > 0 ? `${who}, which can enter ${entered.join(' and ')}` : who}
}

/** The folders on the way to `folder` (itself included) that `user` may not traverse: neither its own nor o+x. */
async function closedParents(folder: string, user: OsUser): Promise<string[]> {
  const closed: string[] = []
  let current = path.resolve(folder)
  const chain: string[] = []
  while (current !== path.dirname(current)) {
    chain.unshift(current)
    current = path.dirname(current)
  }

  for (const dir of chain) {
    const info = await stat(dir).catch(() => undefined)
    if (info && info.uid !== user.uid && (info.mode & 0o001) === 0) closed.push(dir)
  }

  return closed
}

import {chown, readFile} from 'node:fs/promises'

import {ZenithError} from '../errors.js'
import {run} from '../process.js'
import {settingValue} from '../settings.js'

export interface OsUser {
  name: string
  uid: number
  gid: number
}

const cache = new Map<string, OsUser>()
/** The configured user name per home: read once, the settings do not change under a command. */
const names = new Map<string, Promise<string>>()

export function runningAsRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0
}

/**
 * The unprivileged user postgres runs as when zenith is root (postgres refuses to run as root):
 * ZENITH_PG_USER, else the `pg-user` setting of the home, else postgres.
 */
export async function pgOsUser(zenith: {home: string}): Promise<OsUser | undefined> {
  if (!runningAsRoot()) return undefined
  if (!names.has(zenith.home)) names.set(zenith.home, settingValue(zenith.home, 'pg-user'))
  const name = await names.get(zenith.home)!
  const cached = cache.get(name)
  if (cached) return cached
  const user = await userFromPasswd(name) ?? await userFromId(name)
  if (!user) {
    throw new ZenithError('PERMISSION_DENIED', `zenith runs as root, and postgres refuses to; the OS user "${name}" to run it as does not exist.`,
      `Create it (useradd --system ${name}) or choose an existing unprivileged user with "zenith config set pg-user NAME" (or ZENITH_PG_USER).`)
  }

  cache.set(name, user)
  return user
}

/** The user's line in /etc/passwd: a file read instead of two `id` processes on every command. */
async function userFromPasswd(name: string): Promise<OsUser | undefined> {
  const text = await readFile('/etc/passwd', 'utf8').catch(() => '')
  const fields = text.split('\n').find((line) => line.startsWith(`${name}:`))?.split(':')
  const [uid, gid] = [Number(fields?.[2]), Number(fields?.[3])]
  return fields && Number.isInteger(uid) && Number.isInteger(gid) ? {name, uid, gid} : undefined
}

/** A user that only NSS knows (LDAP, systemd-homed): `id` asks it. */
async function userFromId(name: string): Promise<OsUser | undefined> {
  const [result, group] = await Promise.all([run('id', ['-u', name]), run('id', ['-g', name])])
  if (result.exitCode !== 0 || group.exitCode !== 0) return undefined
  return {name, uid: Number(result.stdout), gid: Number(group.stdout)}
}

/** The command line that runs `command` as `user` (unchanged when zenith is not root). */
export function asUser(user: OsUser | undefined, command: string, args: string[]): [string, string[]] {
  if (!user) return [command, args]
  return ['runuser', ['-u', user.name, '--', command, ...args]]
}

export async function giveTo(user: OsUser | undefined, file: string): Promise<void> {
  if (user) await chown(file, user.uid, user.gid)
}

/** As root, checks that the postgres OS user can enter `folder` (every parent needs o+x). */
export async function assertReachable(user: OsUser | undefined, folder: string): Promise<void> {
  if (!user) return
  const result = await run('runuser', ['-u', user.name, '--', 'test', '-x', folder])
  if (result.exitCode !== 0) {
    throw new ZenithError('PERMISSION_DENIED', `The OS user "${user.name}" that runs postgres cannot enter ${folder}.`,
      `Let it traverse every parent folder (chmod o+x on each, e.g. chmod o+x ${folder.split('/').slice(0, 2).join('/') || '/'}), or choose another folder.`)
  }
}

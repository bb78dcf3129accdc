// Shared by the benchmarks: timing, medians, options, the built CLI in a given home.
import {randomBytes} from 'node:crypto'
import {chmod, mkdtemp, readFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {fileURLToPath} from 'node:url'
import {execa} from 'execa'

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
export const bin = path.join(root, 'bin', 'run.js')

/** Seconds `work` takes. */
export async function timed(work) {
  const start = process.hrtime.bigint()
  await work()
  return Number(process.hrtime.bigint() - start) / 1e9
}

export function median(values) {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]
}

/** `--name value` from the command line, else `fallback`. */
export function option(name, fallback) {
  const args = process.argv.slice(2)
  return args.includes(name) ? args[args.indexOf(name) + 1] : fallback
}

/** Runs the built `zenith` with the given environment (ZENITH_HOME, ZENITH_FIRST_PORT). */
export function zenithIn(env) {
  return (...argv) => execa('node', [bin, ...argv], {env: {...process.env, ...env}, stdin: 'ignore'})
}

/** A fresh folder under the system's temp folder that the postgres OS user can traverse (when we are root). */
export async function workFolder(name, mode = 0o755) {
  const folder = await mkdtemp(path.join(os.tmpdir(), `zenith-bench-${name}-`))
  await chmod(folder, mode)
  return folder
}

/**
 * Makes sure a ZFS answers: when none does, starts the zfs-fuse daemon (its pid file under
 * `folder`, a new name each time: the daemon exits 1 when the file exists) and pushes its stop,
 * by pid, onto `cleanups`. A daemon that was already running is left alone.
 */
export async function ensureZfs(folder, cleanups) {
  const answers = async () => (await execa('zpool', ['list', '-H'], {reject: false})).exitCode === 0
  if (await answers()) return
  const pidFile = path.join(folder, `zfs-fuse.${randomBytes(4).toString('hex')}.pid`)
  await execa('zfs-fuse', ['--pidfile', pidFile])
  for (let i = 0; i < 100 && !(await answers()); i++) await sleep(100)
  const pid = Number(await readFile(pidFile, 'utf8'))
  cleanups.push(async () => {
    process.kill(pid, 'SIGTERM')
    for (let i = 0; i < 150; i++) {
      try {
        process.kill(pid, 0)
      } catch {
        return
      }

      await sleep(100)
    }
  })
}

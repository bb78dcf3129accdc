import {ZenithError} from '../errors.js'
import {resolveHome} from '../context.js'
import {binaryChecks} from './binaries.js'
import {homeChecks, socketCheck, sshCheck, storeCheck} from './home.js'
import {pgChecks} from './pgs.js'
import {storageChecks} from './storages.js'
import {userCheck} from './user.js'
import {type Check, settle} from './check.js'

export type {Check, CheckStatus} from './check.js'

/** What `zenith doctor` prints: every check, and whether none of them failed (warnings allowed). */
export interface DoctorReport {
  ok: boolean
  checks: Check[]
}

export interface DoctorOptions {
  /** ZENITH_HOME (default: the one every command resolves). */
  home?: string
  /** How long a storage across the network (S3) may take to answer; default 3 s. */
  networkTimeoutMs?: number
}

const NETWORK_TIMEOUT_MS = 3000

/**
 * Checks what zenith needs on this machine and in this home, and says how to fix each miss:
 * the home and its store, the OS user postgres runs as, the postgres binaries, every attached
 * storage, every pg's port and data, the socket folder, the ssh client. The checks run in
 * parallel; each has its own deadline, so one that hangs (a dead NFS mount, ZFS that does not
 * answer) fails alone. Nothing is changed: no repair runs, the home is not created, and the only
 * writes are probe files that are removed again.
 */
export async function runDoctor(options: DoctorOptions = {}): Promise<DoctorReport> {
  const home = options.home ?? resolveHome()
  const networkTimeoutMs = options.networkTimeoutMs ?? NETWORK_TIMEOUT_MS
  // The store first (one small file): what the storage and pg checks go through.
  const store = await storeCheck(home)
  const binaries = binaryChecks()
  const groups: Array<Promise<Check[]>> = [
    homeChecks(home),
    Promise.resolve([store.check]),
    settle('user', userCheck(home, store.data)),
    binaries.then((result) => result.checks),
  ]
  if (store.data) {
    groups.push(storageChecks(store.data, networkTimeoutMs))
    groups.push(pgChecks(store.data, binaries.then((result) => result.found)))
  }

  groups.push(settle('sockets', socketCheck(home, store.data)), settle('ssh', sshCheck()))
  const checks = (await Promise.all(groups)).flat()
  return {ok: checks.every((check) => check.status !== 'fail'), checks}
}

/**
 * The error a failed report ends with (DOCTOR_FAILED, exit 6): how many checks failed and the
 * first fix. It carries the report, so that --json prints the checks with the error.
 */
export function doctorFailure(report: DoctorReport): ZenithError | undefined {
  const failed = report.checks.filter((check) => check.status === 'fail')
  if (failed.length === 0) return undefined
  const first = failed.find((check) => check.fix)
  const error = new ZenithError('DOCTOR_FAILED',
    `${failed.length} of ${report.checks.length} checks failed: ${failed.map((check) => check.name).join(', ')}.`,
    first?.fix ? `First fix (${first.name}): ${first.fix}.` : 'See the checks above.')
  error.result = {...report}
  return error
}

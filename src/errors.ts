/**
 * Errors split by who can fix them: `ZenithError` is for the user (bad input, a busy port, a
 * missing binary), `ExternalCommandError` is a tool we ran that failed, anything else is a bug.
 */

/** Stable exit codes, documented in README.md; scripts rely on them. */
export const EXIT_CODES = {
  BUG: 1,
  USAGE: 2,
  NOT_FOUND: 3,
  CONFLICT: 4,
  STATE: 5,
  ENVIRONMENT: 6,
  INTEGRITY: 7,
  EXTERNAL: 8,
  INTERRUPTED: 130,
} as const

export type ErrorCode =
  | 'INVALID_NAME' | 'INVALID_ARGUMENT' | 'INVALID_REF'
  | 'PG_NOT_FOUND' | 'SNAPSHOT_NOT_FOUND' | 'STORAGE_NOT_FOUND' | 'PITR_NOT_FOUND' | 'BUCKET_NOT_FOUND' | 'TABLE_NOT_FOUND'
  | 'NAME_TAKEN' | 'PORT_IN_USE' | 'PG_RUNNING' | 'PG_NOT_RUNNING' | 'PG_BUSY' | 'HAS_DEPENDENTS' | 'STORAGE_IN_USE'
  | 'STORE_CORRUPT' | 'STORE_TOO_NEW' | 'STORE_LOCK_TIMEOUT' | 'INCOMPLETE_OPERATION'
  | 'PG_BINARIES_NOT_FOUND' | 'PG_VERSION_MISMATCH' | 'NOT_ENOUGH_DISK_SPACE' | 'STORAGE_UNSUPPORTED' | 'PERMISSION_DENIED'
  | 'NO_FREE_PORT' | 'PG_START_FAILED'
  | 'CHECKSUM_MISMATCH' | 'ARCHIVE_INVALID' | 'SOURCE_UNREACHABLE' | 'REMOTE_CONFLICT' | 'REMOTE_BUSY' | 'AUTH_FAILED'
  | 'EXTERNAL_COMMAND_FAILED' | 'INTERRUPTED'
  | 'NOT_AVAILABLE_YET'
  | 'WAL_CONFLICT' | 'WAL_SEGMENT_NOT_FOUND' | 'PITR_TARGET_OUT_OF_RANGE' | 'PITR_RECOVERY_FAILED' | 'PITR_ARCHIVE_FAILING'
  | 'SNAPSHOT_REMOTE' | 'DIFF_UNRELATED' | 'PG_READ_ONLY'
  | 'CLONE_NOT_FOUND' | 'CLONE_PROTECTED' | 'ROUTE_NOT_FOUND'
  | 'DOCTOR_FAILED'

const EXIT_BY_CODE: Record<ErrorCode, number> = {
  INVALID_NAME: EXIT_CODES.USAGE, INVALID_ARGUMENT: EXIT_CODES.USAGE, INVALID_REF: EXIT_CODES.USAGE,
  PG_NOT_FOUND: EXIT_CODES.NOT_FOUND, SNAPSHOT_NOT_FOUND: EXIT_CODES.NOT_FOUND,
  STORAGE_NOT_FOUND: EXIT_CODES.NOT_FOUND, PITR_NOT_FOUND: EXIT_CODES.NOT_FOUND, BUCKET_NOT_FOUND: EXIT_CODES.NOT_FOUND,
  TABLE_NOT_FOUND: EXIT_CODES.NOT_FOUND,
  NAME_TAKEN: EXIT_CODES.CONFLICT, PORT_IN_USE: EXIT_CODES.CONFLICT, PG_RUNNING: EXIT_CODES.CONFLICT,
  PG_NOT_RUNNING: EXIT_CODES.CONFLICT, PG_BUSY: EXIT_CODES.CONFLICT, HAS_DEPENDENTS: EXIT_CODES.CONFLICT,
  STORAGE_IN_USE: EXIT_CODES.CONFLICT, REMOTE_CONFLICT: EXIT_CODES.CONFLICT, REMOTE_BUSY: EXIT_CODES.CONFLICT,
  STORE_CORRUPT: EXIT_CODES.STATE, STORE_TOO_NEW: EXIT_CODES.STATE, STORE_LOCK_TIMEOUT: EXIT_CODES.STATE,
  INCOMPLETE_OPERATION: EXIT_CODES.STATE,
  PG_BINARIES_NOT_FOUND: EXIT_CODES.ENVIRONMENT, PG_VERSION_MISMATCH: EXIT_CODES.ENVIRONMENT,
  NOT_ENOUGH_DISK_SPACE: EXIT_CODES.ENVIRONMENT, STORAGE_UNSUPPORTED: EXIT_CODES.ENVIRONMENT,
  PERMISSION_DENIED: EXIT_CODES.ENVIRONMENT, NO_FREE_PORT: EXIT_CODES.ENVIRONMENT,
  PG_START_FAILED: EXIT_CODES.ENVIRONMENT, SOURCE_UNREACHABLE: EXIT_CODES.ENVIRONMENT,
  AUTH_FAILED: EXIT_CODES.ENVIRONMENT,
  CHECKSUM_MISMATCH: EXIT_CODES.INTEGRITY, ARCHIVE_INVALID: EXIT_CODES.INTEGRITY,
  EXTERNAL_COMMAND_FAILED: EXIT_CODES.EXTERNAL,
  INTERRUPTED: EXIT_CODES.INTERRUPTED,
  // A command of the product's surface that this version does not have: the invocation cannot
  // work here, as with an unknown command.
  NOT_AVAILABLE_YET: EXIT_CODES.USAGE,
  WAL_CONFLICT: EXIT_CODES.CONFLICT, WAL_SEGMENT_NOT_FOUND: EXIT_CODES.NOT_FOUND,
  PITR_TARGET_OUT_OF_RANGE: EXIT_CODES.NOT_FOUND, PITR_RECOVERY_FAILED: EXIT_CODES.EXTERNAL, PITR_ARCHIVE_FAILING: EXIT_CODES.ENVIRONMENT,
  SNAPSHOT_REMOTE: EXIT_CODES.USAGE, DIFF_UNRELATED: EXIT_CODES.USAGE, PG_READ_ONLY: EXIT_CODES.CONFLICT,
  // The REST API's (zenith serve): a clone id it does not know, a protected clone, a path it has no route for.
  CLONE_NOT_FOUND: EXIT_CODES.NOT_FOUND, CLONE_PROTECTED: EXIT_CODES.CONFLICT, ROUTE_NOT_FOUND: EXIT_CODES.NOT_FOUND,
  // `zenith doctor` found something this machine or home lacks (each check says what and how to fix it).
  DOCTOR_FAILED: EXIT_CODES.ENVIRONMENT,
}

export class ZenithError extends Error {
  override readonly name = 'ZenithError'
  /**
   * What the command found before it failed, still worth printing (`zenith doctor`'s checks):
   * under --json its keys go into the one document beside `error`.
   */
  result?: Record<string, unknown>

  constructor(readonly code: ErrorCode, message: string, readonly hint?: string) {
    super(message)
  }

  get exitCode(): number {
    return EXIT_BY_CODE[this.code]
  }
}

/** A program we ran (initdb, pg_ctl, btrfs, ...) failed: keep what it said so the user can act. */
export class ExternalCommandError extends ZenithError {
  constructor(readonly command: string, readonly args: readonly string[], readonly stderrTail: string, exitCode?: number) {
    super('EXTERNAL_COMMAND_FAILED',
      `${command} ${args.join(' ')} failed${exitCode === undefined ? '' : ` with exit code ${exitCode}`}` +
        (stderrTail ? `:\n${stderrTail}` : ''),
      'The output above comes from the command zenith ran; fix its cause and retry.')
  }
}

/** What another zenith reported, as `--json` and its transfer protocols carry it. */
export interface ReportedError {
  code: ErrorCode
  message: string
  hint?: string
}

/** An error another zenith reported, its message prefixed with where it came from. */
export function reportedError(reported: ReportedError, from: string): ZenithError {
  return new ZenithError(reported.code, `${from}: ${reported.message}`, reported.hint)
}

export function isZenithError(error: unknown, code?: ErrorCode): error is ZenithError {
  return error instanceof ZenithError && (code === undefined || error.code === code)
}

/** Last lines of a tool's stderr: enough to act on, short enough for one screen. */
export function tail(text: string | undefined, lines = 8): string {
  if (!text) return ''
  return text.trim().split('\n').slice(-lines).join('\n')
}

const DISK_FULL = new Set(['ENOSPC', 'EDQUOT'])
const NOT_ALLOWED = new Set(['EACCES', 'EPERM', 'EROFS'])

/**
 * What the operating system said (a raw errno from a write, a copy, a worker thread, or a tool's
 * "No space left on device"), as the error the user can act on; undefined when it is none of
 * those. The one translation of such failures: the base command's catch and the transfer
 * protocols (which report errors to the other zenith) both use it, so a full disk anywhere is
 * NOT_ENOUGH_DISK_SPACE rather than a BUG. (Each writer removes what it made before its error
 * gets here: a snapshot's scratch folder, an export's partial file.)
 */
export function explainSystemError(error: unknown): ZenithError | undefined {
  const failure = error as NodeJS.ErrnoException | undefined
  const code = typeof failure?.code === 'string' ? failure.code : undefined
  const where = failure?.path ? ` (${failure.syscall ? `${failure.syscall} ` : ''}${failure.path})` : ''
  const text = error instanceof ExternalCommandError ? error.stderrTail : ''
  if ((code && DISK_FULL.has(code)) || /No space left on device|Disk quota exceeded/i.test(text)) {
    const detail = error instanceof ExternalCommandError ? `${error.command} reported: ${tail(text, 2)}` : `${code === 'EDQUOT' ? 'the disk quota is exceeded' : 'no space left on device'}${where}`
    return new ZenithError('NOT_ENOUGH_DISK_SPACE', `Not enough disk space: ${detail}.`,
      'Free space on that disk (destroy unused pgs and snapshots; `zenith storage list` shows what each storage uses), or write where there is more room (-s STORAGE for a snapshot, -o FILE for an export).')
  }

  if ((code && NOT_ALLOWED.has(code) && !(error instanceof ZenithError)) || /Read-only file system/i.test(text)) {
    const readOnly = code === 'EROFS' || /Read-only file system/i.test(text)
    const detail = error instanceof ExternalCommandError ? `${error.command} reported: ${tail(text, 2)}` : `${readOnly ? 'the file system is read-only' : 'permission denied'}${where}`
    return new ZenithError('PERMISSION_DENIED', `zenith may not write there: ${detail}.`,
      readOnly ? 'Remount the file system read-write, or use another storage or output folder.' : 'Run zenith as a user that owns the folder (or as root), or fix the folder\'s owner and mode.')
  }

  return undefined
}

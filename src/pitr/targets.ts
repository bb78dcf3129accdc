import {ZenithError} from '../errors.js'
import {type Lsn, formatLsn, parseLsn} from './lsn.js'

/** Where `pitr extract-snapshot` stops replaying WAL. */
export type RecoveryTarget =
  | {kind: 'lsn'; lsn: Lsn}
  | {kind: 'time'; time: Date; /** What postgres gets as recovery_target_time (UTC, numeric offset: it refuses zone abbreviations such as Z), with the microseconds given. */ text: string}
  | {kind: 'xid'; xid: bigint}

const ABSOLUTE = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?\s*(Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?$/i
const RELATIVE = /^(\d+(?:\.\d+)?)\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?|d|days?|w|weeks?)\s+ago$/i
const UNIT_SECONDS: Record<string, number> = {s: 1, m: 60, h: 3600, d: 86_400, w: 604_800}

export function targetFromFlags(flags: {lsn?: string; time?: string; xid?: string}, now = new Date()): RecoveryTarget {
  const given = [flags.lsn, flags.time, flags.xid].filter((value) => value !== undefined)
  if (given.length !== 1) {
    throw new ZenithError('INVALID_ARGUMENT', given.length === 0 ? 'Say where to stop: --lsn, --time or --xid.' : 'Give only one of --lsn, --time and --xid.',
      "For example --time '10 minutes ago', --time 2026-12-03T10:15:00Z, --lsn 0/3000060 or --xid 1234.")
  }

  if (flags.lsn !== undefined) return {kind: 'lsn', lsn: parseLsn(flags.lsn)}
  if (flags.xid !== undefined) {
    if (!/^\d{1,19}$/.test(flags.xid.trim()) || BigInt(flags.xid.trim()) < 3n) {
      throw new ZenithError('INVALID_ARGUMENT', `"${flags.xid}" is not a transaction id.`, 'Give the number of a committed transaction, as txid_current() or pg_current_xact_id() returned it.')
    }

    return {kind: 'xid', xid: BigInt(flags.xid.trim())}
  }

  return parseTargetTime(flags.time!, now)
}

/**
 * `--time`: ISO 8601 (`2026-12-03T10:15:00Z`), a postgres timestamp (`2026-12-03 10:15:00.123456+00`,
 * `... UTC`; without a zone it is this machine's local time), `now`, or `N minutes ago` (also
 * s/m/h/d/w and their long names). Microseconds given are kept for postgres, which compares
 * commit times to the microsecond.
 */
export function parseTargetTime(text: string, now = new Date()): RecoveryTarget & {kind: 'time'} {
  const input = text.trim()
  if (input.toLowerCase() === 'now') return {kind: 'time', time: now, text: postgresTime(now)}
  const relative = RELATIVE.exec(input)
  if (relative) {
    const seconds = Number(relative[1]) * UNIT_SECONDS[relative[2][0].toLowerCase()]
    const time = new Date(now.getTime() - seconds * 1000)
    return {kind: 'time', time, text: postgresTime(time)}
  }

  const match = ABSOLUTE.exec(input)
  if (match) {
    const [, year, month, day, hour = '00', minute = '00', second = '00', fraction = '', zone] = match
    const micros = fraction.padEnd(6, '0')
    const offsetMinutes = zoneOffsetMinutes(zone)
    const fields = [Number(year), Number(month) - 1, Number(day), Number(hour), Number(minute), Number(second), Number(micros.slice(0, 3))] as const
    const time = offsetMinutes === undefined ? new Date(...fields) : new Date(Date.UTC(...fields) - offsetMinutes * 60_000)
    const valid = !Number.isNaN(time.getTime()) && Number(month) <= 12 && Number(day) <= 31 && Number(hour) < 24 && Number(minute) < 60 && Number(second) < 61
    if (valid) return {kind: 'time', time, text: postgresTime(time, micros)}
  }

  throw new ZenithError('INVALID_ARGUMENT', `"${text}" is not a time zenith can read.`,
    "Write ISO 8601 (2026-12-03T10:15:00Z), a postgres timestamp ('2026-12-03 10:15:00+00') or a relative time ('10 minutes ago').")
}

function postgresTime(time: Date, micros = String(time.getUTCMilliseconds() * 1000).padStart(6, '0')): string {
  return `${time.toISOString().slice(0, 19).replace('T', ' ')}.${micros}+00`
}

function zoneOffsetMinutes(zone: string | undefined): number | undefined {
  if (zone === undefined) return undefined
  if (/^(Z|UTC|GMT)$/i.test(zone)) return 0
  const match = /^([+-])(\d{2}):?(\d{2})?$/.exec(zone)!
  const minutes = Number(match[2]) * 60 + Number(match[3] ?? 0)
  return match[1] === '-' ? -minutes : minutes
}

export function describeTarget(target: RecoveryTarget): string {
  if (target.kind === 'lsn') return `LSN ${formatLsn(target.lsn)}`
  if (target.kind === 'xid') return `transaction ${target.xid}`
  return `time ${target.text}`
}

import {ZenithError} from '../errors.js'

/**
 * How long a PITR area keeps WAL and how much it may hold, as `pitr create --ttl/--size-limit`
 * take them; undefined stands for `inf`.
 */
export interface RetentionPolicy {
  ttlSeconds?: number
  sizeLimitBytes?: number
}

const DURATION = /^(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$/i
const SECONDS: Record<string, number> = {s: 1, m: 60, h: 3600, d: 86_400, w: 604_800}
const SIZE = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B)?$/i
const BYTES: Record<string, number> = {'': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4}

/** `30d`, `12h`, `90m`, `45s`, `2w` or `inf`. */
export function parseTtl(text: string): number | undefined {
  if (text.trim().toLowerCase() === 'inf') return undefined
  const match = DURATION.exec(text.trim())
  const seconds = match ? Number(match[1]) * SECONDS[match[2].toLowerCase()] : Number.NaN
  if (!(seconds > 0)) {
    throw new ZenithError('INVALID_ARGUMENT', `"${text}" is not a TTL.`, 'Write a duration such as 30d, 12h, 90m or 45s, or inf to keep WAL for ever.')
  }

  return Math.round(seconds)
}

/** `500M`, `10G`, `1.5T` (powers of 1024; a trailing B or iB is allowed) or `inf`. */
export function parseSizeLimit(text: string): number | undefined {
  if (text.trim().toLowerCase() === 'inf') return undefined
  const match = SIZE.exec(text.trim())
  const bytes = match ? Number(match[1]) * BYTES[match[2].toUpperCase()] : Number.NaN
  if (!(bytes >= 1024 * 1024)) {
    throw new ZenithError('INVALID_ARGUMENT', `"${text}" is not a size limit of at least 1M.`, 'Write a size such as 500M, 10G or 1T, or inf for no limit.')
  }

  return Math.round(bytes)
}

export function formatTtl(seconds: number | undefined): string {
  if (seconds === undefined) return 'inf'
  for (const unit of ['d', 'h', 'm'] as const) if (seconds % SECONDS[unit] === 0) return `${seconds / SECONDS[unit]}${unit}`
  return `${seconds}s`
}

/** When a new base is due: WAL since the newest base or its age (see docs/pitr.md). */
export const BASE_EVERY_BYTES = 1024 ** 3
export const BASE_EVERY_SECONDS = 86_400

export interface GcBase {
  id: number
  /** When the base became consistent (ISO). */
  time: string
  /** The first WAL segment it needs from the area. */
  startSegment: string
  bytes: number
}

export interface GcPlan<B extends GcBase> {
  keep: B[]
  drop: B[]
  /** Segment files (and .backup/.partial files) older than the oldest kept base: none of them is needed any more. */
  dropSegments: string[]
  /** Still over the size limit after dropping all it may (the newest base and its WAL are always kept). */
  overLimit: boolean
}

/**
 * What `pitr gc` drops. The TTL keeps the newest base that is at least TTL old (it still
 * reaches back to now - TTL) and every base after it; the size limit then drops the oldest
 * bases while the area is over it. The newest base is never dropped, and no segment that a kept
 * base needs: only segments older than the oldest kept base go. Timeline history files are tiny
 * and always kept (a later recovery may need to follow a timeline switch).
 */
export function planGc<B extends GcBase>(bases: B[], segments: Array<{name: string; size: number}>, policy: RetentionPolicy, now: Date): GcPlan<B> {
  const sorted = [...bases].sort((a, b) => a.time.localeCompare(b.time))
  let first = 0
  if (policy.ttlSeconds !== undefined) {
    const horizon = now.getTime() - policy.ttlSeconds * 1000
    for (let index = sorted.length - 1; index >= 0; index--) {
      if (Date.parse(sorted[index].time) <= horizon) {
        first = index
        break
      }
    }
  }

  const segmentsFrom = (index: number) => segments.filter((segment) => !isHistory(segment.name) && (index >= sorted.length || segment.name >= sorted[index].startSegment))
  const sizeFrom = (index: number) => sorted.slice(index).reduce((sum, base) => sum + base.bytes, 0) + segmentsFrom(index).reduce((sum, segment) => sum + segment.size, 0)
  if (policy.sizeLimitBytes !== undefined) {
    while (first < sorted.length - 1 && sizeFrom(first) > policy.sizeLimitBytes) first++
  }

  const keep = sorted.slice(first)
  const oldest = keep[0]?.startSegment
  const dropSegments = oldest === undefined ? [] : segments.filter((segment) => !isHistory(segment.name) && segment.name < oldest).map((segment) => segment.name)
  return {
    keep, drop: sorted.slice(0, first), dropSegments,
    overLimit: policy.sizeLimitBytes !== undefined && sorted.length > 0 && sizeFrom(first) > policy.sizeLimitBytes,
  }
}

export function isHistory(name: string): boolean {
  return name.endsWith('.history')
}

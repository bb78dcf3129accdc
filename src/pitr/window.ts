import type {PitrBase} from '../state/schema.js'
import type {WalSegment} from '../storage/storage.js'
import {type Lsn, formatLsn, parseLsn, parseSegmentName, segmentEnd, segmentName, segmentNameOf} from './lsn.js'

/** How far a base reaches with the WAL the area holds. */
export interface BaseReach {
  base: PitrBase
  /** The area holds the WAL from the base's consistency point on. */
  usable: boolean
  /** End of the contiguous WAL after the base (the last segment's end). */
  endLsn?: Lsn
  endSegment?: string
  /** First missing segment after which the same timeline goes on: a gap the window ends before. */
  gapAt?: string
}

export interface PitrWindow {
  timeline: number
  from: {lsn: string; time: string}
  to: {lsn: string; segment: string}
}

/**
 * Every base and the stretch of WAL it can replay: from the segment that holds its stop point,
 * the segments of its timeline that follow each other without a hole. A base whose stop segment
 * is not archived yet is not usable yet; a hole ends its reach even if later segments exist.
 */
export function reachOfBases(bases: PitrBase[], segments: WalSegment[], segmentSize: number): BaseReach[] {
  const names = new Set(segments.map((segment) => segment.name))
  const newestSegno = new Map<number, bigint>()
  for (const segment of segments) {
    const position = parseSegmentName(segment.name, segmentSize)
    if (position && (newestSegno.get(position.timeline) ?? -1n) < position.segno) newestSegno.set(position.timeline, position.segno)
  }

  return bases.map((base) => {
    const stop = parseSegmentName(segmentNameOf(parseLsn(base.stopLsn), base.timeline, segmentSize), segmentSize)!
    if (!names.has(segmentName(stop, segmentSize))) return {base, usable: false}
    let segno = stop.segno
    while (names.has(segmentName({timeline: base.timeline, segno: segno + 1n}, segmentSize))) segno++
    const newest = newestSegno.get(base.timeline) ?? segno
    return {
      base, usable: true, endLsn: segmentEnd(segno, segmentSize), endSegment: segmentName({timeline: base.timeline, segno}, segmentSize),
      gapAt: newest > segno ? segmentName({timeline: base.timeline, segno: segno + 1n}, segmentSize) : undefined,
    }
  })
}

/**
 * The area's window: from the oldest usable base on the newest timeline that has one, to the
 * end of the WAL that base reaches. Older timelines (before a checkout) stay extractable by
 * their own bases; `timelines` in `pitr show` lists them.
 */
export function windowOf(reaches: BaseReach[]): PitrWindow | undefined {
  const usable = reaches.filter((reach) => reach.usable)
  if (usable.length === 0) return undefined
  const timeline = Math.max(...usable.map((reach) => reach.base.timeline))
  const onTimeline = usable.filter((reach) => reach.base.timeline === timeline).sort((a, b) => a.base.time.localeCompare(b.base.time))
  const end = onTimeline.reduce((best, reach) => (reach.endLsn! > best.endLsn! ? reach : best))
  const first = onTimeline.find((reach) => reach.endSegment === end.endSegment) ?? end
  return {timeline, from: {lsn: first.base.stopLsn, time: first.base.time}, to: {lsn: formatLsn(end.endLsn!), segment: end.endSegment!}}
}

/** The newest usable base that can reach `lsn`: taken before it, with WAL up to it. */
export function baseForLsn(reaches: BaseReach[], lsn: Lsn): BaseReach | undefined {
  return newestFirst(reaches).find((reach) => reach.usable && parseLsn(reach.base.stopLsn) <= lsn && lsn <= reach.endLsn!)
}

/** The newest usable base consistent before `time` (its reach in time is checked by the caller). */
export function basesForTime(reaches: BaseReach[], time: Date): BaseReach[] {
  return newestFirst(reaches).filter((reach) => reach.usable && Date.parse(reach.base.time) <= time.getTime())
}

/**
 * A base for a transaction id: the newest one taken before the transaction started (its
 * commit then comes after the base's consistency point); the oldest base when none is known to
 * be (the commit may still come after it).
 */
export function baseForXid(reaches: BaseReach[], xid: bigint): BaseReach | undefined {
  const usable = newestFirst(reaches).filter((reach) => reach.usable)
  return usable.find((reach) => BigInt(reach.base.nextXid) <= xid) ?? usable.at(-1)
}

function newestFirst(reaches: BaseReach[]): BaseReach[] {
  return [...reaches].sort((a, b) => b.base.time.localeCompare(a.base.time))
}

import {ZenithError} from '../errors.js'

/**
 * Log sequence numbers and WAL file names, as postgres writes them: an LSN is `X/Y` (two hex
 * halves of a 64-bit byte position), a segment file is `TTTTTTTTXXXXXXXXYYYYYYYY` (timeline,
 * then the segment number split at 2^32 / segment size). BigInt because positions pass 2^53.
 */
export type Lsn = bigint

const LSN_TEXT = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/
const SEGMENT_FILE = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$/

export function parseLsn(text: string): Lsn {
  const match = LSN_TEXT.exec(text.trim())
  if (!match) {
    throw new ZenithError('INVALID_ARGUMENT', `"${text}" is not an LSN.`, 'Write an LSN as postgres prints it, for example 0/3000060 (see `select pg_current_wal_lsn()`).')
  }

  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`)
}

export function formatLsn(lsn: Lsn): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xFFFFFFFFn).toString(16).toUpperCase()}`
}

export interface SegmentPosition {
  timeline: number
  /** Segment number: its first byte is at `segno * segmentSize`. */
  segno: bigint
}

/** The WAL segment file name of a timeline and segment number (XLogFileName). */
export function segmentName(position: SegmentPosition, segmentSize: number): string {
  const perId = 0x1_0000_0000n / BigInt(segmentSize)
  return hex8(BigInt(position.timeline)) + hex8(position.segno / perId) + hex8(position.segno % perId)
}

/** The timeline and segment number of a segment file name; undefined for other WAL files. */
export function parseSegmentName(name: string, segmentSize: number): SegmentPosition | undefined {
  const match = SEGMENT_FILE.exec(name)
  if (!match) return undefined
  const perId = 0x1_0000_0000n / BigInt(segmentSize)
  return {timeline: Number.parseInt(match[1], 16), segno: BigInt(`0x${match[2]}`) * perId + BigInt(`0x${match[3]}`)}
}

/** The segment holding byte `lsn` (XLByteToSeg). */
export function segmentOf(lsn: Lsn, timeline: number, segmentSize: number): SegmentPosition {
  return {timeline, segno: lsn / BigInt(segmentSize)}
}

/** The name of the segment that holds `lsn` on `timeline`. */
export function segmentNameOf(lsn: Lsn, timeline: number, segmentSize: number): string {
  return segmentName(segmentOf(lsn, timeline, segmentSize), segmentSize)
}

/** The first position after segment `segno`. */
export function segmentEnd(segno: bigint, segmentSize: number): Lsn {
  return (segno + 1n) * BigInt(segmentSize)
}

function hex8(value: bigint): string {
  return value.toString(16).toUpperCase().padStart(8, '0')
}

import {formatLsn, parseLsn, parseSegmentName, segmentName, segmentNameOf} from '../../src/pitr/lsn.js'
import {parseSizeLimit, parseTtl, planGc} from '../../src/pitr/policy.js'
import {parseTargetTime, targetFromFlags} from '../../src/pitr/targets.js'
import {baseForLsn, baseForXid, reachOfBases, windowOf} from '../../src/pitr/window.js'
import type {PitrBase} from '../../src/state/schema.js'

const MB16 = 16 * 1024 * 1024
const codeOf = (work: () => unknown) => {
  try {
    work()
  } catch (error) {
    return (error as {code?: string}).code
  }

  return undefined
}

describe('LSNs and segment names', () => {
  test('parse and format as postgres does', () => {
    expect(formatLsn(parseLsn('0/3000060'))).toBe('0/3000060')
    expect(parseLsn('1/0')).toBe(0x1_0000_0000n)
    expect(codeOf(() => parseLsn('3000060'))).toBe('INVALID_ARGUMENT')
  })

  test('segment names split the segment number at 2^32 / segment size', () => {
    expect(segmentNameOf(parseLsn('0/3000060'), 1, MB16)).toBe('000000010000000000000003')
    expect(segmentNameOf(parseLsn('1/FF000000'), 2, MB16)).toBe('0000000200000001000000FF')
    expect(segmentName({timeline: 1, segno: 256n}, MB16)).toBe('000000010000000100000000')
    expect(parseSegmentName('0000000200000001000000FF', MB16)).toEqual({timeline: 2, segno: 511n})
    expect(parseSegmentName('00000002.history', MB16)).toBeUndefined()
  })
})

describe('retention and targets', () => {
  test('TTL and size limit accept the documented forms and refuse the rest', () => {
    expect(parseTtl('30d')).toBe(30 * 86_400)
    expect(parseTtl('90m')).toBe(5400)
    expect(parseTtl('inf')).toBeUndefined()
    expect(parseSizeLimit('10G')).toBe(10 * 1024 ** 3)
    expect(parseSizeLimit('500M')).toBe(500 * 1024 ** 2)
    expect(parseSizeLimit('inf')).toBeUndefined()
    for (const bad of ['3x', '-1d', '', 'd']) expect(codeOf(() => parseTtl(bad))).toBe('INVALID_ARGUMENT')
    for (const bad of ['5Q', '10', '0M', 'G']) expect(codeOf(() => parseSizeLimit(bad))).toBe('INVALID_ARGUMENT')
  })

  test('times: ISO 8601, postgres timestamps with microseconds, relative forms', () => {
    const now = new Date('2026-12-03T12:00:00Z')
    expect(parseTargetTime('2026-12-03T10:15:00Z').time.toISOString()).toBe('2026-12-03T10:15:00.000Z')
    const micro = parseTargetTime('2026-12-03 10:15:00.123456+02')
    expect(micro.time.toISOString()).toBe('2026-12-03T08:15:00.123Z')
    expect(micro.text).toBe('2026-12-03 08:15:00.123456+00')
    expect(parseTargetTime('2026-12-03 10:15:00 UTC').text).toBe('2026-12-03 10:15:00.000000+00')
    expect(parseTargetTime('10 minutes ago', now).time.toISOString()).toBe('2026-12-03T11:50:00.000Z')
    expect(parseTargetTime('2h ago', now).time.toISOString()).toBe('2026-12-03T10:00:00.000Z')
    expect(parseTargetTime('now', now).time).toEqual(now)
    for (const bad of ['yesterday', '2026-13-01', '10 parsecs ago']) expect(codeOf(() => parseTargetTime(bad))).toBe('INVALID_ARGUMENT')
    expect(codeOf(() => targetFromFlags({}))).toBe('INVALID_ARGUMENT')
    expect(codeOf(() => targetFromFlags({lsn: '0/1', xid: '5'}))).toBe('INVALID_ARGUMENT')
    expect(targetFromFlags({xid: '1234'})).toEqual({kind: 'xid', xid: 1234n})
  })
})

function base(id: number, time: string, startSegment: number, stopLsn: string, nextXid = '1000', timeline = 1): PitrBase {
  return {
    id, kind: 'volume', location: `b${id}`, timeline, startLsn: stopLsn, stopLsn, startSegment: segmentName({timeline, segno: BigInt(startSegment)}, MB16),
    time, nextXid, bytes: 50 * 1024 * 1024, pgVersion: 15, password: 'x',
  }
}

const segments = (from: number, to: number, timeline = 1) =>
  Array.from({length: to - from + 1}, (_, index) => ({name: segmentName({timeline, segno: BigInt(from + index)}, MB16), size: MB16}))

describe('window', () => {
  const bases = [base(1, '2026-12-01T00:00:00Z', 3, '0/3000100', '700'), base(2, '2026-12-02T00:00:00Z', 6, '0/6000100', '900')]

  test('each base reaches to the end of the contiguous WAL after it; a hole ends the window', () => {
    const reaches = reachOfBases(bases, [...segments(3, 8), ...segments(10, 11)], MB16)
    expect(reaches.map((reach) => reach.endSegment)).toEqual(['000000010000000000000008', '000000010000000000000008'])
    expect(reaches[0].gapAt).toBe('000000010000000000000009')
    const window = windowOf(reaches)!
    expect(window.from).toEqual({lsn: '0/3000100', time: '2026-12-01T00:00:00Z'})
    expect(window.to.lsn).toBe('0/9000000')
    expect(baseForLsn(reaches, parseLsn('0/7000000'))?.base.id).toBe(2)
    expect(baseForLsn(reaches, parseLsn('0/4000000'))?.base.id).toBe(1)
    expect(baseForLsn(reaches, parseLsn('0/A000000'))).toBeUndefined()
    expect(baseForXid(reaches, 950n)?.base.id).toBe(2)
    expect(baseForXid(reaches, 800n)?.base.id).toBe(1)
  })

  test('a base whose stop segment is not archived yet is not usable', () => {
    const reaches = reachOfBases(bases, segments(3, 5), MB16)
    expect(reaches.map((reach) => reach.usable)).toEqual([true, false])
  })

  test('gc: the TTL keeps the newest base old enough to reach back, the size limit drops oldest first, the newest stays', () => {
    const all = [...segments(3, 8), {name: '00000001.history', size: 40}]
    const now = new Date('2026-12-02T12:00:00Z')
    expect(planGc(bases, all, {ttlSeconds: 86_400}, now).drop).toEqual([])
    const shortTtl = planGc(bases, all, {ttlSeconds: 3600}, now)
    expect(shortTtl.drop.map((item) => item.id)).toEqual([1])
    expect(shortTtl.dropSegments).toEqual(segments(3, 5).map((segment) => segment.name))
    const tiny = planGc(bases, all, {sizeLimitBytes: 1024 * 1024}, now)
    expect(tiny.keep.map((item) => item.id)).toEqual([2])
    expect(tiny.overLimit).toBe(true)
    expect(tiny.dropSegments).not.toContain('00000001.history')
    expect(planGc(bases, all, {sizeLimitBytes: 10 * 1024 ** 3}, now).drop).toEqual([])
  })
})

import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {ExternalCommandError, tail} from '../errors.js'
import type {PgBinaries} from '../pg/binaries.js'
import {run} from '../process.js'

/** What pg_controldata says of a data directory (the fields PITR needs). */
export interface ControlData {
  systemId: string
  timeline: number
  redoLsn: string
  checkpointLsn: string
  checkpointTime: Date
  nextXid: string
  segmentSize: number
  state: string
}

export async function readControlData(binaries: PgBinaries, dataDir: string): Promise<ControlData> {
  const args = ['-D', dataDir]
  const result = await run(binaries.path('pg_controldata'), args, {env: {LC_ALL: 'C', TZ: 'UTC'}})
  if (result.exitCode !== 0) throw new ExternalCommandError('pg_controldata', args, tail(result.stderr), result.exitCode)
  const field = (label: string) => new RegExp(`^${label.replaceAll(/[()'.]/g, '\\$&')}:\\s*(.*)$`, 'm').exec(result.stdout)?.[1].trim() ?? ''
  const [epoch, xid] = field("Latest checkpoint's NextXID").split(':').map((part) => BigInt(part || '0'))
  return {
    systemId: field('Database system identifier'),
    timeline: Number(field("Latest checkpoint's TimeLineID")),
    redoLsn: field("Latest checkpoint's REDO location"),
    checkpointLsn: field('Latest checkpoint location'),
    checkpointTime: new Date(field('Time of latest checkpoint')),
    nextXid: String((epoch << 32n) + xid),
    segmentSize: Number(field('Bytes per WAL segment')),
    state: field('Database cluster state'),
  }
}

const COMMIT = /desc: (?:COMMIT|ABORT)(?:_PREPARED)? (\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?)(?: ([A-Za-z]+|[+-]\d{2}(?::?\d{2})?))?/g

/**
 * The newest commit (or abort) time in a WAL segment, read with pg_waldump: what a
 * recovery_target_time is compared with, so the end of the window in time. pg_waldump stops
 * with an error at the end of valid WAL in a switched segment; what it printed before counts.
 */
export async function lastCommitTime(binaries: PgBinaries, segment: {name: string; body: Buffer}): Promise<Date | undefined> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'zenith-waldump-'))
  try {
    await writeFile(path.join(dir, segment.name), segment.body)
    const result = await run(binaries.path('pg_waldump'), ['--rmgr=Transaction', '--path', dir, segment.name], {env: {TZ: 'UTC', LC_ALL: 'C'}})
    let last: Date | undefined
    for (const match of result.stdout.matchAll(COMMIT)) {
      const zone = match[2] === undefined || /^(UTC|GMT)$/i.test(match[2]) ? 'Z' : /^[+-]/.test(match[2]) ? match[2] : 'Z'
      const time = new Date(`${match[1].replace(' ', 'T')}${zone}`)
      if (!Number.isNaN(time.getTime()) && (!last || time > last)) last = time
    }

    return last
  } finally {
    await rm(dir, {recursive: true, force: true})
  }
}

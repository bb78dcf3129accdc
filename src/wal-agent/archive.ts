import {mkdir, readFile, readdir, rm} from 'node:fs/promises'
import path from 'node:path'

import {type AreaConfig, type AreaStatus, type ArchiveConfig, readAreaStatus, writeAreaStatus} from './config.js'
import {AgentS3Client} from './s3-client.js'
import {readIfExists, storeSegmentFile, syncFolder} from './segment-file.js'

export type AreaOutcome = 'stored' | 'identical' | 'spooled' | 'failed'

class ConflictError extends Error {}

/**
 * What postgres' archive_command does with one WAL file: store it in every area of the pg. An
 * area that cannot take it (full disk, S3 down) must not hold up the others' window, so while
 * another area took it, the file waits in that area's spool (a local folder, fsynced) and goes
 * in first, in order, the next time the area works: the area catches up without a gap. Only
 * when no area took it (or the spool failed too) does the command fail: postgres then keeps the
 * file in pg_wal and retries, which is the guarantee that nothing is lost.
 */
export async function archiveWalFile(config: ArchiveConfig, walPath: string, name: string, log: (line: string) => void = () => {}): Promise<AreaOutcome[]> {
  if (config.areas.length === 0) return []
  const body = await readFile(walPath)
  const attempts = await Promise.all(config.areas.map(async (area) => {
    try {
      await drainSpool(area)
      return {area, outcome: await storeInArea(area, name, body)}
    } catch (error) {
      return {area, outcome: 'failed' as AreaOutcome, error: error as Error}
    }
  }))
  const anyStored = attempts.some((attempt) => attempt.outcome !== 'failed')
  const outcomes: AreaOutcome[] = []
  for (const attempt of attempts) {
    const status = await readAreaStatus(attempt.area.stateDir)
    const now = new Date().toISOString()
    if (attempt.outcome !== 'failed') {
      await writeAreaStatus(attempt.area.stateDir, {...status, lastArchived: name, lastArchivedAt: now, backlog: await spoolCount(attempt.area)})
      outcomes.push(attempt.outcome)
      continue
    }

    const message = attempt.error instanceof ConflictError ? attempt.error.message : `${attempt.error?.message ?? 'failed'}`
    log(`zenith: WAL file ${name} could not go to PITR area ${attempt.area.name}: ${message}`)
    let outcome: AreaOutcome = 'failed'
    if (anyStored && !(attempt.error instanceof ConflictError)) {
      try {
        await spool(attempt.area, name, body)
        outcome = 'spooled'
      } catch (error) {
        log(`zenith: could not keep ${name} for PITR area ${attempt.area.name} either: ${(error as Error).message}`)
      }
    }

    await writeAreaStatus(attempt.area.stateDir, {...status, lastError: message, lastErrorAt: now, backlog: await spoolCount(attempt.area)})
      .catch(() => undefined)
    outcomes.push(outcome)
  }

  return outcomes
}

/** Stores one file in an area; a conflict on a `.partial` file of an abandoned timeline is only noted. */
async function storeInArea(area: AreaConfig, name: string, body: Buffer): Promise<'stored' | 'identical'> {
  const result = area.target.kind === 'folder' ? await storeSegmentFile(area.target.dir, name, body) : await storeInBucket(area.target, name, body)
  if (result !== 'conflict') return result
  if (name.endsWith('.partial')) {
    // Postgres archives the last, unfinished segment of a timeline it leaves (after a checkout)
    // as .partial; recovery never reads those, so two different ones under one name lose nothing.
    const status = await readAreaStatus(area.stateDir)
    await writeAreaStatus(area.stateDir, {...status, notes: [...(status.notes ?? []).slice(-9), `${new Date().toISOString()} kept the first ${name} (a later one differed)`]})
    return 'identical'
  }

  throw new ConflictError(`WAL file ${name} is already in the area with different content; the stored one was kept (two servers archive into one area?)`)
}

async function storeInBucket(target: AreaTarget & {kind: 's3'}, name: string, body: Buffer): Promise<'stored' | 'identical' | 'conflict'> {
  const client = new AgentS3Client(target.location)
  const key = `${target.keyPrefix}${name}`
  // Read first: some S3-compatible servers ignore If-None-Match and would overwrite.
  if (await client.head(key)) return sameObject(client, key, body)
  if (await client.putIfAbsent(key, body)) return 'stored'
  return sameObject(client, key, body)
}

async function sameObject(client: AgentS3Client, key: string, body: Buffer): Promise<'identical' | 'conflict'> {
  const stored = await client.get(key)
  return stored?.equals(body) ? 'identical' : 'conflict'
}

type AreaTarget = AreaConfig['target']

function spoolDir(area: AreaConfig): string {
  return path.join(area.stateDir, 'spool')
}

async function spool(area: AreaConfig, name: string, body: Buffer): Promise<void> {
  await mkdir(spoolDir(area), {recursive: true, mode: 0o700})
  const result = await storeSegmentFile(spoolDir(area), name, body)
  if (result === 'conflict') throw new ConflictError(`the spool already holds a different ${name}`)
}

/** A spool drain that stopped at a file the area would not take; `sent` went before it. */
export class SpoolDrainError extends Error {
  constructor(readonly sent: number, override readonly cause: Error) {
    super(cause.message)
  }
}

/** Sends what the spool holds, oldest first; stops at the first failure (the rest waits). */
export async function drainSpool(area: AreaConfig): Promise<number> {
  const names = (await readdir(spoolDir(area)).catch(() => [] as string[])).filter((name) => !name.startsWith('.')).sort()
  let sent = 0
  try {
    for (const name of names) {
      const file = path.join(spoolDir(area), name)
      const body = await readIfExists(file)
      if (!body) continue
      await storeInArea(area, name, body)
      await rm(file, {force: true})
      sent++
    }
  } catch (error) {
    throw new SpoolDrainError(sent, error as Error)
  } finally {
    if (sent > 0) await syncFolder(spoolDir(area))
  }

  return sent
}

export interface DrainReport {
  area: string
  sent: number
  backlog: number
  error?: string
}

/**
 * `pitr gc`'s catch-up of one area (main.js drain): run as the postgres OS user like the archive
 * command, so that what it stores is owned as the rest of the area and status.json stays the
 * agent's to rewrite. The status then tells what happened: caught up, or why not.
 */
export async function drainArea(area: AreaConfig): Promise<DrainReport> {
  const status = await readAreaStatus(area.stateDir)
  const now = new Date().toISOString()
  try {
    const names = (await readdir(spoolDir(area)).catch(() => [] as string[])).filter((name) => !name.startsWith('.')).sort()
    const sent = await drainSpool(area)
    const backlog = await spoolCount(area)
    const caughtUp = sent > 0 ? {lastArchived: names.at(-1), lastArchivedAt: now} : {}
    await writeAreaStatus(area.stateDir, {...status, ...caughtUp, backlog})
    return {area: area.name, sent, backlog}
  } catch (error) {
    const sent = error instanceof SpoolDrainError ? error.sent : 0
    const message = error instanceof SpoolDrainError ? error.cause.message : (error as Error).message
    const backlog = await spoolCount(area)
    await writeAreaStatus(area.stateDir, {...status, lastError: message, lastErrorAt: now, backlog}).catch(() => undefined)
    return {area: area.name, sent, backlog, error: message}
  }
}

/** Files waiting in an area's spool: what `pitr show` reports as its backlog. */
export async function spoolCount(area: Pick<AreaConfig, 'stateDir'>): Promise<number> {
  return (await readdir(path.join(area.stateDir, 'spool')).catch(() => [] as string[])).filter((name) => !name.startsWith('.')).length
}

export type {AreaStatus}

/**
 * What postgres' archive_command (main.ts, run as the postgres OS user) reads and writes. Every
 * file of this folder imports only node builtins and each other: the folder is copied on its own
 * into ZENITH_HOME/pitr/agent, because the postgres OS user can read neither zenith's
 * installation (it may live under /root) nor its store (root-owned, 0600).
 */
import {open, readFile, rename, rm} from 'node:fs/promises'
import path from 'node:path'

import type {S3Location} from './s3-client.js'

export type AreaTarget =
  | {kind: 'folder'; dir: string}
  | {kind: 's3'; location: S3Location; /** Key prefix of the area's segments inside location.prefix, ending in `/`. */ keyPrefix: string}

export interface AreaConfig {
  name: string
  /** Folder of the area's status.json and spool/, owned by the postgres OS user. */
  stateDir: string
  target: AreaTarget
}

/** ZENITH_HOME/pitr/<pg>/archive.json: written by zenith (0600, owned by the postgres OS user). */
export interface ArchiveConfig {
  version: 1
  pg: string
  areas: AreaConfig[]
}

/** ZENITH_HOME/pitr/<pg>/<area>/status.json: written by the archive command after every segment. */
export interface AreaStatus {
  lastArchived?: string
  lastArchivedAt?: string
  lastError?: string
  lastErrorAt?: string
  /** Segments kept in spool/ because the area could not take them yet (the other areas did). */
  backlog: number
  /** Things that happened but need no action (a .partial file of an abandoned timeline that differed). */
  notes?: string[]
}

export async function readArchiveConfig(file: string): Promise<ArchiveConfig> {
  return JSON.parse(await readFile(file, 'utf8')) as ArchiveConfig
}

export async function readAreaStatus(stateDir: string): Promise<AreaStatus> {
  try {
    return JSON.parse(await readFile(path.join(stateDir, 'status.json'), 'utf8')) as AreaStatus
  } catch {
    return {backlog: 0}
  }
}

/** Replaces status.json whole (a reader sees the old or the new one). */
export async function writeAreaStatus(stateDir: string, status: AreaStatus): Promise<void> {
  const file = path.join(stateDir, 'status.json')
  const temporary = `${file}.${process.pid}.tmp`
  try {
    const handle = await open(temporary, 'w', 0o600)
    try {
      await handle.writeFile(JSON.stringify(status) + '\n')
    } finally {
      await handle.close()
    }

    await rename(temporary, file)
  } catch (error) {
    await rm(temporary, {force: true})
    throw error
  }
}

import {chmod, copyFile, mkdir, readdir, rename, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

/**
 * Where a pg's archive command and its files live, and the settings that turn it on: the
 * agent's own installation, so like the rest of this folder it imports nothing of zenith's
 * (pg/lifecycle.ts adds these settings to each start of an archiving pg; pitr/ manages areas).
 *
 *   ZENITH_HOME/pitr/agent/         the archive command (a copy of dist/wal-agent, root-owned, world-readable)
 *   ZENITH_HOME/pitr/<pg>/archive.json   its areas (0600, owned by the postgres OS user: S3 credentials may be in it)
 *   ZENITH_HOME/pitr/<pg>/<area>/   status.json and spool/ of each area, owned by the postgres OS user
 */
export function pitrRoot(home: string): string {
  return path.join(home, 'pitr')
}

export function agentDir(home: string): string {
  return path.join(pitrRoot(home), 'agent')
}

export function pgPitrDir(home: string, pg: string): string {
  return path.join(pitrRoot(home), pg)
}

export function archiveConfigFile(home: string, pg: string): string {
  return path.join(pgPitrDir(home, pg), 'archive.json')
}

export function areaStateDir(home: string, pg: string, area: string): string {
  return path.join(pgPitrDir(home, pg), area)
}

/**
 * The postgres settings of an archiving pg. archive_command names only files (no secret on a
 * command line or in `ps`); the agent reads its areas from archive.json on every call, so adding
 * or removing an area needs no reload. No archive_timeout: a forced switch every few minutes
 * would archive a mostly empty 16 MB segment each time; extract-snapshot switches WAL itself
 * when it needs the newest records.
 */
export function archiveSettings(home: string, pg: string): Record<string, string> {
  const command = [...agentCommand(home), 'archive', archiveConfigFile(home, pg)].map(shellQuote).join(' ')
  return {archive_mode: 'on', archive_command: `${command} "%p" "%f"`, wal_level: 'replica'}
}

/**
 * The first argument with which the single executable (src/sea/boot.ts) runs the agent it
 * carries instead of a zenith command: `zenith --zenith-wal-agent archive CONFIG %p %f`.
 */
export const WAL_AGENT_ARGUMENT = '--zenith-wal-agent'

/**
 * The program and first arguments that run the agent: node and the copy in ZENITH_HOME/pitr/agent
 * or, in the single executable, that executable itself, which carries the agent: then the
 * postgres OS user must be able to run it (a folder like /usr/local/bin, not one under /root).
 */
export function agentCommand(home: string): string[] {
  return isSingleExecutable() ? [process.execPath, WAL_AGENT_ARGUMENT] : [process.execPath, path.join(agentDir(home), 'main.js')]
}

/** As src/single-executable.ts asks it: this folder imports nothing of zenith's. */
function isSingleExecutable(): boolean {
  const sea = process.getBuiltinModule?.('node:sea') as {isSea(): boolean} | undefined
  return sea?.isSea() ?? false
}

/**
 * Copies the agent next to the store, where the postgres OS user can read it (zenith's own
 * folder may be under /root); run before every start of an archiving pg, so that an upgraded
 * zenith's agent is the one that runs. Each file is replaced by a rename: an archive command
 * starting meanwhile reads the old or the new file, never half of one. The single executable
 * has nothing to copy: its archive command runs the executable (agentCommand).
 */
export async function installAgent(home: string): Promise<void> {
  if (isSingleExecutable()) return
  const source = fileURLToPath(new URL('./', import.meta.url))
  const target = agentDir(home)
  await mkdir(target, {recursive: true, mode: 0o755})
  await chmod(target, 0o755)
  const files = (await readdir(source)).filter((name) => name.endsWith('.js'))
  for (const name of files) await replace(path.join(target, name), (temporary) => copyFile(path.join(source, name), temporary))
  await replace(path.join(target, 'package.json'), (temporary) => writeFile(temporary, '{"type": "module"}\n'))
}

async function replace(file: string, write: (temporary: string) => Promise<void>): Promise<void> {
  const temporary = `${file}.${process.pid}.tmp`
  await write(temporary)
  await chmod(temporary, 0o644)
  await rename(temporary, file)
}

function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`
}

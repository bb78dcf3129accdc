import {run, runChecked} from '../process.js'
import {ExternalCommandError, tail} from '../errors.js'

/**
 * `cp -a` keeps owners, modes and times; `--reflink=always` shares blocks or fails. Files that
 * vanish during the copy of a running data directory (temporary files, stats) are not an error:
 * postgres recreates them, as pg_basebackup also assumes.
 */
export async function copyTree(source: string, target: string, reflink: 'always' | 'never' | 'auto', intoExisting = false): Promise<void> {
  const args = ['-a', `--reflink=${reflink}`, intoExisting ? `${source}/.` : source, target]
  const result = await run('cp', args)
  if (result.exitCode === 0) return
  const problems = result.stderr.split('\n').filter((line) => line.trim() !== '' && !/No such file or directory/.test(line))
  if (problems.length > 0 || !/No such file or directory/.test(result.stderr)) {
    throw new ExternalCommandError('cp', args, tail(result.stderr), result.exitCode)
  }
}

/** Logical bytes under a folder (`du -sb`). */
export async function diskUsage(target: string): Promise<number> {
  return (await diskUsages([target]))[0]
}

/**
 * Logical bytes under each folder, in one `du` (a process per folder costs more than the walk
 * of a small data directory). A folder that is missing counts 0. The folders must not share
 * hard links: du counts a file once across its arguments.
 */
export async function diskUsages(targets: readonly string[]): Promise<number[]> {
  if (targets.length === 0) return []
  const result = await run('du', ['-sb', '--null', '--', ...targets])
  const sizes = new Map<string, number>()
  for (const line of result.stdout.split('\0')) {
    const tab = line.indexOf('\t')
    if (tab > 0) sizes.set(line.slice(tab + 1), Number(line.slice(0, tab)) || 0)
  }

  return targets.map((target) => sizes.get(target) ?? 0)
}

/**
 * A snapshot is recorded as ready (in the fsynced store) only after its data is on disk, so a
 * power loss cannot leave a "ready" snapshot with missing blocks. syncfs flushes the whole
 * filesystem: cheap for block-sharing copies, the real write time for plain copies.
 */
export async function syncFilesystem(target: string): Promise<void> {
  await runChecked('sync', ['-f', target])
}

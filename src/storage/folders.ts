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
  const result = await run('du', ['-sb', target])
  return Number(result.stdout.split(/\s/)[0]) || 0
}

/**
 * A snapshot is recorded as ready (in the fsynced store) only after its data is on disk, so a
 * power loss cannot leave a "ready" snapshot with missing blocks. syncfs flushes the whole
 * filesystem: cheap for block-sharing copies, the real write time for plain copies.
 */
export async function syncFilesystem(target: string): Promise<void> {
  await runChecked('sync', ['-f', target])
}

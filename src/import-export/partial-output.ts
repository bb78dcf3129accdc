import {randomBytes} from 'node:crypto'
import {mkdir, readFile, readdir, rm, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {leftByDeadProcess} from '../state/lock.js'

/**
 * An export writes its file as `FILE.partial-p<PID>` beside the final name, outside any storage,
 * where no scratch sweep looks. A record in `$ZENITH_HOME/scratch/` names it, so that when the
 * exporter is killed the next command's repair finds and removes it.
 */
function recordsDir(home: string): string {
  return path.join(home, 'scratch')
}

export function partialName(file: string): string {
  return `${file}.partial-p${process.pid}`
}

/** Records `partial` (from partialName) as this process's; returns the removal of the record. */
export async function recordPartialOutput(home: string, partial: string): Promise<() => Promise<void>> {
  const dir = recordsDir(home)
  await mkdir(dir, {recursive: true, mode: 0o700})
  const record = path.join(dir, `output.p${process.pid}.${randomBytes(3).toString('hex')}`)
  await writeFile(record, partial, {mode: 0o600})
  return () => rm(record, {force: true})
}

/** Partial outputs of dead exporters, removed with their records; returns the files removed. */
export async function reclaimPartialOutputs(home: string): Promise<string[]> {
  const dir = recordsDir(home)
  const removed: string[] = []
  for (const entry of await readdir(dir).catch(() => [] as string[])) {
    const owner = Number(/^output\.p(\d+)\.[0-9a-f]+$/.exec(entry)?.[1])
    if (!leftByDeadProcess(owner)) continue
    const record = path.join(dir, entry)
    const partial = (await readFile(record, 'utf8').catch(() => '')).trim()
    // Only ever the dead owner's own partial file, whatever the record was edited to say.
    if (path.isAbsolute(partial) && partial.endsWith(`.partial-p${owner}`)) {
      await rm(partial, {force: true})
      removed.push(partial)
    }

    await rm(record, {force: true})
  }

  return removed
}

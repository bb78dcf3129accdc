import {readFile, rename, rm, writeFile} from 'node:fs/promises'
import path from 'node:path'

import type {Zenith} from '../context.js'
import {isAlive} from '../state/lock.js'

/**
 * `ZENITH_HOME/serve.json`: the server that runs for this home (its pid and address), so that
 * `zenith console` opens it instead of starting a second one. Written once it listens, removed
 * when it stops; one left by a killed server names a dead pid and is ignored.
 */
function runtimeFile(zenith: Zenith): string {
  return path.join(zenith.home, 'serve.json')
}

export async function recordRunningServer(zenith: Zenith, url: string): Promise<void> {
  const file = runtimeFile(zenith)
  const temporary = `${file}.${process.pid}`
  await writeFile(temporary, JSON.stringify({pid: process.pid, url}) + '\n', {mode: 0o600})
  await rename(temporary, file)
}

export async function forgetRunningServer(zenith: Zenith): Promise<void> {
  const running = await runningServer(zenith)
  if (running?.pid === process.pid) await rm(runtimeFile(zenith), {force: true})
}

/** The live server of this home, if one runs. */
export async function runningServer(zenith: Zenith): Promise<{pid: number; url: string} | undefined> {
  try {
    const record = JSON.parse(await readFile(runtimeFile(zenith), 'utf8')) as {pid?: number; url?: string}
    return typeof record.pid === 'number' && typeof record.url === 'string' && isAlive(record.pid) ? {pid: record.pid, url: record.url} : undefined
  } catch {
    return undefined
  }
}

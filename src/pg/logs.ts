import {open, readFile, stat} from 'node:fs/promises'
import {setTimeout as sleep} from 'node:timers/promises'

import type {Zenith} from '../context.js'
import {logFileOf, pgRecord} from './lifecycle.js'

export async function readLog(zenith: Zenith, name: string, lines = 100): Promise<{file: string; text: string; size: number}> {
  pgRecord(await zenith.store.read(), name)
  const file = logFileOf(zenith, name)
  const text = await readFile(file, 'utf8').catch(() => '')
  const all = text.split('\n')
  if (all.at(-1) === '') all.pop()
  return {file, text: all.slice(-lines).join('\n'), size: Buffer.byteLength(text)}
}

/** Calls `onData` with what is appended to `file` after `from`, until `signal` aborts. */
export async function followLog(file: string, from: number, onData: (chunk: string) => void, signal: AbortSignal): Promise<void> {
  let position = from
  while (!signal.aborted) {
    const size = await stat(file).then((info) => info.size, () => 0)
    if (size < position) position = 0 // truncated or rotated
    if (size > position) {
      const handle = await open(file, 'r')
      try {
        const buffer = Buffer.alloc(size - position)
        await handle.read(buffer, 0, buffer.length, position)
        position = size
        onData(buffer.toString('utf8'))
      } finally {
        await handle.close()
      }
    }

    await sleep(250, undefined, {signal}).catch(() => undefined)
  }
}

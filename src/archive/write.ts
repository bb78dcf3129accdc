import {once} from 'node:events'
import {createReadStream} from 'node:fs'
import path from 'node:path'
import {Transform, type Writable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import {type Compression, compressor} from './compression.js'
import {type DataDirEntry, readBufferSize} from './data-dir.js'
import type {ArchiveManifest} from './manifest.js'

export const MANIFEST_ENTRY = 'manifest.json'

export interface WriteArchiveOptions {
  /** The `.zenith` manifest, written as the first entry; without it the output is a plain tar. */
  manifest?: ArchiveManifest
  /** Entries to write when there is no manifest (a plain tar of a data directory). */
  entries?: DataDirEntry[]
  compression: Compression
  /** Uncompressed content bytes written so far. */
  onBytes?: (done: number) => void
  signal?: AbortSignal
}

/**
 * Writes a data directory as a tar stream (readable with plain `tar`): `manifest.json` first when
 * there is a manifest, then every directory, file and symlink in the manifest's order.
 */
export async function writeArchive(dir: string, output: Writable, options: WriteArchiveOptions): Promise<{bytesWritten: number}> {
  const tar = await import('tar-stream')
  const pack = tar.pack()
  let written = 0
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      written += chunk.length
      callback(null, chunk)
    },
  })
  // The output is not ended here: it may be stdout, and a file is closed by its owner.
  const sent = pipeline(pack, compressor(options.compression), counter, output, {signal: options.signal, end: false})

  const fill = async () => {
    const entries = options.manifest?.files ?? options.entries ?? []
    if (options.manifest) {
      await packed((callback) => pack.entry({name: MANIFEST_ENTRY, type: 'file', mode: 0o600, mtime: new Date()}, JSON.stringify(options.manifest), callback))
    }

    let done = 0
    for (const entry of entries) {
      options.signal?.throwIfAborted()
      const mtime = new Date((entry.mtime ?? 0) * 1000)
      if (entry.type === 'dir') {
        await packed((callback) => pack.entry({name: entry.path, type: 'directory', mode: entry.mode, mtime}, callback))
      } else if (entry.type === 'symlink') {
        await packed((callback) => pack.entry({name: entry.path, type: 'symlink', linkname: entry.target, mode: entry.mode, mtime}, callback))
      } else {
        await packed(async (callback) => {
          const sink = pack.entry({name: entry.path, type: 'file', size: entry.size, mode: entry.mode, mtime}, callback)
          // An output that fails (a full disk) destroys the pack and this entry: its error must
          // reach the caller, not crash zenith as an unhandled 'error' event.
          sink.on('error', callback)
          if (entry.size > 0) {
            // Exactly the size in the header: a file that grew since it was listed must not break the tar.
            for await (const chunk of createReadStream(path.join(dir, entry.path), {highWaterMark: readBufferSize(entry.size), end: entry.size - 1})) {
              done += (chunk as Buffer).length
              options.onBytes?.(done)
              if (!sink.write(chunk)) {
                const drained = once(sink, 'drain')
                // Rejects with the entry's error, which `callback` above already reports.
                drained.catch(() => undefined)
                await Promise.race([drained, sent])
              }
            }
          }

          sink.end(undefined)
        })
      }
    }

    pack.finalize()
  }

  try {
    await Promise.all([fill(), sent])
  } catch (error) {
    pack.destroy(error as Error)
    throw error
  }

  return {bytesWritten: written}
}

/** Resolves when tar-stream has packed an entry (its callback), rejects on its error. */
function packed(add: (callback: (error?: Error | null) => void) => unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    const callback = (error?: Error | null) => (error ? reject(error) : resolve())
    Promise.resolve(add(callback)).catch(reject)
  })
}

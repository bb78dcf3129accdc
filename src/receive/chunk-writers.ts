import {open} from 'node:fs/promises'
import {availableParallelism} from 'node:os'
import {Worker} from 'node:worker_threads'

import {embeddedAsset} from '../single-executable.js'
import type {TargetFile, WriteReply, WriterRequest} from './chunk-writer.js'

/** Writer threads at most: past the cores, or past what the disk takes, more only cost memory. */
const MAX_WRITERS = 4
/** Files at least this large are flushed to disk as soon as they are complete. */
const FLUSH_AT_ONCE_BYTES = 4 * 1024 * 1024

async function flush(file: string): Promise<void> {
  const handle = await open(file, 'r')
  try {
    await handle.datasync()
  } finally {
    await handle.close()
  }
}

/**
 * The writer threads of a pull or recv. The event loop fetches chunks and hands each to the
 * thread with the least work queued, which inflates, verifies and writes it (see
 * chunk-writer.ts): the work that measured as the cost of a pull (sha256, inflate, writing
 * hundreds of MiB into the page cache, the garbage of a fresh 1 MiB buffer per chunk) runs on
 * the other cores, in synchronous writes with no hand-over to libuv's thread pool. A file whose
 * last chunk a thread wrote is finished (mode, time, close) by that thread with its next request.
 */
export class ChunkWriters {
  private readonly workers: Worker[]
  private readonly queued: number[]
  /** Why a thread stopped, once it has. */
  private readonly stopped: Array<Error | undefined>
  private readonly exited: Array<Promise<void>>
  private readonly pending = new Map<number, {worker: number; resolve: (reply: WriteReply) => void; reject: (error: Error) => void}>()
  /** Chunk places not yet written, per file. */
  private readonly remaining: number[]
  /** Files each thread is to finish with its next request. */
  private readonly toFinish: number[][]
  /** Large files being flushed to disk (see write). */
  private readonly flushing: Array<Promise<void>> = []
  private nextId = 0

  constructor(private readonly files: TargetFile[], count = ChunkWriters.count(files.length)) {
    this.remaining = files.map((file) => file.places)
    const empty = files.flatMap((file, index) => (file.places === 0 ? [index] : []))
    // The single executable has no chunk-writer.js beside it: it carries the thread's bundle.
    const script = embeddedAsset('chunk-writer.cjs')?.toString('utf8')
    this.workers = Array.from({length: count}, (_, index) => {
      const workerData = {files, empty: empty.filter((_, i) => i % count === index)}
      const worker = script
        ? new Worker(script, {eval: true, workerData})
        : new Worker(new URL('chunk-writer.js', import.meta.url), {workerData})
      worker.on('message', (reply: WriteReply) => {
        const waiting = this.pending.get(reply.id)
        this.pending.delete(reply.id)
        this.queued[index]--
        waiting?.resolve(reply)
      })
      worker.on('error', (error) => {
        this.stopped[index] ??= error
        this.failAll(index, error)
      })
      return worker
    })
    this.queued = this.workers.map(() => 0)
    this.stopped = this.workers.map(() => undefined)
    this.toFinish = this.workers.map(() => [])
    this.exited = this.workers.map((worker, index) => new Promise<void>((resolve) => {
      worker.once('exit', () => {
        this.stopped[index] ??= new Error('a writer thread stopped')
        this.failAll(index, this.stopped[index])
        resolve()
      })
    }))
  }

  /** Threads for `files` files: one per core, at least one, at most MAX_WRITERS. */
  static count(files: number): number {
    return Math.max(1, Math.min(MAX_WRITERS, availableParallelism(), files))
  }

  /**
   * Inflates, verifies and writes one chunk at its places ([file index, offset]) in the least
   * busy thread. Resolves with ok, or corrupt (then nothing was written), or a write's failure.
   */
  async write(hash: string, size: number, stored: Uint8Array, places: Array<[number, number]>): Promise<WriteReply> {
    const worker = this.queued.indexOf(Math.min(...this.queued))
    const reply = await this.send(worker, (id, finish) => ({type: 'write', id, hash, size, stored, places, finish}))
    if (reply.ok) {
      for (const [file] of places) {
        if (--this.remaining[file] > 0) continue
        this.toFinish[worker].push(file)
        // Flushed at once (in libuv's pool, idle in a pull), so that the disk writes it while
        // later chunks arrive and the sync that ends the pull has little left to wait for.
        if (this.files[file].size >= FLUSH_AT_ONCE_BYTES) this.flushing.push(flush(this.files[file].path))
      }
    }

    return reply
  }

  /** Once every chunk is written: the last files are finished and every thread closes what it has open. */
  async finish(): Promise<void> {
    await Promise.all(this.flushing)
    const replies = await Promise.all(this.workers.map((_, worker) => this.send(worker, (id, finish) => ({type: 'finish', id, finish}))))
    for (const reply of replies) {
      if (!reply.ok && !reply.corrupt) throw Object.assign(new Error(reply.message), {code: reply.code})
    }
  }

  /** Each thread closes what it still has open and exits; resolved when all have. */
  async close(): Promise<void> {
    for (const worker of this.workers) worker.postMessage({type: 'close'} satisfies WriterRequest)
    await Promise.all(this.exited)
  }

  private send(worker: number, request: (id: number, finish: number[]) => WriterRequest): Promise<WriteReply> {
    const id = this.nextId++
    return new Promise<WriteReply>((resolve, reject) => {
      if (this.stopped[worker]) {
        reject(this.stopped[worker])
        return
      }

      this.pending.set(id, {worker, resolve, reject})
      this.queued[worker]++
      this.workers[worker].postMessage(request(id, this.toFinish[worker].splice(0)))
    })
  }

  private failAll(worker: number, error: Error): void {
    for (const [id, waiting] of this.pending) {
      if (waiting.worker !== worker) continue
      this.pending.delete(id)
      this.queued[worker]--
      waiting.reject(error)
    }
  }
}

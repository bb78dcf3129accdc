/**
 * A writer thread of a pull or a recv (started by ChunkWriters): it inflates each chunk it is
 * given, checks it against its sha256 and size, and writes it at its places, with plain
 * synchronous writes; nothing is written for a chunk that does not match. Any thread may write
 * into any file (a large table's chunks are spread over all of them): a file is created by the
 * first chunk written into it, without truncation, and given its mode and time by the thread
 * that writes its last chunk (told so with its next request). Empty files are created as soon
 * as the thread starts, while the first chunks are on their way.
 */
import {chmodSync, closeSync, constants, fchmodSync, futimesSync, openSync, utimesSync, writeSync} from 'node:fs'
import {parentPort, workerData} from 'node:worker_threads'

import {openChunk} from '../archive/chunker.js'

/** A regular file of the snapshot being written. */
export interface TargetFile {
  path: string
  mode: number
  /** Created with its final mode (the umask leaves it alone); otherwise created 0600 and given it when finished. */
  createdWithMode: boolean
  /** Seconds. */
  mtime?: number
  /** Chunk places in the file; 0 for an empty file. */
  places: number
  size: number
}

export interface WriteRequest {
  type: 'write'
  id: number
  hash: string
  size: number
  /** The chunk as stored (compressed). */
  stored: Uint8Array
  /** [index in the files, offset in the file]. */
  places: Array<[file: number, offset: number]>
  /** Files whose last chunk this thread wrote: to be given their mode and time (after this write). */
  finish: number[]
}

/** Sent when every chunk is written: the last files to finish, then everything is closed. */
export interface FinishRequest {
  type: 'finish'
  id: number
  finish: number[]
}

export interface CloseRequest {
  type: 'close'
}

export type WriterRequest = WriteRequest | FinishRequest | CloseRequest

export type WriteReply =
  | {id: number; ok: true}
  | {id: number; ok: false; corrupt: true}
  | {id: number; ok: false; corrupt: false; message: string; code?: string}

/** Files kept open by one thread; beyond it, the least recently written one is closed (and reopened for its next chunk). */
const MAX_OPEN_FILES = 128

class FileWriter {
  /** Index -> fd, least recently used first. */
  private readonly open = new Map<number, number>()

  constructor(private readonly files: TargetFile[], empty: number[]) {
    for (const index of empty) {
      const file = this.files[index]
      this.finishFile(index, openSync(file.path, 'wx', this.createMode(file)))
    }
  }

  handle(request: WriteRequest | FinishRequest): WriteReply {
    try {
      const reply = request.type === 'write' ? this.write(request) : {id: request.id, ok: true as const}
      for (const index of request.finish) this.finishFile(index, this.open.get(index))
      if (request.type === 'finish') this.closeAll()
      return reply
    } catch (error) {
      const failure = error as NodeJS.ErrnoException
      return {id: request.id, ok: false, corrupt: false, message: failure.message, code: failure.code}
    }
  }

  closeAll(): void {
    for (const fd of this.open.values()) closeSync(fd)
    this.open.clear()
  }

  private write(request: WriteRequest): WriteReply {
    const content = openChunk(request.stored, request.hash, request.size)
    if (!content) return {id: request.id, ok: false, corrupt: true}
    for (const [index, offset] of request.places) {
      const fd = this.fd(index)
      let written = 0
      while (written < content.length) written += writeSync(fd, content, written, content.length - written, offset + written)
    }

    return {id: request.id, ok: true}
  }

  /** Mode and time, through the file's descriptor when it is open here (then closed), else by path. */
  private finishFile(index: number, fd: number | undefined): void {
    const file = this.files[index]
    if (fd === undefined) {
      if (!file.createdWithMode) chmodSync(file.path, file.mode & 0o7777)
      if (file.mtime !== undefined) utimesSync(file.path, file.mtime, file.mtime)
      return
    }

    this.open.delete(index)
    try {
      if (!file.createdWithMode) fchmodSync(fd, file.mode & 0o7777)
      if (file.mtime !== undefined) futimesSync(fd, file.mtime, file.mtime)
    } finally {
      closeSync(fd)
    }
  }

  private createMode(file: TargetFile): number {
    return file.createdWithMode ? file.mode & 0o7777 : 0o600
  }

  private fd(index: number): number {
    const open = this.open.get(index)
    if (open !== undefined) {
      this.open.delete(index)
      this.open.set(index, open)
      return open
    }

    if (this.open.size >= MAX_OPEN_FILES) {
      const [oldest, fd] = this.open.entries().next().value as [number, number]
      this.open.delete(oldest)
      closeSync(fd)
    }

    const file = this.files[index]
    // No O_TRUNC: another thread may have written into it already. The folder is new and private.
    const fd = openSync(file.path, constants.O_WRONLY | constants.O_CREAT, this.createMode(file))
    this.open.set(index, fd)
    return fd
  }
}

if (parentPort) {
  const port = parentPort
  const {files, empty} = workerData as {files: TargetFile[]; empty: number[]}
  const writer = new FileWriter(files, empty)
  port.on('message', (request: WriterRequest) => {
    if (request.type === 'close') {
      // After a failure too: nothing may stay open in a folder that is about to be removed.
      writer.closeAll()
      port.close()
      return
    }

    port.postMessage(writer.handle(request))
  })
}

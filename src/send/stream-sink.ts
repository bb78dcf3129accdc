import type {Readable, Writable} from 'node:stream'

import type {ArchiveManifest} from '../archive/manifest.js'
import type {ZenithError} from '../errors.js'
import {type Frame, STREAM_PROTOCOL, frameFailure, parseJsonFrame, protocolError, readFrames, writeFrame, writeJsonFrame} from '../protocol/frames.js'
import type {SnapshotSink} from './sink.js'
import type {SshTarget} from '../urls.js'
import {type SshSession, startSsh} from '../protocol/ssh.js'

/**
 * The pushing end of the stream protocol (recv-stream.ts) over any pair of streams: the whole
 * snapshot goes as frames, back to back, with no round trip per chunk. `gone` explains why the
 * other side stopped when it did so without an error frame.
 */
export class StreamSink implements SnapshotSink {
  readonly manifestFirst = true
  private readonly frames: AsyncGenerator<Frame>

  constructor(readonly label: string, input: Readable, private readonly output: Writable, private readonly gone: () => Promise<ZenithError>) {
    this.frames = readFrames(input)
  }

  async begin(snapshot: string, manifest?: ArchiveManifest): Promise<{existing: Set<string>; manifest?: ArchiveManifest}> {
    await this.send(() => writeJsonFrame(this.output, 'B', {snapshot, protocol: STREAM_PROTOCOL, manifest}))
    const {existing} = await this.reply<{existing: string[]}>('E')
    return {existing: new Set(existing)}
  }

  putChunk(hash: string, stored: Buffer): Promise<void> {
    return this.send(() => writeFrame(this.output, 'C', Buffer.from(hash, 'hex'), stored))
  }

  /** Every chunk is sent: the receiver finishes writing and answers. */
  async commit(): Promise<void> {
    await this.send(() => writeJsonFrame(this.output, 'D', {}))
    await this.reply('R')
  }

  async close(): Promise<void> {
    this.output.end()
  }

  private async send(write: () => Promise<void>): Promise<void> {
    try {
      await write()
    } catch {
      throw await this.failure()
    }
  }

  private async reply<T>(type: string): Promise<T> {
    const next = await this.frames.next()
    if (next.done) throw await this.gone()
    if (next.value.type === 'F') throw frameFailure(next.value, this.label)
    if (next.value.type !== type) throw protocolError(`expected a "${type}" frame, got "${next.value.type}"`)
    return parseJsonFrame<T>(next.value)
  }

  /** Why the other side stopped: its error frame if it sent one, else what `gone` says. */
  private async failure(): Promise<ZenithError> {
    for (;;) {
      const next = await this.frames.next().catch(() => ({done: true as const, value: undefined}))
      if (next.done) return this.gone()
      if (next.value.type === 'F') return frameFailure(next.value, this.label)
    }
  }
}

/** A push over ssh: `zenith snapshot recv --stdio` on the other host, fed through the connection. */
export class SshSink implements SnapshotSink {
  readonly manifestFirst = true
  readonly label: string
  private session?: SshSession
  private stream?: StreamSink

  constructor(private readonly target: SshTarget) {
    this.label = target.label
  }

  /** ssh and zenith on the other host start while this one reads the snapshot. */
  connect(): void {
    if (this.session) return
    const session = startSsh(this.target, ['snapshot', 'recv', '--stdio', ...(this.target.storage ? ['--storage', this.target.storage] : [])])
    this.session = session
    this.stream = new StreamSink(this.label, session.child.stdout, session.child.stdin, () => session.failure())
  }

  begin(snapshot: string, manifest?: ArchiveManifest): Promise<{existing: Set<string>; manifest?: ArchiveManifest}> {
    this.connect()
    return this.stream!.begin(snapshot, manifest)
  }

  putChunk(hash: string, stored: Buffer): Promise<void> {
    return this.stream!.putChunk(hash, stored)
  }

  commit(): Promise<void> {
    return this.stream!.commit()
  }

  async close(): Promise<void> {
    await this.session?.close()
  }
}

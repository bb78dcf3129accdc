import type {Readable, Writable} from 'node:stream'

import {type ReportedError, ZenithError, explainSystemError, isZenithError, reportedError} from '../errors.js'

/**
 * The framing of zenith's stream protocol (pushes and pulls over ssh, where the two sides talk
 * through the stdin and stdout of `zenith snapshot recv --stdio` / `snapshot send --stdio` on
 * the other host): each frame is a 4-byte big-endian payload length, a 1-byte type (an ASCII
 * letter) and the payload. One stream carries a whole transfer, so chunks are sent back to back
 * without a round trip each, which is what makes it fast over a long link.
 */
export interface Frame {
  type: string
  payload: Buffer
}

/** Version of the stream protocol; both sides send it in their first frame. 2: the manifest comes first. */
export const STREAM_PROTOCOL = 2

/** The largest frame accepted: a manifest of a very large database, or a chunk that did not compress. */
export const MAX_FRAME_BYTES = 1024 * 1024 * 1024
const HEADER = 5

/** Writes a frame, waiting while the stream's buffer is full (so a fast sender never floods memory). */
export async function writeFrame(stream: Writable, type: string, ...parts: Buffer[]): Promise<void> {
  if (stream.destroyed || !stream.writable) throw new Error('the connection is closed')
  const length = parts.reduce((sum, part) => sum + part.length, 0)
  const header = Buffer.alloc(HEADER)
  header.writeUInt32BE(length, 0)
  header.write(type, 4, 'latin1')
  let ok = stream.write(header)
  for (const part of parts) ok = stream.write(part)
  if (ok) return
  // Until there is room again, or the other side is gone (the caller finds out why).
  await new Promise<void>((resolve) => {
    const done = () => {
      stream.off('drain', done)
      stream.off('close', done)
      stream.off('error', done)
      resolve()
    }

    stream.on('drain', done)
    stream.on('close', done)
    stream.on('error', done)
  })
}

/** Writes a frame whose payload is JSON. */
export function writeJsonFrame(stream: Writable, type: string, value: unknown): Promise<void> {
  return writeFrame(stream, type, Buffer.from(JSON.stringify(value)))
}

export function parseJsonFrame<T>(frame: Frame): T {
  try {
    return JSON.parse(frame.payload.toString('utf8')) as T
  } catch {
    throw protocolError(`a "${frame.type}" frame is not valid JSON`)
  }
}

/**
 * The frames of a stream, in order, until it ends. A stream that ends inside a frame, or a frame
 * larger than MAX_FRAME_BYTES, is a protocol error.
 */
export async function * readFrames(stream: Readable): AsyncGenerator<Frame> {
  let buffered: Buffer[] = []
  let size = 0
  const take = (bytes: number): Buffer => {
    const joined = buffered.length === 1 ? buffered[0] : Buffer.concat(buffered, size)
    const taken = joined.subarray(0, bytes)
    const rest = joined.subarray(bytes)
    buffered = rest.length > 0 ? [rest] : []
    size = rest.length
    return taken
  }

  for await (const data of stream) {
    buffered.push(data as Buffer)
    size += (data as Buffer).length
    while (size >= HEADER) {
      const head = buffered[0].length >= HEADER ? buffered[0] : Buffer.concat(buffered, size)
      const length = head.readUInt32BE(0)
      if (length > MAX_FRAME_BYTES) throw protocolError(`a frame of ${length} bytes is larger than allowed`)
      if (size < HEADER + length) break
      const frame = take(HEADER + length)
      // A copy: the frame outlives the read buffer it was cut from.
      yield {type: frame.toString('latin1', 4, 5), payload: Buffer.from(frame.subarray(HEADER))}
    }
  }

  if (size > 0) throw protocolError('the stream ended inside a frame')
}

export function protocolError(what: string): ZenithError {
  return new ZenithError('SOURCE_UNREACHABLE', `The other side of the transfer broke the protocol: ${what}.`,
    'Check that the same zenith version runs on both hosts, and that nothing (a login banner, a shell profile) prints to stdout on the remote host.')
}

/** An error as the other side receives it: an F frame's payload (`hint` for an error that is not a ZenithError). */
export function failurePayload(raw: unknown, hint = 'Run it again.'): {error: ReportedError} {
  const error = explainSystemError(raw) ?? raw
  return {error: isZenithError(error)
    ? {code: error.code, message: error.message, hint: error.hint}
    : {code: 'INVALID_ARGUMENT', message: error instanceof Error ? error.message : String(error), hint}}
}

/** The error an F frame carries, its message prefixed with who sent it. */
export function frameFailure(frame: Frame, sender: string): ZenithError {
  return reportedError(parseJsonFrame<{error: ReportedError}>(frame).error, sender)
}

import {createHash} from 'node:crypto'
import type {Readable, Writable} from 'node:stream'

import type {Zenith} from '../context.js'
import {ZenithError} from '../errors.js'
import {type Frame, STREAM_PROTOCOL, failurePayload, frameFailure, parseJsonFrame, protocolError, readFrames, writeJsonFrame} from '../protocol/frames.js'
import {ChunkArrivals, type ReceiveResult, type ReceiverOptions, SnapshotReceiver} from './receiver.js'

/**
 * The receiving end of a transfer over a byte stream: `zenith snapshot recv --stdio`, which a
 * push to `ssh://host` runs on that host, and the local end of a pull from `ssh://host`. Frames
 * (see frames.ts):
 *
 *   sender -> B {snapshot, protocol, manifest}     receiver -> E {existing: [sha256...]} (or F {error})
 *   sender -> C <32-byte sha256><stored chunk>, the ones not existing, in the manifest's order
 *   sender -> D {}                                 receiver -> R {snapshot, logicalBytes, receivedBytes} (or F {error})
 *
 * With the manifest known first, each chunk is written into place by the writer threads as it
 * arrives (verified there, as in a pull), and kept in a cache folder that a re-run of an
 * interrupted transfer takes over. The snapshot becomes visible after the last one. The first
 * failure is sent as F {error: {code, message, hint}} and ends the exchange; the ssh login
 * itself is the authentication.
 */
export async function receiveOverStream(zenith: Zenith, options: ReceiverOptions & {
  input: Readable
  output: Writable
  /** Names the cache folder a re-run takes over (default: from the snapshot's name). */
  cacheKey?: string
  /** Who is sending, for errors it reports in an F frame (a pull from ssh://...). */
  sender?: string
}): Promise<ReceiveResult & {chunksReceived: number; chunksCached: number}> {
  const frames = readFrames(options.input)
  const nextFrame = async (...types: string[]): Promise<Frame> => {
    const next = await frames.next()
    if (next.done) {
      throw new ZenithError('INTERRUPTED', 'The transfer stopped before it was complete; nothing was created.', 'Run it again: the chunks received so far are kept and not sent again.')
    }

    if (next.value.type === 'F' && options.sender) throw frameFailure(next.value, options.sender)

    if (!types.includes(next.value.type)) throw protocolError(`expected a "${types.join('" or "')}" frame, got "${next.value.type}"`)
    return next.value
  }

  let receiver: SnapshotReceiver | undefined
  let committed = false
  try {
    const begin = await nextFrame('B')
    const {snapshot, protocol, manifest} = parseJsonFrame<{snapshot: string; protocol: number; manifest: unknown}>(begin)
    if (protocol !== STREAM_PROTOCOL) {
      throw new ZenithError('INVALID_ARGUMENT', `The sending zenith speaks stream protocol ${protocol}; this one speaks ${STREAM_PROTOCOL}.`, 'Use the same zenith version on both hosts.')
    }

    receiver = await SnapshotReceiver.open(zenith, {
      kind: 'ssh', key: options.cacheKey ?? createHash('sha256').update(String(snapshot)).digest('hex').slice(0, 16),
      storage: options.storage, as: options.as, onProgress: options.onProgress,
    })
    await writeJsonFrame(options.output, 'E', {existing: await receiver.beginWithManifest(snapshot, manifest), protocol: STREAM_PROTOCOL})

    // The writers ask for chunks while the stream brings them; whichever fails first stops the other.
    const arrivals = new ChunkArrivals()
    const reading = (async () => {
      for (;;) {
        const frame = await nextFrame('C', 'D')
        if (frame.type === 'D') {
          arrivals.finish()
          return
        }

        if (frame.payload.length <= 32) throw protocolError('a chunk frame has no content')
        await arrivals.deliver(frame.payload.toString('hex', 0, 32), frame.payload.subarray(32))
      }
    })().catch((error: Error) => {
      arrivals.abort(error)
      throw error
    })
    const writing = receiver.receiveFrom(arrivals).catch((error: Error) => {
      arrivals.abort(error)
      throw error
    })
    // A failure of the stream reaches the writers through `arrivals`; one of the writers stops
    // the exchange at once (the sender learns it from the F frame).
    reading.catch(() => undefined)
    const result = await writing
    await reading
    committed = true
    await writeJsonFrame(options.output, 'R', {snapshot: result.snapshot.name, logicalBytes: result.logicalBytes, receivedBytes: result.receivedBytes})
    return {...result, chunksReceived: receiver.chunksReceived, chunksCached: receiver.chunksCached}
  } catch (error) {
    await writeJsonFrame(options.output, 'F', failurePayload(error)).catch(() => undefined)
    throw error
  } finally {
    await receiver?.close({keep: !committed})
  }
}

import {createHash, randomBytes, timingSafeEqual} from 'node:crypto'
import http from 'node:http'
import os from 'node:os'

import type {Zenith} from '../context.js'
import {ZenithError, isZenithError} from '../errors.js'
import type {OnProgress} from '../progress.js'
import {failurePayload} from '../protocol/frames.js'
import {type ReceiveResult, SnapshotReceiver} from './receiver.js'

export interface ReceiveOptions {
  /** TCP port (default: a free one). */
  port?: number
  /** Address to listen on (default 127.0.0.1). */
  listen?: string
  /** Local storage for the received snapshot (default `local`). */
  storage?: string
  /** Called once listening, with the URL to give to `zenith snapshot push --to`. */
  onUrl: (url: string) => void
  onProgress: OnProgress
  /** A request with a wrong token was refused (and nothing written). */
  onRefused?: (from: string) => void
  signal?: AbortSignal
}

export type {ReceiveResult} from './receiver.js'

const MAX_CHUNK_BODY = 64 * 1024 * 1024
const MAX_MANIFEST_BODY = 1024 * 1024 * 1024

/**
 * Receives one snapshot pushed to `zenith://host:port/TOKEN` and exits. Every request must
 * carry the token (a fresh random one per run); chunks are verified as they arrive and kept in
 * a cache, so a push that was interrupted can be re-run against the same URL and sends only
 * what is missing. The snapshot becomes visible only after the commit verified everything.
 */
export async function receiveSnapshot(zenith: Zenith, options: ReceiveOptions): Promise<ReceiveResult> {
  const token = randomBytes(24).toString('base64url')
  const receiver = await SnapshotReceiver.open(zenith, {
    kind: 'recv', key: createHash('sha256').update(token).digest('hex').slice(0, 16), storage: options.storage, onProgress: options.onProgress,
  })

  const server = http.createServer()
  let fail: (error: unknown) => void = () => {}
  const finished = new Promise<ReceiveResult>((resolve, reject) => {
    fail = reject
    const handle = async (request: http.IncomingMessage, response: http.ServerResponse): Promise<void> => {
      const [, given = '', ...route] = (request.url ?? '').split('/')
      if (!tokenMatches(given, token)) {
        request.resume()
        options.onRefused?.(`${request.socket.remoteAddress ?? '?'} (${request.method} ${route.join('/') || '/'})`)
        reply(response, 401, {error: {code: 'AUTH_FAILED', message: 'wrong token', hint: 'Use the URL zenith snapshot recv printed.'}})
        return
      }

      const action = `${request.method} ${route[0] ?? ''}`
      if (action === 'POST begin') {
        const {snapshot} = JSON.parse((await readBody(request, 64 * 1024)).toString('utf8')) as {snapshot: string}
        reply(response, 200, {existing: await receiver.begin(snapshot)})
        return
      }

      if (action === 'PUT chunks' && route.length === 2) {
        await receiver.chunk(route[1], await readBody(request, MAX_CHUNK_BODY))
        reply(response, 204)
        return
      }

      if (action === 'POST commit') {
        const sent = JSON.parse((await readBody(request, MAX_MANIFEST_BODY)).toString('utf8')) as unknown
        const result = await receiver.commit(sent)
        reply(response, 200, {snapshot: result.snapshot.name})
        resolve(result)
        return
      }

      reply(response, 404, {error: {code: 'INVALID_ARGUMENT', message: `unknown request ${action}`, hint: 'Use `zenith snapshot push` to send to this URL.'}})
    }

    server.on('request', (request, response) => {
      handle(request, response).catch((error: unknown) => {
        // The pusher gets the error (with its code) and can retry; the receiver keeps waiting.
        const {error: failure} = failurePayload(error, 'Push again.')
        reply(response, isZenithError(error, 'NAME_TAKEN') ? 409 : 400, {error: failure})
        options.onProgress({type: 'step', message: `Refused a request: ${failure.message}`})
      })
    })
    options.signal?.addEventListener('abort', () => reject(new ZenithError('INTERRUPTED', 'Stopped waiting for a push; nothing was created.', 'Run `zenith snapshot recv` again for a new URL.')), {once: true})
  })

  try {
    await listen(server, options.port ?? 0, options.listen ?? '127.0.0.1')
    server.on('error', fail)
    const address = server.address() as {port: number}
    options.onUrl(`zenith://${urlHost(options.listen ?? '127.0.0.1')}:${address.port}/${token}`)
    return await finished
  } finally {
    server.closeAllConnections()
    server.close()
    // Its URL dies with this process: nothing could resume from what it received.
    await receiver.close({keep: false})
  }
}

function tokenMatches(given: string, token: string): boolean {
  const a = Buffer.from(given)
  const b = Buffer.from(token)
  return a.length === b.length && timingSafeEqual(a, b)
}

function urlHost(listen: string): string {
  if (listen === '0.0.0.0' || listen === '::') return os.hostname()
  return listen.includes(':') ? `[${listen}]` : listen
}

function listen(server: http.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      reject(error.code === 'EADDRINUSE'
        ? new ZenithError('PORT_IN_USE', `Port ${port} on ${host} is in use.`, 'Pick another with --port, or leave it out for a free one.')
        : error)
    })
    server.listen(port, host, () => resolve())
  })
}

function readBody(request: http.IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = []
    let size = 0
    request.on('data', (part: Buffer) => {
      size += part.length
      if (size > limit) {
        request.destroy()
        reject(new ZenithError('ARCHIVE_INVALID', `A request body exceeded ${limit} bytes.`, 'Push with `zenith snapshot push`.'))
        return
      }

      parts.push(part)
    })
    request.on('end', () => resolve(Buffer.concat(parts)))
    request.on('error', reject)
  })
}

function reply(response: http.ServerResponse, status: number, body?: unknown): void {
  if (response.headersSent) return
  const text = body === undefined ? '' : JSON.stringify(body)
  response.writeHead(status, {'content-type': 'application/json', 'content-length': Buffer.byteLength(text)})
  response.end(text)
}

import {createHash, randomBytes, timingSafeEqual} from 'node:crypto'
import http from 'node:http'
import os from 'node:os'

import type {ArchiveManifest} from '../archive/manifest.js'
import type {Zenith} from '../context.js'
import {localStorage} from '../context.js'
import {ZenithError, isZenithError} from '../errors.js'
import type {OnProgress} from '../progress.js'
import {normalizeManifest, openChunk, validateManifest} from '../remote/chunker.js'
import {assertSnapshotNameFree} from '../snapshot/records.js'
import {parseSnapshotRef} from '../state/names.js'
import type {SnapshotRecord} from '../state/schema.js'
import {type ChunkSource, assembleSnapshot, chunkSizes, filesOfChunk} from './assemble.js'
import {ChunkCache, reclaimCaches} from './chunk-cache.js'
import {TRANSFER_CONCURRENCY} from './push.js'

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

export interface ReceiveResult {
  snapshot: SnapshotRecord
  logicalBytes: number
  receivedBytes: number
}

const MAX_CHUNK_BODY = 64 * 1024 * 1024
const MAX_MANIFEST_BODY = 1024 * 1024 * 1024

/**
 * Receives one snapshot pushed to `zenith://host:port/TOKEN` and exits. Every request must
 * carry the token (a fresh random one per run); chunks are verified as they arrive and kept in
 * a cache, so a push that was interrupted can be re-run against the same URL and sends only
 * what is missing. The snapshot becomes visible only after the commit verified everything.
 */
export async function receiveSnapshot(zenith: Zenith, options: ReceiveOptions): Promise<ReceiveResult> {
  localStorage(await zenith.store.read(), options.storage ?? 'local')
  const token = randomBytes(24).toString('base64url')
  await reclaimCaches(zenith.home)
  const cache = await ChunkCache.claim(zenith.home, 'recv', createHash('sha256').update(token).digest('hex').slice(0, 16))
  let snapshotName: string | undefined
  let receivedBytes = 0
  let receivedLogical = 0
  let committing = false

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
        parseSnapshotRef(snapshot)
        assertSnapshotNameFree(await zenith.store.read(), snapshot)
        snapshotName = snapshot
        reply(response, 200, {existing: [...cache.cached]})
        options.onProgress({type: 'step', message: `Receiving ${snapshot}`})
        return
      }

      if (action === 'PUT chunks' && route.length === 2 && /^[0-9a-f]{64}$/.test(route[1])) {
        if (!snapshotName) throw new ZenithError('INVALID_ARGUMENT', 'A chunk arrived before the push began.', 'Use `zenith snapshot push` to send to this URL.')
        const stored = await readBody(request, MAX_CHUNK_BODY)
        const content = openChunk(stored, route[1])
        if (!content) throw new ZenithError('CHECKSUM_MISMATCH', `Chunk ${route[1]} arrived damaged (its content does not match its sha256).`, 'Push again: the chunk is sent again.')
        await cache.put(route[1], stored)
        receivedBytes += stored.length
        receivedLogical += content.length
        options.onProgress({type: 'bytes', label: `Receiving ${snapshotName}`, done: receivedLogical})
        reply(response, 204)
        return
      }

      if (action === 'POST commit') {
        if (committing) throw new ZenithError('PG_BUSY', 'A snapshot is already being written from this push.', 'Wait for it to finish.')
        const sent = JSON.parse((await readBody(request, MAX_MANIFEST_BODY)).toString('utf8')) as ArchiveManifest
        if (!validateManifest(sent) || sent.snapshot !== snapshotName) {
          throw new ZenithError('ARCHIVE_INVALID', 'The pushed manifest is not valid.', 'Push again with the same zenith version on both sides.')
        }

        const manifest = normalizeManifest(sent)

        const missing = [...chunkSizes(manifest).keys()].find((hash) => !cache.has(hash))
        if (missing) throw new ZenithError('CHECKSUM_MISMATCH', `Chunk ${missing} (of ${filesOfChunk(manifest, missing)}) was never received; nothing was created.`, 'Push again: missing chunks are sent again.')
        committing = true
        try {
          options.onProgress({type: 'bytes-end', label: `Receiving ${snapshotName}`, done: receivedLogical})
          const snapshot = await assembleSnapshot(zenith, {
            name: manifest.snapshot, storage: options.storage, manifest, source: cachedChunks(cache), label: `Writing ${manifest.snapshot}`, onProgress: options.onProgress,
            damaged: ([first]) => new ZenithError('CHECKSUM_MISMATCH', `Chunk ${first.hash} (of ${filesOfChunk(manifest, first.hash)}) changed on disk after it was verified; nothing was created.`,
              'Push again: the damaged chunk is sent again.'),
          })
          reply(response, 200, {snapshot: snapshot.name})
          resolve({snapshot, logicalBytes: manifest.totalBytes, receivedBytes})
        } finally {
          committing = false
        }

        return
      }

      reply(response, 404, {error: {code: 'INVALID_ARGUMENT', message: `unknown request ${action}`, hint: 'Use `zenith snapshot push` to send to this URL.'}})
    }

    server.on('request', (request, response) => {
      handle(request, response).catch((error: unknown) => {
        // The pusher gets the error (with its code) and can retry; the receiver keeps waiting.
        const failure = isZenithError(error)
          ? {code: error.code, message: error.message, hint: error.hint}
          : {code: 'INVALID_ARGUMENT', message: error instanceof Error ? error.message : String(error), hint: 'Push again.'}
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
    await cache.remove()
  }
}

/** Chunks received earlier in this run, checked again: they sat on disk since they arrived. */
function cachedChunks(cache: ChunkCache): ChunkSource {
  return {
    concurrency: TRANSFER_CONCURRENCY,
    stored: (hash) => cache.read(hash),
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

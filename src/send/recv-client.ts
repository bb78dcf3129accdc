import http from 'node:http'

import type {ArchiveManifest} from '../archive/manifest.js'
import {type ReportedError, ZenithError, reportedError} from '../errors.js'
import type {SnapshotSink} from './sink.js'

/** A push to a `zenith snapshot recv` over HTTP: the token from its URL authorizes every request. */
export class RecvSink implements SnapshotSink {
  readonly label: string
  private readonly agent = new http.Agent({keepAlive: true, maxSockets: 16})

  constructor(private readonly target: {host: string; port: number; token: string; label: string}) {
    this.label = target.label
  }

  async begin(snapshot: string): Promise<{existing: Set<string>; manifest?: ArchiveManifest}> {
    const reply = JSON.parse((await this.request('POST', 'begin', Buffer.from(JSON.stringify({snapshot})))).toString('utf8')) as {existing: string[]}
    return {existing: new Set(reply.existing)}
  }

  async putChunk(hash: string, stored: Buffer): Promise<void> {
    await this.request('PUT', `chunks/${hash}`, stored)
  }

  async commit(manifest: ArchiveManifest): Promise<void> {
    await this.request('POST', 'commit', Buffer.from(JSON.stringify(manifest)))
  }

  async close(): Promise<void> {
    this.agent.destroy()
  }

  private request(method: string, route: string, body: Buffer): Promise<Buffer> {
    const {host, port, token} = this.target
    return new Promise((resolve, reject) => {
      const request = http.request({host, port, method, path: `/${token}/${route}`, agent: this.agent, headers: {'content-length': body.length}}, (response) => {
        const parts: Buffer[] = []
        response.on('data', (part: Buffer) => parts.push(part))
        response.on('error', reject)
        response.on('end', () => {
          const text = Buffer.concat(parts)
          const status = response.statusCode ?? 0
          if (status >= 200 && status < 300) {
            resolve(text)
            return
          }

          reject(receiverError(status, text, this.label))
        })
      })
      request.on('error', (error: NodeJS.ErrnoException) => {
        reject(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENOTFOUND', 'ETIMEDOUT', 'EPIPE'].includes(error.code ?? '')
          ? new ZenithError('SOURCE_UNREACHABLE', `Cannot reach the receiver at ${this.label}: ${error.message}.`,
            'Check that `zenith snapshot recv` is still running there and that the host and port are reachable; re-run the push to resume.')
          : error)
      })
      request.end(body)
    })
  }
}

function receiverError(status: number, body: Buffer, label: string): ZenithError {
  if (status === 401) {
    return new ZenithError('AUTH_FAILED', `The receiver at ${label} refused the token.`, 'Copy the whole zenith://host:port/TOKEN URL that `zenith snapshot recv` printed; each URL works for one snapshot only.')
  }

  try {
    const {error} = JSON.parse(body.toString('utf8')) as {error: ReportedError}
    return reportedError(error, `The receiver at ${label}`)
  } catch {
    return new ZenithError('SOURCE_UNREACHABLE', `The receiver at ${label} answered HTTP ${status}.`, 'Check the receiver\'s output for the reason.')
  }
}

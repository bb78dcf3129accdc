/**
 * The few S3 requests that the WAL agent makes (HEAD, GET and a create-only PUT of one object),
 * written against node builtins alone, with AWS Signature Version 4 computed by hand.
 *
 * Why not @aws-sdk/client-s3: this folder (src/wal-agent/) is copied on its own into a folder
 * that the postgres OS user can read, and postgres runs it from archive_command /
 * restore_command once per WAL segment. That user cannot read zenith's node_modules, and a
 * process started for every 16 MiB segment must start in milliseconds, which loading the SDK
 * does not. So nothing here may import from outside src/wal-agent/ or from any package.
 */
import {createHash, createHmac} from 'node:crypto'
import http from 'node:http'
import https from 'node:https'
import {URL} from 'node:url'

export interface S3Location {
  bucket: string
  /** key prefix inside the bucket, '' or ending without slash; keys passed to methods are relative to it */
  prefix: string
  region: string
  /** e.g. http://127.0.0.1:4568 ; absent => https://s3.<region>.amazonaws.com */
  endpoint?: string
  forcePathStyle: boolean
  credentials: S3Credentials
}

export interface S3Credentials {
  accessKeyId: string
  secretAccessKey: string
  sessionToken?: string
}

/**
 * A request S3 refused or that never got an answer. `code` is S3's error code (the `<Code>` of
 * the error body, or the HTTP reason when a HEAD answer has no body), 'NetworkError' when no
 * answer came (then `status` is 0), or 'ChecksumMismatch' when S3 stored other bytes than sent.
 */
export class S3Error extends Error {
  constructor(readonly code: string, readonly status: number, message: string) {
    super(message)
    this.name = 'S3Error'
  }
}

/** Idle time on a socket after which a request counts as lost: S3 answers far sooner. */
const REQUEST_TIMEOUT_MS = 60_000

/** What signRequest needs to sign one request. */
export interface SigningRequest {
  method: string
  /** The Host header exactly as sent (with the port when it is not the scheme's default). */
  host: string
  /** The path exactly as sent: already URI-encoded, see encodeKeyPath. */
  path: string
  /** Query parameters, not encoded. */
  query: Record<string, string>
  /**
   * Further headers to sign, names in any case. host, x-amz-date, x-amz-content-sha256 and
   * (with a session token) x-amz-security-token are added from the other fields.
   */
  headers: Record<string, string>
  /** Hex SHA-256 of the body. */
  payloadHash: string
  date: Date
  region: string
  credentials: S3Credentials
}

/**
 * Every header that signRequest signs, lower-case names, sorted: the caller sends exactly these
 * (plus Authorization and Content-Length), so that what is signed and what is sent never differ.
 */
export function signedHeaders(request: SigningRequest): Array<[string, string]> {
  const headers = new Map<string, string>()
  for (const [name, value] of Object.entries(request.headers)) headers.set(name.toLowerCase(), value)
  headers.set('host', request.host)
  headers.set('x-amz-date', amzDate(request.date))
  headers.set('x-amz-content-sha256', request.payloadHash)
  if (request.credentials.sessionToken) headers.set('x-amz-security-token', request.credentials.sessionToken)
  return [...headers].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
}

/** The Authorization header value of a request, AWS Signature Version 4 for service s3. */
export function signRequest(request: SigningRequest): string {
  const headers = signedHeaders(request)
  const headerNames = headers.map(([name]) => name).join(';')
  const canonicalRequest = [
    request.method,
    request.path,
    canonicalQuery(request.query),
    // SigV4 wants each value trimmed and inner runs of spaces collapsed to one.
    ...headers.map(([name, value]) => `${name}:${value.trim().replace(/ +/g, ' ')}`),
    '',
    headerNames,
    request.payloadHash,
  ].join('\n')

  const timestamp = amzDate(request.date)
  const day = timestamp.slice(0, 8)
  const scope = `${day}/${request.region}/s3/aws4_request`
  const stringToSign = ['AWS4-HMAC-SHA256', timestamp, scope, sha256Hex(canonicalRequest)].join('\n')

  let signingKey: Buffer = hmac(`AWS4${request.credentials.secretAccessKey}`, day)
  for (const part of [request.region, 's3', 'aws4_request']) signingKey = hmac(signingKey, part)
  const signature = createHmac('sha256', signingKey).update(stringToSign).digest('hex')

  return `AWS4-HMAC-SHA256 Credential=${request.credentials.accessKeyId}/${scope}, SignedHeaders=${headerNames}, Signature=${signature}`
}

/** `20130524T000000Z`: the x-amz-date form of a time. */
export function amzDate(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '')
}

/**
 * An object key as an S3 path: each segment URI-encoded (RFC 3986 unreserved characters kept),
 * the slashes between segments kept. S3 signs the path encoded once, exactly as sent.
 */
export function encodeKeyPath(key: string): string {
  return key.split('/').map(uriEncode).join('/')
}

function uriEncode(text: string): string {
  // encodeURIComponent keeps !'()* too, which RFC 3986 reserves and S3 expects encoded.
  return encodeURIComponent(text).replace(/[!'()*]/g, (character) => `%${character.charCodeAt(0).toString(16).toUpperCase()}`)
}

function canonicalQuery(query: Record<string, string>): string {
  return Object.entries(query)
    .map(([name, value]) => [uriEncode(name), uriEncode(value)])
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`)
    .join('&')
}

function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest()
}

interface S3Response {
  status: number
  reason: string
  headers: http.IncomingHttpHeaders
  body: Buffer
}

/** A bucket name that can be a DNS label under TLS: no dots (the wildcard certificate covers one level). */
const VIRTUAL_HOST_BUCKET = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/
/** Hosts that cannot take a bucket name in front: IPv4, IPv6 (bracketed in URL.hostname), localhost. */
const LITERAL_HOST = /^(\d{1,3}(\.\d{1,3}){3}|\[.*\]|localhost)$/i

/** HEAD, GET and create-only PUT of single objects in one bucket under a key prefix. */
export class AgentS3Client {
  private readonly endpoint: URL
  private readonly pathStyle: boolean

  constructor(private readonly location: S3Location) {
    this.endpoint = new URL(location.endpoint ?? `https://s3.${location.region}.amazonaws.com`)
    this.pathStyle = location.forcePathStyle || LITERAL_HOST.test(this.endpoint.hostname) || !VIRTUAL_HOST_BUCKET.test(location.bucket)
  }

  /**
   * HEAD: size or undefined when 404. A HEAD answer has no body, so a missing bucket also reads
   * as undefined here; get() tells the two apart.
   */
  async head(key: string): Promise<{size: number} | undefined> {
    const response = await this.send('HEAD', key)
    if (response.status === 404) return undefined
    if (response.status !== 200) throw this.refusal('HEAD', key, response)
    const size = Number(response.headers['content-length'])
    if (!Number.isSafeInteger(size)) throw new S3Error('InvalidResponse', response.status, `HEAD ${this.describe(key)}: no Content-Length in the answer`)
    return {size}
  }

  /** GET whole object, undefined when 404 (NoSuchKey); a missing bucket throws. */
  async get(key: string): Promise<Buffer | undefined> {
    const response = await this.send('GET', key)
    if (response.status === 200) return response.body
    const refusal = this.refusal('GET', key, response)
    if (response.status === 404 && refusal.code === 'NoSuchKey') return undefined
    throw refusal
  }

  /**
   * Stores `body` under `key` unless an object is there: true when stored, false when S3 answers
   * 412 (an object exists) or 409 (a concurrent conditional write to the same key). Content-MD5
   * lets S3 reject a body damaged on the way; the returned ETag is compared too, for servers
   * that skip that check.
   *
   * S3-compatible servers that ignore If-None-Match (s3rver, older MinIO, ...) overwrite and
   * answer 200, so this returns true there: callers that must not overwrite HEAD first.
   */
  async putIfAbsent(key: string, body: Buffer): Promise<boolean> {
    const md5 = createHash('md5').update(body).digest()
    const response = await this.send('PUT', key, body, {'content-md5': md5.toString('base64'), 'if-none-match': '*'})
    if (response.status === 412 || response.status === 409) return false
    if (response.status !== 200) throw this.refusal('PUT', key, response)

    const etag = String(response.headers.etag ?? '').replace(/"/g, '').toLowerCase()
    // With SSE-KMS or SSE-C the ETag is not the MD5 of the body, though it looks like one.
    const encryption = String(response.headers['x-amz-server-side-encryption'] ?? '')
    const etagIsMd5 = /^[0-9a-f]{32}$/.test(etag) && !encryption.startsWith('aws:kms') && !response.headers['x-amz-server-side-encryption-customer-algorithm']
    if (etagIsMd5 && etag !== md5.toString('hex')) {
      throw new S3Error('ChecksumMismatch', response.status, `PUT ${this.describe(key)}: S3 stored an object with MD5 ${etag}, the body sent has ${md5.toString('hex')}`)
    }

    return true
  }

  private async send(method: 'HEAD' | 'GET' | 'PUT', key: string, body?: Buffer, extraHeaders: Record<string, string> = {}): Promise<S3Response> {
    const fullKey = this.location.prefix ? `${this.location.prefix}/${key}` : key
    const basePath = this.endpoint.pathname.replace(/\/+$/, '')
    const host = this.pathStyle ? this.endpoint.host : `${this.location.bucket}.${this.endpoint.host}`
    const path = this.pathStyle ? `${basePath}/${uriEncode(this.location.bucket)}/${encodeKeyPath(fullKey)}` : `${basePath}/${encodeKeyPath(fullKey)}`
    const signing: SigningRequest = {
      method, host, path, query: {}, headers: extraHeaders,
      payloadHash: sha256Hex(body ?? ''), date: new Date(),
      region: this.location.region, credentials: this.location.credentials,
    }
    const headers: http.OutgoingHttpHeaders = Object.fromEntries(signedHeaders(signing))
    headers.authorization = signRequest(signing)
    if (body) headers['content-length'] = body.length

    const transport = this.endpoint.protocol === 'https:' ? https : http
    const where = `${method} ${this.describe(key)}`
    return new Promise<S3Response>((resolve, reject) => {
      const request = transport.request({
        protocol: this.endpoint.protocol,
        hostname: this.pathStyle ? this.endpoint.hostname : `${this.location.bucket}.${this.endpoint.hostname}`,
        port: this.endpoint.port || undefined,
        // A path, not a URL: a URL would resolve '.' and '..' segments, which are valid in keys.
        path, method, headers,
      })
      request.setTimeout(REQUEST_TIMEOUT_MS, () => {
        request.destroy(new S3Error('NetworkError', 0, `${where}: no answer from ${this.endpoint.origin} within ${REQUEST_TIMEOUT_MS / 1000} s`))
      })
      request.on('error', (error: NodeJS.ErrnoException) => {
        reject(error instanceof S3Error ? error : new S3Error('NetworkError', 0, `${where}: cannot reach ${this.endpoint.origin}: ${error.code ?? error.message}`))
      })
      request.on('response', (response) => {
        const chunks: Buffer[] = []
        response.on('data', (chunk: Buffer) => chunks.push(chunk))
        response.on('error', (error) => reject(new S3Error('NetworkError', 0, `${where}: answer from ${this.endpoint.origin} broke off: ${error.message}`)))
        response.on('end', () => {
          const received = Buffer.concat(chunks)
          // Node already fails a body cut short of its Content-Length; checked again because a
          // short WAL segment taken as whole would corrupt a restore.
          const expected = Number(response.headers['content-length'])
          if (method !== 'HEAD' && Number.isSafeInteger(expected) && received.length !== expected) {
            reject(new S3Error('NetworkError', 0, `${where}: answer from ${this.endpoint.origin} broke off after ${received.length} of ${expected} bytes`))
            return
          }

          resolve({status: response.statusCode ?? 0, reason: response.statusMessage ?? '', headers: response.headers, body: received})
        })
      })
      request.end(body)
    })
  }

  private refusal(method: string, key: string, response: S3Response): S3Error {
    const text = response.body.toString('utf8')
    const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1] ?? (response.reason.replace(/\s+/g, '') || `Http${response.status}`)
    const message = /<Message>([^<]*)<\/Message>/.exec(text)?.[1]
    return new S3Error(code, response.status, `${method} ${this.describe(key)} at ${this.endpoint.origin}: ${response.status} ${code}${message ? `: ${decodeXmlText(message)}` : ''}`)
  }

  private describe(key: string): string {
    return `s3://${this.location.bucket}/${this.location.prefix ? `${this.location.prefix}/` : ''}${key}`
  }
}

function decodeXmlText(text: string): string {
  const entities: Record<string, string> = {amp: '&', lt: '<', gt: '>', quot: '"', apos: "'"}
  return text.replace(/&(amp|lt|gt|quot|apos);/g, (_, name: string) => entities[name])
}

import {createHash} from 'node:crypto'
import type {Readable} from 'node:stream'

import type {S3Client} from '@aws-sdk/client-s3'

import type {S3Location} from '../../wal-agent/s3-client.js'

import {ZenithError} from '../../errors.js'
import type {StorageRecord, StorageType} from '../../state/schema.js'
import type {StorageDriver, StorageKind} from '../driver.js'
import {probeObjectStore} from '../objects.js'
import type {ObjectStorage, StorageCapabilities, StorageHealth, WalArea} from '../storage.js'
import {ObjectWalArea, walAreaPath} from '../wal.js'
import {loadS3Sdk} from './s3-sdk.js'

const capabilities: StorageCapabilities = {volumes: false, atomicSnapshot: false, thinClone: false, exactSize: false, wal: true}
const ENDPOINT_VARIABLES = ['ZENITH_S3_ENDPOINT', 'AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL'] as const

/** The -c options of an s3 storage (never credentials: those come from the environment or a profile). */
export interface S3Options {
  bucket: string
  prefix: string
  region?: string
  endpoint?: string
  forcePathStyle: boolean
  /** `when-required`: no flexible checksums (S3-compatible servers that mangle them); `when-supported`: SDK default. */
  checksums: 'when-required' | 'when-supported'
}

/** Keys per DeleteObjects request: S3's limit. */
const DELETE_BATCH = 1000

/** Connections kept open per client: enough for the transfer concurrency plus listing. */
const MAX_SOCKETS = 64

/**
 * An S3 bucket (or an S3-compatible server) under a key prefix: snapshots as objects and WAL
 * areas. The AWS SDK is loaded on first use so that commands which never touch S3 start fast.
 */
export class S3Storage implements ObjectStorage {
  readonly driver = 's3'
  readonly capabilities = capabilities
  readonly location: string
  readonly record: StorageRecord
  readonly name: string
  readonly type: StorageType = 's3'
  private clientPromise?: Promise<{client: S3Client; sdk: typeof import('@aws-sdk/client-s3')}>

  /** `record` is absent for a bucket named by an s3:// URL rather than attached. */
  constructor(readonly options: S3Options, record?: StorageRecord) {
    this.location = `s3://${options.bucket}${options.prefix ? `/${options.prefix}` : ''}`
    this.record = record ?? {name: this.location, type: 's3', options: {}, createdAt: '', driver: 's3'}
    this.name = this.record.name
  }

  walArea(area: string): WalArea {
    return new ObjectWalArea(this, `${walAreaPath(area)}/`, (key, body) => this.putIfAbsent(key, body))
  }

  /** Nothing to reclaim: an object appears whole or not at all. */
  async reclaim(): Promise<string[]> {
    return []
  }

  /**
   * Credentials can be found and the bucket answers a one-key listing of the prefix, within
   * `timeoutMs` (credential lookup included: the SDK's chain may wait for an instance metadata
   * service that is not there). Nothing is written. The client is closed afterwards, so that a
   * server that never answers does not keep zenith alive.
   */
  async checkHealth({timeoutMs}: {timeoutMs: number}): Promise<StorageHealth> {
    const where = this.options.endpoint ? `endpoint ${this.options.endpoint}: ` : ''
    const started = Date.now()
    const abort = new AbortController()
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        abort.abort()
        reject(Object.assign(new Error(`no answer within ${timeoutMs / 1000} s`), {name: 'TimeoutError'}))
      }, timeoutMs)
    })
    const {client, sdk} = await this.client()
    let stage = 'credentials'
    try {
      await Promise.race([deadline, (async () => {
        await client.config.credentials()
        stage = 'bucket'
        await client.send(new sdk.ListObjectsCommand({Bucket: this.options.bucket, Prefix: this.keyOf(''), MaxKeys: 1}), {abortSignal: abort.signal})
      })()])
      return {access: {status: 'ok', detail: `${where}credentials ${credentialSource()}, the bucket answers (${Date.now() - started} ms)`}}
    } catch (error) {
      const failure = error as {name?: string; message?: string}
      if (stage === 'credentials') {
        return {access: {status: 'fail', detail: `${where}no S3 credentials found (${failure.name === 'TimeoutError' ? failure.message : 'none in the environment and no AWS profile'})`,
          fix: 'Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) in the environment of zenith'}}
      }

      if (failure.name === 'TimeoutError' || failure.name === 'AbortError') {
        return {access: {status: 'fail', detail: `${where}the S3 server did not answer within ${timeoutMs / 1000} s`,
          fix: 'Check the network and the endpoint (zenith storage show NAME); start the server if it is yours'.replace('NAME', this.name)}}
      }

      const explained = explainS3Error(error, this.options, '')
      const message = explained instanceof ZenithError ? explained.message : failure.message ?? String(error)
      const fix = explained instanceof ZenithError && explained.hint ? explained.hint.replace(/\.$/, '') : 'Check the bucket, the endpoint and the credentials'
      return {access: {status: 'fail', detail: `${where}${message.replace(/\.$/, '')}`, fix}}
    } finally {
      clearTimeout(timer)
      client.destroy()
      this.clientPromise = undefined
    }
  }

  /** A bucket exists before it is attached: nothing to create. */
  async prepare(): Promise<void> {}

  /**
   * A create-only PUT (`If-None-Match: *`): false when the object already exists. Servers
   * without conditional writes ignore the header; WalArea.append checks for the object first.
   */
  async putIfAbsent(key: string, body: Buffer): Promise<boolean> {
    const {client, sdk} = await this.client()
    const md5 = createHash('md5').update(body).digest('base64')
    try {
      await client.send(new sdk.PutObjectCommand({
        Bucket: this.options.bucket, Key: this.keyOf(key), Body: body, ContentLength: body.length, ContentMD5: md5, IfNoneMatch: '*',
      }))
      return true
    } catch (error) {
      const failure = error as {name?: string; $metadata?: {httpStatusCode?: number}}
      // 412: the object exists; 409: a concurrent conditional write of it is in flight.
      if (failure.name === 'PreconditionFailed' || failure.$metadata?.httpStatusCode === 412) return false
      if (failure.name === 'ConditionalRequestConflict' || failure.$metadata?.httpStatusCode === 409) return false
      throw explainS3Error(error, this.options, key)
    }
  }

  async put(key: string, body: Buffer): Promise<void> {
    const {client, sdk} = await this.client()
    const md5 = createHash('md5').update(body).digest()
    const result = await this.call(key, () => client.send(new sdk.PutObjectCommand({
      Bucket: this.options.bucket, Key: this.keyOf(key), Body: body, ContentLength: body.length, ContentMD5: md5.toString('base64'),
    })))
    // A single-part PUT's ETag is the MD5 of what the server stored (unless SSE-KMS changes it):
    // check it, because some S3-compatible servers store mangled bodies without an error.
    const etag = result.ETag?.replaceAll('"', '')
    if (etag && /^[0-9a-f]{32}$/.test(etag) && etag !== md5.toString('hex')) {
      throw new ZenithError('CHECKSUM_MISMATCH', `${this.location}/${key} was stored with a different content than sent (MD5 ${etag}, expected ${md5.toString('hex')}).`,
        'The server corrupted the upload: retry; for an S3-compatible server attach with `-c checksums=when-required`.')
    }
  }

  async get(key: string): Promise<Buffer | undefined> {
    const stream = await this.getStream(key)
    if (!stream) return undefined
    const parts: Buffer[] = []
    for await (const part of stream) parts.push(part as Buffer)
    return Buffer.concat(parts)
  }

  async getRange(key: string, start: number, end: number): Promise<Buffer | undefined> {
    const {client, sdk} = await this.client()
    try {
      const result = await this.call(key, () => client.send(new sdk.GetObjectCommand({Bucket: this.options.bucket, Key: this.keyOf(key), Range: `bytes=${start}-${end}`})))
      const bytes = await result.Body!.transformToByteArray()
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    } catch (error) {
      if (isZenithObjectMissing(error)) return undefined
      // A pack cut short: the range starts past its end. The caller reports its chunks as damaged.
      if ((error as {name?: string}).name === 'InvalidRange') return Buffer.alloc(0)
      throw error
    }
  }

  async getStream(key: string): Promise<Readable | undefined> {
    const {client, sdk} = await this.client()
    try {
      const result = await this.call(key, () => client.send(new sdk.GetObjectCommand({Bucket: this.options.bucket, Key: this.keyOf(key)})))
      return result.Body as Readable
    } catch (error) {
      if (isZenithObjectMissing(error)) return undefined
      throw error
    }
  }

  async head(key: string): Promise<{size: number} | undefined> {
    const {client, sdk} = await this.client()
    try {
      const result = await this.call(key, () => client.send(new sdk.HeadObjectCommand({Bucket: this.options.bucket, Key: this.keyOf(key)})))
      return {size: result.ContentLength ?? 0}
    } catch (error) {
      if (isZenithObjectMissing(error)) return undefined
      throw error
    }
  }

  async * list(prefix: string): AsyncIterable<{key: string; size: number}> {
    const {client, sdk} = await this.client()
    const base = this.keyOf('')
    // ListObjects (v1) paged by Marker: every S3-compatible server implements it, while some
    // (s3rver on OpenSSL 3) fail to produce ListObjectsV2 continuation tokens.
    let marker: string | undefined
    for (;;) {
      const page = await this.call(prefix, () => client.send(new sdk.ListObjectsCommand({
        Bucket: this.options.bucket, Prefix: this.keyOf(prefix), Marker: marker,
      })))
      const items = page.Contents ?? []
      for (const item of items) {
        if (item.Key) yield {key: item.Key.slice(base.length), size: item.Size ?? 0}
      }

      if (!page.IsTruncated || items.length === 0) return
      marker = page.NextMarker ?? items.at(-1)?.Key
    }
  }

  async delete(key: string): Promise<void> {
    const {client, sdk} = await this.client()
    await this.call(key, () => client.send(new sdk.DeleteObjectCommand({Bucket: this.options.bucket, Key: this.keyOf(key)})))
  }

  /** One DeleteObjects request per DELETE_BATCH keys instead of one request per key. */
  async deleteMany(keys: string[]): Promise<void> {
    const {client, sdk} = await this.client()
    for (let start = 0; start < keys.length; start += DELETE_BATCH) {
      const batch = keys.slice(start, start + DELETE_BATCH)
      const result = await this.call(batch[0], () => client.send(new sdk.DeleteObjectsCommand({
        Bucket: this.options.bucket, Delete: {Objects: batch.map((key) => ({Key: this.keyOf(key)})), Quiet: true},
      })))
      // A batch answers 200 even when some keys failed: each failure is in Errors.
      const [failed] = result.Errors ?? []
      if (failed) {
        const key = failed.Key?.slice(this.keyOf('').length) ?? batch[0]
        throw explainS3Error(Object.assign(new Error(`Cannot delete ${this.location}/${key}: ${failed.Message ?? failed.Code}`), {name: failed.Code}), this.options, key)
      }
    }
  }

  /**
   * Where the bucket is and the credentials the SDK resolves now (environment, profile, ...):
   * what the PITR archive command, which runs as the postgres OS user without the SDK, needs.
   */
  async agentLocation(): Promise<S3Location> {
    const {client} = await this.client()
    const credentials = await client.config.credentials()
    return {
      bucket: this.options.bucket, prefix: this.options.prefix, region: await client.config.region(), endpoint: this.options.endpoint,
      forcePathStyle: this.options.forcePathStyle,
      credentials: {accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey, sessionToken: credentials.sessionToken},
    }
  }

  /** The SDK client, for callers that need a raw operation (the benchmark's baseline). */
  async client(): Promise<{client: S3Client; sdk: typeof import('@aws-sdk/client-s3')}> {
    this.clientPromise ??= Promise.resolve().then(() => {
      const sdk = loadS3Sdk()
      const whenRequired = this.options.checksums === 'when-required'
      const client = new sdk.S3Client({
        region: this.options.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
        endpoint: this.options.endpoint,
        forcePathStyle: this.options.forcePathStyle,
        requestChecksumCalculation: whenRequired ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED',
        responseChecksumValidation: whenRequired ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED',
        requestHandler: {connectionTimeout: 10_000, requestTimeout: 120_000, httpAgent: {keepAlive: true, maxSockets: MAX_SOCKETS}, httpsAgent: {keepAlive: true, maxSockets: MAX_SOCKETS}},
      })
      return {client, sdk}
    })
    return this.clientPromise
  }

  private keyOf(key: string): string {
    return this.options.prefix ? `${this.options.prefix}/${key}` : key
  }

  /** Runs one SDK call and turns its failure into an error the user can act on. */
  private async call<T>(key: string, operation: () => Promise<T>): Promise<T> {
    try {
      return await operation()
    } catch (error) {
      throw explainS3Error(error, this.options, key)
    }
  }
}

export const s3Driver: StorageDriver = {
  name: 's3',
  capabilities,
  open: (record) => new S3Storage(s3Options(record.options), record),
}

/** `-t s3 -c bucket=...`: proven with a probe object written, read back and deleted. */
export const s3Kind: StorageKind = {
  type: 's3',
  configure(name, options) {
    s3Options(options)
    return {name, type: 's3', options: {...options}, createdAt: new Date().toISOString()}
  },
  async attach(draft) {
    const record: StorageRecord = {...draft, driver: 's3'}
    await probeObjectStore(new S3Storage(s3Options(record.options), record))
    return record
  },
}

/** Completes the user's -c options with defaults; an endpoint implies an S3-compatible server. */
export function s3Options(options: Record<string, string>, env: NodeJS.ProcessEnv = process.env): S3Options {
  const known = new Set(['bucket', 'prefix', 'region', 'endpoint', 'force-path-style', 'checksums'])
  const unknown = Object.keys(options).filter((key) => !known.has(key))
  if (unknown.length > 0) {
    throw new ZenithError('INVALID_ARGUMENT', `Unknown s3 option${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}.`,
      'Known options: bucket, prefix, region, endpoint, force-path-style, checksums (credentials come from the environment, never from -c).')
  }

  const bucket = options.bucket
  if (!bucket || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new ZenithError('INVALID_ARGUMENT', bucket ? `"${bucket}" is not a valid bucket name.` : 'An s3 storage needs a bucket.',
      'Pass -c bucket=NAME (3-63 lowercase letters, digits, dots and hyphens).')
  }

  const endpoint = options.endpoint ?? ENDPOINT_VARIABLES.map((name) => env[name]).find(Boolean)
  if (endpoint && !/^https?:\/\/[^/]+/.test(endpoint)) {
    throw new ZenithError('INVALID_ARGUMENT', `"${endpoint}" is not an http(s) endpoint URL.`, 'Pass -c endpoint=http://host:port (or https://).')
  }

  const checksums = options.checksums ?? (endpoint ? 'when-required' : 'when-supported')
  if (checksums !== 'when-required' && checksums !== 'when-supported') {
    throw new ZenithError('INVALID_ARGUMENT', `checksums must be when-required or when-supported, not "${checksums}".`, 'Use -c checksums=when-required for S3-compatible servers.')
  }

  const pathStyle = options['force-path-style'] ?? (endpoint ? 'true' : 'false')
  if (pathStyle !== 'true' && pathStyle !== 'false') {
    throw new ZenithError('INVALID_ARGUMENT', `force-path-style must be true or false, not "${pathStyle}".`, 'Use -c force-path-style=true for most S3-compatible servers.')
  }

  return {
    bucket,
    prefix: (options.prefix ?? '').replace(/^\/+|\/+$/g, ''),
    region: options.region,
    endpoint,
    forcePathStyle: pathStyle === 'true',
    checksums,
  }
}

/** Where the SDK's default chain will take the credentials from, for messages (never the credentials). */
function credentialSource(env: NodeJS.ProcessEnv = process.env): string {
  if (env.AWS_ACCESS_KEY_ID) return 'from the environment (AWS_ACCESS_KEY_ID)'
  if (env.AWS_PROFILE) return `from the AWS profile ${env.AWS_PROFILE}`
  return 'from the AWS default chain'
}

const OBJECT_MISSING = Symbol('object missing')

function isZenithObjectMissing(error: unknown): boolean {
  return (error as {[OBJECT_MISSING]?: boolean})[OBJECT_MISSING] === true
}

/** Maps SDK and network failures to zenith errors: wrong credentials, missing bucket, no network. */
export function explainS3Error(error: unknown, options: S3Options, key: string): unknown {
  const failure = error as {name?: string; code?: string; Code?: string; message?: string; $metadata?: {httpStatusCode?: number}}
  const name = failure.name ?? failure.Code ?? ''
  const status = failure.$metadata?.httpStatusCode
  const where = options.endpoint ? ` at ${options.endpoint}` : ''
  if (name === 'NoSuchKey' || name === 'NotFound' || (status === 404 && name !== 'NoSuchBucket')) {
    return Object.assign(new Error(`no object ${key}`), {[OBJECT_MISSING]: true})
  }

  if (name === 'NoSuchBucket') {
    return new ZenithError('BUCKET_NOT_FOUND', `The bucket "${options.bucket}" does not exist${where}.`,
      'Create the bucket first (e.g. `aws s3 mb s3://BUCKET`), or check -c bucket= and -c endpoint=.')
  }

  // The SDK found no credentials at all (none in the environment, no profile): say that, rather
  // than that the server refused credentials that were never sent.
  if (name === 'CredentialsProviderError') {
    return new ZenithError('AUTH_FAILED', `No S3 credentials for bucket "${options.bucket}"${where}: none in the environment and no AWS profile.`,
      'Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) in the environment of zenith.')
  }

  if (['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied', 'ExpiredToken', 'InvalidToken', 'Forbidden'].includes(name) || status === 403) {
    return new ZenithError('AUTH_FAILED', `The S3 server${where} refused the credentials for bucket "${options.bucket}" (${name || `HTTP ${status}`}).`,
      'Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) to credentials that may read and write this bucket.')
  }

  const code = failure.code ?? ''
  if (['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH'].includes(code) || name === 'TimeoutError') {
    return new ZenithError('SOURCE_UNREACHABLE', `Cannot reach the S3 server${where || ` for bucket "${options.bucket}"`}: ${failure.message ?? code}.`,
      'Check the network and -c endpoint= (and -c region=), then retry.')
  }

  return error
}

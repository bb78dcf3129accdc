import {createHash, randomBytes} from 'node:crypto'
import http from 'node:http'
import type {AddressInfo} from 'node:net'

import {GetObjectCommand, ListObjectsV2Command} from '@aws-sdk/client-s3'

import {AgentS3Client, S3Error, encodeKeyPath, type S3Location} from '../../src/wal-agent/s3-client.js'
import {S3_CREDENTIALS, S3Server} from '../helpers/s3.js'

/**
 * The WAL agent's own S3 client (node builtins only) against a real S3-protocol server, s3rver
 * on 127.0.0.1; what it stores is read back with @aws-sdk/client-s3. s3rver ignores
 * If-None-Match and does not check V4 signatures (test/unit/sigv4.test.ts pins the signing), so
 * the 412 answer and the ETag check are exercised against a small HTTP server that answers as
 * S3 would.
 */
const BUCKET = 'zenith-agent'
let s3: S3Server
beforeAll(async () => {
  s3 = await S3Server.start()
  await s3.createBucket(BUCKET)
})
afterAll(async () => {
  await s3?.stop()
})

function location(overrides: Partial<S3Location> = {}): S3Location {
  return {
    bucket: BUCKET, prefix: 'wal/area1', region: 'us-east-1', endpoint: s3.endpoint,
    // false on purpose: a 127.0.0.1 endpoint must still get path-style requests.
    forcePathStyle: false,
    credentials: {accessKeyId: S3_CREDENTIALS.AWS_ACCESS_KEY_ID, secretAccessKey: S3_CREDENTIALS.AWS_SECRET_ACCESS_KEY},
    ...overrides,
  }
}

/** The object as the AWS SDK reads it, and the path the SDK requested it under. */
async function readWithSdk(key: string): Promise<{body: Buffer; path: string}> {
  const client = s3.client()
  let path = ''
  client.middlewareStack.add((next) => async (args) => {
    path = (args.request as {path: string}).path
    return next(args)
  }, {step: 'finalizeRequest'})
  const answer = await client.send(new GetObjectCommand({Bucket: BUCKET, Key: key}))
  return {body: Buffer.from(await answer.Body!.transformToByteArray()), path}
}

async function errorOf(promise: Promise<unknown>): Promise<S3Error> {
  const error = await promise.then(() => undefined, (error: unknown) => error)
  expect(error).toBeInstanceOf(S3Error)
  return error as S3Error
}

test('a 16 MiB object: stored, its size and bytes read back, by the agent and by the AWS SDK', async () => {
  const client = new AgentS3Client(location())
  const body = randomBytes(16 * 1024 * 1024)
  expect(await client.putIfAbsent('000000010000000000000001', body)).toBe(true)

  expect(await client.head('000000010000000000000001')).toEqual({size: body.length})
  const read = await client.get('000000010000000000000001')
  expect(read).toBeInstanceOf(Buffer)
  expect(read!.equals(body)).toBe(true)
  const viaSdk = await readWithSdk('wal/area1/000000010000000000000001')
  expect(viaSdk.body.equals(body)).toBe(true)
}, 60_000)

test('a missing key: head and get answer undefined', async () => {
  const client = new AgentS3Client(location())
  expect(await client.head('000000010000000000000099')).toBeUndefined()
  expect(await client.get('000000010000000000000099')).toBeUndefined()
})

test('a missing bucket: get throws NoSuchBucket rather than reading as a missing key', async () => {
  const error = await errorOf(new AgentS3Client(location({bucket: 'zenith-no-such-bucket'})).get('k'))
  expect({status: error.status, code: error.code}).toEqual({status: 404, code: 'NoSuchBucket'})
})

test.each([
  'with space/and more spaces',
  'plus+sign/a+b=c&d',
  'ünïcödé/日本語 ✓',
  "punctuation !'()*~._-$@,;:",
  'query?and#hash%25',
])('key %p: stored under exactly that name, encoded as the SDK encodes it', async (key) => {
  const client = new AgentS3Client(location())
  const body = Buffer.from(`body of ${key}`)
  expect(await client.putIfAbsent(key, body)).toBe(true)
  expect(await client.head(key)).toEqual({size: body.length})
  expect((await client.get(key))!.equals(body)).toBe(true)

  const viaSdk = await readWithSdk(`wal/area1/${key}`)
  expect(viaSdk.body.equals(body)).toBe(true)
  expect(viaSdk.path).toBe(`/${BUCKET}/${encodeKeyPath(`wal/area1/${key}`)}`)
})

test('keys are relative to the prefix; an empty prefix is the bucket root', async () => {
  const prefixed = new AgentS3Client(location({prefix: 'tenant/a'}))
  const root = new AgentS3Client(location({prefix: ''}))
  expect(await prefixed.putIfAbsent('segment', Buffer.from('a'))).toBe(true)

  const listed = await s3.client().send(new ListObjectsV2Command({Bucket: BUCKET, Prefix: 'tenant/'}))
  expect(listed.Contents?.map((item) => item.Key)).toEqual(['tenant/a/segment'])
  expect((await root.get('tenant/a/segment'))?.toString()).toBe('a')
  expect(await root.head('segment')).toBeUndefined()
  expect(await new AgentS3Client(location({prefix: 'tenant'})).head('a/segment')).toEqual({size: 1})
})

test('s3rver accepts a wrong secret key (it does not check V4 signatures) but refuses an unknown access key with 403', async () => {
  // What s3rver does, pinned so that a change shows up: real S3 would answer 403 SignatureDoesNotMatch to the first.
  const wrongSecret = new AgentS3Client(location({credentials: {accessKeyId: S3_CREDENTIALS.AWS_ACCESS_KEY_ID, secretAccessKey: 'not-the-secret'}}))
  expect(await wrongSecret.head('000000010000000000000001')).toEqual({size: 16 * 1024 * 1024})

  const unknownKey = new AgentS3Client(location({credentials: {accessKeyId: 'NOBODY', secretAccessKey: 'S3RVER'}}))
  const onGet = await errorOf(unknownKey.get('000000010000000000000001'))
  expect({status: onGet.status, code: onGet.code}).toEqual({status: 403, code: 'InvalidAccessKeyId'})
  expect(onGet.message).toContain('The AWS Access Key Id you provided does not exist in our records.')
  // A HEAD answer has no body: the code is the HTTP reason.
  const onHead = await errorOf(unknownKey.head('000000010000000000000001'))
  expect({status: onHead.status, code: onHead.code}).toEqual({status: 403, code: 'Forbidden'})
})

test('nothing listening: NetworkError naming the endpoint', async () => {
  const closed = http.createServer()
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
  const port = (closed.address() as AddressInfo).port
  await new Promise<void>((resolve) => closed.close(() => resolve()))

  const error = await errorOf(new AgentS3Client(location({endpoint: `http://127.0.0.1:${port}`})).get('k'))
  expect({status: error.status, code: error.code}).toEqual({status: 0, code: 'NetworkError'})
  expect(error.message).toContain(`http://127.0.0.1:${port}`)
  expect(error.message).toContain('ECONNREFUSED')
})

describe('against a server that answers a PUT as S3 would', () => {
  let server: http.Server
  let answer: {status: number; headers: Record<string, string>; body: string}
  let received: {method?: string; url?: string; headers: http.IncomingHttpHeaders; body: Buffer}
  beforeAll(async () => {
    server = http.createServer((request, response) => {
      const chunks: Buffer[] = []
      request.on('data', (chunk: Buffer) => chunks.push(chunk))
      request.on('end', () => {
        received = {method: request.method, url: request.url, headers: request.headers, body: Buffer.concat(chunks)}
        response.writeHead(answer.status, answer.headers).end(answer.body)
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  })
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  const client = (): AgentS3Client => new AgentS3Client(location({endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, prefix: 'p'}))
  const body = Buffer.from('segment bytes')
  const md5 = createHash('md5').update(body).digest()

  test('sends a create-only PUT with Content-MD5 and the body\'s SHA-256; stored when the ETag is its MD5', async () => {
    answer = {status: 200, headers: {ETag: `"${md5.toString('hex')}"`}, body: ''}
    expect(await client().putIfAbsent('a b', body)).toBe(true)
    expect(received.method).toBe('PUT')
    expect(received.url).toBe(`/${BUCKET}/p/a%20b`)
    expect(received.body.equals(body)).toBe(true)
    expect(received.headers['if-none-match']).toBe('*')
    expect(received.headers['content-md5']).toBe(md5.toString('base64'))
    expect(received.headers['x-amz-content-sha256']).toBe(createHash('sha256').update(body).digest('hex'))
    expect(received.headers.authorization).toMatch(/SignedHeaders=content-md5;host;if-none-match;x-amz-content-sha256;x-amz-date, /)
  })

  test.each([
    [412, 'PreconditionFailed'],
    [409, 'ConditionalRequestConflict'],
  ])('%i %s: not stored, false', async (status, code) => {
    answer = {status, headers: {}, body: `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>`}
    expect(await client().putIfAbsent('k', body)).toBe(false)
  })

  test('an ETag that is not the MD5 of the body: ChecksumMismatch', async () => {
    answer = {status: 200, headers: {ETag: '"0123456789abcdef0123456789abcdef"'}, body: ''}
    const error = await errorOf(client().putIfAbsent('k', body))
    expect(error.code).toBe('ChecksumMismatch')
  })

  test('an ETag that is no MD5 (SSE-KMS, multipart): not compared', async () => {
    answer = {status: 200, headers: {ETag: '"0123456789abcdef0123456789abcdef"', 'x-amz-server-side-encryption': 'aws:kms'}, body: ''}
    expect(await client().putIfAbsent('k', body)).toBe(true)
    answer = {status: 200, headers: {ETag: '"0123456789abcdef0123456789abcdef-2"'}, body: ''}
    expect(await client().putIfAbsent('k', body)).toBe(true)
  })

  test('another refusal: S3Error with the code and message of the error body, entities decoded', async () => {
    answer = {status: 400, headers: {}, body: '<Error><Code>BadDigest</Code><Message>The Content-MD5 &amp; body differ</Message></Error>'}
    const error = await errorOf(client().putIfAbsent('k', body))
    expect({status: error.status, code: error.code}).toEqual({status: 400, code: 'BadDigest'})
    expect(error.message).toContain('The Content-MD5 & body differ')
  })

  test('a body shorter than its Content-Length: NetworkError, not a short object', async () => {
    const cut = http.createServer((_request, response) => {
      response.writeHead(200, {'Content-Length': '100'})
      response.write('only ten b')
      // Closing the socket mid-body, as a dropped connection would.
      setTimeout(() => response.socket?.destroy(), 50)
    })
    await new Promise<void>((resolve) => cut.listen(0, '127.0.0.1', resolve))
    try {
      const error = await errorOf(new AgentS3Client(location({endpoint: `http://127.0.0.1:${(cut.address() as AddressInfo).port}`})).get('k'))
      expect(error.code).toBe('NetworkError')
    } finally {
      await new Promise<void>((resolve) => cut.close(() => resolve()))
    }
  })
})

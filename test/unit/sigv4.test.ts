import {createHash, createHmac} from 'node:crypto'

import {SignatureV4} from '@smithy/signature-v4'

import {amzDate, encodeKeyPath, signRequest, signedHeaders, type SigningRequest} from '../../src/wal-agent/s3-client.js'

/**
 * The agent signs its S3 requests by hand, and s3rver (the integration tests' server) does not
 * check V4 signatures. So the signing is pinned here: against the examples AWS publishes in
 * "Signature Calculations for the Authorization Header" (S3 API reference), and against the
 * signer inside @aws-sdk/client-s3 for what those examples do not cover (session tokens,
 * encoded keys, conditional-PUT headers).
 */
const AWS_EXAMPLE = {
  host: 'examplebucket.s3.amazonaws.com',
  date: new Date('2013-05-24T00:00:00Z'),
  region: 'us-east-1',
  credentials: {accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'},
}
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'

test('GET Object: the documented example signature', () => {
  const authorization = signRequest({
    ...AWS_EXAMPLE, method: 'GET', path: '/test.txt', query: {},
    headers: {Range: 'bytes=0-9'}, payloadHash: EMPTY_SHA256,
  })
  expect(authorization).toBe('AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, '
    + 'SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, '
    + 'Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41')
})

test('PUT Object: the documented example, a key with $ and a signed body', () => {
  const body = 'Welcome to Amazon S3.'
  const payloadHash = createHash('sha256').update(body).digest('hex')
  expect(payloadHash).toBe('44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072')
  const authorization = signRequest({
    ...AWS_EXAMPLE, method: 'PUT', path: `/${encodeKeyPath('test$file.text')}`, query: {},
    headers: {Date: 'Fri, 24 May 2013 00:00:00 GMT', 'x-amz-storage-class': 'REDUCED_REDUNDANCY'}, payloadHash,
  })
  expect(authorization).toMatch(/SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd$/)
})

test('GET Bucket (List Objects): the documented example, a query string', () => {
  const authorization = signRequest({
    ...AWS_EXAMPLE, method: 'GET', path: '/', query: {prefix: 'J', 'max-keys': '2'}, headers: {}, payloadHash: EMPTY_SHA256,
  })
  expect(authorization).toMatch(/Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7$/)
})

test('x-amz-date is the basic ISO 8601 form', () => {
  expect(amzDate(new Date('2013-05-24T01:02:03.456Z'))).toBe('20130524T010203Z')
})

test('keys are encoded per segment, RFC 3986 unreserved characters and the slashes kept', () => {
  expect(encodeKeyPath("a b/c+d/ü日/!'()*/~._-/x?y#z&=%")).toBe('a%20b/c%2Bd/%C3%BC%E6%97%A5/%21%27%28%29%2A/~._-/x%3Fy%23z%26%3D%25')
  expect(encodeKeyPath('wal/./../000000010000000000000001')).toBe('wal/./../000000010000000000000001')
})

type SourceData = string | ArrayBuffer | ArrayBufferView

function bytes(data: SourceData): string | Uint8Array {
  if (typeof data === 'string') return data
  return ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data)
}

/** The hash constructor the SDK's signer wants, from node:crypto (HMAC when given a secret). */
class NodeSha256 {
  private readonly hash
  constructor(secret?: SourceData) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret))
  }

  update(data: SourceData): void {
    this.hash.update(bytes(data))
  }

  async digest(): Promise<Uint8Array> {
    return this.hash.digest()
  }
}

test.each([
  ['a session token and a conditional PUT', 'PUT', 'wal/area 1/000000010000000000000001', {'content-md5': '1B2M2Y8AsgTpgAmY7PhCfg==', 'if-none-match': '*'}, 'FQoGZXIvYXdzEBYaD+token/with=chars'],
  ['a key with spaces, unicode and +', 'GET', 'p/with space/ünï+cödé 日本/a+b=c', {}, undefined],
  ['a HEAD with inner runs of spaces in a header value', 'HEAD', 'k', {'x-amz-meta-note': '  two   spaces  '}, undefined],
])('the same signature as the AWS SDK signer: %s', async (_name, method, key, headers: Record<string, string>, sessionToken) => {
  const request: SigningRequest = {
    method, host: 'bucket.s3.eu-west-3.amazonaws.com:8443', path: `/${encodeKeyPath(key)}`, query: {},
    headers, payloadHash: createHash('sha256').update(key).digest('hex'), date: new Date('2024-02-29T23:59:59Z'),
    region: 'eu-west-3', credentials: {accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret/with+chars', sessionToken},
  }
  const sdk = new SignatureV4({service: 's3', region: request.region, credentials: request.credentials, sha256: NodeSha256, uriEscapePath: false})
  const signed = await sdk.sign({
    method, protocol: 'https:', hostname: 'bucket.s3.eu-west-3.amazonaws.com', port: 8443, path: request.path, query: {},
    // Everything our request sends except the Authorization; the SDK signer adds none of it for S3.
    headers: Object.fromEntries(signedHeaders(request).filter(([name]) => name !== 'x-amz-date' && name !== 'x-amz-security-token')),
  }, {signingDate: request.date})
  expect(signRequest(request)).toBe(signed.headers.authorization)
})

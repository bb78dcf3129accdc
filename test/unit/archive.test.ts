import {createReadStream, createWriteStream} from 'node:fs'
import {mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, truncate, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {Readable} from 'node:stream'
import zlib from 'node:zlib'

import {ChunkHasher, ChunkVerifier} from '../../src/archive/chunks.js'
import {type Compression, detectCodec, peek} from '../../src/archive/compression.js'
import {buildManifest, listDataDirectory} from '../../src/archive/data-dir.js'
import {isSafeRelativePath, parseManifest} from '../../src/archive/manifest.js'
import {extractArchive} from '../../src/archive/read.js'
import {writeArchive} from '../../src/archive/write.js'

let work: string
let source: string

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'zenith-archive-'))
  source = path.join(work, 'source')
  await mkdir(path.join(source, 'base', '1'), {recursive: true, mode: 0o700})
  await mkdir(path.join(source, 'pg_wal'), {mode: 0o700})
  await writeFile(path.join(source, 'PG_VERSION'), '15\n', {mode: 0o600})
  await writeFile(path.join(source, 'empty'), '')
  // Three chunks of 64 KiB with a short last one, random so compression cannot hide mistakes.
  const big = Buffer.alloc(64 * 1024 * 2 + 1000)
  for (let i = 0; i < big.length; i++) big[i] = (i * 7919 + (i >> 8)) & 0xFF
  await writeFile(path.join(source, 'base', '1', '1259'), big)
  await writeFile(path.join(source, 'pg_wal', '000000010000000000000001'), Buffer.alloc(100_000, 1))
  await symlink('../somewhere', path.join(source, 'link'))
})

afterAll(async () => {
  await rm(work, {recursive: true, force: true})
})

async function exportTo(file: string, compression: Compression, options: {plain?: boolean} = {}) {
  const manifest = await buildManifest(source, {snapshot: 'unit', pgVersion: 15, compression, chunkSize: 64 * 1024})
  const out = createWriteStream(file)
  if (options.plain) await writeArchive(source, out, {entries: await listDataDirectory(source), compression})
  else await writeArchive(source, out, {manifest, compression})
  return manifest
}

async function importFrom(file: string, target: string) {
  return extractArchive(createReadStream(file), target)
}

async function tree(dir: string): Promise<Record<string, string>> {
  const result: Record<string, string> = {}
  for (const entry of await listDataDirectory(dir)) {
    result[entry.path] = entry.type === 'file' ? (await readFile(path.join(dir, entry.path))).toString('base64') : `${entry.type}:${entry.target ?? ''}:${entry.mode.toString(8)}`
  }

  return result
}

describe('chunk checksums', () => {
  test('are the same however the bytes are sliced', () => {
    const data = Buffer.from('abcdefghij'.repeat(1000))
    const whole = new ChunkHasher(1024)
    whole.update(data)
    const sliced = new ChunkHasher(1024)
    for (let i = 0; i < data.length; i += 333) sliced.update(data.subarray(i, i + 333))
    expect(sliced.finish()).toEqual(whole.finish())
    expect(whole.chunks).toHaveLength(10)
  })

  test('a verifier names the first bad chunk, and a missing tail', () => {
    const data = Buffer.alloc(3000, 7)
    const hasher = new ChunkHasher(1024)
    hasher.update(data)
    const expected = hasher.finish()
    const bad = Buffer.from(data)
    bad[1500] = 8
    expect(new ChunkVerifier(expected, 1024).update(bad)).toBe(1)
    const short = new ChunkVerifier(expected, 1024)
    expect(short.update(data.subarray(0, 2048))).toBeUndefined()
    expect(short.finish()).toBe(2)
  })
})

describe('manifest', () => {
  test('refuses a newer version, another format and unsafe paths', () => {
    const good = {format: 'zenith-archive', version: 1, snapshot: 's', pgVersion: 15, createdAt: '', chunkSize: 1, compression: 'gzip', totalBytes: 0, files: []}
    expect(parseManifest(JSON.stringify(good)).snapshot).toBe('s')
    expect(() => parseManifest(JSON.stringify({...good, version: 2}))).toThrow(/version 2/)
    expect(() => parseManifest(JSON.stringify({...good, format: 'x'}))).toThrow(/not a zenith archive/)
    expect(() => parseManifest('{')).toThrow(/not valid JSON/)
    expect(() => parseManifest(JSON.stringify({...good, files: [{path: '../etc/passwd', type: 'file', mode: 0, size: 0, chunks: []}]}))).toThrow(/unsafe/)
    expect(isSafeRelativePath('base/1/1259')).toBe(true)
    expect(isSafeRelativePath('/etc')).toBe(false)
  })
})

describe('codec detection', () => {
  test('gzip, tar and anything else', async () => {
    expect(detectCodec(zlib.gzipSync('x'))).toBe('gzip')
    const tarHead = Buffer.alloc(512)
    tarHead.write('ustar', 257, 'latin1')
    expect(detectCodec(tarHead)).toBe('none')
    expect(detectCodec(Buffer.from('hello'))).toBe('brotli')
  })

  test('peek gives the bytes back, also for a stream shorter than asked', async () => {
    const {head, stream} = await peek(Readable.from([Buffer.from('abc'), Buffer.from('def')]), 4)
    expect(head.length).toBeGreaterThanOrEqual(3)
    const all: Buffer[] = []
    for await (const chunk of stream) all.push(chunk as Buffer)
    expect(Buffer.concat(all).toString()).toBe('abcdef')
  })
})

describe('round trip', () => {
  for (const compression of ['gzip', 'gzip-fast', 'brotli', 'none'] as Compression[]) {
    test(`${compression}: same files, modes and links; manifest first`, async () => {
      const file = path.join(work, `rt.${compression}.zenith`)
      const manifest = await exportTo(file, compression)
      const target = path.join(work, `rt-${compression}`)
      const result = await importFrom(file, target)
      expect(result.kind).toBe('zenith')
      expect(result.manifest?.systemIdentifier).toBe(manifest.systemIdentifier)
      expect(await tree(target)).toEqual(await tree(source))
    })
  }

  test('a plain tar.gz (no manifest) extracts as a tar', async () => {
    const file = path.join(work, 'plain.tar.gz')
    await exportTo(file, 'gzip', {plain: true})
    const target = path.join(work, 'plain')
    const result = await importFrom(file, target)
    expect(result.kind).toBe('tar')
    expect(await tree(target)).toEqual(await tree(source))
  })
})

describe('bad input', () => {
  test('a corrupted byte in an uncompressed archive: CHECKSUM_MISMATCH', async () => {
    const file = path.join(work, 'corrupt.zenith')
    await exportTo(file, 'none')
    const bytes = await readFile(file)
    const at = bytes.indexOf(Buffer.alloc(64, 1))
    bytes[at + 10] = 2
    await writeFile(file, bytes)
    await expect(importFrom(file, path.join(work, 'corrupt'))).rejects.toMatchObject({code: 'CHECKSUM_MISMATCH'})
  })

  test('a corrupted byte in a gzip archive: CHECKSUM_MISMATCH or ARCHIVE_INVALID', async () => {
    const file = path.join(work, 'corrupt.gz.zenith')
    await exportTo(file, 'gzip')
    const bytes = await readFile(file)
    bytes[Math.floor(bytes.length / 2)] ^= 0xFF
    await writeFile(file, bytes)
    const error = await importFrom(file, path.join(work, 'corrupt-gz')).catch((error_: unknown) => error_)
    expect(['CHECKSUM_MISMATCH', 'ARCHIVE_INVALID']).toContain((error as {code: string}).code)
  })

  for (const compression of ['gzip', 'none'] as Compression[]) {
    test(`a truncated ${compression} archive: ARCHIVE_INVALID`, async () => {
      const file = path.join(work, `trunc.${compression}.zenith`)
      await exportTo(file, compression)
      await truncate(file, Math.floor((await stat(file)).size * 0.6))
      await expect(importFrom(file, path.join(work, `trunc-${compression}`))).rejects.toMatchObject({code: 'ARCHIVE_INVALID'})
    })
  }

  test('not an archive, and an empty file: ARCHIVE_INVALID', async () => {
    const file = path.join(work, 'notes.txt')
    await writeFile(file, 'these are not the bytes you are looking for\n'.repeat(50))
    await expect(importFrom(file, path.join(work, 'notes'))).rejects.toMatchObject({code: 'ARCHIVE_INVALID'})
    await writeFile(file, '')
    await expect(importFrom(file, path.join(work, 'empty'))).rejects.toMatchObject({code: 'ARCHIVE_INVALID'})
  })

  test('a tar whose entries climb out of the folder: ARCHIVE_INVALID, nothing written outside', async () => {
    const tar = await import('tar-stream')
    const pack = tar.pack()
    pack.entry({name: '../escape', type: 'file'}, 'x')
    pack.finalize()
    await expect(extractArchive(Readable.from(pack as unknown as AsyncIterable<Buffer>), path.join(work, 'escape', 'in'))).rejects.toMatchObject({code: 'ARCHIVE_INVALID'})
    expect(await readdir(path.join(work)).then((names) => names.includes('escape') ? readdir(path.join(work, 'escape')) : [])).not.toContain('escape')
  })
})

import {mkdir, mkdtemp, readdir, rm, symlink, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {listDataDirectory} from '../../src/archive/data-dir.js'
import {compressChunk, hashChunk, newManifest, normalizeManifest, openChunk, readChunks, sameContent, validateManifest} from '../../src/archive/chunker.js'
import {DirStorage} from '../../src/storage/drivers/dir.js'
import {listSnapshotsIn, updateIndex} from '../../src/remote/layout.js'
import {withIndexLock} from '../../src/remote/locks.js'
import {PACKS_INDEX_KEY, packKey, planRanges} from '../../src/archive/packs.js'
import {PackWriter, readPackIndexes, writePacksIndex} from '../../src/remote/stored-packs.js'
import {parseRemoteUrl} from '../../src/remote/open.js'
import {s3Options} from '../../src/storage/drivers/s3.js'
import {TaskPool} from '../../src/task-pool.js'

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'zenith-unit-remote-'))
})
afterEach(async () => {
  await rm(dir, {recursive: true, force: true})
})

describe('chunker', () => {
  test('cuts a file into fixed pieces, the last one shorter; an empty file has none', async () => {
    await writeFile(path.join(dir, 'f'), Buffer.alloc(10_000, 7))
    await writeFile(path.join(dir, 'empty'), '')
    const pieces: number[] = []
    for await (const chunk of readChunks(path.join(dir, 'f'), 4096)) pieces.push(chunk.length)
    expect(pieces).toEqual([4096, 4096, 1808])
    const none: Buffer[] = []
    for await (const chunk of readChunks(path.join(dir, 'empty'), 4096)) none.push(chunk)
    expect(none).toEqual([])
  })

  test('a push lists the data directory as an archive does: stable order, modes, times in seconds', async () => {
    await mkdir(path.join(dir, 'base', '1'), {recursive: true, mode: 0o700})
    await writeFile(path.join(dir, 'base', '1', '112'), 'x', {mode: 0o600})
    await symlink('/elsewhere', path.join(dir, 'pg_wal'))
    const entries = await listDataDirectory(dir)
    expect(Math.abs(entries[2].mtime - Date.now() / 1000)).toBeLessThan(3600)
    expect(entries.map((entry) => [entry.path, entry.type])).toEqual([['base', 'dir'], ['base/1', 'dir'], ['base/1/112', 'file'], ['pg_wal', 'symlink']])
    expect(entries[2].mode).toBe(0o600)
    expect(entries[3].target).toBe('/elsewhere')
  })

  test('a stored chunk opens only when its content matches its hash', async () => {
    const content = Buffer.from('page '.repeat(1000))
    const stored = await compressChunk(content)
    expect(stored.length).toBeLessThan(content.length)
    expect(openChunk(stored, hashChunk(content))).toEqual(content)
    expect(openChunk(stored, hashChunk(Buffer.from('other')))).toBeUndefined()
    expect(openChunk(Buffer.from('garbage'), hashChunk(content))).toBeUndefined()
  })

  test('manifests compare by content, not by time; invalid paths are rejected', () => {
    const file = {path: 'PG_VERSION', type: 'file' as const, mode: 0o600, size: 3, chunks: [hashChunk(Buffer.from('15\n'))]}
    const a = newManifest('dev@x', 15, [file])
    const b = {...newManifest('dev@x', 15, [{...file, mtime: 5}]), createdAt: '2000-01-01T00:00:00Z'}
    expect(sameContent(a, b)).toBe(true)
    expect(sameContent(a, newManifest('dev@x', 15, [{...file, mode: 0o644}]))).toBe(false)
    expect(validateManifest(a)).toBe(true)
    expect(validateManifest(newManifest('dev@x', 15, [{...file, path: '../etc/passwd'}]))).toBe(false)
    expect(validateManifest(newManifest('dev@x', 15, [{...file, chunks: ['nothex']}]))).toBe(false)
    expect(validateManifest({...a, packs: {['a'.repeat(64)]: [[file.chunks[0], 0, 10]]}})).toBe(true)
    expect(validateManifest({...a, packs: {['a'.repeat(64)]: [[file.chunks[0], -1, 10]]}})).toBe(false)
  })

  test('manifests of the layout before packs had times in milliseconds', () => {
    const file = {path: 'PG_VERSION', type: 'file' as const, mode: 0o600, size: 3, mtime: 1_700_000_000_123, chunks: []}
    const old = newManifest('dev@x', 15, [file])
    delete old.layout
    expect(normalizeManifest(old).files[0].mtime).toBe(1_700_000_000)
    const current = newManifest('dev@x', 15, [{...file, mtime: 1_700_000_000}])
    expect(normalizeManifest(current).files[0].mtime).toBe(1_700_000_000)
  })
})

describe('packs', () => {
  test('chunks go into packs of about the given size; each pack has an index; ranges read them back', async () => {
    const store = new DirStorage(dir)
    const writer = new PackWriter(store, 100)
    const chunks = Array.from({length: 5}, (_, i) => Buffer.alloc(40, i))
    for (const [i, chunk] of chunks.entries()) await writer.add(`${i}`.repeat(64), chunk)
    await writer.finish()
    const packs = new Set([...writer.written.values()].map((where) => where.pack))
    expect(packs.size).toBe(2)
    const catalog = await readPackIndexes(store)
    expect(catalog.indexesRead).toBe(2)
    const found = catalog.locations
    expect(found).toEqual(writer.written)
    expect(catalog.packs).toEqual(writer.packs)
    for (const [i, chunk] of chunks.entries()) {
      const where = found.get(`${i}`.repeat(64))!
      expect(await store.getRange(packKey(where.pack), where.offset, where.offset + where.length - 1)).toEqual(chunk)
    }

    // With pack-index.json, no pack's own index is read; a pack it lacks still is.
    const [first, second] = packs
    await writePacksIndex(store, new Map([[first, writer.packs.get(first)!]]))
    const combined = await readPackIndexes(store)
    expect(combined.indexesRead).toBe(1)
    expect(combined.locations).toEqual(writer.written)
    await writePacksIndex(store, writer.packs)
    expect((await readPackIndexes(store)).indexesRead).toBe(0)

    // A pack whose object is gone is not trusted, even though its index (and pack-index.json) name it.
    await store.delete(packKey(second))
    const after = await readPackIndexes(store)
    expect([...after.locations.values()].every((where) => where.pack !== second)).toBe(true)
    expect(after.packs.has(second)).toBe(false)
    expect(await store.getRange(packKey(second), 0, 10)).toBeUndefined()

    // An unreadable pack-index.json only means every .idx is read.
    await store.put(PACKS_INDEX_KEY, Buffer.from('{not json'))
    expect((await readPackIndexes(store)).indexesRead).toBe(1)
  })

  test('neighbouring chunks are fetched in one range, within a size limit', () => {
    const pack = 'p'.repeat(64)
    const at = (hash: string, offset: number, length = 10) => ({hash, pack, offset, length})
    expect(planRanges([at('c', 20), at('a', 0), at('b', 10), at('far', 10_000)], 1000, 100)).toEqual([
      {pack, start: 0, end: 29, hashes: ['a', 'b', 'c']},
      {pack, start: 10_000, end: 10_009, hashes: ['far']},
    ])
    expect(planRanges([at('a', 0), at('b', 10)], 15, 100).map((range) => range.hashes)).toEqual([['a'], ['b']])
  })
})

describe('remote URLs and options', () => {
  test('s3, file and zenith URLs', () => {
    const s3 = parseRemoteUrl('s3://team/snaps/dev?endpoint=http://127.0.0.1:9000')
    expect(s3.kind === 'store' && s3.store.location).toBe('s3://team/snaps/dev')
    const file = parseRemoteUrl('file:///mnt/share')
    expect(file.kind === 'store' && file.store.location).toBe('/mnt/share')
    expect(parseRemoteUrl('zenith://10.0.0.5:7000/abcdefghijklmnopqrstuvwx')).toMatchObject({kind: 'recv', host: '10.0.0.5', port: 7000, token: 'abcdefghijklmnopqrstuvwx'})
    expect(() => parseRemoteUrl('ftp://x/y')).toThrow(/not a storage name or a remote URL/)
    expect(() => parseRemoteUrl('basebackup://u@h/?dbname=x')).toThrow(/not a storage name or a remote URL/)
    expect(() => parseRemoteUrl('https://example.org/x.zenith')).toThrow(/not a storage name or a remote URL/)
    expect(parseRemoteUrl('ssh://deploy@db2:2222/var/lib/zenith')).toMatchObject({kind: 'ssh', user: 'deploy', host: 'db2', port: 2222, home: '/var/lib/zenith'})
    expect(() => parseRemoteUrl('zenith://host:7000/short')).toThrow()
  })

  test('an endpoint turns on path style and when-required checksums; unknown keys are refused', () => {
    expect(s3Options({bucket: 'team', endpoint: 'http://127.0.0.1:9000'}, {})).toMatchObject({forcePathStyle: true, checksums: 'when-required', prefix: ''})
    expect(s3Options({bucket: 'team', prefix: '/a/b/'}, {})).toMatchObject({forcePathStyle: false, checksums: 'when-supported', prefix: 'a/b'})
    expect(s3Options({bucket: 'team'}, {ZENITH_S3_ENDPOINT: 'http://minio:9000'}).endpoint).toBe('http://minio:9000')
    expect(() => s3Options({bucket: 'team', secret: 'x'}, {})).toThrow(/Unknown s3 option/)
    expect(() => s3Options({}, {})).toThrow(/needs a bucket/)
  })
})

describe('dir object store and index', () => {
  test('put/get/head/list/delete, no temporary files left', async () => {
    const store = new DirStorage(dir)
    await store.put('chunks/aa', Buffer.from('one'))
    await store.put('chunks/bb', Buffer.from('two'))
    await store.put('manifests/x.json', Buffer.from('{}'))
    expect((await store.get('chunks/aa'))?.toString()).toBe('one')
    expect(await store.get('chunks/zz')).toBeUndefined()
    expect(await store.head('chunks/bb')).toEqual({size: 3})
    const keys: string[] = []
    for await (const item of store.list('chunks/')) keys.push(item.key)
    expect(keys).toEqual(['chunks/aa', 'chunks/bb'])
    await store.delete('chunks/aa')
    await store.delete('chunks/aa')
    expect(await readdir(path.join(dir, 'chunks'))).toEqual(['bb'])
    await expect(store.get('../escape')).rejects.toThrow()
  })

  test('concurrent index updates both land', async () => {
    const store = new DirStorage(dir)
    const entry = (name: string) => ({logicalBytes: 1, createdAt: name, pgVersion: 15, chunks: 1})
    await Promise.all(['a', 'b', 'c'].map((name) => updateIndex(store, (index) => {
      index.snapshots[name] = entry(name)
    })))
    expect((await listSnapshotsIn(store)).map((item) => item.name)).toEqual(['a', 'b', 'c'])
    const many = Array.from({length: 12}, (_, i) => `s${String(i).padStart(2, '0')}`)
    await Promise.all(many.map((name) => updateIndex(store, (index) => {
      index.snapshots[name] = entry(name)
    })))
    expect((await listSnapshotsIn(store)).map((item) => item.name)).toEqual(['a', 'b', 'c', ...many])
    // Every lock was released.
    const locks: string[] = []
    for await (const item of store.list('locks/')) locks.push(item.key)
    expect(locks).toEqual([])
  })

  test('the index lock waits for a live holder; a killed one on this host or a stale one does not count', async () => {
    const store = new DirStorage(dir)
    const holder = (host: string, pid: number, refreshedAt: Date) => Buffer.from(JSON.stringify({
      kind: 'index', host, pid, startedAt: refreshedAt.toISOString(), refreshedAt: refreshedAt.toISOString(),
    }))
    let ran = 0
    const work = async () => {
      ran++
    }

    await store.put('locks/index-0-live.json', holder('elsewhere', 1, new Date()))
    await expect(withIndexLock(store, work, 300)).rejects.toMatchObject({code: 'REMOTE_CONFLICT'})
    expect(ran).toBe(0)
    await store.delete('locks/index-0-live.json')
    await store.put('locks/index-0-stale.json', holder('elsewhere', 1, new Date(Date.now() - 10 * 60 * 1000)))
    await store.put('locks/index-0-dead.json', holder(os.hostname(), 2 ** 22 + 12_345, new Date()))
    // A push or gc lock is not an index lock.
    await store.put('locks/push-0-other.json', holder('elsewhere', 1, new Date()))
    await withIndexLock(store, work, 300)
    expect(ran).toBe(1)
  })
})

describe('task pool', () => {
  test('runs at most N at once and reports the first failure', async () => {
    const pool = new TaskPool(2)
    let running = 0
    let peak = 0
    for (let i = 0; i < 6; i++) {
      await pool.run(async () => {
        running++
        peak = Math.max(peak, running)
        await new Promise((resolve) => setTimeout(resolve, 5))
        running--
      })
    }

    await pool.drain()
    expect(peak).toBe(2)
    const failing = new TaskPool(2)
    await failing.run(async () => {
      throw new Error('boom')
    })
    await expect(failing.drain()).rejects.toThrow('boom')
  })
})

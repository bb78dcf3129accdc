import {mkdtemp, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {DirStorage} from '../../src/storage/drivers/dir.js'
import {S3Storage} from '../../src/storage/drivers/s3.js'
import type {ObjectStore} from '../../src/storage/storage.js'
import {updateIndex, listSnapshotsIn} from '../../src/remote/layout.js'
import {S3_CREDENTIALS, S3Server} from '../helpers/s3.js'

/**
 * What collection and the index rely on in both remote media: deletes in batches (S3:
 * DeleteObjects, at most 1000 keys a request) and index updates that are never lost. Against a
 * real S3-protocol server (s3rver) on 127.0.0.1 and a folder; no postgres, no ports.
 */
let s3: S3Server
let dir: string
const saved = {...process.env}
beforeAll(async () => {
  s3 = await S3Server.start()
  await s3.createBucket('zenith-batches')
  Object.assign(process.env, S3_CREDENTIALS)
  dir = await mkdtemp(path.join(os.tmpdir(), 'zenith-remote-store-'))
})
afterAll(async () => {
  process.env = saved
  await s3?.stop()
  await rm(dir, {recursive: true, force: true})
})

const stores = (): Array<[string, () => ObjectStore]> => [
  ['s3', () => new S3Storage({bucket: 'zenith-batches', prefix: 'p', endpoint: s3.endpoint, forcePathStyle: true, checksums: 'when-required'})],
  ['dir', () => new DirStorage(dir)],
]

async function keys(store: ObjectStore, prefix: string): Promise<string[]> {
  const found: string[] = []
  for await (const item of store.list(prefix)) found.push(item.key)
  return found.sort()
}

describe.each(stores())('%s store', (_name, open) => {
  test('deleteMany removes more than one batch of keys, skips missing ones and keeps the rest', async () => {
    const store = open()
    const doomed = Array.from({length: 1003}, (_, i) => `gone/${String(i).padStart(4, '0')}`)
    for (let i = 0; i < doomed.length; i += 50) {
      await Promise.all(doomed.slice(i, i + 50).map((key) => store.put(key, Buffer.from(key))))
    }

    await store.put('gone-not/kept', Buffer.from('kept'))
    await store.deleteMany([...doomed, 'gone/missing'])
    expect(await keys(store, 'gone')).toEqual(['gone-not/kept'])
    await store.deleteMany([])
  }, 120_000)

  test('concurrent index updates all land', async () => {
    const store = open()
    const names = Array.from({length: 6}, (_, i) => `snap${i}`)
    await Promise.all(names.map((name) => updateIndex(store, (index) => {
      index.snapshots[name] = {logicalBytes: 1, createdAt: name, pgVersion: 15, chunks: 1}
    })))
    expect((await listSnapshotsIn(store)).map((item) => item.name)).toEqual(names)
    expect(await keys(store, 'locks/')).toEqual([])
  }, 60_000)
})

import {copyFile, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {isZenithError} from '../../src/errors.js'
import {LATEST_VERSION, migrate} from '../../src/state/migrations.js'
import {SCHEMA_VERSION} from '../../src/state/schema.js'
import {Store} from '../../src/state/store.js'
import {openRecord} from '../../src/storage/registry.js'
import {ROOT} from '../helpers/zenith.js'

/**
 * test/fixtures/state-v1.json is a store as zenith wrote it at schema version 1 (made by running
 * the CLI of that time: `pg create dev`, `snapshot create dev@v1`, `storage attach -t dir -n share`,
 * `storage attach -t btrfs -n fast` on a loop-mounted btrfs; the password was replaced).
 */
const FIXTURE = path.join(ROOT, 'test', 'fixtures', 'state-v1.json')

let home: string
beforeEach(async () => {
  home = await mkdtemp(path.join(os.tmpdir(), 'zenith-migrations-'))
})
afterEach(async () => {
  await rm(home, {recursive: true, force: true})
})

async function codeOf(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught)
  if (error === undefined) return 'no error'
  if (isZenithError(error)) return error.code
  throw error
}

describe('state migrations', () => {
  test('the migrations end at the schema version the code writes', () => {
    expect(LATEST_VERSION).toBe(SCHEMA_VERSION)
    expect(SCHEMA_VERSION).toBe(2)
  })

  test('a version-1 store is read as the current version: every storage names its driver, nothing else changes', async () => {
    const original = JSON.parse(await readFile(FIXTURE, 'utf8'))
    expect(original.version).toBe(1)
    await copyFile(FIXTURE, path.join(home, 'state.json'))
    const data = await new Store(home).read()
    expect(data.version).toBe(SCHEMA_VERSION)
    expect(Object.fromEntries(Object.values(data.storages).map((record) => [record.name, record.driver]))).toEqual({local: 'copy', fast: 'btrfs', share: 'dir'})
    // The rest is as it was: pgs, snapshots, and every other field of the storages.
    expect(data.pgs).toEqual(original.pgs)
    expect(data.snapshots).toEqual(original.snapshots)
    expect(data.pitr).toEqual(original.pitr)
    for (const [name, record] of Object.entries(data.storages)) {
      const {driver, ...rest} = record
      expect(driver).toEqual(expect.any(String))
      expect(rest).toEqual(original.storages[name])
    }

    // Reading does not write: the file stays at version 1 until something changes.
    expect(JSON.parse(await readFile(path.join(home, 'state.json'), 'utf8')).version).toBe(1)
  })

  test('the first update saves a migrated store, which reads back the same', async () => {
    await copyFile(FIXTURE, path.join(home, 'state.json'))
    const store = new Store(home)
    const migrated = await store.read()
    await store.update(() => undefined)
    const saved = JSON.parse(await readFile(store.file, 'utf8'))
    expect(saved.version).toBe(SCHEMA_VERSION)
    expect(saved).toEqual(migrated)
    expect(await store.read()).toEqual(migrated)
  })

  test('each migrated storage opens with the driver that has the capabilities of its old copy method', async () => {
    await copyFile(FIXTURE, path.join(home, 'state.json'))
    const data = await new Store(home).read()
    expect(openRecord(data.storages.local).capabilities).toMatchObject({volumes: true, thinClone: false, atomicSnapshot: false})
    expect(openRecord(data.storages.fast).capabilities).toMatchObject({volumes: true, thinClone: true, atomicSnapshot: true, exactSize: true})
    expect(openRecord(data.storages.share).capabilities).toMatchObject({volumes: false, wal: true})
  })

  test('a record that already names its driver keeps it; s3 and zfs records get their type as driver', () => {
    const data = {
      version: 1,
      storages: {
        a: {name: 'a', type: 'local', path: '/x', options: {}, copyMethod: 'reflink', createdAt: 'now'},
        b: {name: 'b', type: 's3', options: {bucket: 'team'}, createdAt: 'now'},
        c: {name: 'c', type: 'zfs', options: {}, createdAt: 'now'},
        d: {name: 'd', type: 'local', path: '/y', options: {}, copyMethod: 'copy', createdAt: 'now', driver: 'custom'},
      },
      pgs: {}, snapshots: {}, pitr: {},
    }
    migrate(data)
    expect(data.version).toBe(SCHEMA_VERSION)
    expect(Object.values(data.storages).map((record) => (record as {driver?: string}).driver)).toEqual(['reflink', 's3', 'zfs', 'custom'])
  })

  test('a store newer than this zenith is still refused with STORE_TOO_NEW and left untouched', async () => {
    const text = JSON.stringify({version: SCHEMA_VERSION + 1, storages: {}, pgs: {}, snapshots: {}, pitr: {}})
    await writeFile(path.join(home, 'state.json'), text)
    expect(await codeOf(new Store(home).read())).toBe('STORE_TOO_NEW')
    expect(await codeOf(new Store(home).update(() => undefined))).toBe('STORE_TOO_NEW')
    expect(await readFile(path.join(home, 'state.json'), 'utf8')).toBe(text)
  })
})

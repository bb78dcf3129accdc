import {isZenithError} from '../../src/errors.js'
import type {StorageRecord} from '../../src/state/schema.js'
import {openRecord, requireVolumes, storageDriver, storageKind, storageTypes, volumeStorage} from '../../src/storage/registry.js'
import {emptyStore} from '../../src/state/schema.js'

function codeOf(action: () => unknown): string {
  try {
    action()
    return 'no error'
  } catch (error) {
    if (isZenithError(error)) return error.code
    throw error
  }
}

const record = (driver: string, extra: Partial<StorageRecord> = {}): StorageRecord => ({
  name: `s-${driver}`, type: 'local', path: '/tmp/zenith-registry', options: {}, createdAt: 'now', driver, ...extra,
})

describe('storage registry', () => {
  test('every driver declares what it can do', () => {
    const capabilities = Object.fromEntries(['copy', 'reflink', 'btrfs', 'zfs', 's3', 'dir'].map((name) => [name, storageDriver(name).capabilities]))
    expect(capabilities).toEqual({
      copy: {volumes: true, atomicSnapshot: false, thinClone: false, exactSize: false, wal: true},
      reflink: {volumes: true, atomicSnapshot: false, thinClone: true, exactSize: false, wal: true},
      btrfs: {volumes: true, atomicSnapshot: true, thinClone: true, exactSize: true, wal: true},
      zfs: {volumes: true, atomicSnapshot: true, thinClone: true, exactSize: true, wal: true},
      s3: {volumes: false, atomicSnapshot: false, thinClone: false, exactSize: false, wal: true},
      dir: {volumes: false, atomicSnapshot: false, thinClone: false, exactSize: false, wal: true},
    })
  })

  test('opens a record with the driver it names, which has that driver\'s capabilities', () => {
    for (const name of ['copy', 'reflink', 'btrfs']) {
      const storage = openRecord(record(name))
      expect(storage.driver).toBe(name)
      expect(storage.capabilities).toBe(storageDriver(name).capabilities)
    }

    expect(openRecord(record('dir', {type: 'dir'})).driver).toBe('dir')
    expect(openRecord(record('s3', {type: 's3', path: undefined, options: {bucket: 'team'}})).location).toBe('s3://team')
  })

  test('attach types are the registry\'s; an unknown type or driver is refused', () => {
    expect(storageTypes()).toEqual(['local', 'btrfs', 'zfs', 's3', 'dir'])
    expect(storageKind('zfs').type).toBe('zfs')
    expect(storageDriver('zfs').name).toBe('zfs')
    expect(codeOf(() => storageKind('lvm'))).toBe('INVALID_ARGUMENT')
    expect(codeOf(() => storageDriver('lvm'))).toBe('STORAGE_UNSUPPORTED')
  })

  test('a zfs record opens on its dataset\'s folder: volumes and snapshots as the folder drivers lay them out', () => {
    const storage = volumeStorage({...emptyStore(), storages: {tank: record('zfs', {name: 'tank', type: 'zfs', path: '/tank/zenith', options: {dataset: 'tank/zenith'}})}}, 'tank')
    expect(storage.capabilities).toBe(storageDriver('zfs').capabilities)
    expect(storage.volumePath('dev')).toBe('/tank/zenith/volumes/dev')
    // "@" cannot be in a dataset name: encoded, reversibly ("@" and ":" both escaped).
    expect(storage.snapshotPath('dev@v1.abc123')).toBe('/tank/zenith/snapshots/dev:40v1.abc123')
    expect(storage.snapshotPath('a:b')).toBe('/tank/zenith/snapshots/a:3ab')
  })

  test('a storage without volumes is refused where data directories must live', () => {
    const data = emptyStore()
    data.storages.share = record('dir', {name: 'share', type: 'dir'})
    data.storages.fast = record('reflink', {name: 'fast'})
    expect(codeOf(() => volumeStorage(data, 'share'))).toBe('STORAGE_UNSUPPORTED')
    expect(codeOf(() => volumeStorage(data, 'nowhere'))).toBe('STORAGE_NOT_FOUND')
    expect(volumeStorage(data, 'fast').volumePath('dev')).toBe('/tmp/zenith-registry/volumes/dev')
    expect(codeOf(() => requireVolumes(openRecord(data.storages.share)))).toBe('STORAGE_UNSUPPORTED')
  })

  test('checks a type\'s options before touching anything', () => {
    expect(codeOf(() => storageKind('local').configure('x', {path: 'relative'}))).toBe('INVALID_ARGUMENT')
    expect(codeOf(() => storageKind('btrfs').configure('x', {path: '/abs', colour: 'red'}))).toBe('INVALID_ARGUMENT')
    expect(codeOf(() => storageKind('dir').configure('x', {}))).toBe('INVALID_ARGUMENT')
    expect(codeOf(() => storageKind('s3').configure('x', {bucket: 'team', secret: 'x'}))).toBe('INVALID_ARGUMENT')
    for (const options of [{}, {dataset: 'tank'}, {dataset: 'tank/a@b'}, {dataset: '/tank/a'}, {dataset: 'tank//a'}, {dataset: 'tank/../a'}, {dataset: '1tank/a'},
      {dataset: 'tank/a', mountpoint: 'relative'}, {dataset: 'tank/a', path: '/x'}] as Array<Record<string, string>>) {
      expect(codeOf(() => storageKind('zfs').configure('x', options))).toBe('INVALID_ARGUMENT')
    }

    expect(storageKind('zfs').configure('x', {dataset: 'tank/zenith/a', mountpoint: '/srv/z'})).toMatchObject({name: 'x', type: 'zfs', path: '/srv/z', options: {dataset: 'tank/zenith/a', mountpoint: '/srv/z'}})
    expect(storageKind('dir').configure('x', {path: '/mnt/share'})).toMatchObject({name: 'x', type: 'dir', path: '/mnt/share', options: {path: '/mnt/share'}})
  })
})

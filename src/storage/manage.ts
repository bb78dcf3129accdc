import type {Zenith} from '../context.js'
import {localStorage, storageRecord} from '../context.js'
import type {StorageRecord} from '../state/schema.js'

export interface StorageInfo {
  name: string
  type: StorageRecord['type']
  usedBytes: number
  freeBytes?: number
  options: Record<string, string>
  copyMethod?: StorageRecord['copyMethod']
  path?: string
  pgs: string[]
  snapshots: string[]
}

export async function listStorages(zenith: Zenith): Promise<StorageInfo[]> {
  const data = await zenith.store.read()
  return Promise.all(Object.values(data.storages).sort((a, b) => a.name.localeCompare(b.name)).map((record) => describeStorage(zenith, record)))
}

export async function showStorage(zenith: Zenith, name: string): Promise<StorageInfo> {
  return describeStorage(zenith, storageRecord(await zenith.store.read(), name))
}

async function describeStorage(zenith: Zenith, record: StorageRecord): Promise<StorageInfo> {
  const data = await zenith.store.read()
  const usage = await localStorage(data, record.name).usage()
  return {
    name: record.name,
    type: record.type,
    usedBytes: usage.usedBytes,
    freeBytes: usage.freeBytes,
    options: record.options,
    copyMethod: record.copyMethod,
    path: record.path,
    pgs: Object.values(data.pgs).filter((pg) => pg.storage === record.name).map((pg) => pg.name).sort(),
    snapshots: Object.values(data.snapshots).filter((snapshot) => snapshot.storage === record.name).map((snapshot) => snapshot.name).sort(),
  }
}

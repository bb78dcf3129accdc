import type {StorageRecord, StoreData} from '../state/schema.js'
import {openRecord} from '../storage/registry.js'
import {formatBytes} from '../cli/format.js'
import {type Check, settle} from './check.js'

/** Under this much free room a storage is a warning: the next copy or import may not fit. */
const LOW_SPACE_BYTES = 1024 ** 3
const LOW_SPACE_SHARE = 0.05

/** Every attached storage, each asked by its own driver whether it can be used now, in parallel. */
export async function storageChecks(data: StoreData, networkTimeoutMs: number): Promise<Check[]> {
  const records = Object.values(data.storages).sort((a, b) => a.name.localeCompare(b.name))
  const checks = await Promise.all(records.map((record) => settle(`storage ${record.name}`, storageCheck(record, networkTimeoutMs))))
  return checks.flat()
}

async function storageCheck(record: StorageRecord, networkTimeoutMs: number): Promise<Check[]> {
  const name = `storage ${record.name}`
  const storage = openRecord(record)
  const health = await storage.checkHealth({timeoutMs: networkTimeoutMs})
  const kind = storage.driver === record.type ? record.type : `${record.type}, ${storage.driver}`
  const checks: Check[] = [{name, status: health.access.status, detail: `${kind} at ${storage.location}: ${health.access.detail}`, fix: health.access.fix}]
  if (health.space) {
    const {freeBytes, totalBytes} = health.space
    const share = totalBytes > 0 ? freeBytes / totalBytes : 1
    const detail = `${formatBytes(freeBytes)} free of ${formatBytes(totalBytes)} (${Math.floor(share * 100)}%)`
    checks.push(freeBytes < LOW_SPACE_BYTES || share < LOW_SPACE_SHARE
      ? {name: `${name} space`, status: 'warn', detail: `only ${detail}`, fix: `Free space: destroy pgs and snapshots you no longer need (zenith storage show ${record.name} lists them), or grow the filesystem`}
      : {name: `${name} space`, status: 'ok', detail})
  }

  return checks
}

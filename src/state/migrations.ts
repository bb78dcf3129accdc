/**
 * Migrations of the metadata store, oldest first: `MIGRATIONS[i]` turns a store of version
 * `i + 1` into version `i + 2`. Each works on plain JSON (the shapes of its time, not today's
 * types) and must stay as it was written: a store may skip any number of zenith releases.
 */
type Json = Record<string, any>

const MIGRATIONS: Array<(data: Json) => void> = [
  // 1 -> 2: a storage record names the driver that opens it, instead of callers deciding from
  // its type and copy method.
  (data) => {
    for (const record of Object.values<Json>(data.storages ?? {})) {
      if (typeof record !== 'object' || record === null || typeof record.driver === 'string') continue
      record.driver = record.type === 's3' || record.type === 'dir' || record.type === 'zfs' ? record.type : (record.copyMethod ?? record.type)
    }
  },
]

/** The version a store reaches after every migration: schema.ts's SCHEMA_VERSION. */
export const LATEST_VERSION = MIGRATIONS.length + 1

/** Brings `data` (of version `data.version`, at most LATEST_VERSION) to LATEST_VERSION, in place. */
export function migrate(data: Json): void {
  for (let version = data.version as number; version < LATEST_VERSION; version++) {
    MIGRATIONS[version - 1]?.(data)
    data.version = version + 1
  }
}

import type {Zenith} from '../context.js'
import {ZenithError} from '../errors.js'
import {type PgInfo, showPg, showReplicas} from '../pg/lifecycle.js'
import type {StorageRecord} from '../state/schema.js'
import {findDriver, openStorage} from '../storage/registry.js'
import type {RemoteDestroyResult} from '../remote/collect.js'
import {type SnapshotInfo, destroySnapshot, listSnapshots, resolveSnapshot} from './snapshots.js'

/** Snapshots of a storage without volumes live in the storage itself (its index), not in the store. */
const isRemote = (record: StorageRecord) => !findDriver(record.driver)?.capabilities.volumes

/**
 * Snapshots kept in one storage: local ones from the store, remote ones from the storage's index.
 * A remote can also be named by URL (s3://, file://, ssh://), as for push and pull.
 */
export async function listSnapshotsInStorage(zenith: Zenith, storage: string, options: {pg?: string} = {}): Promise<SnapshotInfo[]> {
  // A name that is no local storage is a remote one or a URL: resolveRemote tells which (or that it is neither).
  const record = (await zenith.store.read()).storages[storage]
  if (record && !isRemote(record)) {
    return (await listSnapshots(zenith, options)).filter((snapshot) => snapshot.storage === storage)
  }

  const [{listSnapshotsIn}, {resolveRemote}] = await Promise.all([import('../remote/layout.js'), import('../remote/open.js')])
  const target = await resolveRemote(zenith, storage)
  if (target.kind === 'ssh') {
    // Another host's zenith: its own listing, run there.
    const {runRemoteJson} = await import('../protocol/ssh.js')
    const listed = await runRemoteJson<SnapshotInfo[]>(target, ['snapshot', 'list', ...(options.pg ? ['--pg', options.pg] : [])])
    return listed.map((snapshot) => ({...snapshot, storage: snapshot.storage === 'local' ? target.label : `${target.label} (${snapshot.storage})`}))
  }

  if (target.kind !== 'store') {
    throw new ZenithError('INVALID_ARGUMENT', `${storage} is a receiver for \`zenith snapshot push\`: it holds no snapshots to list.`, 'List an s3/dir storage, or an s3://, file:// or ssh:// URL.')
  }

  return (await listSnapshotsIn(target.store))
    .filter((snapshot) => !options.pg || snapshot.name.startsWith(`${options.pg}@`))
    .map((snapshot) => ({
      name: snapshot.name, pg: snapshot.name.includes('@') ? snapshot.name.split('@')[0] : undefined, storage, sizeBytes: snapshot.logicalBytes,
      sizeExact: false, logicalBytes: snapshot.logicalBytes, method: 'import', pgVersion: snapshot.pgVersion, createdAt: snapshot.createdAt,
      implicit: false, dependents: [],
    }))
}

/** What `snapshot destroy --storage` did: a local snapshot destroyed, or one removed from a remote. */
export type StorageDestroyResult =
  | {remote: false; name: string; storage: string}
  | ({remote: true} & RemoteDestroyResult)

/**
 * `snapshot destroy SNAP --storage S`: in a remote storage (or at a URL), removes the snapshot
 * and the packs only it used; in a local storage, destroys the local snapshot if it lives there.
 */
export async function destroySnapshotInStorage(zenith: Zenith, storage: string, ref: string, options: {force?: boolean} = {}): Promise<StorageDestroyResult> {
  const data = await zenith.store.read()
  const record = data.storages[storage]
  if (record && !isRemote(record)) {
    const snapshot = resolveSnapshot(data, ref)
    if (snapshot.storage !== storage) {
      throw new ZenithError('SNAPSHOT_NOT_FOUND', `Snapshot ${snapshot.name} is in storage "${snapshot.storage}", not "${storage}".`,
        `Destroy it without --storage: \`zenith snapshot destroy ${snapshot.name}\`.`)
    }

    return {remote: false, storage, ...await destroySnapshot(zenith, ref, options)}
  }

  const {destroyRemoteSnapshot} = await import('../remote/collect.js')
  return {remote: true, ...await destroyRemoteSnapshot(zenith, {storage, snapshot: ref})}
}

export interface PgDetails extends PgInfo {
  /** Space used by the pg and its snapshots on every storage that holds any of them. */
  usedOnAllBytes: number
  snapshots: Array<{storage: string; items: Array<{name: string; sizeBytes: number; sizeExact: boolean}>; error?: string}>
  /** Its PITR areas per storage (bases + WAL). */
  pitr: Array<{storage: string; items: Array<{name: string; sizeBytes: number}>; error?: string}>
  /** Its streaming replicas (`pg start --replica`), with how far behind each is. */
  replicas: Array<Pick<PgInfo, 'name' | 'role' | 'endpoint' | 'port' | 'status' | 'replication'>>
}

/** `pg show`: the pg, and its snapshots on each storage (`on local: ... on s3tank: ...`). */
export async function inspectPg(zenith: Zenith, name: string): Promise<PgDetails> {
  const pg = await showPg(zenith, name)
  const data = await zenith.store.read()
  const snapshots: PgDetails['snapshots'] = []
  for (const record of Object.values(data.storages).sort((a, b) => a.name.localeCompare(b.name))) {
    try {
      const items = (await listSnapshotsInStorage(zenith, record.name, {pg: name})).filter((snapshot) => !snapshot.implicit)
      if (items.length > 0) snapshots.push({storage: record.name, items: items.map(({name, sizeBytes, sizeExact}) => ({name, sizeBytes, sizeExact}))})
    } catch (error) {
      // An unreachable bucket must not hide the rest of the pg.
      if (isRemote(record)) snapshots.push({storage: record.name, items: [], error: error instanceof Error ? error.message : String(error)})
      else throw error
    }
  }

  const pitr: PgDetails['pitr'] = []
  for (const area of Object.values(data.pitr).filter((item) => item.pg === name).sort((a, b) => a.name.localeCompare(b.name))) {
    let group = pitr.find((item) => item.storage === area.storage)
    if (!group) pitr.push(group = {storage: area.storage, items: []})
    try {
      const segments = await openStorage(data, area.storage).walArea(area.name).list()
      const sizeBytes = segments.reduce((sum, segment) => sum + segment.size, 0) + area.bases.reduce((sum, base) => sum + base.bytes, 0)
      group.items.push({name: area.name, sizeBytes})
    } catch (error) {
      group.error = error instanceof Error ? error.message : String(error)
    }
  }

  const usedOnAllBytes = pg.usedBytes + snapshots.flatMap((group) => group.items).reduce((sum, item) => sum + item.sizeBytes, 0)
    + pitr.flatMap((group) => group.items).reduce((sum, item) => sum + item.sizeBytes, 0)
  const replicas = (await showReplicas(zenith, name)).map(({name, role, endpoint, port, status, replication}) => ({name, role, endpoint, port, status, replication}))
  return {...pg, usedOnAllBytes, snapshots, pitr, replicas}
}

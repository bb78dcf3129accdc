import type {Zenith} from './context.js'
import {findDriver, openStorage, volumeStorage} from './storage/registry.js'
import {isZenithError} from './errors.js'
import {clusterStatus} from './pg/cluster.js'
import {finishDestroy, finishPasswordStep} from './pg/lifecycle.js'
import {reclaimTempInstances} from './pg/temp-instance.js'
import {finishCheckout} from './snapshot/checkout.js'
import {destroySnapshot} from './snapshot/snapshots.js'
import {reclaimCaches} from './receive/chunk-cache.js'
import {reclaimPartialOutputs} from './import-export/partial-output.js'
import {isAbandonedDiffSnapshot} from './diff/temporary.js'
import {isAlive} from './state/lock.js'
import type {PgRecord, PitrRecord, SnapshotRecord, StoreData} from './state/schema.js'

export interface Repair {
  item: string
  action: string
  /** The repair could not finish: `action` says why; what is left stays for the next command. */
  failed?: boolean
}

/**
 * Finds work that a killed zenith command left half-done (records whose owning process is gone,
 * files and processes named after a dead owner) and finishes or undoes it. Never throws: a step
 * that fails is reported as a failed repair and the command goes on. Cheap when there is nothing
 * to do: one read of the store and a few directory listings.
 */
export async function recoverInterrupted(zenith: Zenith): Promise<Repair[]> {
  const repairs: Repair[] = []
  const attempt = async (item: string, what: string, step: () => Promise<string | undefined>): Promise<void> => {
    try {
      const action = await step()
      if (action) repairs.push({item, action})
    } catch (error) {
      const reason = isZenithError(error) ? `${error.message}${error.hint ? ` (${error.hint})` : ''}` : error instanceof Error ? error.message : String(error)
      repairs.push({item, action: `could not ${what}: ${reason}`, failed: true})
    }
  }

  const data = await zenith.store.read()
  const stale = (item: {state: string; pid?: number}) => item.state !== 'ready' && (item.pid === undefined || !isAlive(item.pid))
  for (const snapshot of Object.values(data.snapshots).filter(stale)) {
    await attempt(snapshot.name, `repair the snapshot left in state ${snapshot.state}`,
      async () => (await takeOver(zenith, 'snapshots', snapshot)) ? repairSnapshot(zenith, data, snapshot) : undefined)
  }

  for (const pg of Object.values(data.pgs).filter(stale)) {
    await attempt(pg.name, `repair the pg left in state ${pg.state}`, async () => (await takeOver(zenith, 'pgs', pg)) ? repairPg(zenith, data, pg) : undefined)
  }

  for (const area of Object.values(data.pitr).filter(stale)) {
    await attempt(`pitr ${area.name}`, `repair the PITR area left in state ${area.state}`, async () => {
      if (!(await takeOver(zenith, 'pitr', area))) return undefined
      const {repairArea} = await import('./pitr/areas.js')
      return repairArea(zenith, {...area, pid: process.pid})
    })
  }

  for (const snapshot of Object.values(data.snapshots).filter((item) => item.state === 'ready' && isAbandonedDiffSnapshot(item, isAlive))) {
    await attempt(snapshot.name, 'remove the temporary snapshot of a killed diff', async () => {
      await destroySnapshot(zenith, snapshot.name, {force: true})
      return 'removed the temporary snapshot of a killed diff'
    })
  }

  // A start killed between postgres coming up and zenith setting its password leaves a running
  // pg whose password postgres would reject: finish that step.
  const pending = Object.values(data.pgs).filter((pg) => pg.passwordPending)
  if (pending.length > 0) {
    const current = await zenith.store.read()
    for (const pg of pending.map((item) => current.pgs[item.name]).filter((item) => item?.passwordPending && item.state === 'ready')) {
      await attempt(pg.name, 'set the password an interrupted start left unset', async () => {
        if ((await clusterStatus(volumeStorage(current, pg.storage).volumePath(pg.volume))).status !== 'running') return undefined
        await finishPasswordStep(zenith, pg.name, undefined, 30)
        return 'set the password that an interrupted start left unset'
      })
    }
  }

  // Leftovers named after their owner are swept on every command, not only after a stale
  // record: a killed export leaves no record, only a temporary postgres and scratch folders.
  for (const storage of Object.values(data.storages)) {
    // Only storages with volumes have scratch folders and temporary postgres instances; one whose
    // driver this zenith lacks is left alone here (the command that uses it says why).
    const driver = findDriver(storage.driver)
    if (!driver) continue
    if (!driver.capabilities.volumes) {
      // An object storage's own leftovers (a dir storage's staging files of a killed push).
      await attempt(`storage ${storage.name}`, 'remove the temporary files of a killed write', async () => {
        const removed = await openStorage(data, storage.name).reclaim()
        return removed.length > 0 ? `removed the temporary files of ${removed.length === 1 ? 'a killed write' : `${removed.length} killed writes`} (${removed.join(', ')})` : undefined
      })
      continue
    }

    await attempt(`storage ${storage.name}`, 'stop the temporary postgres of a killed command', async () => {
      const removed = await reclaimTempInstances(zenith, storage.name)
      return removed.length > 0 ? `stopped and removed ${removed.length === 1 ? 'the temporary postgres' : `${removed.length} temporary postgres instances`} of a killed command` : undefined
    })
    await attempt(`storage ${storage.name}`, 'remove what a killed command left in .scratch', async () => {
      const removed = await volumeStorage(data, storage.name).reclaim()
      return removed.length > 0 ? `removed ${removed.length} unfinished ${removed.length === 1 ? 'folder' : 'folders'} of a killed command from .scratch` : undefined
    })
  }

  await attempt('store', 'remove the temporary files of a killed store write', async () => {
    const removed = await zenith.store.reclaimTemporaries()
    return removed > 0 ? `removed ${removed} temporary ${removed === 1 ? 'file' : 'files'} of a killed store write` : undefined
  })
  await attempt('cache', 'remove what a killed transfer left', async () => {
    // A killed pull's verified chunks stay for a re-run (which adopts them) until they expire.
    const removed = await reclaimCaches(zenith.home)
    return removed.length > 0 ? `removed what a killed transfer left (${removed.join(', ')})` : undefined
  })
  await attempt('export', 'remove the partial file of a killed export', async () => {
    const removed = await reclaimPartialOutputs(zenith.home)
    return removed.length > 0 ? `removed the unfinished output of a killed export (${removed.join(', ')})` : undefined
  })
  return repairs
}

async function repairSnapshot(zenith: Zenith, data: StoreData, snapshot: SnapshotRecord): Promise<string | undefined> {
  if (snapshot.state === 'creating') {
    await volumeStorage(data, snapshot.storage).removeSnapshot(snapshot.volume)
    await zenith.store.update((current) => {
      if (current.snapshots[snapshot.name]?.pid === process.pid) delete current.snapshots[snapshot.name]
    })
    return 'removed an unfinished snapshot'
  }

  if (snapshot.state === 'destroying') {
    await volumeStorage(data, snapshot.storage).removeSnapshot(snapshot.volume)
    await zenith.store.update((current) => {
      delete current.snapshots[snapshot.name]
    })
    return 'finished destroying the snapshot'
  }

  return undefined
}

async function repairPg(zenith: Zenith, data: StoreData, pg: PgRecord): Promise<string> {
  if (pg.state === 'creating' && pg.replica) {
    // Its folder, its base image and its slot on the primary (the primary's claim is released below).
    await finishDestroy(zenith, {...pg, state: 'destroying'})
    return 'removed a replica whose creation was interrupted'
  }

  if (pg.state === 'promoting' && pg.promoteTo) {
    const {finishPromotion, wasPromoted} = await import('./replica/replicas.js')
    if (await wasPromoted(volumeStorage(data, pg.storage).volumePath(pg.volume))) {
      await finishPromotion(zenith, pg)
      return `finished the interrupted promotion: it is now the primary ${pg.promoteTo}`
    }
  }

  if (pg.state === 'creating') {
    await volumeStorage(data, pg.storage).removeVolume(pg.volume)
    await zenith.store.update((current) => {
      if (current.pgs[pg.name]?.pid === process.pid) delete current.pgs[pg.name]
    })
    return 'removed a pg whose creation was interrupted'
  }

  if (pg.state === 'destroying') {
    await finishDestroy(zenith, pg)
    return 'finished destroying the pg'
  }

  if (pg.state === 'checkout' && pg.checkout) {
    // Roll forward: the old CURRENT is saved (or saved again) as HEAD{n} before the rollback.
    await finishCheckout(zenith, pg, pg.checkout)
    return `finished the interrupted checkout to ${pg.checkout.target} (old state kept as ${pg.checkout.head}); postgres is stopped, start it with \`zenith pg start ${pg.name}\``
  }

  // start, stop, restart, `snapshot` (the snapshot's own record is repaired above) or a
  // checkout without journal: postgres is in whatever state the command reached.
  await zenith.store.update((current) => {
    const record = current.pgs[pg.name]
    if (record && record.pid === process.pid) {
      record.state = 'ready'
      delete record.pid
      delete record.promoteTo
    }
  })
  return `released it from an interrupted ${pg.state}`
}

/**
 * Two commands may find the same leftover at once: the one that swaps the dead pid for its own
 * (under the store lock) repairs it, the other leaves it alone.
 */
async function takeOver(zenith: Zenith, kind: 'pgs' | 'snapshots' | 'pitr', item: PgRecord | SnapshotRecord | PitrRecord): Promise<boolean> {
  return zenith.store.update((data) => {
    const record = data[kind][item.name]
    if (!record || record.state !== item.state || record.pid !== item.pid) return false
    record.pid = process.pid
    return true
  })
}

import {type Zenith, localStorage} from './context.js'
import {clusterStatus} from './pg/cluster.js'
import {finishDestroy, finishPasswordStep} from './pg/lifecycle.js'
import {finishCheckout} from './snapshot/checkout.js'
import {reclaimCaches} from './transfer/chunk-cache.js'
import {isAlive} from './state/lock.js'
import type {PgRecord, SnapshotRecord, StoreData} from './state/schema.js'

export interface Repair {
  item: string
  action: string
}

/**
 * Finds work that a killed zenith command left half-done (records whose owning process is gone)
 * and finishes or undoes it. Cheap when there is nothing to do: one read of the store.
 */
export async function recoverInterrupted(zenith: Zenith): Promise<Repair[]> {
  const data = await zenith.store.read()
  const stale = (item: {state: string; pid?: number}) => item.state !== 'ready' && (item.pid === undefined || !isAlive(item.pid))
  const pgs = Object.values(data.pgs).filter(stale)
  const snapshots = Object.values(data.snapshots).filter(stale)
  const repairs: Repair[] = pgs.length === 0 && snapshots.length === 0 ? [] : await repairClaims(zenith, data, pgs, snapshots)
  if (Object.values(data.pgs).some((pg) => pg.passwordPending)) repairs.push(...await finishPasswordSteps(zenith))
  return repairs
}

async function repairClaims(zenith: Zenith, data: StoreData, pgs: PgRecord[], snapshots: SnapshotRecord[]): Promise<Repair[]> {
  const repairs: Repair[] = []
  for (const snapshot of snapshots) {
    if (!(await takeOver(zenith, 'snapshots', snapshot))) continue
    if (snapshot.state === 'creating') {
      await localStorage(data, snapshot.storage).removeSnapshot(snapshot.volume)
      await zenith.store.update((current) => {
        if (current.snapshots[snapshot.name]?.pid === process.pid) delete current.snapshots[snapshot.name]
      })
      repairs.push({item: snapshot.name, action: 'removed an unfinished snapshot'})
    } else if (snapshot.state === 'destroying') {
      await localStorage(data, snapshot.storage).removeSnapshot(snapshot.volume)
      await zenith.store.update((current) => {
        delete current.snapshots[snapshot.name]
      })
      repairs.push({item: snapshot.name, action: 'finished destroying the snapshot'})
    }
  }

  for (const pg of pgs) {
    if (!(await takeOver(zenith, 'pgs', pg))) continue
    if (pg.state === 'creating') {
      await localStorage(data, pg.storage).removeVolume(pg.volume)
      await zenith.store.update((current) => {
        if (current.pgs[pg.name]?.pid === process.pid) delete current.pgs[pg.name]
      })
      repairs.push({item: pg.name, action: 'removed a pg whose creation was interrupted'})
    } else if (pg.state === 'destroying') {
      await finishDestroy(zenith, pg)
      repairs.push({item: pg.name, action: 'finished destroying the pg'})
    } else if (pg.state === 'checkout' && pg.checkout) {
      // Roll forward: the old CURRENT is saved (or saved again) as HEAD{n} before the rollback.
      await finishCheckout(zenith, pg, pg.checkout)
      repairs.push({item: pg.name, action: `finished the interrupted checkout to ${pg.checkout.target} (old state kept as ${pg.checkout.head}); postgres is stopped, start it with \`zenith pg start ${pg.name}\``})
    } else {
      // start, stop, restart, `snapshot` (the snapshot's own record is repaired above) or a
      // checkout without journal: postgres is in whatever state the command reached.
      await zenith.store.update((current) => {
        const record = current.pgs[pg.name]
        if (record && record.pid === process.pid) {
          record.state = 'ready'
          delete record.pid
        }
      })
      repairs.push({item: pg.name, action: `released it from an interrupted ${pg.state}`})
    }
  }

  for (const storage of Object.values(data.storages)) {
    if (storage.path && storage.type !== 'dir') await localStorage(data, storage.name).reclaim()
  }

  // A killed pull's verified chunks stay for a re-run (which adopts them) until they expire.
  for (const folder of await reclaimCaches(zenith.home)) repairs.push({item: `cache/${folder}`, action: 'removed what a killed transfer left'})

  return repairs
}

/**
 * Two commands may find the same leftover at once: the one that swaps the dead pid for its own
 * (under the store lock) repairs it, the other leaves it alone.
 */
async function takeOver(zenith: Zenith, kind: 'pgs' | 'snapshots', item: PgRecord | SnapshotRecord): Promise<boolean> {
  return zenith.store.update((data) => {
    const record = data[kind][item.name]
    if (!record || record.state !== item.state || record.pid !== item.pid) return false
    record.pid = process.pid
    return true
  })
}

/**
 * A start killed between postgres coming up and zenith setting its password leaves a running pg
 * whose password postgres would reject: finish that step.
 */
async function finishPasswordSteps(zenith: Zenith): Promise<Repair[]> {
  const repairs: Repair[] = []
  const data = await zenith.store.read()
  for (const pg of Object.values(data.pgs).filter((item) => item.passwordPending && item.state === 'ready')) {
    if ((await clusterStatus(localStorage(data, pg.storage).volumePath(pg.volume))).status !== 'running') continue
    try {
      await finishPasswordStep(zenith, pg.name, undefined, 30)
      repairs.push({item: pg.name, action: 'set the password that an interrupted start left unset'})
    } catch (error) {
      repairs.push({item: pg.name, action: `could not set its password yet (${(error as Error).message}); \`zenith pg restart ${pg.name}\` tries again`})
    }
  }

  return repairs
}

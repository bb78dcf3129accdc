import {type Zenith, localStorage} from './context.js'
import {finishDestroy} from './pg/lifecycle.js'
import {finishCheckout} from './snapshot/checkout.js'
import {reclaimCaches} from './transfer/chunk-cache.js'
import {isAlive} from './state/lock.js'

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
  if (pgs.length === 0 && snapshots.length === 0) return []

  const repairs: Repair[] = []
  for (const snapshot of snapshots) {
    if (snapshot.state === 'creating') {
      await localStorage(data, snapshot.storage).removeSnapshot(snapshot.volume)
      await zenith.store.update((current) => {
        if (current.snapshots[snapshot.name]?.pid === snapshot.pid) delete current.snapshots[snapshot.name]
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
    if (pg.state === 'creating') {
      await localStorage(data, pg.storage).removeVolume(pg.volume)
      await zenith.store.update((current) => {
        if (current.pgs[pg.name]?.pid === pg.pid) delete current.pgs[pg.name]
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
      // `snapshot` (the snapshot's own record is repaired above) or a checkout without journal.
      await zenith.store.update((current) => {
        const record = current.pgs[pg.name]
        if (record && record.pid === pg.pid) {
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

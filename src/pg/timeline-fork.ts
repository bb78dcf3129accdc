import {access, writeFile} from 'node:fs/promises'
import path from 'node:path'

import type {Zenith} from '../context.js'
import type {PgRecord} from '../state/schema.js'
import {openStorage, volumeStorage} from '../storage/registry.js'
import {giveTo, pgOsUser} from './os-user.js'

/**
 * A checkout rolls an archiving pg's data back to an older state, whose WAL would go on under
 * segment names its PITR areas already hold with other content. So its next start is an
 * archive recovery without a target: postgres replays what the data directory's own pg_wal has,
 * then promotes onto a new timeline, numbered above every timeline in the areas (their history
 * files are put into pg_wal for it to see), and archives the new timeline's history file. The
 * areas keep the old history; `pitr show` lists both timelines.
 */
export async function prepareTimelineFork(zenith: Zenith, pg: PgRecord): Promise<void> {
  const data = await zenith.store.read()
  const dataDir = volumeStorage(data, pg.storage).volumePath(pg.volume)
  const osUser = await pgOsUser(zenith)
  for (const area of Object.values(data.pitr).filter((item) => item.pg === pg.name)) {
    const wal = openStorage(data, area.storage).walArea(area.name)
    for (const segment of (await wal.list()).filter((item) => item.name.endsWith('.history'))) {
      const target = path.join(dataDir, 'pg_wal', segment.name)
      if (await access(target).then(() => true, () => false)) continue
      await writeFile(target, await wal.read(segment.name), {mode: 0o600})
      await giveTo(osUser, target)
    }
  }

  const signal = path.join(dataDir, 'recovery.signal')
  await writeFile(signal, '', {mode: 0o600})
  await giveTo(osUser, signal)
  await zenith.store.update((current) => {
    if (current.pgs[pg.name]) current.pgs[pg.name].timelineFork = true
  })
}

/** The settings of that start: nothing fetched (all it needs is in pg_wal), stay on the data's own timeline until the promotion. */
export const TIMELINE_FORK_SETTINGS: Record<string, string> = {restore_command: 'false', recovery_target_timeline: 'current'}

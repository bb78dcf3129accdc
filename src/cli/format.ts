/** Human sizes as in the proposal's tables: 0G, 5.1G, 812M. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'K', 'M', 'G', 'T', 'P']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }

  const digits = value >= 10 || unit === 0 ? 0 : 1
  return `${value.toFixed(digits)}${units[unit]}`
}

export function formatRate(bytes: number, seconds: number): string {
  return `${formatBytes(seconds > 0 ? bytes / seconds : 0)}/s`
}

/** A snapshot's parent as list and show print it: a destroyed one keeps its name, marked (like git's `[origin/x: gone]`). */
export function formatParent(snapshot: {parent?: string; parentExists?: boolean}): string {
  if (!snapshot.parent) return '-'
  return snapshot.parentExists === false ? `${snapshot.parent} (destroyed)` : snapshot.parent
}

/** How a replica follows its primary, for `pg start --replica` and `pg show`: `streaming, lag 0B`. */
export function formatReplication(replication: {state: string; lagBytes?: number; lagSeconds?: number} | undefined): string {
  if (!replication) return '-'
  const lag = replication.lagBytes === undefined ? '' : `, lag ${formatBytes(replication.lagBytes)}${replication.lagBytes > 0 && replication.lagSeconds ? ` (${replication.lagSeconds.toFixed(1)} s)` : ''}`
  switch (replication.state) {
    case 'streaming': return `streaming${lag}`
    case 'catchup': return `catching up${lag}`
    case 'startup': return 'starting to stream'
    case 'cut-off': return 'cut off: its primary no longer has the WAL it needs (destroy it and add a new replica)'
    case 'disconnected': return `not streaming${lag ? `${lag} behind` : ''}`
    default: return replication.state
  }
}

/**
 * A pg's STATUS cell in `pg list`: the process status, and for a replica that runs without
 * following its primary, why.
 */
export function formatPgStatus(pg: {status: string; replication?: {state: string; lagBytes?: number}; clone?: {protected: boolean; deleteAt?: string; maxIdleMinutes?: number}}): string {
  if (pg.clone) return `${pg.status}, ${formatApiClone(pg.clone)}`
  if (!pg.replication) return pg.status
  if (pg.replication.state === 'cut-off') return `${pg.status}, cut off`
  if (pg.status !== 'running' || pg.replication.state === 'streaming') return pg.status
  return `${pg.status}, ${formatReplication({state: pg.replication.state, lagBytes: pg.replication.lagBytes})}`
}

/** `API clone, protected` / `API clone, deleted at 2030-01-01T00:00:00.000Z or after 30 idle min`. */
function formatApiClone(clone: {protected: boolean; deleteAt?: string; maxIdleMinutes?: number}): string {
  if (clone.protected) return 'API clone, protected'
  const rules = [clone.deleteAt && `at ${clone.deleteAt}`, clone.maxIdleMinutes !== undefined && `after ${clone.maxIdleMinutes} idle min`].filter(Boolean)
  return rules.length > 0 ? `API clone, deleted ${rules.join(' or ')}` : 'API clone'
}

import type {PgRecord, StoreData} from '../state/schema.js'
import {newClient} from './client.js'

/**
 * Streaming replication between a zenith pg and its replicas (`pg start --replica`), the parts
 * lifecycle.ts needs to start, stop and describe them; making and promoting one is replicas.ts.
 * A replica connects over the unix socket of zenith's socket folder (trusted, so no password is
 * written anywhere) through a physical slot named after its number.
 */

/** WAL a primary keeps for a replica that is gone or behind before it cuts the slot off. */
export const DEFAULT_MAX_SLOT_WAL_KEEP = '1GB'
const SLOT_PREFIX = 'zenith_replica_'

export function slotName(n: number): string {
  return `${SLOT_PREFIX}${n}`
}

export function replicaNumber(pg: PgRecord): number {
  return Number(/^replica-(\d+)$/.exec(pg.role)?.[1] ?? 0)
}

/** `my_pg/replica-1`: how commands address a replica. */
export function replicaName(primary: string, n: number): string {
  return `${primary}/replica-${n}`
}

/** The replicas of a pg, by number. */
export function replicasOf(data: StoreData, primary: string): PgRecord[] {
  return Object.values(data.pgs).filter((pg) => pg.replica?.primary === primary).sort((a, b) => replicaNumber(a) - replicaNumber(b))
}

/**
 * What a start adds to a pg's own settings: a replica follows its primary wherever that listens
 * now (its port may have changed since); a primary with replicas bounds the WAL their slots keep.
 */
export function replicationSettings(data: StoreData, pg: PgRecord, socketDir: string): Record<string, string> {
  if (pg.replica) {
    const primary = data.pgs[pg.replica.primary]
    return {
      primary_conninfo: `host=${socketDir} port=${primary?.port ?? pg.port} user=postgres application_name=${pg.replica.slot}`,
      primary_slot_name: pg.replica.slot,
      hot_standby: 'on',
    }
  }

  return replicasOf(data, pg.name).length > 0 && pg.settings.max_slot_wal_keep_size === undefined ? {max_slot_wal_keep_size: DEFAULT_MAX_SLOT_WAL_KEEP} : {}
}

/**
 * How a replica follows, as its primary sees it: `streaming` (caught up or nearly), `catchup`,
 * `disconnected` (the replica is down or cannot connect; the slot keeps WAL for it), `cut-off`
 * (the primary dropped WAL the replica still needs: it must be made again).
 */
export interface ReplicationState {
  state: 'streaming' | 'catchup' | 'startup' | 'disconnected' | 'cut-off' | 'unknown'
  /** Bytes of WAL the primary wrote that the replica has not replayed. */
  lagBytes?: number
  /** How long ago the replica replayed what the primary had written (0 when caught up). */
  lagSeconds?: number
}

interface Queryable {
  query<R>(text: string, values?: unknown[]): Promise<{rows: R[]}>
}

/** Every slot's state on a running primary, in one query. */
export async function replicationStates(client: Queryable, slots: string[]): Promise<Map<string, ReplicationState>> {
  const {rows} = await client.query<{slot_name: string; wal_status: string | null; state: string | null; lag_bytes: string | null; lag_seconds: number | null}>(
    `select s.slot_name, s.wal_status, r.state,
            pg_wal_lsn_diff(pg_current_wal_lsn(), coalesce(r.replay_lsn, s.restart_lsn))::bigint::text as lag_bytes,
            extract(epoch from r.replay_lag)::float8 as lag_seconds
       from pg_replication_slots s left join pg_stat_replication r on r.pid = s.active_pid
      where s.slot_name = any($1)`, [slots])
  const states = new Map<string, ReplicationState>()
  for (const row of rows) {
    const lagBytes = row.lag_bytes === null ? undefined : Math.max(0, Number(row.lag_bytes))
    // replay_lag is NULL once a replica has caught up and nothing new is written, and before the
    // first reply that measures it: no measured lag reads 0.
    const lagSeconds = row.lag_seconds ?? 0
    const state: ReplicationState['state'] = row.wal_status === 'lost' ? 'cut-off'
      : row.state === 'streaming' ? 'streaming'
        : row.state === 'catchup' ? 'catchup'
          : row.state === 'startup' || row.state === 'backup' ? 'startup'
            : row.state === null ? 'disconnected' : 'unknown'
    states.set(row.slot_name, {state, lagBytes: state === 'cut-off' ? undefined : lagBytes, lagSeconds: state === 'streaming' || state === 'catchup' ? lagSeconds : undefined})
  }

  return states
}

/** A physical slot reserving WAL from now on; one of the same name left by an earlier replica goes first. */
export async function createSlot(client: Queryable, slot: string): Promise<void> {
  await client.query('select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = $1 and not active', [slot])
  await client.query('select pg_create_physical_replication_slot($1, true)', [slot])
}

/** Drops the slots that exist and are not in use; returns the ones it could not drop (in use). */
export async function dropSlots(client: Queryable, slots: string[]): Promise<string[]> {
  if (slots.length === 0) return []
  const {rows} = await client.query<{slot_name: string; active: boolean}>('select slot_name, active from pg_replication_slots where slot_name = any($1)', [slots])
  for (const row of rows.filter((item) => !item.active)) await client.query('select pg_drop_replication_slot($1)', [row.slot_name])
  return rows.filter((item) => item.active).map((item) => item.slot_name)
}

/** Runs `work` on one connection to a pg (the pg module loads only here: it is not needed at start-up). */
export async function withConnection<T>(connection: {host: string; port: number; user: string; password?: string; database: string}, work: (client: Queryable) => Promise<T>): Promise<T> {
  const client = await newClient({...connection, connectionTimeoutMillis: 10_000})
  await client.connect()
  try {
    return await work(client)
  } finally {
    await client.end().catch(() => undefined)
  }
}

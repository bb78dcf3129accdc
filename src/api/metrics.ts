import {readFile, readdir} from 'node:fs/promises'
import path from 'node:path'

import type {Zenith} from '../context.js'
import {clusterStatus} from '../pg/cluster.js'
import {type PgInfo, listPgs, pgConnection} from '../pg/lifecycle.js'
import {withConnection} from '../pg/replication.js'

/** One reading of a pg, as the console's graphs show it; a value postgres could not give is absent. */
export interface MetricSample {
  /** Milliseconds since the epoch. */
  t: number
  /** CPU of the postmaster and its children since the previous sample, in % of one core. */
  cpuPercent?: number
  /** Resident memory of those processes (shared buffers are counted once per process that touched them). */
  rssBytes?: number
  diskBytes?: number
  connections?: number
  /** Commits and rollbacks per second over every database since the previous sample. */
  tps?: number
  /** Share of block reads served from shared buffers, over the pg's life. */
  cacheHitRatio?: number
  databaseBytes?: number
  lagBytes?: number
  archived?: number
  archiveFailed?: number
  lastArchivedAt?: string
}

interface Previous {
  t: number
  cpuTicks: number
  xacts: number
}

/** Linux's USER_HZ: /proc times are in these. */
const TICKS_PER_SECOND = 100
const PAGE_BYTES = 4096

/**
 * The server's sampler for the console's monitoring page: every `intervalSeconds` it reads each
 * running pg's processes from /proc and its statistics views with one query, and keeps the last
 * `keepSeconds` in memory (a restart of the server starts the graphs afresh).
 */
export class MetricsSampler {
  private readonly series = new Map<string, MetricSample[]>()
  private readonly previous = new Map<string, Previous>()
  private timer: NodeJS.Timeout | undefined
  private round: Promise<void> | undefined

  constructor(private readonly zenith: Zenith, private readonly options: {intervalSeconds: number; keepSeconds: number}) {}

  get intervalSeconds(): number {
    return this.options.intervalSeconds
  }

  start(): void {
    const tick = () => {
      this.round ??= this.sample().catch(() => undefined).finally(() => {
        this.round = undefined
      })
    }

    tick()
    this.timer = setInterval(tick, this.options.intervalSeconds * 1000)
    this.timer.unref()
  }

  async stop(): Promise<void> {
    clearInterval(this.timer)
    await this.round
  }

  samples(pg: string): MetricSample[] {
    return this.series.get(pg) ?? []
  }

  /** One round over every pg; public so that a test or the first page load need not wait. */
  async sample(): Promise<void> {
    const pgs = await listPgs(this.zenith)
    const now = Date.now()
    for (const name of this.series.keys()) if (!pgs.some((pg) => pg.name === name)) this.series.delete(name)
    await Promise.all(pgs.map(async (pg) => {
      const sample = pg.status === 'running' ? await this.read(pg, now) : {t: now, diskBytes: pg.usedBytes}
      const list = this.series.get(pg.name) ?? []
      list.push(sample)
      while (list.length > 0 && list[0].t < now - this.options.keepSeconds * 1000) list.shift()
      this.series.set(pg.name, list)
    }))
  }

  private async read(pg: PgInfo, now: number): Promise<MetricSample> {
    const sample: MetricSample = {t: now, diskBytes: pg.usedBytes, lagBytes: pg.replication?.lagBytes}
    const previous = this.previous.get(pg.name)
    const {pid} = await clusterStatus(pg.dataDir)
    const processes = pid ? await processTree(pid) : undefined
    if (processes) {
      sample.rssBytes = processes.rssPages * PAGE_BYTES
      if (previous) sample.cpuPercent = Math.max(0, ((processes.ticks - previous.cpuTicks) / TICKS_PER_SECOND) / ((now - previous.t) / 1000) * 100)
    }

    const stats = await withConnection(await pgConnection(this.zenith, pg.name), async (client) => (await client.query<{
      connections: number; xacts: string; hit: number | null; bytes: string; archived: string; failed: string; last_archived: Date | null
    }>(`select (select count(*) from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid())::int as connections,
               (select sum(xact_commit + xact_rollback) from pg_stat_database)::bigint::text as xacts,
               (select sum(blks_hit)::float8 / nullif(sum(blks_hit) + sum(blks_read), 0) from pg_stat_database) as hit,
               (select sum(pg_database_size(datname)) from pg_database where datallowconn)::bigint::text as bytes,
               archived_count::text as archived, failed_count::text as failed, last_archived_time as last_archived
          from pg_stat_archiver`)).rows[0]).catch(() => undefined)
    if (stats) {
      sample.connections = stats.connections
      sample.cacheHitRatio = stats.hit ?? undefined
      sample.databaseBytes = Number(stats.bytes)
      sample.archived = Number(stats.archived)
      sample.archiveFailed = Number(stats.failed)
      sample.lastArchivedAt = stats.last_archived?.toISOString()
      const xacts = Number(stats.xacts)
      if (previous) sample.tps = Math.max(0, (xacts - previous.xacts) / ((now - previous.t) / 1000))
      if (processes) this.previous.set(pg.name, {t: now, cpuTicks: processes.ticks, xacts})
    }

    return sample
  }
}

/**
 * CPU ticks (user + system) and resident pages of a postmaster and its children (every backend
 * and auxiliary process of postgres is a direct child), from /proc/PID/stat.
 */
async function processTree(postmaster: number): Promise<{ticks: number; rssPages: number} | undefined> {
  const entries = await readdir('/proc').catch(() => [] as string[])
  let ticks = 0
  let rssPages = 0
  let found = false
  await Promise.all(entries.filter((entry) => /^\d+$/.test(entry)).map(async (entry) => {
    const text = await readFile(path.join('/proc', entry, 'stat'), 'utf8').catch(() => '')
    // The command name is in parentheses and may hold spaces: the fields start after the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
    const pid = Number(entry)
    const parent = Number(fields[1])
    if (pid !== postmaster && parent !== postmaster) return
    found ||= pid === postmaster
    ticks += Number(fields[11]) + Number(fields[12])
    rssPages += Number(fields[21])
  }))
  return found ? {ticks, rssPages} : undefined
}

import {randomBytes} from 'node:crypto'

import type {Zenith} from '../context.js'
import {ZenithError, isZenithError} from '../errors.js'
import {createPgFromSnapshot} from '../import-export/create-pg.js'
import {clusterStatus, scramVerifier} from '../pg/cluster.js'
import {type PgInfo, dataDirOf, destroyPg, listPgs, pgConnection, pgUrl, showPg} from '../pg/lifecycle.js'
import {withConnection} from '../pg/replication.js'
import {checkout} from '../snapshot/checkout.js'
import {resolveSnapshot} from '../snapshot/snapshots.js'
import {validateName} from '../state/names.js'
import type {ApiClone, PgRecord, StoreData} from '../state/schema.js'
import {volumeStorage} from '../storage/registry.js'
import {failureText} from './errors.js'

export type CloneStatusCode = 'OK' | 'CREATING' | 'RESETTING' | 'DELETING' | 'FATAL'

export interface CloneStatus {
  code: CloneStatusCode
  message: string
}

/** A clone as GET /clone/:id shows it (reference/002's clone model). */
export interface CloneView {
  id: string
  status: CloneStatus
  snapshot: {id: string}
  protected: boolean
  deleteAt: string | null
  maxIdleMinutes: number | null
  /** Bytes its data directory uses (what it does not share with the snapshot where the storage can tell). */
  cloneSize: number | null
  /** Seconds from the request to a clone that accepts connections. */
  cloningTime: number | null
  createdAt: string
  db: {username: string; host: string; port: number; connStr: string} | null
}

export interface CreateCloneRequest {
  id?: string
  snapshot: {id: string}
  protected?: boolean
  deleteAt?: string
  maxIdleMinutes?: number
  /** A login role of the clone for the client (a superuser, as the thin-clone engine makes it). */
  db?: {username: string; password: string}
}

export interface UpdateCloneRequest {
  protected?: boolean
  deleteAt?: string | null
  maxIdleMinutes?: number | null
}

/** Work under way on one clone (or its end, when it failed and left no pg behind). */
interface Operation {
  status: CloneStatus
  requestedAt: string
  /** What the request asked for, shown while the pg has no record (yet, or any more). */
  clone: ApiClone
  done: Promise<void>
  /** The failure of a creation: the pg is gone, the FATAL status stays until the clone is deleted. */
  failed?: boolean
}

const RECENT_TIMINGS = 10

/**
 * The clones of the REST API: zenith pgs made from a snapshot (a thin clone where the storage
 * shares blocks, else a full copy) whose API record (PgRecord.clone) is in the store. Creation,
 * reset and deletion run in the background; while they run, their status is kept here. One
 * instance per server.
 */
export class Clones {
  private readonly operations = new Map<string, Operation>()
  private readonly timings: number[] = []
  /** When each clone last had a client connection (or became ready, or the server first looked). */
  private readonly lastActive = new Map<string, number>()

  constructor(private readonly zenith: Zenith, private readonly onEvent: (text: string) => void = () => {}) {}

  /** Remembers the cloning times of the clones in the store, for expectedCloningTime. */
  async load(): Promise<void> {
    const data = await this.zenith.store.read()
    const times = Object.values(data.pgs).filter((pg) => pg.clone?.cloningTime !== undefined)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt)).map((pg) => pg.clone!.cloningTime!)
    this.timings.push(...times.slice(-RECENT_TIMINGS))
  }

  /** Mean seconds of the recent clone creations; null before the first. */
  expectedCloningTime(): number | null {
    if (this.timings.length === 0) return null
    return Math.round((this.timings.reduce((sum, time) => sum + time, 0) / this.timings.length) * 1000) / 1000
  }

  async list(): Promise<CloneView[]> {
    // The operations are taken before the store is read: one that ends meanwhile shows its own
    // status, never OK over a record read before its last change.
    const operations = new Map(this.operations)
    const [data, pgs] = await Promise.all([this.zenith.store.read(), listPgs(this.zenith)])
    const infos = new Map(pgs.map((pg) => [pg.name, pg]))
    const ids = new Set([...Object.values(data.pgs).filter((pg) => pg.clone).map((pg) => pg.name), ...operations.keys()])
    const views = await Promise.all([...ids].map((id) => this.view(data, id, infos.get(id), operations.get(id))))
    return views.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id))
  }

  async get(id: string): Promise<CloneView> {
    const operation = this.operations.get(id)
    const data = await this.zenith.store.read()
    const pg = data.pgs[id]
    if (!operation) cloneRecord(data, id)
    if (!pg) return this.view(data, id, undefined, operation)
    try {
      return await this.view(data, id, await showPg(this.zenith, id), operation)
    } catch (error) {
      // Deleted since the store was read: ask again, and get CLONE_NOT_FOUND (or the status of a reset that replaces it).
      if (isZenithError(error, 'PG_NOT_FOUND')) return this.get(id)
      throw error
    }
  }

  /** Checks the request, answers at once with status CREATING and makes the clone in the background. */
  async create(request: CreateCloneRequest): Promise<CloneView> {
    const id = request.id ?? `clone-${randomBytes(4).toString('hex')}`
    validateName('pg', id)
    const deleteAt = request.deleteAt === undefined ? undefined : parseTime(request.deleteAt, 'deleteAt')
    const data = await this.zenith.store.read()
    if (data.pgs[id] || this.operations.has(id)) {
      throw new ZenithError('NAME_TAKEN', `A clone or pg named "${id}" already exists.`, 'Choose another id, or leave it out to get a generated one.')
    }

    const snapshot = resolveSnapshot(data, request.snapshot.id)
    const clone: ApiClone = {
      snapshot: snapshot.name, protected: request.protected ?? false, deleteAt, maxIdleMinutes: request.maxIdleMinutes,
      dbUser: request.db && {username: validRoleName(request.db.username), verifier: scramVerifier(request.db.password)},
    }
    const started = Date.now()
    this.run(id, {code: 'CREATING', message: `Creating a clone of ${snapshot.name}.`}, clone, true, async () => {
      await this.makeClone(id, snapshot.name, clone)
      const seconds = Math.round(Date.now() - started) / 1000
      await this.changeRecord(id, (record) => {
        record.cloningTime = seconds
      })
      this.timings.push(seconds)
      if (this.timings.length > RECENT_TIMINGS) this.timings.shift()
      this.onEvent(`Clone ${id} of ${snapshot.name} is ready (${seconds}s).`)
    })
    return this.view(await this.zenith.store.read(), id, undefined)
  }

  async update(id: string, request: UpdateCloneRequest): Promise<CloneView> {
    this.assertIdle(id)
    const deleteAt = request.deleteAt === undefined || request.deleteAt === null ? request.deleteAt : parseTime(request.deleteAt, 'deleteAt')
    await this.zenith.store.update((data) => {
      const clone = cloneRecord(data, id).clone!
      if (request.protected !== undefined) clone.protected = request.protected
      if (deleteAt === null) delete clone.deleteAt
      else if (deleteAt !== undefined) clone.deleteAt = deleteAt
      if (request.maxIdleMinutes === null) delete clone.maxIdleMinutes
      else if (request.maxIdleMinutes !== undefined) clone.maxIdleMinutes = request.maxIdleMinutes
    })
    // A new idle limit counts from now, not from the last connection before it.
    if (request.maxIdleMinutes !== undefined) this.lastActive.set(id, Date.now())
    return this.get(id)
  }

  /**
   * Resets the clone to its snapshot, or to `snapshotID`: a snapshot of the clone itself is
   * checked out (the data before is kept as its HEAD{n}); any other snapshot replaces the clone
   * with a new one of that snapshot on the same port and id.
   */
  async reset(id: string, snapshotID?: string): Promise<CloneView> {
    this.assertIdle(id)
    const data = await this.zenith.store.read()
    const pg = cloneRecord(data, id)
    const target = resolveSnapshot(data, snapshotID ?? pg.clone!.snapshot)
    if (target.pg !== id) {
      const own = Object.values(data.snapshots).filter((snapshot) => snapshot.pg === id).map((snapshot) => snapshot.name)
      if (own.length > 0) {
        throw new ZenithError('HAS_DEPENDENTS', `Clone ${id} has snapshots of its own (${own.join(', ')}): a reset to ${target.name} would destroy them.`,
          `Reset to one of them ({"snapshotID": "${own[0]}"}), or destroy them first (zenith snapshot destroy ${own[0]}).`)
      }
    }

    this.run(id, {code: 'RESETTING', message: `Resetting to ${target.name}.`}, {...pg.clone!, snapshot: target.name}, false, async () => {
      try {
        if (target.pg === id) {
          await checkout(this.zenith, target.name)
          await this.applyDbUser(id)
        } else {
          await destroyPg(this.zenith, id)
          await this.makeClone(id, target.name, {...pg.clone!, snapshot: target.name, failure: undefined}, pg.port)
        }
      } catch (error) {
        // The clone may still be there (a failed checkout): its record says why it is FATAL.
        await this.changeRecord(id, (record) => {
          record.failure = failureText(error)
        })
        throw error
      }

      await this.changeRecord(id, (record) => {
        record.snapshot = target.name
        delete record.failure
      })
      this.onEvent(`Clone ${id} was reset to ${target.name}.`)
    })
    return this.view(await this.zenith.store.read(), id, undefined)
  }

  /** Refused for a protected clone; the clone's own snapshots (HEAD{n} of resets) go with it. */
  async delete(id: string, reason = 'requested'): Promise<CloneView> {
    const operation = this.operations.get(id)
    if (operation?.failed) {
      // A creation that failed left nothing but its status.
      this.operations.delete(id)
      return {...this.viewOfOperation(id, operation), status: {code: 'DELETING', message: 'Removed the failed clone.'}}
    }

    this.assertIdle(id)
    const data = await this.zenith.store.read()
    const pg = cloneRecord(data, id)
    if (pg.clone!.protected) {
      throw new ZenithError('CLONE_PROTECTED', `Clone ${id} is protected.`, `Unprotect it first: PATCH /clone/${id} with {"protected": false}.`)
    }

    this.run(id, {code: 'DELETING', message: `Deleting (${reason}).`}, pg.clone!, false, async () => {
      await destroyPg(this.zenith, id, {force: true})
      this.lastActive.delete(id)
      this.onEvent(`Clone ${id} was deleted (${reason}).`)
    })
    return this.view(await this.zenith.store.read(), id, undefined)
  }

  /**
   * One round of auto-delete: unprotected clones whose deleteAt has passed, or that had no
   * client connection for maxIdleMinutes. A clone being worked on is left for the next round.
   */
  async reap(now = Date.now()): Promise<void> {
    const data = await this.zenith.store.read()
    for (const pg of Object.values(data.pgs).filter((item) => item.clone && !item.clone.protected && item.state === 'ready' && !this.operations.has(item.name))) {
      const clone = pg.clone!
      try {
        if (clone.deleteAt !== undefined && Date.parse(clone.deleteAt) <= now) {
          await this.delete(pg.name, `its deleteAt ${clone.deleteAt} has passed`)
          continue
        }

        if (clone.maxIdleMinutes === undefined) continue
        if (await this.clientConnections(data, pg) > 0 || !this.lastActive.has(pg.name)) {
          this.lastActive.set(pg.name, now)
          continue
        }

        const idleMinutes = (now - this.lastActive.get(pg.name)!) / 60_000
        if (idleMinutes >= clone.maxIdleMinutes) await this.delete(pg.name, `no connections for ${Math.round(idleMinutes * 100) / 100} minutes, maxIdleMinutes ${clone.maxIdleMinutes}`)
      } catch (error) {
        // A clone that cannot be checked or deleted now is tried again in the next round.
        this.onEvent(`Auto-delete of clone ${pg.name}: ${failureText(error)}`)
      }
    }
  }

  /** Waits for every background operation (a server that stops finishes what it started). */
  async drain(): Promise<void> {
    while ([...this.operations.values()].some((operation) => !operation.failed)) {
      await Promise.all([...this.operations.values()].map((operation) => operation.done))
    }
  }

  /** Client connections to the clone, not counting the one that asks; 0 when it is stopped. */
  private async clientConnections(data: StoreData, pg: PgRecord): Promise<number> {
    if ((await clusterStatus(dataDirOf(data, pg))).status !== 'running') return 0
    return withConnection(await pgConnection(this.zenith, pg.name), async (client) => {
      const {rows} = await client.query<{n: number}>("select count(*)::int as n from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid()")
      return rows[0].n
    })
  }

  private async makeClone(id: string, snapshot: string, clone: ApiClone, port?: number): Promise<void> {
    const data = await this.zenith.store.read()
    // A thin clone where the snapshot's storage shares blocks, else a full copy.
    const cow = volumeStorage(data, resolveSnapshot(data, snapshot).storage).capabilities.thinClone
    await createPgFromSnapshot(this.zenith, {name: id, snapshot, cow, port, clone})
    await this.applyDbUser(id)
    this.lastActive.set(id, Date.now())
  }

  /** The role of `db: {username, password}` in the clone's data (made, or its password set again). */
  private async applyDbUser(id: string): Promise<void> {
    const user = (await this.zenith.store.read()).pgs[id]?.clone?.dbUser
    if (!user) return
    await withConnection(await pgConnection(this.zenith, id), async (client) => {
      // The verifier, never the password, goes to the server; statement logging is off for it.
      await client.query("set log_statement = 'none'")
      const {rows} = await client.query<{n: number}>('select count(*)::int as n from pg_roles where rolname = $1', [user.username])
      const role = `"${user.username}"`
      await client.query(`${rows[0].n > 0 ? 'alter' : 'create'} role ${role} with login superuser password '${user.verifier}'`)
    })
  }

  private run(id: string, status: CloneStatus, clone: ApiClone, creation: boolean, work: () => Promise<void>): void {
    const operation: Operation = {status, clone, requestedAt: new Date().toISOString(), done: Promise.resolve()}
    operation.done = work().then(() => {
      this.operations.delete(id)
    }, async (error: unknown) => {
      this.onEvent(`Clone ${id}: ${status.code} failed: ${failureText(error)}`)
      // Work that left no pg (a failed creation, a reset that failed after the old clone went)
      // keeps its FATAL status here; a clone that is still there shows its record.
      const left = creation || !(await this.zenith.store.read().then((data) => data.pgs[id], () => undefined))
      if (left) this.operations.set(id, {...operation, failed: true, status: {code: 'FATAL', message: failureText(error)}})
      else this.operations.delete(id)
    })
    this.operations.set(id, operation)
  }

  private assertIdle(id: string): void {
    const operation = this.operations.get(id)
    if (operation && !operation.failed) {
      throw new ZenithError('PG_BUSY', `Clone ${id} is ${operation.status.code}.`, `Wait until GET /clone/${id} shows status OK, then retry.`)
    }
  }

  private async changeRecord(id: string, change: (clone: ApiClone) => void): Promise<void> {
    await this.zenith.store.update((data) => {
      const clone = data.pgs[id]?.clone
      if (clone) change(clone)
    })
  }

  private viewOfOperation(id: string, operation: Operation): CloneView {
    return {
      id, status: operation.status, snapshot: {id: operation.clone.snapshot}, protected: operation.clone.protected,
      deleteAt: operation.clone.deleteAt ?? null, maxIdleMinutes: operation.clone.maxIdleMinutes ?? null,
      cloneSize: null, cloningTime: null, createdAt: operation.requestedAt, db: null,
    }
  }

  private async view(data: StoreData, id: string, info: PgInfo | undefined, operation = this.operations.get(id)): Promise<CloneView> {
    const pg = data.pgs[id]
    if (!pg?.clone) return this.viewOfOperation(id, operation!)
    const clone = pg.clone
    const status: CloneStatus = operation?.status
      ?? (clone.failure ? {code: 'FATAL', message: clone.failure}
        : info && info.status !== 'running' ? {code: 'OK', message: `The clone's postgres is ${info.status}; start it with \`zenith pg start ${id}\`.`}
          : {code: 'OK', message: 'The clone is ready to accept connections.'})
    const ready = pg.state === 'ready' || pg.state === 'snapshot'
    return {
      id,
      status,
      snapshot: {id: clone.snapshot},
      protected: clone.protected,
      deleteAt: clone.deleteAt ?? null,
      maxIdleMinutes: clone.maxIdleMinutes ?? null,
      cloneSize: ready && info ? info.usedBytes : null,
      cloningTime: clone.cloningTime ?? null,
      createdAt: pg.createdAt,
      // While it is made its password is not yet the one of its data.
      db: status.code === 'CREATING' ? null : clone.dbUser
        // The client knows its password: the connection string has none.
        ? {username: clone.dbUser.username, host: 'localhost', port: pg.port, connStr: `postgresql://${encodeURIComponent(clone.dbUser.username)}@localhost:${pg.port}/postgres`}
        : {username: 'postgres', host: 'localhost', port: pg.port, connStr: await pgUrl(this.zenith, id)},
    }
  }
}

/** A role name the clone can have: what postgres takes unquoted, and not one of its own. */
function validRoleName(name: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name) || name === 'postgres' || name.startsWith('pg_')) {
    throw new ZenithError('INVALID_ARGUMENT', `"${name}" is not a role name a clone can have.`, 'Use lower-case letters, digits and "_" (at most 63, not starting with a digit), other than postgres and pg_*.')
  }

  return name
}

/** The store record of an API clone; CLONE_NOT_FOUND for any other name. */
export function cloneRecord(data: StoreData, id: string): PgRecord {
  const pg = data.pgs[id]
  if (!pg?.clone) {
    const known = Object.values(data.pgs).filter((item) => item.clone).map((item) => item.name)
    throw new ZenithError('CLONE_NOT_FOUND', pg ? `pg "${id}" was not made through the API, so it is no clone of it.` : `There is no clone "${id}".`,
      known.length > 0 ? `Known clones: ${known.join(', ')} (GET /status).` : 'Create one with POST /clone.')
  }

  return pg
}

function parseTime(text: string, field: string): string {
  const time = Date.parse(text)
  if (Number.isNaN(time)) throw new ZenithError('INVALID_ARGUMENT', `${field} "${text}" is not a time.`, 'Give an ISO 8601 time such as 2030-01-31T18:00:00Z.')
  return new Date(time).toISOString()
}

import {randomBytes} from 'node:crypto'
import {hostname} from 'node:os'
import {setTimeout as sleep} from 'node:timers/promises'

import {ZenithError} from '../errors.js'
import type {ObjectStore} from '../storage/storage.js'

/**
 * Locks at a remote storage, so that collecting unused packs never races a push. A push reuses
 * the chunks the remote already holds (it reads the pack indexes when it begins and names those
 * packs in its manifest when it ends); a collection deletes the packs no manifest names. If a
 * collection ran in between, the new manifest would name deleted packs.
 *
 * Object stores have no atomic "create if absent", so each side writes its own lock object
 * (`locks/<kind>-<id>.json`), then lists `locks/`: listing after writing is consistent on S3 and
 * on a folder, so of a push and a collection that start together at least one sees the other. A
 * push that sees a collection waits for it to end; a collection that sees a push deletes
 * nothing. Locks are rewritten every REFRESH_MS while held, and a lock not rewritten for STALE_MS
 * (its process was killed) is ignored.
 */
export const LOCKS_PREFIX = 'locks/'
export const STALE_MS = 30 * 60 * 1000
const REFRESH_MS = 5 * 60 * 1000
/** How long a push waits for a collection to end before giving up. */
const PUSH_WAIT_MS = 5 * 60 * 1000

export type LockKind = 'push' | 'gc'

interface LockBody {
  kind: LockKind
  host: string
  pid: number
  startedAt: string
  refreshedAt: string
}

export class RemoteLock {
  private timer?: NodeJS.Timeout
  private released = false

  private constructor(private readonly store: ObjectStore, readonly key: string, private readonly body: LockBody) {}

  /** Writes a lock of this kind and keeps it fresh until released. */
  static async write(store: ObjectStore, kind: LockKind): Promise<RemoteLock> {
    const now = new Date().toISOString()
    const lock = new RemoteLock(store, `${LOCKS_PREFIX}${kind}-${Date.now().toString(36)}-${randomBytes(6).toString('hex')}.json`,
      {kind, host: hostname(), pid: process.pid, startedAt: now, refreshedAt: now})
    await lock.put()
    lock.timer = setInterval(() => {
      lock.body.refreshedAt = new Date().toISOString()
      // A failed refresh only risks the lock looking stale later; the work goes on.
      lock.put().catch(() => undefined)
    }, REFRESH_MS)
    lock.timer.unref()
    return lock
  }

  /** The live locks of another kind's holders (or of other holders of `kind`), this one aside. */
  async others(kind: LockKind, now = Date.now()): Promise<LockBody[]> {
    const found: LockBody[] = []
    for await (const item of this.store.list(LOCKS_PREFIX)) {
      if (item.key === this.key || !item.key.startsWith(`${LOCKS_PREFIX}${kind}-`)) continue
      const body = parseLock(await this.store.get(item.key))
      // Gone meanwhile (released): not a holder any more. Puts are atomic, so none is half-written.
      if (!body) continue
      if (now - Date.parse(body.refreshedAt) < STALE_MS) found.push(body)
    }

    return found
  }

  async release(): Promise<void> {
    if (this.released) return
    this.released = true
    clearInterval(this.timer)
    await this.store.delete(this.key)
  }

  private async put(): Promise<void> {
    if (this.released) return
    await this.store.put(this.key, Buffer.from(JSON.stringify(this.body)))
  }
}

/**
 * A push's lock: written, then held only once no collection is running (waiting up to
 * PUSH_WAIT_MS for one to end).
 */
export async function lockForPush(store: ObjectStore, wait = PUSH_WAIT_MS): Promise<RemoteLock> {
  const lock = await RemoteLock.write(store, 'push')
  try {
    const deadline = Date.now() + wait
    for (;;) {
      const collecting = await lock.others('gc')
      if (collecting.length === 0) return lock
      if (Date.now() >= deadline) {
        const [other] = collecting
        throw new ZenithError('REMOTE_BUSY', `${store.location} is collecting unused packs (a snapshot destroy on ${other.host}, pid ${other.pid}, since ${other.startedAt}).`,
          `Push again when it is done. A lock left by a killed process is ignored ${STALE_MS / 60_000} minutes after its last refresh (${LOCKS_PREFIX} at the remote).`)
      }

      await sleep(1000)
    }
  } catch (error) {
    await lock.release().catch(() => undefined)
    throw error
  }
}

function parseLock(body: Buffer | undefined): LockBody | undefined {
  if (!body) return undefined
  try {
    const lock = JSON.parse(body.toString('utf8')) as LockBody
    return typeof lock.refreshedAt === 'string' && Number.isFinite(Date.parse(lock.refreshedAt)) ? lock : undefined
  } catch {
    return undefined
  }
}

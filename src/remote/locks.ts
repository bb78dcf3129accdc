import {randomBytes} from 'node:crypto'
import {hostname} from 'node:os'
import {setTimeout as sleep} from 'node:timers/promises'

import {ZenithError} from '../errors.js'
import {isAlive} from '../state/lock.js'
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

/**
 * An index lock is held for one read-modify-write of index.json (seconds), so a holder that was
 * killed stops counting soon; one on this host whose process is gone does not count at all.
 */
const INDEX_STALE_MS = 2 * 60 * 1000
const INDEX_REFRESH_MS = 20 * 1000
/** How long an index update waits for the others before giving up. */
const INDEX_WAIT_MS = 3 * 60 * 1000

export type LockKind = 'push' | 'gc' | 'index'

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
  static async write(store: ObjectStore, kind: LockKind, refreshMs = REFRESH_MS): Promise<RemoteLock> {
    const now = new Date().toISOString()
    const lock = new RemoteLock(store, `${LOCKS_PREFIX}${kind}-${Date.now().toString(36)}-${randomBytes(6).toString('hex')}.json`,
      {kind, host: hostname(), pid: process.pid, startedAt: now, refreshedAt: now})
    await lock.put()
    lock.timer = setInterval(() => {
      lock.body.refreshedAt = new Date().toISOString()
      // A failed refresh only risks the lock looking stale later; the work goes on.
      lock.put().catch(() => undefined)
    }, refreshMs)
    lock.timer.unref()
    return lock
  }

  /** The live locks of another kind's holders (or of other holders of `kind`), this one aside. */
  async others(kind: LockKind, now = Date.now(), staleMs = STALE_MS): Promise<LockBody[]> {
    const found: LockBody[] = []
    for await (const item of this.store.list(LOCKS_PREFIX)) {
      if (item.key === this.key || !item.key.startsWith(`${LOCKS_PREFIX}${kind}-`)) continue
      const body = parseLock(await this.store.get(item.key))
      // Gone meanwhile (released): not a holder any more. Puts are atomic, so none is half-written.
      if (!body) continue
      if (now - Date.parse(body.refreshedAt) < staleMs) found.push(body)
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

/**
 * Runs `work` while no other process updates the index of this store, so that no update is lost
 * (a read-modify-write of index.json that read the index before another one wrote it).
 *
 * Not a conditional PUT (`If-None-Match: *` on a lock object): S3 honours it, but s3rver and
 * older S3-compatible servers ignore the header and overwrite (tested: s3rver 3.7 accepts a
 * second conditional PUT of the same key), and a folder has no such call. So the same scheme as
 * above works everywhere: write our lock, then list; alone, it is ours; else withdraw, wait a
 * random moment and retry. Listing after writing is consistent, so of two writers the later one
 * sees the earlier; two that write together both see each other and both withdraw.
 */
export async function withIndexLock<T>(store: ObjectStore, work: () => Promise<T>, wait = INDEX_WAIT_MS): Promise<T> {
  const deadline = Date.now() + wait
  for (let attempt = 0; ; attempt++) {
    const lock = await RemoteLock.write(store, 'index', INDEX_REFRESH_MS)
    try {
      const others = (await lock.others('index', Date.now(), INDEX_STALE_MS)).filter((other) => other.host !== hostname() || isAlive(other.pid))
      if (others.length === 0) return await work()
      if (Date.now() >= deadline) {
        const [other] = others
        throw new ZenithError('REMOTE_CONFLICT', `Could not update ${store.location}/index.json: another process keeps it locked (${other.host}, pid ${other.pid}, since ${other.startedAt}).`,
          `Retry when the other pushes are done; the snapshot itself is stored (its manifest is in manifests/). A lock left by a killed process is ignored ${INDEX_STALE_MS / 60_000} minutes after its last refresh.`)
      }
    } finally {
      await lock.release()
    }

    await sleep(Math.random() * Math.min(2000, 50 * 2 ** attempt))
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

import type {SnapshotRecord} from '../state/schema.js'

/**
 * A diff of a live pg (`PG@CURRENT`) snapshots it first under this tag, which names the owning
 * process: a diff removes its snapshot when done, and one that was killed leaves it to the
 * repair of the next command. Kept apart from diff.ts so that the repair loads nothing else.
 */
export function temporaryDiffTag(): string {
  return `zenith-diff-${process.pid}-${Math.floor(Math.random() * 0xff_ffff).toString(16).padStart(6, '0')}`
}

/** A diff's temporary snapshot of a live pg (listed nowhere a user picks snapshots from). */
export function isDiffSnapshot(snapshot: {tag?: string}): boolean {
  return /^zenith-diff-\d+-[0-9a-f]+$/.test(snapshot.tag ?? '')
}

/** A diff's temporary snapshot whose process is gone. */
export function isAbandonedDiffSnapshot(snapshot: SnapshotRecord, alive: (pid: number) => boolean): boolean {
  const owner = /^zenith-diff-(\d+)-[0-9a-f]+$/.exec(snapshot.tag ?? '')?.[1]
  return owner !== undefined && Number(owner) !== process.pid && !alive(Number(owner))
}

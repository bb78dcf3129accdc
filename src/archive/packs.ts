import type {PackEntry} from './chunker.js'

/**
 * Packs: the chunks a push uploads are concatenated (each gzip-compressed on its own) into
 * objects of about PACK_BYTES, named by the sha256 of their bytes. Against S3 the cost is per
 * request (s3rver: fetching 629 chunk objects took longer than one GetObject of the whole
 * 332 MiB snapshot), so a snapshot of a few hundred chunks becomes a few objects. After each
 * pack, a small `packs/<id>.idx` says where its chunks are: a later (or resumed) push learns
 * what the remote holds from one listing and one small read per pack, and a pull fetches only
 * the byte ranges it needs.
 */
export const PACK_BYTES = 16 * 1024 * 1024
/** Packs uploading at once while the next one fills. */
export const PACK_UPLOADS = 3
export const PACK_INDEX_FORMAT = 'zenith-pack-index'

export const packKey = (id: string) => `packs/${id}`
export const packIndexKey = (id: string) => `packs/${id}.idx`

/** The pack size; ZENITH_PACK_BYTES overrides it (tests use small packs to have several). */
export function packBytes(env: NodeJS.ProcessEnv = process.env): number {
  const value = Number(env.ZENITH_PACK_BYTES)
  return Number.isSafeInteger(value) && value > 0 ? value : PACK_BYTES
}

export interface ChunkLocation {
  pack: string
  offset: number
  length: number
}

export interface PackIndex {
  format: typeof PACK_INDEX_FORMAT
  pack: string
  chunks: PackEntry[]
}

/**
 * `pack-index.json`: the indexes of all packs in one object, rewritten by each push (and by a
 * destroy that deleted packs), so that a push learns what the remote holds from one listing and
 * one read instead of one read per pack. It is only a shortcut: a pack counts when it is listed
 * with its own `.idx`, packs it lacks (written by a concurrent push) are read from their `.idx`,
 * and packs it names that are gone are ignored.
 */
export const PACKS_INDEX_KEY = 'pack-index.json'
export const PACKS_INDEX_FORMAT = 'zenith-pack-indexes'

export interface PacksIndex {
  format: typeof PACKS_INDEX_FORMAT
  packs: Record<string, PackEntry[]>
}

/** The complete packs of a remote: where each chunk is, and each pack's entries. */
export interface PackCatalog {
  locations: Map<string, ChunkLocation>
  packs: Map<string, PackEntry[]>
  /** Packs whose own `.idx` had to be read (not in pack-index.json). */
  indexesRead: number
}

export function emptyCatalog(): PackCatalog {
  return {locations: new Map(), packs: new Map(), indexesRead: 0}
}

/** Adds a pack's entries to a catalog (a later pack wins for a chunk stored twice). */
export function addPack(catalog: PackCatalog, id: string, entries: PackEntry[]): void {
  catalog.packs.set(id, entries)
  for (const [hash, offset, length] of entries) catalog.locations.set(hash, {pack: id, offset, length})
}

export function parsePackIndex(body: Buffer | undefined, id: string): PackIndex | undefined {
  if (!body) return undefined
  try {
    const index = JSON.parse(body.toString('utf8')) as PackIndex
    if (index.format !== PACK_INDEX_FORMAT || index.pack !== id || !Array.isArray(index.chunks)) return undefined
    return index
  } catch {
    return undefined
  }
}

/** One request of a pull: a byte range of a pack and the chunks in it. */
export interface PackRange {
  pack: string
  start: number
  /** Inclusive. */
  end: number
  hashes: string[]
}

/**
 * Cuts the chunks a pull needs into byte ranges: chunks of one pack in offset order, merged
 * while the gap between them is at most `maxGap` (fetching a few unneeded bytes costs less than
 * another request) and the range stays under `maxBytes` (so that several ranges are in flight
 * and the first chunks are written while later ones arrive).
 */
export function planRanges(needed: Array<{hash: string} & ChunkLocation>, maxBytes = 4 * 1024 * 1024, maxGap = 1024 * 1024): PackRange[] {
  const sorted = [...needed].sort((a, b) => (a.pack === b.pack ? a.offset - b.offset : a.pack.localeCompare(b.pack)))
  const ranges: PackRange[] = []
  let current: PackRange | undefined
  for (const chunk of sorted) {
    const end = chunk.offset + chunk.length - 1
    if (current && current.pack === chunk.pack && chunk.offset - current.end - 1 <= maxGap && end - current.start + 1 <= maxBytes) {
      current.end = Math.max(current.end, end)
      current.hashes.push(chunk.hash)
      continue
    }

    current = {pack: chunk.pack, start: chunk.offset, end, hashes: [chunk.hash]}
    ranges.push(current)
  }

  return ranges
}

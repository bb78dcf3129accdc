import {createHash} from 'node:crypto'

import {type PackEntry, validPacks} from './chunker.js'
import type {ObjectStore} from '../storage/storage.js'

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

interface PackIndex {
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

interface PacksIndex {
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

/**
 * Where every chunk of every complete pack is: a pack counts only when both it and its index
 * are listed (the index is written after the pack; a pack that was deleted is not trusted).
 */
export async function readPackIndexes(store: ObjectStore, concurrency = 16): Promise<PackCatalog> {
  const packs = new Set<string>()
  const indexes: string[] = []
  const [combined] = await Promise.all([readPacksIndex(store), (async () => {
    for await (const item of store.list('packs/')) {
      const match = /^packs\/([0-9a-f]{64})(\.idx)?$/.exec(item.key)
      if (!match) continue
      if (match[2]) indexes.push(match[1])
      else packs.add(match[1])
    }
  })()])

  const catalog = emptyCatalog()
  const add = (id: string, entries: PackEntry[]) => addPack(catalog, id, entries)

  const complete = indexes.filter((id) => packs.has(id))
  const unknown = complete.filter((id) => {
    const entries = combined?.packs[id]
    if (entries) add(id, entries)
    return !entries
  })
  let next = 0
  await Promise.all(Array.from({length: Math.min(concurrency, unknown.length)}, async () => {
    while (next < unknown.length) {
      const id = unknown[next++]
      const index = parsePackIndex(await store.get(packIndexKey(id)), id)
      catalog.indexesRead++
      // An unreadable index only means its chunks are sent again.
      if (index) add(id, index.chunks)
    }
  }))
  return catalog
}

/** Rewrites pack-index.json with these packs. */
export async function writePacksIndex(store: ObjectStore, packs: Map<string, PackEntry[]>): Promise<void> {
  const body: PacksIndex = {format: PACKS_INDEX_FORMAT, packs: Object.fromEntries(packs)}
  await store.put(PACKS_INDEX_KEY, Buffer.from(JSON.stringify(body)))
}

/** pack-index.json, or undefined when it is missing or unreadable (then every .idx is read). */
export async function readPacksIndex(store: ObjectStore): Promise<PacksIndex | undefined> {
  const body = await store.get(PACKS_INDEX_KEY)
  if (!body) return undefined
  try {
    const index = JSON.parse(body.toString('utf8')) as PacksIndex
    const valid = index.format === PACKS_INDEX_FORMAT && validPacks(index.packs)
    return valid ? index : undefined
  } catch {
    return undefined
  }
}

function parsePackIndex(body: Buffer | undefined, id: string): PackIndex | undefined {
  if (!body) return undefined
  try {
    const index = JSON.parse(body.toString('utf8')) as PackIndex
    if (index.format !== PACK_INDEX_FORMAT || index.pack !== id || !Array.isArray(index.chunks)) return undefined
    return index
  } catch {
    return undefined
  }
}

/**
 * Fills packs with compressed chunks and uploads each (then its index) when full, a few at
 * once. `add` waits only when that many uploads are already running, which bounds memory to
 * about (PACK_UPLOADS + 1) packs.
 */
export class PackWriter {
  /** The packs it uploaded (each with its index), with their entries. */
  readonly packs = new Map<string, PackEntry[]>()
  /** Bytes of pack indexes uploaded (the packs' bytes are what the caller added). */
  indexBytes = 0
  private parts: Buffer[] = []
  private entries: PackEntry[] = []
  private size = 0
  private readonly uploads = new Set<Promise<void>>()
  private failure: {error: unknown} | undefined

  constructor(private readonly store: ObjectStore, private readonly limit = packBytes()) {}

  /** Chunks stored by this writer: their location in the packs it uploaded. */
  get written(): Map<string, ChunkLocation> {
    const catalog = emptyCatalog()
    for (const [id, entries] of this.packs) addPack(catalog, id, entries)
    return catalog.locations
  }

  async add(hash: string, stored: Buffer): Promise<void> {
    this.throwIfFailed()
    this.entries.push([hash, this.size, stored.length])
    this.parts.push(stored)
    this.size += stored.length
    if (this.size >= this.limit) await this.seal()
  }

  /** Uploads what is left and waits for every upload: afterwards, every added chunk is stored. */
  async finish(): Promise<void> {
    if (this.size > 0) await this.seal()
    while (this.uploads.size > 0) await Promise.race(this.uploads)
    this.throwIfFailed()
  }

  private async seal(): Promise<void> {
    const body = Buffer.concat(this.parts)
    const entries = this.entries
    this.parts = []
    this.entries = []
    this.size = 0
    while (this.uploads.size >= PACK_UPLOADS) await Promise.race(this.uploads)
    this.throwIfFailed()
    const id = createHash('sha256').update(body).digest('hex')
    const upload: Promise<void> = (async () => {
      await this.store.put(packKey(id), body)
      const index: PackIndex = {format: PACK_INDEX_FORMAT, pack: id, chunks: entries}
      const indexBody = Buffer.from(JSON.stringify(index))
      await this.store.put(packIndexKey(id), indexBody)
      this.indexBytes += indexBody.length
      this.packs.set(id, entries)
    })().catch((error: unknown) => {
      this.failure ??= {error}
    }).finally(() => {
      this.uploads.delete(upload)
    })
    this.uploads.add(upload)
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.error
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

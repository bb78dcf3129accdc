import {createHash} from 'node:crypto'

import {type PackEntry, validPacks} from '../archive/chunker.js'
import {
  type ChunkLocation, PACKS_INDEX_FORMAT, PACKS_INDEX_KEY, PACK_INDEX_FORMAT, PACK_UPLOADS, type PackCatalog, type PackIndex, type PacksIndex,
  addPack, emptyCatalog, packBytes, packIndexKey, packKey, parsePackIndex,
} from '../archive/packs.js'
import {TaskPool} from '../task-pool.js'
import type {ObjectStore} from '../storage/storage.js'

// The packs of a remote storage (their format is archive/packs.ts): what a push learns the remote
// holds, pack-index.json, and the writer that uploads new packs.

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
  await new TaskPool(concurrency).forEach(unknown, async (id) => {
    const index = parsePackIndex(await store.get(packIndexKey(id)), id)
    catalog.indexesRead++
    // An unreadable index only means its chunks are sent again.
    if (index) add(id, index.chunks)
  })
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
  private readonly uploads = new TaskPool(PACK_UPLOADS)

  constructor(private readonly store: ObjectStore, private readonly limit = packBytes()) {}

  /** Chunks stored by this writer: their location in the packs it uploaded. */
  get written(): Map<string, ChunkLocation> {
    const catalog = emptyCatalog()
    for (const [id, entries] of this.packs) addPack(catalog, id, entries)
    return catalog.locations
  }

  async add(hash: string, stored: Buffer): Promise<void> {
    this.uploads.throwIfFailed()
    this.entries.push([hash, this.size, stored.length])
    this.parts.push(stored)
    this.size += stored.length
    if (this.size >= this.limit) await this.seal()
  }

  /** Uploads what is left and waits for every upload: afterwards, every added chunk is stored. */
  async finish(): Promise<void> {
    if (this.size > 0) await this.seal()
    await this.uploads.drain()
  }

  private async seal(): Promise<void> {
    const body = Buffer.concat(this.parts)
    const entries = this.entries
    this.parts = []
    this.entries = []
    this.size = 0
    const id = createHash('sha256').update(body).digest('hex')
    await this.uploads.run(async () => {
      await this.store.put(packKey(id), body)
      const index: PackIndex = {format: PACK_INDEX_FORMAT, pack: id, chunks: entries}
      const indexBody = Buffer.from(JSON.stringify(index))
      await this.store.put(packIndexKey(id), indexBody)
      this.indexBytes += indexBody.length
      this.packs.set(id, entries)
    })
  }
}


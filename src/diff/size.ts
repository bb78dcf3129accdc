import {readdir, stat} from 'node:fs/promises'
import path from 'node:path'

import {TaskPool} from '../task-pool.js'
import type {Catalog, RelationKind} from './catalog.js'
import {type Extent, readExtents, sharedRanges} from './extents.js'
import {PAGE_SIZE, changedBytes} from './pages.js'

export interface RelationChange {
  name: string
  kind: RelationKind | 'wal'
  size1: number
  size2: number
  bytesChanged: number
}

export interface SizeDiff {
  bytesChanged: number
  size1: number
  size2: number
  /** Bytes known equal from shared extents, never read. */
  bytesShared: number
  /** Relations (and files outside relations) with changed bytes, most changed first. */
  relations: RelationChange[]
}

/** Files compared at once: enough to keep a disk busy, few enough to keep memory at 2 MiB each. */
const FILES_AT_ONCE = 4

/**
 * Bytes changed between two data directories, per relation, counted in 8 KiB pages. With
 * `extents` (a copy-on-write storage), pages that both sides map to the same disk blocks are
 * equal without being read, so a snapshot that shares most of its blocks with the other is
 * compared in the time it takes to read what changed. Every other page is read on both sides.
 *
 * Files pair by path. A relation rewritten under a new file node (VACUUM FULL, ALTER TYPE)
 * pairs its old and new files by name, fork and segment once the catalogs are known.
 */
export async function diffSizes(before: string, after: string, options: {extents: boolean; ignore?: (file: string) => boolean; catalogAfter: () => Promise<Catalog>; catalogBefore: () => Promise<Catalog>}): Promise<SizeDiff> {
  const [left, right] = await Promise.all([listFiles(before, options.ignore), listFiles(after, options.ignore)])
  const common = [...left.keys()].filter((file) => right.has(file))
  let extents: [Map<string, Extent[] | undefined>, Map<string, Extent[] | undefined>] | undefined
  if (options.extents && common.length > 0) {
    extents = await Promise.all([readExtents(common.map((file) => path.join(before, file))), readExtents(common.map((file) => path.join(after, file)))])
  }

  const results = new Map<string, {changed: number; size1: number; size2: number}>()
  let bytesShared = 0
  const pool = new TaskPool(FILES_AT_ONCE)
  await pool.forEach(common, async (file) => {
    const a = extents?.[0].get(path.join(before, file))
    const b = extents?.[1].get(path.join(after, file))
    const shared = a && b ? sharedRanges(a, b, PAGE_SIZE) : []
    bytesShared += shared.reduce((sum, [start, end]) => sum + end - start, 0)
    results.set(file, {changed: await changedBytes(path.join(before, file), path.join(after, file), shared), size1: left.get(file)!, size2: right.get(file)!})
  })

  // The catalog of `after` names every file both sides have; the one of `before` (another
  // temporary postgres) is read only when files of relations `after` does not name are left.
  const catalogAfter = await options.catalogAfter()
  const needsBefore = [...left.keys()].some((file) => !right.has(file) && RELATION_FILE.test(file) && !catalogAfter.files.has(relationNode(file)))
  const catalogBefore = needsBefore ? await options.catalogBefore() : {files: new Map(), databases: []}
  const relations = new Map<string, RelationChange>()
  // Keys of entries that are files outside relations (or relation files no catalog names).
  const unnamed = new Set<string>()
  const add = (identity: FileIdentity, change: {changed: number; size1: number; size2: number}) => {
    const key = `${identity.kind} ${identity.name}`
    if (identity.part === undefined) unnamed.add(key)
    const entry = relations.get(key) ?? {name: identity.name, kind: identity.kind, size1: 0, size2: 0, bytesChanged: 0}
    entry.size1 += change.size1
    entry.size2 += change.size2
    entry.bytesChanged += change.changed
    relations.set(key, entry)
  }

  for (const [file, change] of results) add(identify(file, catalogAfter, catalogBefore), change)
  // Files on one side only: a rewritten relation's old and new files pair by name, fork and
  // segment; the rest were created or dropped whole.
  const onlyBefore = new Map<string, string>()
  for (const file of left.keys()) {
    if (!right.has(file)) onlyBefore.set(pairKey(file, identify(file, catalogBefore, catalogAfter)), file)
  }

  const unpaired: Array<{file: string; side: 'before' | 'after'}> = []
  const pairs: Array<{old: string; new: string}> = []
  for (const file of right.keys()) {
    if (left.has(file)) continue
    const key = pairKey(file, identify(file, catalogAfter, catalogBefore))
    const old = onlyBefore.get(key)
    if (old === undefined) {
      unpaired.push({file, side: 'after'})
    } else {
      onlyBefore.delete(key)
      pairs.push({old, new: file})
    }
  }

  for (const file of onlyBefore.values()) unpaired.push({file, side: 'before'})
  await pool.forEach(pairs, async (pair) => {
    const changed = await changedBytes(path.join(before, pair.old), path.join(after, pair.new))
    add(identify(pair.new, catalogAfter, catalogBefore), {changed, size1: left.get(pair.old)!, size2: right.get(pair.new)!})
  })
  for (const {file, side} of unpaired) {
    const size = (side === 'before' ? left : right).get(file)!
    const identity = side === 'before' ? identify(file, catalogBefore, catalogAfter) : identify(file, catalogAfter, catalogBefore)
    add(identity, {changed: size, size1: side === 'before' ? size : 0, size2: side === 'after' ? size : 0})
  }

  // Relations first (what a migration or a job touched), then WAL and the other files.
  const outside = (relation: RelationChange) => (unnamed.has(`${relation.kind} ${relation.name}`) ? 1 : 0)
  const changed = [...relations.values()].filter((relation) => relation.bytesChanged > 0)
    .sort((a, b) => outside(a) - outside(b) || b.bytesChanged - a.bytesChanged || a.name.localeCompare(b.name))
  const sum = (key: 'bytesChanged' | 'size1' | 'size2') => [...relations.values()].reduce((total, relation) => total + relation[key], 0)
  return {bytesChanged: sum('bytesChanged'), size1: sum('size1'), size2: sum('size2'), bytesShared, relations: changed}
}

interface FileIdentity {
  name: string
  kind: RelationKind | 'wal'
  /**
   * For a file the catalog names, which part of the relation it holds (`_fsm`/`_vm`/`_init` and
   * the `.N` segment number); undefined for every other file.
   */
  part?: string
}

/**
 * What a data directory file holds: a relation's fork or segment (named from the catalog of the
 * side that has it, else the other), WAL, or another file grouped by its top-level entry.
 */
export function identify(file: string, catalog: Catalog, other?: Catalog): FileIdentity {
  const relation = RELATION_FILE.exec(file)
  if (relation) {
    const node = `${relation[1]}/${relation[2]}`
    const named = catalog.files.get(node) ?? other?.files.get(node)
    // A file no catalog names: a relation of a database that takes no connections
    // (template0), or one dropped and not yet removed; shown by its path.
    return named ? {name: named.name, kind: named.kind, part: relation[3]} : {name: node, kind: 'other'}
  }

  const [top, ...rest] = file.split('/')
  if (top === 'pg_wal') return {name: 'pg_wal/', kind: 'wal'}
  return {name: rest.length > 0 ? `${top}/` : top, kind: 'other'}
}

/** A relation's file: `base/<db>/<filenode>` or `global/<filenode>`, then a fork and a segment. */
const RELATION_FILE = /^(base\/\d+|global)\/(\d+)((?:_[a-z]+)?(?:\.\d+)?)$/

function relationNode(file: string): string {
  const [, folder, node] = RELATION_FILE.exec(file)!
  return `${folder}/${node}`
}

function pairKey(file: string, identity: FileIdentity): string {
  // Only named relation files pair across paths; anything else keeps its own path as the key.
  return identity.part === undefined ? `path ${file}` : `${identity.kind} ${identity.name} ${identity.part}`
}

/** Regular files under `root` by relative path, with their sizes (symlinks are not followed). */
async function listFiles(root: string, ignore: (file: string) => boolean = () => false): Promise<Map<string, number>> {
  const files = new Map<string, number>()
  const walk = async (dir: string, prefix: string): Promise<void> => {
    const entries = await readdir(dir, {withFileTypes: true})
    await Promise.all(entries.map(async (entry) => {
      const relative = prefix ? `${prefix}/${entry.name}` : entry.name
      if (entry.isDirectory()) await walk(path.join(dir, entry.name), relative)
      else if (entry.isFile() && !ignore(relative)) files.set(relative, (await stat(path.join(dir, entry.name))).size)
    }))
  }

  await walk(root, '')
  return files
}

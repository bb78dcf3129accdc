import {ZenithError} from '../errors.js'

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/
const HEAD = /^HEAD\{(\d+)\}$/

export type NameKind = 'pg' | 'snapshot' | 'tag' | 'storage' | 'pitr'

/** Tags zenith itself gives meaning to: the live data directory and the state before a checkout. */
export function isReservedTag(tag: string): boolean {
  return tag === 'CURRENT' || tag === 'HEAD' || HEAD.test(tag)
}

/** Names become folder names and URL parts: letters, digits, `_ . -`, at most 63 characters. */
export function validateName(kind: NameKind, name: string | undefined): string {
  const label = kind === 'pg' ? 'pg name' : `${kind} name`
  if (name === undefined || name === '') {
    throw new ZenithError('INVALID_NAME', `The ${label} is empty.`, `Give a ${label} such as "dev" or "pgdata1".`)
  }

  if (kind !== 'tag' && name.includes('@')) {
    throw new ZenithError('INVALID_NAME', `The ${label} "${name}" contains "@".`,
      kind === 'pg' ? 'The "@" separates a pg from a snapshot tag (pg@tag); choose a name without it.' : 'Snapshots of a pg are named PG@TAG; other names cannot contain "@".')
  }

  if (name.includes('/') || name.includes('\\') || name.includes('..')) {
    throw new ZenithError('INVALID_NAME', `The ${label} "${name}" contains a path separator or "..".`, 'Use letters, digits, "_", "-" and ".".')
  }

  if (isReservedTag(name)) {
    throw new ZenithError('INVALID_NAME', `"${name}" is reserved by zenith.`,
      'CURRENT is the live data directory and HEAD{n} the state before the n-th checkout; choose another name.')
  }

  if (!NAME.test(name)) {
    throw new ZenithError('INVALID_NAME', `The ${label} "${name}" is not valid.`,
      'Start with a letter or digit and use only letters, digits, "_", "-" and "." (at most 63 characters).')
  }

  return name
}

export type SnapshotRef =
  | {kind: 'named'; name: string}
  | {kind: 'tag'; name: string; pg: string; tag: string}
  | {kind: 'current'; name: string; pg: string}
  | {kind: 'head'; name: string; pg: string; n: number}

/** Parses `pg@tag`, `pg@CURRENT`, `pg@HEAD{n}` or a bare imported snapshot name. */
export function parseSnapshotRef(ref: string): SnapshotRef {
  const at = ref.indexOf('@')
  if (at === -1) return {kind: 'named', name: validateName('snapshot', ref)}
  const pg = ref.slice(0, at)
  const tag = ref.slice(at + 1)
  if (pg === '' || tag === '' || tag.includes('@')) {
    throw new ZenithError('INVALID_REF', `"${ref}" is not a snapshot reference.`, 'Write PG@TAG (dev@before-migration), PG@CURRENT, PG@HEAD{0} or an imported snapshot name.')
  }

  validateName('pg', pg)
  if (tag === 'CURRENT') return {kind: 'current', name: ref, pg}
  const head = HEAD.exec(tag)
  if (head) return {kind: 'head', name: ref, pg, n: Number(head[1])}
  if (tag === 'HEAD') {
    throw new ZenithError('INVALID_REF', `"${ref}" needs a number: HEAD{n}.`, `Use ${pg}@HEAD{0} for the state before the first checkout.`)
  }

  validateName('tag', tag)
  return {kind: 'tag', name: ref, pg, tag}
}

/** A reference to a new, user-named snapshot: `pg@tag` with a tag that is not reserved. */
export function parseNewSnapshotRef(ref: string): {pg: string; tag: string; name: string} {
  const parsed = parseSnapshotRef(ref)
  if (parsed.kind === 'tag') return parsed
  if (parsed.kind === 'named') {
    throw new ZenithError('INVALID_REF', `"${ref}" does not name a pg.`, `Write PG@TAG, for example ${ref === '' ? 'dev' : ref}@before-migration.`)
  }

  throw new ZenithError('INVALID_NAME', `The tag in "${ref}" is reserved by zenith.`,
    'CURRENT is the live data directory and HEAD{n} the state before the n-th checkout; choose another tag.')
}

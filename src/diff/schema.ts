import {ExternalCommandError, tail} from '../errors.js'
import type {TempInstance} from '../pg/temp-instance.js'
import {run} from '../process.js'
import {DEFAULT_DATABASE} from './catalog.js'

export interface SchemaObject {
  /** `TABLE public.accounts`, `INDEX public.accounts_pkey`, `FUNCTION public.f(integer)`; `db:` before it outside the default database. */
  object: string
  type: string
  database: string
  /** Its normalized definition: pg_dump's statements for it, without comments or blank lines. */
  definition: string
}

export interface SchemaChange {
  object: string
  type: string
  database: string
  change: 'added' | 'removed' | 'changed'
  before?: string
  after?: string
  /** A unified diff of the two definitions. */
  diff: string
}

/**
 * The DDL difference of two clusters: each database's `pg_dump --schema-only` cut into its
 * objects (pg_dump heads each with a `-- Name: ...; Type: ...; Schema: ...` comment), so that a
 * change is shown per object and objects that did not change never show, whatever their order
 * in the dump. Databases on one side only show every object added or removed.
 */
export async function diffSchemas(before: TempInstance, after: TempInstance, databases: {before: string[]; after: string[]}): Promise<SchemaChange[]> {
  const [left, right] = await Promise.all([dumpObjects(before, databases.before), dumpObjects(after, databases.after)])
  return compareObjects(left, right)
}

/** Pairs objects by name and compares their definitions (exported for unit tests). */
export async function compareObjects(before: SchemaObject[], after: SchemaObject[]): Promise<SchemaChange[]> {
  const {createTwoFilesPatch} = await import('diff')
  const left = new Map(before.map((item) => [item.object, item]))
  const right = new Map(after.map((item) => [item.object, item]))
  const changes: SchemaChange[] = []
  for (const object of [...new Set([...left.keys(), ...right.keys()])].sort()) {
    const a = left.get(object)
    const b = right.get(object)
    if (a && b && a.definition === b.definition) continue
    const {type, database} = (b ?? a)!
    const patch = createTwoFilesPatch(`a/${object}`, `b/${object}`, a ? `${a.definition}\n` : '', b ? `${b.definition}\n` : '', undefined, undefined, {context: 3})
    changes.push({
      object, type, database, change: a && b ? 'changed' : b ? 'added' : 'removed', before: a?.definition, after: b?.definition,
      // createTwoFilesPatch starts with a '====' line and an Index header: only the diff is wanted.
      diff: patch.split('\n').filter((line) => !/^(={5,}|Index: )/.test(line)).join('\n').trimEnd(),
    })
  }

  return changes
}

async function dumpObjects(instance: TempInstance, databases: string[]): Promise<SchemaObject[]> {
  const dumps = await Promise.all(databases.map(async (database) => splitDump(await dumpSchema(instance, database), database)))
  return dumps.flat()
}

async function dumpSchema(instance: TempInstance, database: string): Promise<string> {
  // Owners, grants and comments stay in: a change of any of them is a change of the schema.
  const args = ['-h', instance.socketDir, '-p', String(instance.port), '-U', instance.user, '--schema-only', '-d', database]
  const result = await run(instance.binaries.path('pg_dump'), args, {cwd: '/', user: instance.osUser})
  if (result.exitCode !== 0) throw new ExternalCommandError('pg_dump', args, tail(result.stderr), result.exitCode)
  return result.stdout
}

const HEADER = /^-- (?:Data for )?Name: (.+); Type: (.+); Schema: (.+); Owner: (.*)$/

/**
 * Cuts a plain-format schema dump into its objects (exported for unit tests). What comes before
 * the first object (SET lines, `\restrict` with its random key) describes the dump, not the
 * schema, and is left out, as are comment and blank lines.
 */
export function splitDump(dump: string, database: string): SchemaObject[] {
  const objects = new Map<string, SchemaObject>()
  let current: {object: string; type: string; lines: string[]} | undefined
  const finish = () => {
    if (!current) return
    const definition = current.lines.join('\n')
    const existing = objects.get(current.object)
    // pg_dump can head two parts of one object alike (a table and its later ALTER): one object.
    objects.set(current.object, {object: current.object, type: current.type, database, definition: existing ? `${existing.definition}\n${definition}` : definition})
  }

  for (const line of dump.split('\n')) {
    const header = HEADER.exec(line)
    if (header) {
      finish()
      const [, name, type, schema] = header
      const qualified = schema === '-' ? name : `${schema}.${name}`
      const object = `${type} ${database === DEFAULT_DATABASE ? '' : `${database}:`}${qualified}`
      current = {object, type, lines: []}
      continue
    }

    if (!current || line.startsWith('--') || line.trim() === '' || /^\\(un)?restrict /.test(line)) continue
    current.lines.push(line.trimEnd())
  }

  finish()
  return [...objects.values()]
}

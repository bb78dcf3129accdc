/**
 * The data diff of two databases (`zenith snapshot diff --data`), modelled on `dolt diff
 * --data`: per table, the rows only `after` has (+), only `before` has (-), and those whose key
 * both have with other values (~). Each table is read from both servers as two cursors sorted
 * the same way and merged as they stream, so memory holds a few batches, not the tables.
 */
import type {Client} from 'pg'

import {ZenithError} from '../errors.js'
import {newClient} from '../pg/client.js'
import {type BatchSource, type MergePlan, type MergedChange, mergeSorted} from './row-merge.js'
import {type ColumnOrder, type Row, compareUtf8, keyOrder, rowOrder} from './row-order.js'
import {type StatementTarget, type Values, deleteByKeyStatement, deleteMatchingStatement, insertStatement, quoteIdentifier, updateStatement} from './row-statements.js'

/** libpq settings of one database (TempInstance.connection has this shape). */
export interface Connection {
  host: string
  port: string
  user: string
  dbname: string
}

export type RowValues = Record<string, string | null>

export type RowChange =
  | {op: '+'; row: RowValues}
  | {op: '-'; row: RowValues}
  | {op: '~'; key: RowValues; before: RowValues; after: RowValues; changedColumns: string[]}

export interface RowDiffOptions {
  /** `schema.name` or `name` (in public); default: every table of either database. */
  tables?: string[]
  /** Changes kept per table in `rows` (the counts cover all of them); default 20. */
  limit?: number
  /** Every change of every table, as it is found (none is kept for it). */
  onRow?: (table: string, change: RowChange) => void
  /** Rows per FETCH from each cursor; default 1000. Two batches per side are held at most. */
  fetchSize?: number
}

export interface TableRowDiff {
  /** schema.table */
  name: string
  /** Primary key columns; null: the table is compared as a multiset of whole rows. */
  key: string[] | null
  added: number
  removed: number
  changed: number
  /** At most `limit` changes, in key order. */
  rows: RowChange[]
  /** Columns only `after` has (added) and only `before` has (removed). */
  columns: {added: string[]; removed: string[]}
  /** The table exists in one database only: all its rows are added or removed. */
  only?: 'before' | 'after'
}

export interface RowDiffResult {
  /** The tables that differ, by name. */
  tables: TableRowDiff[]
  tablesCompared: number
  /** Rows read from both databases. */
  rowsCompared: number
  /** Most rows held in fetch buffers at once (both sides): bounded by the fetch size, not the tables. */
  peakRowsHeld: number
}

export interface RowStatementOptions {
  tables?: string[]
  fetchSize?: number
}

const DEFAULT_LIMIT = 20
const DEFAULT_FETCH_SIZE = 1000
const CURSOR = 'zenith_rows'

/**
 * Both sessions print values the same way whatever the servers' own settings (time zone, date
 * style, float digits), so equal data has equal text. The transaction is one snapshot per
 * database: the catalog and every table are read as of one moment. A long diff must not be
 * cut off by the server's timeouts.
 */
const SESSION = [
  "SET application_name = 'zenith diff'",
  'SET statement_timeout = 0', 'SET idle_in_transaction_session_timeout = 0', 'SET lock_timeout = 0',
  "SET client_encoding = 'UTF8'", "SET DateStyle = 'ISO, YMD'", "SET IntervalStyle = 'postgres'", "SET TimeZone = 'UTC'",
  'SET extra_float_digits = 1', "SET bytea_output = 'hex'", 'SET search_path = pg_catalog',
  'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY',
].join('; ')

/**
 * The row differences of every table (or of `options.tables`). Counts cover all rows; `rows`
 * keeps the first `limit` changes of each table, and `onRow` sees every one as it is found.
 */
export async function diffRows(before: Connection, after: Connection, options: RowDiffOptions = {}): Promise<RowDiffResult> {
  const limit = options.limit ?? DEFAULT_LIMIT
  const fetchSize = options.fetchSize ?? DEFAULT_FETCH_SIZE
  const sides = await openSides(before, after)
  try {
    const plans = await planTables(sides, options.tables)
    const tables: TableRowDiff[] = []
    for (const plan of plans) {
      const diff: TableRowDiff = {
        name: plan.name, key: plan.key, added: 0, removed: 0, changed: 0, rows: [],
        columns: {
          added: plan.before && plan.after ? plan.columns.filter((column) => !plan.inBefore.has(column)) : [],
          removed: plan.before && plan.after ? plan.columns.filter((column) => !plan.inAfter.has(column)) : [],
        },
      }
      if (!plan.before) diff.only = 'after'
      if (!plan.after) diff.only = 'before'
      for await (const change of tableChanges(sides, plan, fetchSize)) {
        if (change.op === '+') diff.added++
        else if (change.op === '-') diff.removed++
        else diff.changed++
        const keep = diff.rows.length < limit
        if (!keep && !options.onRow) continue
        const rowChange = publicChange(plan, change)
        if (keep) diff.rows.push(rowChange)
        options.onRow?.(plan.name, rowChange)
      }

      if (diff.added + diff.removed + diff.changed > 0 || diff.only || diff.columns.added.length > 0 || diff.columns.removed.length > 0) tables.push(diff)
    }

    return {tables, tablesCompared: plans.length, rowsCompared: sides.memory.read, peakRowsHeld: sides.memory.peak}
  } finally {
    await closeSides(sides)
  }
}

/**
 * The statements that turn `before`'s data into `after`'s, for every row, table by table in
 * name order. They are meant to run after `before` has been given `after`'s schema: they write
 * only columns `after` has, and nothing for a table only `before` has (its rows go with the
 * table). Generated columns are left to the server; a row that sets a GENERATED ALWAYS identity
 * column is inserted with OVERRIDING SYSTEM VALUE, and, since UPDATE cannot set such a column,
 * a change of one is a DELETE and an INSERT. Foreign keys are not ordered for: run them with
 * the constraints deferred or `session_replication_role = replica`.
 */
export async function* rowDiffStatements(before: Connection, after: Connection, options: RowStatementOptions = {}): AsyncGenerator<string> {
  const fetchSize = options.fetchSize ?? DEFAULT_FETCH_SIZE
  const sides = await openSides(before, after)
  try {
    for (const plan of await planTables(sides, options.tables)) {
      if (plan.after) yield* tableStatements(sides, plan, plan.after, fetchSize)
    }
  } finally {
    await closeSides(sides)
  }
}

/**
 * One table's statements in two passes over the same snapshot: first every DELETE, then the
 * UPDATEs and INSERTs, so that a row inserted never meets a unique value (the primary key of
 * a table that had none, a UNIQUE column) that a row deleted still holds. A table only `after`
 * has needs no first pass, one without additions or changes no second.
 */
async function* tableStatements(sides: Sides, plan: TablePlan, after: TableInfo, fetchSize: number): AsyncGenerator<string> {
  const target: StatementTarget = {schema: after.schema, name: after.name, only: after.kind === 'r'}
  const writable = new Set(after.columns.filter((column) => !column.generated).map((column) => column.name))
  const identityAlways = new Set(after.columns.filter((column) => column.identityAlways).map((column) => column.name))
  const positions = plan.columns.map((name, position) => ({name, position}))
  const common = positions.filter(({name}) => plan.inBefore.has(name) && plan.inAfter.has(name))
  const inserted = positions.filter(({name}) => writable.has(name))
  const keyColumns = plan.key ? positions.filter(({name}) => plan.key!.includes(name)) : []
  const valuesOf = (row: Row, columns: {name: string; position: number}[]): Values => Object.fromEntries(columns.map(({name, position}) => [name, row[position]]))
  const insert = (row: Row): string => insertStatement(target, valuesOf(row, inserted), inserted.some(({name}) => identityAlways.has(name)))
  /** The columns an UPDATE of this change sets; a change of a GENERATED ALWAYS identity column is a DELETE and an INSERT instead. */
  const assigned = (change: MergedChange & {op: '~'}) => change.changed.map((position) => positions[position]).filter(({name}) => writable.has(name))
  const replaced = (change: MergedChange & {op: '~'}) => assigned(change).some(({name}) => identityAlways.has(name))

  let writes = plan.before === undefined
  if (plan.before) {
    let deletion: {row: Row; count: number} | undefined
    for await (const change of tableChanges(sides, plan, fetchSize)) {
      if (change.op === '+' || (change.op === '~' && !replaced(change))) {
        writes ||= change.op === '+' || assigned(change).length > 0
        continue
      }

      writes ||= change.op === '~'
      if (change.op === '-' && !plan.key) {
        // Equal rows of a multiset arrive one after another: one statement deletes them all.
        if (deletion && sameRow(deletion.row, change.row)) {
          deletion.count++
          continue
        }

        if (deletion) yield deleteMatchingStatement(target, valuesOf(deletion.row, common), deletion.count)
        deletion = {row: change.row, count: 1}
      } else yield deleteByKeyStatement(target, valuesOf(change.op === '-' ? change.row : change.before, keyColumns))
    }

    if (deletion) yield deleteMatchingStatement(target, valuesOf(deletion.row, common), deletion.count)
  }

  if (!writes) return
  for await (const change of tableChanges(sides, plan, fetchSize)) {
    if (change.op === '+') yield insert(change.row)
    else if (change.op === '~') {
      if (replaced(change)) yield insert(change.after)
      else if (assigned(change).length > 0) yield updateStatement(target, valuesOf(change.before, keyColumns), valuesOf(change.after, assigned(change)))
    }
  }
}

function sameRow(a: Row, b: Row): boolean {
  return a.length === b.length && a.every((value, index) => value === b[index])
}

// ---- Text view

/**
 * Dolt-style text: a header per table with its counts, then its rows: `+ ` added, `- `
 * removed, and for a changed row a `< ` (before) / `> ` (after) pair with its key and the
 * columns that differ (a column the side lacks shows as NULL, as it is compared).
 */
export function renderRowDiff(result: RowDiffResult): string {
  if (result.tables.length === 0) return `No data differences (${result.tablesCompared} ${result.tablesCompared === 1 ? 'table' : 'tables'} compared).`
  return result.tables.map((table) => renderTable(table)).join('\n\n')
}

function renderTable(table: TableRowDiff): string {
  const lines = [
    `diff --zenith a/${table.name} b/${table.name}`,
    table.only === 'after' ? '--- /dev/null' : `--- a/${table.name}`,
    table.only === 'before' ? '+++ /dev/null' : `+++ b/${table.name}`,
  ]
  const counts = table.key ? `${table.added} added, ${table.removed} removed, ${table.changed} changed` : `${table.added} added, ${table.removed} removed`
  const notes = [
    ...(table.only ? [table.only === 'after' ? 'new table' : 'dropped table'] : []),
    counts,
    table.key ? `key: ${table.key.join(', ')}` : 'no primary key: rows compared as a multiset',
    ...(table.columns.added.length > 0 ? [`new columns: ${table.columns.added.join(', ')}`] : []),
    ...(table.columns.removed.length > 0 ? [`dropped columns: ${table.columns.removed.join(', ')}`] : []),
  ]
  lines.push(`@@ ${notes.join(' | ')} @@`)
  for (const change of table.rows) {
    if (change.op === '+') lines.push(`+ ${renderValues(change.row)}`)
    else if (change.op === '-') lines.push(`- ${renderValues(change.row)}`)
    else {
      const side = (values: RowValues) => renderValues({...change.key, ...Object.fromEntries(change.changedColumns.map((column) => [column, values[column] ?? null]))})
      lines.push(`< ${side(change.before)}`, `> ${side(change.after)}`)
    }
  }

  const total = table.added + table.removed + table.changed
  if (total > table.rows.length) lines.push(`  ... ${total - table.rows.length} more not shown (${table.rows.length} of ${total})`)
  return lines.join('\n')
}

function renderValues(values: RowValues): string {
  return Object.entries(values).map(([column, value]) => `${column}=${renderValue(value)}`).join(' ')
}

/** Bare when it cannot be misread, else a JSON string (one line, quotes and control characters escaped). */
export function renderValue(value: string | null): string {
  if (value === null) return 'NULL'
  return value !== 'NULL' && /^[\w.:+@/-]+$/.test(value) ? value : JSON.stringify(value)
}

// ---- Tables and their plans

interface ColumnInfo {
  name: string
  /** The type's name (a domain's base type's). */
  type: string
  generated: boolean
  identityAlways: boolean
}

interface TableInfo {
  schema: string
  name: string
  /** r: ordinary, p: partitioned. */
  kind: 'r' | 'p'
  partition: boolean
  columns: ColumnInfo[]
  key: string[] | null
}

/**
 * How one table is read. Both sides return rows in one column layout, `columns`: before's
 * columns, then those only after has. A column a side lacks is selected as NULL there, so
 * comparing the layouts position by position is the rule for columns on one side only: such a
 * column makes a row differ exactly when the row has a value (non-NULL) in it.
 */
interface TablePlan {
  name: string
  before?: TableInfo
  after?: TableInfo
  columns: string[]
  inBefore: Set<string>
  inAfter: Set<string>
  key: string[] | null
  /** Per key column. */
  keyOrders: ColumnOrder[]
}

function columnNames(table: TableInfo): string[] {
  return table.columns.map((column) => column.name)
}

async function readTables(side: Side): Promise<Map<string, TableInfo>> {
  // attgenerated is new in PostgreSQL 12.
  const generated = side.version >= 120_000 ? "a.attgenerated <> ''" : 'false'
  const {rows} = await side.client.query<Row>({rowMode: 'array', text: `
    select n.nspname, c.relname, c.relkind, c.relispartition,
      coalesce((select json_agg(json_build_object('name', a.attname, 'type', coalesce(base.typname, t.typname),
          'generated', ${generated}, 'identityAlways', a.attidentity = 'a') order by a.attnum)
        from pg_attribute a
        join pg_type t on t.oid = a.atttypid
        left join pg_type base on t.typtype = 'd' and base.oid = t.typbasetype
        where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped), '[]'),
      (select json_agg(a.attname order by k.position)
        from pg_index i
        cross join lateral unnest(i.indkey) with ordinality as k(attnum, position)
        join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
        where i.indrelid = c.oid and i.indisprimary)
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where c.relkind in ('r', 'p') and n.nspname <> 'information_schema' and n.nspname !~ '^pg_'`})
  const tables = new Map<string, TableInfo>()
  for (const [schema, name, kind, partition, columns, key] of rows) {
    tables.set(`${schema}.${name}`, {
      schema: schema!, name: name!, kind: kind as 'r' | 'p', partition: partition === 't',
      columns: JSON.parse(columns!) as ColumnInfo[], key: key === null ? null : JSON.parse(key) as string[],
    })
  }

  return tables
}

/**
 * The tables to compare, by name. By default every table of either database but partitions
 * (their rows are their partitioned table's, which is compared); named, any table, partitions too.
 */
async function planTables(sides: Sides, names: string[] | undefined): Promise<TablePlan[]> {
  const [before, after] = await Promise.all([readTables(sides.before), readTables(sides.after)])
  // A partition detached on one side is a table of its own there: listed.
  const listed = [...new Set([...before.keys(), ...after.keys()])]
    .filter((table) => [before.get(table), after.get(table)].some((info) => info !== undefined && !info.partition))
    .sort(compareUtf8)
  let chosen: string[]
  if (names && names.length > 0) {
    chosen = [...new Set(names.map((name) => {
      const candidates = name.includes('.') ? [name, `public.${name}`] : [`public.${name}`]
      const found = candidates.find((candidate) => before.has(candidate) || after.has(candidate))
      if (found === undefined) {
        const known = listed
        throw new ZenithError('TABLE_NOT_FOUND', `There is no table "${name}" in either database.`,
          known.length === 0 ? 'Neither database has a user table.'
            : `Name a table as schema.name (or name, for public): ${known.slice(0, 10).join(', ')}${known.length > 10 ? `, and ${known.length - 10} more` : ''}.`)
      }

      return found
    }))]
  } else chosen = listed

  return chosen.sort(compareUtf8).map((name) => tablePlan(name, before.get(name), after.get(name)))
}

function tablePlan(name: string, before: TableInfo | undefined, after: TableInfo | undefined): TablePlan {
  const columns = [...new Set([...(before ? columnNames(before) : []), ...(after ? columnNames(after) : [])])]
  const sideKeys = [before, after].filter((table) => table !== undefined).map((table) => table.key)
  // Rows are matched by key only when both sides have the same primary key.
  const key = sideKeys.every((candidate) => candidate !== null && candidate.join('\0') === sideKeys[0]!.join('\0')) ? sideKeys[0] : null
  const keyOrders = (key ?? []).map((column) => keyOrder([before, after].flatMap((table) => table ? [table.columns.find((c) => c.name === column)!.type] : [])))
  return {name, before, after, columns, inBefore: new Set(before ? columnNames(before) : []), inAfter: new Set(after ? columnNames(after) : []), key, keyOrders}
}

/** Whether values of this column are read as `column::text` (those compared in text order) or as the type prints them. */
function readsAsText(plan: TablePlan, column: string): boolean {
  if (!plan.key) return true
  const index = plan.key.indexOf(column)
  return index >= 0 && plan.keyOrders[index] === 'text'
}

/**
 * One side's query, in the order the merge compares (see row-order.ts). A value compared in
 * text order is selected as the very `::text` it is sorted by: for some types that cast is
 * not what the type prints (bool: true / t, inet: 10.0.0.1/32 / 10.0.0.1). On a database that
 * is not UTF-8, C order is the order of other bytes: there the text is converted to UTF-8
 * bytes (bytea compares as memcmp) to sort it.
 */
function selectSql(plan: TablePlan, table: TableInfo, encoding: string): string {
  const has = new Set(columnNames(table))
  const list = plan.columns.map((column) => {
    if (!has.has(column)) return 'NULL'
    return readsAsText(plan, column) ? `${quoteIdentifier(column)}::text` : quoteIdentifier(column)
  })
  const textOrder = (column: string): string => encoding === 'UTF8'
    ? `${quoteIdentifier(column)}::text COLLATE "C"`
    : `convert_to(${quoteIdentifier(column)}::text, 'UTF8')`
  let order: string[] = []
  if (plan.key) order = plan.key.map((column, index) => plan.keyOrders[index] === 'text' ? textOrder(column) : quoteIdentifier(column))
  // A table without a key on one side only: no row is compared, so none is sorted.
  else if (plan.before && plan.after) order = plan.columns.filter((column) => has.has(column)).map((column) => `${textOrder(column)} NULLS LAST`)
  const from = `${table.kind === 'r' ? 'ONLY ' : ''}${quoteIdentifier(table.schema)}.${quoteIdentifier(table.name)}`
  return `SELECT ${list.join(', ')} FROM ${from}${order.length > 0 ? ` ORDER BY ${order.join(', ')}` : ''}`
}

function mergePlan(plan: TablePlan): MergePlan {
  if (plan.key) {
    const keyPositions = plan.key.map((column) => plan.columns.indexOf(column))
    return {
      name: plan.name,
      order: rowOrder(keyPositions.map((position, index) => ({position, order: plan.keyOrders[index]}))),
      key: {otherPositions: plan.columns.map((_, position) => position).filter((position) => !keyPositions.includes(position))},
    }
  }

  if (plan.before && plan.after) return {name: plan.name, order: rowOrder(plan.columns.map((_, position) => ({position, order: 'text'}))), key: null}
  return {name: plan.name, order: () => 0, key: null}
}

function publicChange(plan: TablePlan, change: MergedChange): RowChange {
  const values = (row: Row, side: Set<string>, only?: string[]): RowValues => {
    const result: RowValues = {}
    for (const [position, column] of plan.columns.entries()) {
      if (side.has(column) && (!only || only.includes(column))) result[column] = row[position]
    }

    return result
  }

  if (change.op === '+') return {op: '+', row: values(change.row, plan.inAfter)}
  if (change.op === '-') return {op: '-', row: values(change.row, plan.inBefore)}
  return {
    op: '~', key: values(change.before, plan.inBefore, plan.key!), before: values(change.before, plan.inBefore), after: values(change.after, plan.inAfter),
    changedColumns: change.changed.map((position) => plan.columns[position]),
  }
}

// ---- Sessions and cursors

interface Side {
  client: Client
  encoding: string
  version: number
}

/** Rows read and held in fetch buffers, over both sides. */
interface Memory {
  read: number
  held: number
  peak: number
}

interface Sides {
  before: Side
  after: Side
  memory: Memory
}

async function openSides(before: Connection, after: Connection): Promise<Sides> {
  const opened = await Promise.allSettled([openSide(before), openSide(after)])
  const failed = opened.find((result) => result.status === 'rejected')
  if (failed) {
    // The failure to connect is the one to report, not how the other session ended.
    await Promise.all(opened.map(async (result) => result.status === 'fulfilled' ? result.value.client.end().catch(() => undefined) : undefined))
    throw failed.reason
  }

  const [first, second] = opened.map((result) => (result as PromiseFulfilledResult<Side>).value)
  return {before: first, after: second, memory: {read: 0, held: 0, peak: 0}}
}

/** Ends both sessions (their read-only transactions end with them). */
async function closeSides(sides: Sides): Promise<void> {
  await Promise.all([sides.before.client.end(), sides.after.client.end()])
}

/** Every value as the server's text, or null: no value is parsed into a JS type. */
const asText = (value: string): string => value

async function openSide(connection: Connection): Promise<Side> {
  const client = await newClient({
    host: connection.host, port: Number(connection.port), user: connection.user, database: connection.dbname,
    types: {getTypeParser: (() => asText) as never},
  })
  try {
    await client.connect()
    await client.query(SESSION)
    const {rows} = await client.query<Row>({rowMode: 'array', text: "select current_setting('server_encoding'), current_setting('server_version_num')"})
    return {client, encoding: rows[0][0]!, version: Number(rows[0][1])}
  } catch (error) {
    // The connection's own failure is the one to report.
    await client.end().catch(() => undefined)
    throw error
  }
}

const NO_ROWS: BatchSource = {next: async () => []}

/** The changes of one table; its cursors are closed when the caller stops, also early or on failure. */
async function* tableChanges(sides: Sides, plan: TablePlan, fetchSize: number): AsyncGenerator<MergedChange> {
  const cursors: Cursor[] = []
  let failed = false
  try {
    const open = async (side: Side, table: TableInfo | undefined): Promise<BatchSource> => {
      if (!table) return NO_ROWS
      const cursor = await Cursor.open(side.client, selectSql(plan, table, side.encoding), fetchSize, sides.memory)
      cursors.push(cursor)
      return cursor
    }

    const before = await open(sides.before, plan.before)
    const after = await open(sides.after, plan.after)
    yield* mergeSorted(before, after, mergePlan(plan))
  } catch (error) {
    failed = true
    throw error
  } finally {
    for (const cursor of cursors) {
      // After a failure the transaction may be aborted and CLOSE refused: the first error is the
      // one to report, and ending the session (closeSides) drops the cursor anyway.
      if (failed) await cursor.close().catch(() => undefined)
      else await cursor.close()
    }
  }
}

/**
 * A server-side cursor read FETCH by FETCH. While the merge works on one batch the next one is
 * already on its way, so at most two batches of a side are held.
 */
class Cursor implements BatchSource {
  private pending: Promise<Row[]> | undefined
  private ended = false
  private held = 0

  private constructor(private readonly client: Client, private readonly fetchSize: number, private readonly memory: Memory) {}

  static async open(client: Client, sql: string, fetchSize: number, memory: Memory): Promise<Cursor> {
    await client.query(`DECLARE ${CURSOR} NO SCROLL CURSOR FOR ${sql}`)
    return new Cursor(client, fetchSize, memory)
  }

  async next(): Promise<Row[]> {
    this.release()
    if (this.ended) return []
    const rows = await (this.pending ?? this.fetch())
    this.pending = undefined
    this.held = rows.length
    if (rows.length < this.fetchSize) this.ended = true
    else this.pending = this.fetch()
    return rows
  }

  async close(): Promise<void> {
    this.release()
    const pending = this.pending
    this.pending = undefined
    if (pending) this.memory.held -= (await pending).length
    await this.client.query(`CLOSE ${CURSOR}`)
  }

  private fetch(): Promise<Row[]> {
    const fetched = this.client.query<Row>({rowMode: 'array', text: `FETCH FORWARD ${this.fetchSize} FROM ${CURSOR}`}).then(({rows}) => {
      this.memory.read += rows.length
      this.memory.held += rows.length
      this.memory.peak = Math.max(this.memory.peak, this.memory.held)
      return rows
    })
    // Awaited by next() or close(); this only keeps a failure nobody waits for yet from being an unhandled rejection.
    fetched.catch(() => undefined)
    return fetched
  }

  /** The merge is done with the batch it had. */
  private release(): void {
    this.memory.held -= this.held
    this.held = 0
  }
}

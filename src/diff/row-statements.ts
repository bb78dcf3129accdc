/**
 * SQL text of the statements that replay a data diff. Every value is written as a quoted
 * literal of its text form (or NULL): an untyped literal takes the type of the column it meets,
 * so one form fits every type that has an input function.
 */

export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}

/**
 * A string literal that means the same whatever standard_conforming_strings is: with a
 * backslash in it, the escape form E'...' with every backslash doubled (as libpq's
 * PQescapeLiteral writes it).
 */
export function quoteLiteral(value: string | null): string {
  if (value === null) return 'NULL'
  const quoted = value.replaceAll("'", "''")
  return value.includes('\\') ? `E'${quoted.replaceAll('\\', '\\\\')}'` : `'${quoted}'`
}

/** Where the statements write: a table and whether its inheritance children are left alone. */
export interface StatementTarget {
  schema: string
  name: string
  /**
   * An ordinary table: UPDATE and DELETE take ONLY, since rows of tables that inherit from it
   * are diffed (and replayed) as those tables' own. A partitioned table's rows are in its
   * partitions, which it must reach.
   */
  only: boolean
}

export type Values = Record<string, string | null>

function tableName(target: StatementTarget, forUpdate: boolean): string {
  return `${forUpdate && target.only ? 'ONLY ' : ''}${quoteIdentifier(target.schema)}.${quoteIdentifier(target.name)}`
}

function matchKey(key: Values): string {
  return Object.entries(key).map(([column, value]) => `${quoteIdentifier(column)} = ${quoteLiteral(value)}`).join(' AND ')
}

/** `overridingSystemValue`: the row sets a GENERATED ALWAYS identity column. */
export function insertStatement(target: StatementTarget, row: Values, overridingSystemValue = false): string {
  const columns = Object.keys(row)
  if (columns.length === 0) return `INSERT INTO ${tableName(target, false)} DEFAULT VALUES;`
  return `INSERT INTO ${tableName(target, false)} (${columns.map(quoteIdentifier).join(', ')})${overridingSystemValue ? ' OVERRIDING SYSTEM VALUE' : ''} VALUES (${columns.map((column) => quoteLiteral(row[column])).join(', ')});`
}

export function updateStatement(target: StatementTarget, key: Values, set: Values): string {
  const assignments = Object.entries(set).map(([column, value]) => `${quoteIdentifier(column)} = ${quoteLiteral(value)}`)
  return `UPDATE ${tableName(target, true)} SET ${assignments.join(', ')} WHERE ${matchKey(key)};`
}

export function deleteByKeyStatement(target: StatementTarget, key: Values): string {
  return `DELETE FROM ${tableName(target, true)} WHERE ${matchKey(key)};`
}

/**
 * Deletes `count` of the rows equal to `row` in a table without a primary key (duplicates are
 * allowed there, and only some of them may go). The values came from `column::text`, so the
 * columns are compared as text: exact, NULL-aware, and it works for types without an equality
 * operator (json, point) and for a composite value of NULL fields, which `IS NULL` would take
 * for NULL. A partitioned table's rows are told apart by (tableoid, ctid): a ctid is unique
 * only within one partition.
 */
export function deleteMatchingStatement(target: StatementTarget, row: Values, count: number): string {
  const conditions = Object.entries(row).map(([column, value]) => `${quoteIdentifier(column)}::text IS NOT DISTINCT FROM ${quoteLiteral(value)}`)
  const where = conditions.length > 0 ? ` WHERE ${conditions.join(' AND ')}` : ''
  const locator = target.only ? 'ctid' : 'tableoid, ctid'
  const table = tableName(target, true)
  return `DELETE FROM ${table} WHERE (${locator}) IN (SELECT ${locator} FROM ${table}${where} LIMIT ${count});`
}

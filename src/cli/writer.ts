/**
 * The one way a command prints its result (STYLE.md, after neonctl's writer): the command hands
 * over its data and declares the fields to show, and the writer makes a table, a `key: value`
 * layout or a sentence for a person. Under --json it prints nothing itself and gives the data
 * back: the command returns it, and BaseCommand prints it as the one JSON document on stdout.
 * The human view is therefore made from the same value that --json prints.
 */

/** What a field's text may be: a value, nothing (the line is left out; a cell shows '-'), or a nested block of lines. */
export type FieldText = string | string[] | undefined

/** One declared field of a result: a key of the data, how it is labelled and how its value reads. */
export type FieldSpec<T, K extends keyof T> = {
  key: K
  /** Column header or layout label; default: the key (upper-case for a table column). */
  label?: string | ((item: T) => string)
  /** The text of the value; default: strings as they are, numbers, lists joined by ", ", '-' for none. */
  format?: (value: T[K], item: T) => FieldText
  /** In a layout: the value is a map, and each of these entries becomes its own `key: value` line. */
  entries?: (value: T[K], item: T) => Array<[string, string]>
}

/** A field is a key of the data (so a typo does not compile), or a key with its label and format. */
export type Field<T> = (keyof T & string) | {[K in keyof T & string]: FieldSpec<T, K>}[keyof T & string]

export interface TableOptions<Row> {
  fields: Array<Field<Row>>
  /** Lines printed after the table (footnotes, rows that could not be read). */
  notes?: (rows: Row[]) => string[]
}

export interface LayoutOptions<T> {
  /** The first line, followed by a colon: what is shown (a pg's or a storage's name). */
  title: (item: T) => string
  fields: Array<Field<T>>
}

export interface WriterProps {
  json: boolean
  /** Where the result goes (stdout); a parameter so that tests can capture it. */
  out?: (text: string | Uint8Array) => void
  /** Where lines for a person that are not the result go (stderr). */
  err?: (text: string) => void
}

export class Writer {
  private readonly out: (text: string | Uint8Array) => void
  private readonly err: (text: string) => void

  constructor(private readonly props: WriterProps) {
    this.out = props.out ?? ((text) => process.stdout.write(text))
    this.err = props.err ?? ((text) => process.stderr.write(text))
  }

  /** Rows as aligned columns under a header (`pg list`, `snapshot list`, ...). */
  table<Row>(rows: Row[], options: TableOptions<Row>): Row[] {
    if (!this.props.json) this.line([renderRows(rows, options.fields), ...(options.notes?.(rows) ?? [])].join('\n'))
    return rows
  }

  /** One item as `title:` and then `  label: value` lines (`pg show`, `storage show`, ...). */
  layout<T>(item: T, options: LayoutOptions<T>): T {
    if (!this.props.json) this.line(renderLayout(item, options))
    return item
  }

  /** A result told in one sentence (`Started postgres on localhost:5432`); empty text prints nothing. */
  message<T>(data: T, text: (data: T) => string): T {
    const line = this.props.json ? '' : text(data)
    if (line) this.line(line)
    return data
  }

  /**
   * A line the user needs while the command still runs (the URL `snapshot recv` waits on): on
   * stdout for a person, on stderr under --json, because stdout then carries one document only.
   */
  announce(text: string): void {
    if (this.props.json) this.err(`${text}\n`)
    else this.line(text)
  }

  /** Output that streams after the result (`pg logs -f`), as it comes; nothing under --json. */
  append(chunk: string | Uint8Array): void {
    if (!this.props.json) this.out(chunk)
  }

  /** A line for a person on stderr (a summary when stdout carries data, a refused request). */
  note(text: string): void {
    this.err(`${text}\n`)
  }

  private line(text: string): void {
    this.out(`${text}\n`)
  }
}

export function writer(props: WriterProps): Writer {
  return new Writer(props)
}

type AnySpec<T> = {key: keyof T & string; label?: string | ((item: T) => string); format?: (value: unknown, item: T) => FieldText; entries?: (value: unknown, item: T) => Array<[string, string]>}

function spec<T>(field: Field<T>): AnySpec<T> {
  return (typeof field === 'string' ? {key: field} : field) as AnySpec<T>
}

function labelOf<T>(field: AnySpec<T>, item: T | undefined, fallback: string): string {
  if (typeof field.label === 'function') return item === undefined ? fallback : field.label(item)
  return field.label ?? fallback
}

/** The default text of a value: what a person reads in a cell or after a label. */
export function plainText(value: unknown): FieldText {
  if (value === undefined || value === null) return undefined
  if (Array.isArray(value)) return value.length === 0 ? undefined : value.map(String).join(', ')
  if (typeof value === 'boolean') return value ? 'yes' : 'no'
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
    return entries.length === 0 ? undefined : entries.map(([key, item]) => `${key}=${String(item)}`).join(',')
  }

  return String(value)
}

/** A declared format decides for itself (undefined leaves the line out); a plain empty value reads '-'. */
function textOf<T>(field: AnySpec<T>, item: T): FieldText {
  const value = item[field.key]
  return field.format ? field.format(value, item) : plainText(value) ?? '-'
}

/** Aligned columns, a header row first; the last column is not padded. */
function renderTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((header, i) => Math.max(header.length, ...rows.map((row) => (row[i] ?? '').length)))
  const line = (cells: string[]) => cells.map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ').trimEnd()
  return [line(headers), ...rows.map((row) => line(row))].join('\n')
}

export function renderRows<Row>(rows: Row[], fields: Array<Field<Row>>): string {
  const specs = fields.map((field) => spec(field))
  return renderTable(
    specs.map((field) => labelOf(field, undefined, field.key.toUpperCase())),
    rows.map((row) => specs.map((field) => {
      const text = textOf(field, row)
      return text === undefined || text === '' ? '-' : Array.isArray(text) ? text.join(', ') : text
    })),
  )
}

export function renderLayout<T>(item: T, options: LayoutOptions<T>): string {
  const lines = [`${options.title(item)}:`]
  for (const field of options.fields.map((each) => spec(each))) {
    if (field.entries) {
      for (const [key, value] of field.entries(item[field.key], item)) lines.push(`  ${key}: ${value}`)
      continue
    }

    const label = labelOf(field, item, field.key)
    const text = textOf(field, item)
    if (text === undefined) continue
    if (Array.isArray(text)) lines.push(`  ${label}:`, ...text.map((line) => `    ${line}`))
    else lines.push(label ? `  ${label}: ${text}` : `  ${text}`)
  }

  return lines.join('\n')
}

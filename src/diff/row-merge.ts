import type {Row} from './row-order.js'

/** Rows in order, a batch at a time; an empty batch is the end. */
export interface BatchSource {
  next(): Promise<Row[]>
}

/** A difference between two sorted row streams, rows as they came (both sides in one column layout). */
export type MergedChange =
  | {op: '+'; row: Row}
  | {op: '-'; row: Row}
  | {op: '~'; before: Row; after: Row; changed: number[]}

/**
 * How two streams are merged. With `key`, rows of equal key are one row, compared on the other
 * positions; without, the streams are multisets of whole rows (`order` then covers every
 * position) and equal rows cancel out one for one, so duplicates count.
 */
export interface MergePlan {
  order: (a: Row, b: Row) => number
  key: {otherPositions: number[]} | null
  /** Names the table in the error raised when a stream is not in `order`. */
  name: string
}

/** One side of the merge: the batch being read and where in it. */
class Reader {
  rows: Row[] = []
  index = 0
  ended = false
  private last: Row | undefined

  constructor(private readonly source: BatchSource, private readonly side: string, private readonly plan: MergePlan) {}

  async fill(): Promise<void> {
    this.rows = await this.source.next()
    this.index = 0
    if (this.rows.length === 0) this.ended = true
  }

  /**
   * Moves past the current row. Checks that the server sent rows in our order: if its order and
   * ours ever disagreed (a collation, an encoding), the merge would report wrong rows without
   * a sign; this way it stops.
   */
  advance(): void {
    const row = this.rows[this.index++]
    if (this.last !== undefined) {
      const step = this.plan.order(this.last, row)
      if (step > 0 || (step === 0 && this.plan.key)) {
        throw new Error(`Rows of ${this.plan.name} came from the ${this.side} database ${step === 0 ? 'with a repeated key' : 'out of order'}: ${JSON.stringify(this.last)} then ${JSON.stringify(row)}`)
      }
    }

    this.last = row
  }
}

/** Merges two streams sorted by `plan.order` into their differences, in that order. */
export async function* mergeSorted(before: BatchSource, after: BatchSource, plan: MergePlan): AsyncGenerator<MergedChange> {
  const left = new Reader(before, 'before', plan)
  const right = new Reader(after, 'after', plan)
  for (;;) {
    if (left.index === left.rows.length && !left.ended) await left.fill()
    if (right.index === right.rows.length && !right.ended) await right.fill()
    const x = left.rows[left.index]
    const y = right.rows[right.index]
    if (x === undefined && y === undefined) return
    const step = x === undefined ? 1 : (y === undefined ? -1 : plan.order(x, y))
    if (step < 0) {
      left.advance()
      yield {op: '-', row: x}
    } else if (step > 0) {
      right.advance()
      yield {op: '+', row: y}
    } else {
      left.advance()
      right.advance()
      if (plan.key) {
        // Text against text, NULL only equal to NULL. A column only one side has is NULL on the
        // other (see the layout in rows.ts), so it differs exactly when this row has a value there.
        const changed = plan.key.otherPositions.filter((position) => x[position] !== y[position])
        if (changed.length > 0) yield {op: '~', before: x, after: y, changed}
      }
    }
  }
}

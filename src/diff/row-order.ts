/**
 * The orders in which the data diff reads rows, and their exact JavaScript twins. The merge of
 * two sorted streams is only right if the comparison here agrees with the server's ORDER BY on
 * every pair of values: a single disagreement makes one row look removed and added. So only
 * orders JS can reproduce exactly are used, whatever the database's collation:
 *
 * - integer keys (int2/int4/int8) are sorted by the column itself, which lets the server walk
 *   the primary key's index instead of sorting the table, and compared as integers (BigInt when
 *   a Number could round);
 * - uuid keys are also sorted natively (index scan): uuid order is the order of its 16 bytes,
 *   which is the order of its fixed-width lower-case hex text, so the text comparison below
 *   reproduces it;
 * - every other value is sorted as its text in the "C" collation, which compares the bytes of
 *   the UTF-8 text (memcmp, shorter first on a common prefix), whatever the database's
 *   default collation (ICU en-US puts "zoe" before "Zoë" before "Zoo", C does not).
 */

/** A row as the server sends it with every type parser off: each value's text, or null. */
export type Row = (string | null)[]

export type ColumnOrder = 'integer' | 'uuid' | 'text'

const INTEGER_TYPES = new Set(['int2', 'int4', 'int8'])

/** How a key column of these types (one per side that has the table) is sorted and compared. */
export function keyOrder(types: string[]): ColumnOrder {
  if (types.every((type) => INTEGER_TYPES.has(type))) return 'integer'
  if (types.every((type) => type === 'uuid')) return 'uuid'
  return 'text'
}

/**
 * Compares two strings as Buffer.compare compares their UTF-8 bytes (what COLLATE "C" does on
 * a UTF-8 database), without encoding them. UTF-8 byte order is code point order; JavaScript's
 * `<` compares UTF-16 units, which differs only where a surrogate (half of a code point above
 * U+FFFF) meets a unit in U+E000-U+FFFF: "\uFB00" < "😀" in code points, the other way round
 * in units. Shifting those two ranges past each other fixes that.
 */
export function compareUtf8(a: string, b: string): number {
  const length = Math.min(a.length, b.length)
  for (let index = 0; index < length; index++) {
    let x = a.charCodeAt(index)
    let y = b.charCodeAt(index)
    if (x === y) continue
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000
    }

    return x - y
  }

  return a.length - b.length
}

/** Compares two integers in their text form (as int8 prints them: no sign for positives, no leading zeros). */
export function compareIntegerText(a: string, b: string): number {
  // 15 characters (sign included) stay below 2^53, where a Number is exact.
  if (a.length < 16 && b.length < 16) return Number(a) - Number(b)
  const x = BigInt(a)
  const y = BigInt(b)
  return x < y ? -1 : (x > y ? 1 : 0)
}

export interface OrderedColumn {
  /** Index of the value in a Row. */
  position: number
  order: ColumnOrder
}

/**
 * The lexicographic order of rows on these columns, NULL after every value (ORDER BY's default
 * NULLS LAST). Key columns never hold NULL; rows of a table without a primary key may.
 */
export function rowOrder(columns: OrderedColumn[]): (a: Row, b: Row) => number {
  const compares = columns.map(({position, order}) => ({position, compare: order === 'integer' ? compareIntegerText : compareUtf8}))
  return (a, b) => {
    for (const {position, compare} of compares) {
      const x = a[position]
      const y = b[position]
      if (x === y) continue
      if (x === null) return 1
      if (y === null) return -1
      const result = compare(x, y)
      if (result !== 0) return result
    }

    return 0
  }
}

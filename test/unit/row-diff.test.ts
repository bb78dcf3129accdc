import {type BatchSource, type MergePlan, type MergedChange, mergeSorted} from '../../src/diff/row-merge.js'
import {type Row, compareIntegerText, compareUtf8, keyOrder, rowOrder} from '../../src/diff/row-order.js'
import {deleteByKeyStatement, deleteMatchingStatement, insertStatement, quoteIdentifier, quoteLiteral, updateStatement} from '../../src/diff/row-statements.js'
import {type RowDiffResult, renderRowDiff, renderValue} from '../../src/diff/rows.js'

/** A small deterministic generator (mulberry32): the same strings on every run. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

const sign = (n: number) => Math.sign(n)

describe('compareUtf8', () => {
  // Code points from each range where UTF-16 and UTF-8 orders could part: ASCII, Latin-1, CJK,
  // the private use area and U+FFxx (above the surrogates in UTF-16), and astral planes.
  const pools = [[0x41, 0x7a], [0xc0, 0xff], [0x4e00, 0x4e10], [0xe000, 0xe010], [0xfb00, 0xfb06], [0xfff0, 0xfffd], [0x1f600, 0x1f610], [0x10fff0, 0x10ffff]]
  const next = random(42)
  const text = () => {
    let result = ''
    const length = Math.floor(next() * 5)
    for (let i = 0; i < length; i++) {
      const [low, high] = pools[Math.floor(next() * pools.length)]
      result += String.fromCodePoint(low + Math.floor(next() * (high - low + 1)))
    }

    return result
  }

  test('agrees with Buffer.compare of the UTF-8 bytes', () => {
    const strings = Array.from({length: 400}, text)
    const disagreements: string[][] = []
    for (const a of strings) {
      for (const b of strings) {
        if (sign(compareUtf8(a, b)) !== sign(Buffer.compare(Buffer.from(a), Buffer.from(b)))) disagreements.push([a, b])
      }
    }

    expect(disagreements).toEqual([])
  })

  test('puts U+FB00 before an emoji, where UTF-16 order puts it after', () => {
    expect('\uFB00' > '😀').toBe(true)
    expect(compareUtf8('\uFB00', '😀')).toBeLessThan(0)
    expect(compareUtf8('😀', '😀😀')).toBeLessThan(0)
    expect(compareUtf8('Zoë', 'zoe')).toBeLessThan(0)
    expect(compareUtf8('abc', 'abc')).toBe(0)
    expect(compareUtf8('', 'a')).toBeLessThan(0)
  })
})

describe('compareIntegerText', () => {
  test('orders as integers, exactly beyond 2^53', () => {
    const values = ['-9223372036854775808', '-9007199254740993', '-9007199254740992', '-10', '-2', '0', '2', '10', '999999999999999',
      '1000000000000000', '9007199254740992', '9007199254740993', '9223372036854775807']
    for (const [i, a] of values.entries()) {
      for (const [j, b] of values.entries()) expect([a, b, sign(compareIntegerText(a, b))]).toEqual([a, b, sign(i - j)])
    }
  })
})

describe('keyOrder and rowOrder', () => {
  test('integer only when every side has an integer type', () => {
    expect(keyOrder(['int4'])).toBe('integer')
    expect(keyOrder(['int4', 'int8'])).toBe('integer')
    expect(keyOrder(['int4', 'text'])).toBe('text')
    expect(keyOrder(['uuid', 'uuid'])).toBe('uuid')
    expect(keyOrder(['numeric'])).toBe('text')
  })

  test('composite keys compare lexicographically; NULL sorts last', () => {
    const order = rowOrder([{position: 1, order: 'integer'}, {position: 0, order: 'text'}])
    const rows: Row[] = [['b', '10'], ['a', '2'], [null, '2'], ['b', '2'], ['a', '-1']]
    expect(rows.sort(order)).toEqual([['a', '-1'], ['a', '2'], ['b', '2'], [null, '2'], ['b', '10']])
    expect(order(['a', '2'], ['a', '2'])).toBe(0)
  })
})

describe('SQL text', () => {
  test('quotes identifiers and literals', () => {
    expect(quoteIdentifier('Tab "le"')).toBe('"Tab ""le"""')
    expect(quoteLiteral(null)).toBe('NULL')
    expect(quoteLiteral("it's")).toBe("'it''s'")
    expect(quoteLiteral('back\\slash \'q\'')).toBe("E'back\\\\slash ''q'''")
    expect(quoteLiteral('')).toBe("''")
    expect(quoteLiteral('NULL')).toBe("'NULL'")
  })

  test('writes the statements of a change', () => {
    const target = {schema: 'public', name: 'a"b', only: true}
    expect(insertStatement(target, {id: '1', v: null}, true)).toBe('INSERT INTO "public"."a""b" ("id", "v") OVERRIDING SYSTEM VALUE VALUES (\'1\', NULL);')
    expect(insertStatement(target, {})).toBe('INSERT INTO "public"."a""b" DEFAULT VALUES;')
    expect(updateStatement(target, {id: '1', k: 'x'}, {v: "o'k"})).toBe('UPDATE ONLY "public"."a""b" SET "v" = \'o\'\'k\' WHERE "id" = \'1\' AND "k" = \'x\';')
    expect(deleteByKeyStatement({...target, only: false}, {id: '1'})).toBe('DELETE FROM "public"."a""b" WHERE "id" = \'1\';')
    expect(deleteMatchingStatement(target, {v: 'x', w: null}, 2))
      .toBe('DELETE FROM ONLY "public"."a""b" WHERE (ctid) IN (SELECT ctid FROM ONLY "public"."a""b" WHERE "v"::text IS NOT DISTINCT FROM \'x\' AND "w"::text IS NOT DISTINCT FROM NULL LIMIT 2);')
    expect(deleteMatchingStatement({...target, only: false}, {v: 'x'}, 1)).toContain('WHERE (tableoid, ctid) IN (SELECT tableoid, ctid FROM "public"')
  })
})

/** Rows handed out `size` at a time, as a cursor does. */
function batches(rows: Row[], size: number): BatchSource {
  let index = 0
  return {
    async next() {
      const batch = rows.slice(index, index + size)
      index += batch.length
      return batch
    },
  }
}

async function merge(before: Row[], after: Row[], plan: MergePlan, size = 2): Promise<MergedChange[]> {
  const changes: MergedChange[] = []
  for await (const change of mergeSorted(batches(before, size), batches(after, size), plan)) changes.push(change)
  return changes
}

describe('mergeSorted', () => {
  // Layout: id (integer key), name, email (only in after: NULL in before's rows).
  const keyed: MergePlan = {name: 't', order: rowOrder([{position: 0, order: 'integer'}]), key: {otherPositions: [1, 2]}}
  const before: Row[] = [['1', 'a', null], ['2', 'b', null], ['3', 'c', null], ['10', 'j', null]]
  const after: Row[] = [['1', 'a', null], ['2', 'B', null], ['3', 'c', 'c@x'], ['4', 'd', null], ['11', 'k', null]]

  test.each([1, 2, 3, 100])('finds added, removed and changed rows in key order (batches of %i)', async (size) => {
    expect(await merge(before, after, keyed, size)).toEqual([
      {op: '~', before: ['2', 'b', null], after: ['2', 'B', null], changed: [1]},
      {op: '~', before: ['3', 'c', null], after: ['3', 'c', 'c@x'], changed: [2]},
      {op: '+', row: ['4', 'd', null]},
      {op: '-', row: ['10', 'j', null]},
      {op: '+', row: ['11', 'k', null]},
    ])
  })

  test('one side empty: everything added or removed', async () => {
    expect(await merge([], after.slice(0, 2), keyed)).toEqual([{op: '+', row: after[0]}, {op: '+', row: after[1]}])
    expect(await merge(before.slice(0, 1), [], keyed)).toEqual([{op: '-', row: before[0]}])
    expect(await merge([], [], keyed)).toEqual([])
  })

  test('a multiset cancels equal rows one for one', async () => {
    const plan: MergePlan = {name: 't', order: rowOrder([{position: 0, order: 'text'}, {position: 1, order: 'text'}]), key: null}
    const changes = await merge(
      [['a', '1'], ['a', '1'], ['a', '1'], ['b', '2'], ['c', null], ['c', null]],
      [['a', '1'], ['b', '2'], ['b', '2'], ['c', null], ['c', null], ['d', null]], plan)
    expect(changes).toEqual([{op: '-', row: ['a', '1']}, {op: '-', row: ['a', '1']}, {op: '+', row: ['b', '2']}, {op: '+', row: ['d', null]}])
  })

  test('stops when a side is not in the merge order or repeats a key', async () => {
    await expect(merge([['2', 'x', null], ['10', 'y', null], ['9', 'z', null]], [], keyed)).rejects.toThrow('Rows of t came from the before database out of order: ["10","y",null] then ["9","z",null]')
    await expect(merge([], [['2', 'x', null], ['2', 'y', null]], keyed)).rejects.toThrow('with a repeated key')
  })
})

describe('renderRowDiff', () => {
  const result: RowDiffResult = {
    tablesCompared: 3, rowsCompared: 10, peakRowsHeld: 10,
    tables: [
      {
        name: 'public.accounts', key: ['id'], added: 1, removed: 1, changed: 2, columns: {added: ['email'], removed: []},
        rows: [
          {op: '~', key: {id: '1'}, before: {id: '1', name: 'a b'}, after: {id: '1', name: 'a "b"', email: 'x@y'}, changedColumns: ['name', 'email']},
          {op: '-', row: {id: '2', name: 'NULL'}},
        ],
      },
      {name: 'public.fresh', key: null, added: 1, removed: 0, changed: 0, columns: {added: [], removed: []}, only: 'after', rows: [{op: '+', row: {v: 'line\nbreak'}}]},
    ],
  }

  test('headers, counts, rows and what was left out', () => {
    expect(renderRowDiff(result)).toBe([
      'diff --zenith a/public.accounts b/public.accounts',
      '--- a/public.accounts',
      '+++ b/public.accounts',
      '@@ 1 added, 1 removed, 2 changed | key: id | new columns: email @@',
      '< id=1 name="a b" email=NULL',
      '> id=1 name="a \\"b\\"" email=x@y',
      '- id=2 name="NULL"',
      '  ... 2 more not shown (2 of 4)',
      '',
      'diff --zenith a/public.fresh b/public.fresh',
      '--- /dev/null',
      '+++ b/public.fresh',
      '@@ new table | 1 added, 0 removed | no primary key: rows compared as a multiset @@',
      '+ v="line\\nbreak"',
    ].join('\n'))
    expect(renderRowDiff({tables: [], tablesCompared: 1, rowsCompared: 0, peakRowsHeld: 0})).toBe('No data differences (1 table compared).')
  })

  test('values are bare only when they cannot be misread', () => {
    expect(renderValue('2024-01-01')).toBe('2024-01-01')
    expect(renderValue('')).toBe('""')
    expect(renderValue(null)).toBe('NULL')
    expect(renderValue('NULL')).toBe('"NULL"')
    expect(renderValue('a=b')).toBe('"a=b"')
  })
})

import {parseFilefrag, sharedRanges} from '../../src/diff/extents.js'
import {PAGE_SIZE, countChanged, unsharedRanges} from '../../src/diff/pages.js'
import {compareObjects, splitDump} from '../../src/diff/schema.js'
import {identify} from '../../src/diff/size.js'

// Real `filefrag -v -e -b512` output on btrfs: `a`, and `b`, a reflink copy of it with one 8 KiB
// page rewritten (blocks 160-175).
const FILEFRAG = `Filesystem type is: 9123683e
File size of /mnt/a is 524288 (1024 blocks of 512 bytes)
 ext:     logical_offset:        physical_offset: length:   expected: flags:
   0:        0..    1023:      26624..     27647:   1024:             last,shared,eof
/mnt/a: 1 extent found
File size of /mnt/b is 524288 (1024 blocks of 512 bytes)
 ext:     logical_offset:        physical_offset: length:   expected: flags:
   0:        0..     159:      26624..     26783:    160:             shared
   1:      160..     175:     124928..    124943:     16:      26784:
   2:      176..    1023:      26800..     27647:    848:     124944: last,shared,eof
/mnt/b: 3 extents found
File size of /mnt/c is 32768 (64 blocks of 512 bytes)
 ext:     logical_offset:        physical_offset: length:   expected: flags:
   0:        0..      63:          0..         0:      0:             last,unknown_loc,delalloc,eof
/mnt/c: 1 extent found
`

describe('extents', () => {
  const parsed = parseFilefrag(FILEFRAG)

  test('filefrag output is read per file, in bytes', () => {
    expect(parsed.get('/mnt/a')).toEqual([{logical: 0, physical: 26624 * 512, length: 1024 * 512, encoded: false}])
    expect(parsed.get('/mnt/b')).toHaveLength(3)
    // Not placed on disk yet: nothing can be known shared, so the file is read.
    expect(parsed.get('/mnt/c')).toBeUndefined()
  })

  test('pages mapped to the same blocks are shared; the rewritten page is not', () => {
    const shared = sharedRanges(parsed.get('/mnt/a')!, parsed.get('/mnt/b')!, PAGE_SIZE)
    expect(shared).toEqual([[0, 160 * 512], [176 * 512, 1024 * 512]])
    expect(unsharedRanges(524_288, shared)).toEqual([[160 * 512, 176 * 512]])
  })

  test('only whole pages count as shared, and compressed extents only when referenced alike', () => {
    const a = [{logical: 0, physical: 4096, length: 12_288, encoded: false}]
    const b = [{logical: 0, physical: 4096, length: 12_288, encoded: false}]
    expect(sharedRanges(a, b, PAGE_SIZE)).toEqual([[0, 8192]])
    const compressed = {logical: 0, physical: 1 << 20, length: 131_072, encoded: true}
    expect(sharedRanges([compressed], [compressed], PAGE_SIZE)).toEqual([[0, 131_072]])
    expect(sharedRanges([compressed], [{...compressed, logical: 8192}], PAGE_SIZE)).toEqual([])
  })
})

describe('pages', () => {
  test('changed bytes count whole pages, and pages on one side only', () => {
    const a = Buffer.alloc(3 * PAGE_SIZE, 1)
    const b = Buffer.from(a)
    b[PAGE_SIZE + 10] = 2
    expect(countChanged(a, b, a.length)).toBe(PAGE_SIZE)
    expect(countChanged(a, a.subarray(0, PAGE_SIZE), a.length)).toBe(2 * PAGE_SIZE)
    expect(countChanged(Buffer.from('abc'), Buffer.from('abd'), 3)).toBe(3)
  })
})

describe('file identity', () => {
  const catalog = {files: new Map([['base/5/16384', {name: 'public.items', kind: 'table' as const}]]), databases: ['postgres']}
  test('relation files by node, fork and segment; other files by folder', () => {
    expect(identify('base/5/16384', catalog)).toEqual({name: 'public.items', kind: 'table', part: ''})
    expect(identify('base/5/16384_fsm', catalog)).toEqual({name: 'public.items', kind: 'table', part: '_fsm'})
    expect(identify('base/5/16384.2', catalog)).toEqual({name: 'public.items', kind: 'table', part: '.2'})
    expect(identify('base/1/1259', catalog)).toEqual({name: 'base/1/1259', kind: 'other'})
    expect(identify('pg_wal/000000010000000000000001', catalog)).toEqual({name: 'pg_wal/', kind: 'wal'})
    expect(identify('base/5/PG_VERSION', catalog)).toEqual({name: 'base/', kind: 'other'})
    expect(identify('postgresql.auto.conf', catalog)).toEqual({name: 'postgresql.auto.conf', kind: 'other'})
  })
})

const DUMP = `--
-- PostgreSQL database dump
--
\\restrict a1b2c3

SET statement_timeout = 0;

--
-- Name: items; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.items (
    id integer NOT NULL
);


ALTER TABLE public.items OWNER TO postgres;

--
-- Name: items items_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.items
    ADD CONSTRAINT items_pkey PRIMARY KEY (id);

\\unrestrict a1b2c3
`

describe('schema objects', () => {
  test('a dump is cut into objects without its preamble, comments, blank lines or restrict keys', () => {
    expect(splitDump(DUMP, 'postgres')).toEqual([
      {object: 'TABLE public.items', type: 'TABLE', database: 'postgres', definition: 'CREATE TABLE public.items (\n    id integer NOT NULL\n);\nALTER TABLE public.items OWNER TO postgres;'},
      {object: 'CONSTRAINT public.items items_pkey', type: 'CONSTRAINT', database: 'postgres', definition: 'ALTER TABLE ONLY public.items\n    ADD CONSTRAINT items_pkey PRIMARY KEY (id);'},
    ])
    expect(splitDump(DUMP, 'app')[0].object).toBe('TABLE app:public.items')
  })

  test('objects compare by name: unchanged ones never show', async () => {
    const before = splitDump(DUMP, 'postgres')
    const after = splitDump(DUMP.replace('id integer NOT NULL', 'id integer NOT NULL,\n    extra integer').replace(/--\n-- Name: items items_pkey[\s\S]*?;\n/, ''), 'postgres')
    const changes = await compareObjects(before, after)
    expect(changes.map((change) => [change.object, change.change])).toEqual([['CONSTRAINT public.items items_pkey', 'removed'], ['TABLE public.items', 'changed']])
    expect(changes[1].diff).toContain('+    extra integer')
    expect(changes[1].diff).toContain('-    id integer NOT NULL')
    expect(await compareObjects(before, before)).toEqual([])
  })
})

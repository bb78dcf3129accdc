import {readdir} from 'node:fs/promises'

import {type LoopMount, canMount, mountLoop} from '../helpers/loop.js'
import {TestHome} from '../helpers/zenith.js'

/**
 * `snapshot diff` against real postgres on the three kinds of storage: plain folders (copy),
 * btrfs (subvolume snapshots) and XFS (reflink copies). Two snapshots differ by known updates,
 * deletes and inserts, a new column, a new index, and changes to a table without a primary
 * key; a third table is untouched.
 */
interface Setup {
  fs: 'ext4' | 'btrfs' | 'xfs'
  storage: string
  thin: boolean
}

const setups: Setup[] = [
  {fs: 'ext4', storage: 'local', thin: false},
  {fs: 'btrfs', storage: 'fast', thin: true},
  {fs: 'xfs', storage: 'xfs', thin: true},
]

const FIXTURE = `
  create table items (id int primary key, note text);
  insert into items select g, md5(g::text) from generate_series(1, 5000) g;
  create table untouched (id int primary key, pad text);
  insert into untouched select g, repeat('u', 100) from generate_series(1, 2000) g;
  create table tally (a int, b text);
  insert into tally values (1, 'one'), (1, 'one'), (2, 'two'), (3, 'three')`

const CHANGES = `
  update items set note = 'changed' where id <= 30;
  delete from items where id between 101 and 110;
  insert into items select g, 'new' from generate_series(6001, 6007) g;
  alter table items add column extra int;
  create index items_note_idx on items (note);
  insert into tally values (1, 'one');
  delete from tally where a = 2`

describe.each(setups)('snapshot diff on $fs', ({fs, storage}) => {
  let home: TestHome
  let mount: LoopMount | undefined
  // Chosen before the run, so that a machine without root counts these as skipped.
  const testOnFs = fs === 'ext4' || canMount ? test : test.skip
  const firstPort = 8900 + setups.findIndex((setup) => setup.fs === fs) * 20

  beforeAll(async () => {
    home = await TestHome.create(firstPort)
    if (fs === 'ext4' || !canMount) return
    mount = await mountLoop(fs, 1200)
    await home.ok(['storage', 'attach', '-t', fs === 'btrfs' ? 'btrfs' : 'local', '-n', storage, '-c', `path=${mount.dir}/zenith`])
  }, 60_000)

  afterAll(async () => {
    await home?.destroy()
    await mount?.unmount()
  }, 60_000)

  testOnFs('rows, schema and size of two snapshots that differ by known changes', async () => {
    await home.ok(['pg', 'create', 'dev', '-s', storage])
    await home.query('dev', FIXTURE)
    // Hint bits set and every page on disk: the untouched table's files stay as they are.
    await home.query('dev', 'vacuum')
    await home.query('dev', 'checkpoint')
    await home.ok(['snapshot', 'create', 'dev@before'])
    await home.query('dev', CHANGES)
    await home.ok(['snapshot', 'create', 'dev@after'])

    const data = await home.ok(['snapshot', 'diff', 'dev@before', 'dev@after', '--data', '--json'])
    const tables = Object.fromEntries(data.json.tables.map((table: {name: string}) => [table.name, table]))
    expect(Object.keys(tables).sort()).toEqual(['public.items', 'public.tally'])
    expect(tables['public.items']).toMatchObject({key: ['id'], added: 7, removed: 10, changed: 30, columns: {added: ['extra'], removed: []}})
    expect(tables['public.items'].rows).toHaveLength(20)
    expect(tables['public.tally']).toMatchObject({key: null, added: 1, removed: 1, changed: 0})
    const changedRow = tables['public.items'].rows.find((row: {op: string}) => row.op === '~')
    expect(changedRow).toMatchObject({key: {id: '1'}, after: {note: 'changed'}, changedColumns: ['note']})

    const text = await home.ok(['snapshot', 'diff', 'dev@before', 'dev@after', '--data', '--table', 'items', '--limit', '2'])
    expect(text.stdout).toContain('public.items')
    expect(text.stdout).not.toContain('public.tally')

    const schema = await home.ok(['snapshot', 'diff', 'dev@before', 'dev@after', '--schema', '--json'])
    const objects = Object.fromEntries(schema.json.objects.map((object: {object: string}) => [object.object, object]))
    expect(objects['INDEX public.items_note_idx']).toMatchObject({change: 'added'})
    expect(objects['TABLE public.items'].change).toBe('changed')
    expect(objects['TABLE public.items'].diff).toContain('+    extra integer')
    expect(Object.keys(objects).some((name) => name.includes('untouched'))).toBe(false)

    const size = await home.ok(['snapshot', 'diff', 'dev@before', 'dev@after', '--json'])
    const relations = Object.fromEntries(size.json.relations.map((relation: {kind: string; name: string}) => [`${relation.kind} ${relation.name}`, relation]))
    expect(relations['table public.items'].bytesChanged).toBeGreaterThan(0)
    expect(relations['index public.items_note_idx']).toMatchObject({size1: 0})
    expect(relations['index public.items_note_idx'].size2).toBeGreaterThan(0)
    expect(relations['table public.untouched']).toBeUndefined()
    expect(size.json.bytesChanged).toBeGreaterThanOrEqual(relations['table public.items'].bytesChanged)
    // A copy-on-write storage shows the pages both snapshots share without reading them.
    if (fs === 'ext4') expect(size.json.bytesShared).toBe(0)
    else expect(size.json.bytesShared).toBeGreaterThan(0)
  }, 240_000)

  testOnFs('against the live pg: PG@CURRENT is snapshotted for the diff and the snapshot removed', async () => {
    await home.query('dev', 'delete from items where id = 5000')
    const diff = await home.ok(['snapshot', 'diff', 'dev@after', 'dev@CURRENT', '--data', '--json'])
    expect(diff.json.tables).toEqual([expect.objectContaining({name: 'public.items', added: 0, removed: 1, changed: 0})])
    const sql = await home.ok(['snapshot', 'diff', 'dev@after', 'dev@CURRENT', '--data', '--format', 'sql'])
    expect(sql.stdout.trim()).toBe('DELETE FROM ONLY "public"."items" WHERE "id" = \'5000\';')
    const names = (await home.ok(['snapshot', 'list', '--json'])).json.map((item: {name: string}) => item.name)
    expect(names.filter((name: string) => name.startsWith('dev@zenith-diff-'))).toEqual([])
  }, 240_000)

  testOnFs('bad input changes nothing and leaves nothing behind', async () => {
    const unknown = await home.run(['snapshot', 'diff', 'dev@before', 'dev@nope', '--json'])
    expect(unknown.exitCode).toBe(3)
    expect(unknown.json.error.code).toBe('SNAPSHOT_NOT_FOUND')
    const table = await home.run(['snapshot', 'diff', 'dev@before', 'dev@after', '--data', '--table', 'nosuch', '--json'])
    expect(table.json.error.code).toBe('TABLE_NOT_FOUND')
    const remote = await home.run(['snapshot', 'diff', 's3://bucket/snaps/x', 'dev@after', '--json'])
    expect(remote.json.error.code).toBe('SNAPSHOT_REMOTE')
    const misuse = await home.run(['snapshot', 'diff', 'dev@before', 'dev@after', '--table', 'items', '--json'])
    expect(misuse.json.error.code).toBe('INVALID_ARGUMENT')

    // No temporary instance or volume is left, and no postgres runs but the pg itself.
    const list = await home.ok(['snapshot', 'list', '--json'])
    expect(list.json.map((item: {name: string}) => item.name).sort()).toEqual(['dev@CURRENT', 'dev@after', 'dev@before'])
    const storages = (await home.ok(['storage', 'list', '--json'])).json as Array<{name: string; path: string}>
    const folder = storages.find((item) => item.name === storage)!.path
    const leftovers = (await readdir(folder, {recursive: true})).filter((entry) => /(^|\/)\.temp-/.test(String(entry)))
    expect(leftovers).toEqual([])
  }, 240_000)

  testOnFs('two different clusters: no page diff, but schema and rows compare', async () => {
    await home.ok(['pg', 'create', 'other', '-s', storage])
    await home.query('other', 'create table items (id int primary key, note text); insert into items values (1, md5(1::text))')
    const size = await home.run(['snapshot', 'diff', 'dev@before', 'other@CURRENT', '--json'])
    expect(size.json.error.code).toBe('DIFF_UNRELATED')
    const data = await home.ok(['snapshot', 'diff', 'dev@before', 'other@CURRENT', '--data', '--table', 'items', '--json'])
    expect(data.json.tables[0]).toMatchObject({name: 'public.items', removed: 4999, added: 0})
    await home.ok(['pg', 'destroy', 'other', '--force'])
  }, 240_000)
})

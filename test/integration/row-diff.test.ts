/**
 * The data diff engine (src/diff/rows.ts) against a real PostgreSQL 15: one server, run as the
 * `postgres` OS user on a unix socket in a temporary folder (port 8811), with two databases
 * `before` and `after` whose default collation is ICU en-US, so that an ORDER BY in the
 * database's collation would not be the order the merge compares in.
 */
import {existsSync} from 'node:fs'
import {chown, mkdtemp, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import v8 from 'node:v8'
import vm from 'node:vm'

import {execa} from 'execa'
import pg from 'pg'

import {type Connection, type RowChange, type TableRowDiff, diffRows, renderRowDiff, rowDiffStatements} from '../../src/diff/rows.js'
import {isRoot} from '../helpers/zenith.js'

const BIN_DIR = '/usr/lib/postgresql/15/bin'
const PORT = 8811
// Decided before the run, so a skip is reported as one.
const available = isRoot && existsSync(path.join(BIN_DIR, 'postgres'))
const maybe = available ? describe : describe.skip

let folder: string
let started = false

function connection(dbname: string): Connection {
  return {host: folder, port: String(PORT), user: 'postgres', dbname}
}

async function asPostgres(tool: string, args: string[]): Promise<void> {
  await execa('runuser', ['-u', 'postgres', '--', path.join(BIN_DIR, tool), ...args], {cwd: '/'})
}

async function sql(dbname: string, text: string): Promise<void> {
  const client = new pg.Client({host: folder, port: PORT, user: 'postgres', database: dbname})
  await client.connect()
  try {
    await client.query(text)
  } finally {
    await client.end()
  }
}

async function createDatabase(name: string, template = 'template0'): Promise<void> {
  await sql('postgres', `create database ${name} template ${template}` + (template === 'template0' ? " encoding 'UTF8' locale 'C.UTF-8' locale_provider icu icu_locale 'en-US'" : ''))
}

const BASE = `
  create table accounts (id int primary key, name text not null, balance numeric(10,2), note text);
  insert into accounts select g, 'user' || g, g * 10, null from generate_series(1, 10) g;

  create table events (kind text, n int);
  insert into events values ('a', 1), ('a', 1), ('a', 1), ('b', 2), ('c', 3), ('c', 3);

  create table names (name text primary key, v int);
  insert into names values ('Zoë', 1), ('zoe', 2), ('Zoo', 3), ('Ärger', 4), ('ähnlich', 5), ('日本', 6), ('😀', 7), (U&'\\FB00', 8), ('a', 9), ('B', 10);

  create table tokens (id uuid primary key, label text);
  insert into tokens values ('00000000-0000-0000-0000-000000000001', 'one'), ('ffffffff-0000-0000-0000-000000000000', 'max'),
    ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'mid'), ('0fffffff-ffff-ffff-ffff-ffffffffffff', 'low');

  create table memberships (org int, member text, role text, primary key (org, member));
  insert into memberships values (2, 'ann', 'admin'), (2, 'bob', 'user'), (10, 'ann', 'user'), (10, 'Émile', 'user'), (-1, 'root', 'owner');

  create table items (id int primary key, a text, b text);
  insert into items values (1, 'x', 'keep'), (2, 'y', null), (3, 'z', null);

  create table unchanged (id bigint primary key, v text);
  insert into unchanged values (1, 'a'), (9007199254740993, 'big'), (-9223372036854775808, 'min'), (9007199254740992, 'big-1');

  create schema other;
  create table other.accounts (id int primary key, v text);
  insert into other.accounts values (1, 'o');

  create schema "Mixed Case";
  create table "Mixed Case"."Tab ""le""" (id text primary key, "Weird ""Col""" text, j jsonb, arr int[], t timestamptz, bs bytea, f float8, flag bool, ip inet);
  insert into "Mixed Case"."Tab ""le""" values ('k1', 'it''s', '{"a": 1}', '{1,2}', '2024-01-01 10:00+02', '\\x00ff', 0.1, true, '10.0.0.1');

  create table uniq (code text unique, label text);
  insert into uniq values ('b', 'y'), ('c', 'z');

  create table gen (id int generated always as identity primary key, x int, y int generated always as (x * 2) stored);
  insert into gen (x) values (1), (2), (3);

  create table measurements (id int, region text, v int, primary key (id, region)) partition by list (region);
  create table measurements_eu partition of measurements for values in ('eu');
  create table measurements_us partition of measurements for values in ('us');
  insert into measurements values (1, 'eu', 1), (2, 'eu', 2), (1, 'us', 3);
`

const BEFORE_ONLY = `
  create table legacy (id int primary key, v text);
  insert into legacy select g, 'v' || g from generate_series(1, 5) g;
`

const AFTER_CHANGES = `
  create table fresh (v text);
  insert into fresh values ('x'), ('x'), ('y'), (null);

  alter table accounts add column email text;
  update accounts set balance = 999 where id = 3;
  update accounts set name = 'renamed' where id = 7;
  update accounts set email = 'one@example.com' where id = 1;
  delete from accounts where id in (4, 5);
  insert into accounts values (11, 'user11', 110, null, null), (12, 'user12', 120, 'n', null), (13, 'user13', 130, null, 'x@y');

  delete from events where ctid in (select ctid from events where kind = 'a' limit 2);
  insert into events values ('b', 2), ('d', null);

  update names set v = 70 where name = '😀';
  delete from names where name in ('zoe', U&'\\FB00');
  insert into names values ('Zoë2', 11), ('ß', 12), ('😀😀', 13);

  update tokens set label = 'MAX' where id = 'ffffffff-0000-0000-0000-000000000000';
  delete from tokens where id = '0fffffff-ffff-ffff-ffff-ffffffffffff';
  insert into tokens values ('b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'new');

  update memberships set role = 'admin' where org = 10 and member = 'Émile';
  delete from memberships where org = 2 and member = 'bob';
  insert into memberships values (3, 'bob', 'user');

  alter table items drop column b;

  update "Mixed Case"."Tab ""le""" set "Weird ""Col""" = E'back\\\\slash ''quote''\\nnewline', j = '{"a": 2}', arr = '{3,NULL}', f = 1e-300, flag = false;
  insert into "Mixed Case"."Tab ""le""" (id, t, bs, ip) values ('Ω k2', '1999-12-31 23:59:59.999999+00', '\\x', '::1');

  update uniq set label = 'x' where code = 'b';

  update gen set x = 20 where id = 2;
  insert into gen (id, x) overriding system value values (100, 5);
  delete from gen where id = 1;

  update measurements set v = 30 where id = 1 and region = 'us';
  insert into measurements values (3, 'eu', 4);
`

/** What `before` needs to have `after`'s schema: the statements are data only. */
const SCHEMA_STEP = `
  alter table accounts add column email text;
  alter table items drop column b;
  drop table legacy;
  create table fresh (v text);
`

function table(tables: TableRowDiff[], name: string): TableRowDiff {
  const found = tables.find((candidate) => candidate.name === name)
  if (!found) throw new Error(`no diff of ${name} in ${tables.map((t) => t.name).join(', ')}`)
  return found
}

function keysOf(rows: RowChange[], column: string): (string | null)[] {
  return rows.map((change) => (change.op === '~' ? change.key : change.row)[column])
}

maybe('data diff of two databases', () => {
  beforeAll(async () => {
    folder = await mkdtemp(path.join(os.tmpdir(), 'zenith-rowdiff-'))
    const {stdout} = await execa('id', ['-u', 'postgres'])
    const {stdout: gid} = await execa('id', ['-g', 'postgres'])
    await chown(folder, Number(stdout), Number(gid))
    await asPostgres('initdb', ['-D', path.join(folder, 'data'), '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C.UTF-8'])
    await asPostgres('pg_ctl', ['-D', path.join(folder, 'data'), '-l', path.join(folder, 'log'), '-w', 'start',
      '-o', `-k ${folder} -p ${PORT} -c listen_addresses='' -c fsync=off -c full_page_writes=off`])
    started = true
    await createDatabase('before')
    await createDatabase('after')
    await sql('before', BASE + BEFORE_ONLY)
    await sql('after', BASE + AFTER_CHANGES)
  })

  afterAll(async () => {
    if (started) await asPostgres('pg_ctl', ['-D', path.join(folder, 'data'), '-m', 'immediate', 'stop'])
    if (folder) await rm(folder, {recursive: true, force: true})
  })

  test('counts and shows updates, deletes and inserts, a new column, in key order', async () => {
    const result = await diffRows(connection('before'), connection('after'))
    expect(result.tablesCompared).toBe(14)
    expect(result.tables.map((t) => t.name)).toEqual([
      'Mixed Case.Tab "le"', 'public.accounts', 'public.events', 'public.fresh', 'public.gen', 'public.items',
      'public.legacy', 'public.measurements', 'public.memberships', 'public.names', 'public.tokens', 'public.uniq',
    ])
    const accounts = table(result.tables, 'public.accounts')
    expect(accounts).toMatchObject({key: ['id'], added: 3, removed: 2, changed: 3, columns: {added: ['email'], removed: []}})
    expect(accounts.only).toBeUndefined()
    expect(accounts.rows.map((change) => change.op)).toEqual(['~', '~', '-', '-', '~', '+', '+', '+'])
    expect(keysOf(accounts.rows, 'id')).toEqual(['1', '3', '4', '5', '7', '11', '12', '13'])
    expect(accounts.rows[0]).toEqual({
      op: '~', key: {id: '1'}, changedColumns: ['email'],
      before: {id: '1', name: 'user1', balance: '10.00', note: null},
      after: {id: '1', name: 'user1', balance: '10.00', note: null, email: 'one@example.com'},
    })
    expect(accounts.rows[1]).toMatchObject({changedColumns: ['balance'], after: {balance: '999.00'}})
    expect(accounts.rows[2]).toEqual({op: '-', row: {id: '4', name: 'user4', balance: '40.00', note: null}})
    expect(accounts.rows[4]).toMatchObject({changedColumns: ['name'], before: {name: 'user7'}, after: {name: 'renamed'}})
    expect(accounts.rows[7]).toEqual({op: '+', row: {id: '13', name: 'user13', balance: '130.00', note: null, email: 'x@y'}})

    // A dropped column makes a row differ only where it held a value.
    const items = table(result.tables, 'public.items')
    expect(items).toMatchObject({added: 0, removed: 0, changed: 1, columns: {added: [], removed: ['b']}})
    expect(items.rows).toEqual([{op: '~', key: {id: '1'}, changedColumns: ['b'], before: {id: '1', a: 'x', b: 'keep'}, after: {id: '1', a: 'x'}}])

    // Generated columns are compared like the others.
    expect(table(result.tables, 'public.gen')).toMatchObject({added: 1, removed: 1, changed: 1})
    expect(table(result.tables, 'public.gen').rows[1]).toMatchObject({op: '~', changedColumns: ['x', 'y']})
    expect(result.rowsCompared).toBeGreaterThan(80)
  })

  test('a table without a primary key is a multiset: duplicates count', async () => {
    const {tables} = await diffRows(connection('before'), connection('after'), {tables: ['events']})
    const events = table(tables, 'public.events')
    expect(events).toMatchObject({key: null, added: 2, removed: 2, changed: 0})
    expect(events.rows).toEqual([
      {op: '-', row: {kind: 'a', n: '1'}}, {op: '-', row: {kind: 'a', n: '1'}},
      {op: '+', row: {kind: 'b', n: '2'}}, {op: '+', row: {kind: 'd', n: null}},
    ])
  })

  test('text, uuid and composite keys with non-ASCII values merge in byte order', async () => {
    const {tables} = await diffRows(connection('before'), connection('after'), {tables: ['names', 'tokens', 'public.memberships']})
    const names = table(tables, 'public.names')
    expect(names).toMatchObject({key: ['name'], added: 3, removed: 2, changed: 1})
    const keys = keysOf(names.rows, 'name') as string[]
    expect(keys.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))).toEqual(keysOf(names.rows, 'name'))
    expect(new Set(keys)).toEqual(new Set(['Zoë2', 'zoe', 'ß', '\uFB00', '😀', '😀😀']))
    expect(names.rows.find((change) => change.op === '~')).toMatchObject({key: {name: '😀'}, before: {v: '7'}, after: {v: '70'}})

    const tokens = table(tables, 'public.tokens')
    expect(tokens).toMatchObject({key: ['id'], added: 1, removed: 1, changed: 1})
    expect(keysOf(tokens.rows, 'id')).toEqual(['0fffffff-ffff-ffff-ffff-ffffffffffff', 'b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'ffffffff-0000-0000-0000-000000000000'])

    const memberships = table(tables, 'public.memberships')
    expect(memberships).toMatchObject({key: ['org', 'member'], added: 1, removed: 1, changed: 1})
    expect(memberships.rows).toEqual([
      {op: '-', row: {org: '2', member: 'bob', role: 'user'}},
      {op: '+', row: {org: '3', member: 'bob', role: 'user'}},
      {op: '~', key: {org: '10', member: 'Émile'}, changedColumns: ['role'], before: {org: '10', member: 'Émile', role: 'user'}, after: {org: '10', member: 'Émile', role: 'admin'}},
    ])
  })

  test('values are the server\'s text, in fixed session settings', async () => {
    const {tables} = await diffRows(connection('before'), connection('after'), {tables: ['Mixed Case.Tab "le"']})
    const odd = table(tables, 'Mixed Case.Tab "le"')
    expect(odd).toMatchObject({added: 1, changed: 1})
    expect(odd.rows[0]).toMatchObject({
      op: '~', key: {id: 'k1'},
      before: {'Weird "Col"': "it's", j: '{"a": 1}', arr: '{1,2}', t: '2024-01-01 08:00:00+00', bs: '\\x00ff', f: '0.1', flag: 't', ip: '10.0.0.1'},
      after: {'Weird "Col"': "back\\slash 'quote'\nnewline", j: '{"a": 2}', arr: '{3,NULL}', f: '1e-300', flag: 'f'},
    })
    expect(odd.rows[1]).toMatchObject({op: '+', row: {id: 'Ω k2', t: '1999-12-31 23:59:59.999999+00', bs: '\\x', ip: '::1', j: null}})
  })

  test('a database in another encoding is merged in UTF-8 byte order too', async () => {
    // WIN1252 bytes sort "€" (0x80) before "é" (0xE9); UTF-8 bytes the other way round.
    for (const name of ['win_before', 'win_after']) await sql('postgres', `create database ${name} template template0 encoding 'WIN1252' locale 'C'`)
    await createDatabase('utf_copy')
    const schema = 'create table names (name text primary key, v int);'
    await sql('win_before', `${schema} insert into names values ('a', 1), ('é', 2), ('€', 3), ('z', 4)`)
    await sql('utf_copy', `${schema} insert into names values ('a', 1), ('é', 2), ('€', 3), ('z', 4)`)
    await sql('win_after', `${schema} insert into names values ('a', 1), ('é', 20), ('€', 30), ('ž', 5)`)
    const {tables} = await diffRows(connection('win_before'), connection('win_after'))
    expect(keysOf(table(tables, 'public.names').rows, 'name')).toEqual(['z', 'é', 'ž', '€'])
    expect(table(tables, 'public.names').rows.map((change) => change.op)).toEqual(['-', '~', '+', '~'])
    expect((await diffRows(connection('win_before'), connection('utf_copy'))).tables).toEqual([])
    expect((await diffRows(connection('utf_copy'), connection('win_after'))).tables[0]).toMatchObject({added: 1, removed: 1, changed: 2})
  })

  test('a table on one side only has all its rows added or removed; partitions are their parent\'s', async () => {
    const {tables} = await diffRows(connection('before'), connection('after'), {tables: ['legacy', 'fresh', 'measurements']})
    expect(table(tables, 'public.legacy')).toMatchObject({only: 'before', key: ['id'], added: 0, removed: 5, changed: 0})
    expect(keysOf(table(tables, 'public.legacy').rows, 'id')).toEqual(['1', '2', '3', '4', '5'])
    expect(table(tables, 'public.fresh')).toMatchObject({only: 'after', key: null, added: 4, removed: 0, columns: {added: [], removed: []}})
    expect(table(tables, 'public.measurements')).toMatchObject({key: ['id', 'region'], added: 1, changed: 1})
    // Named, a partition is compared on its own.
    const partition = await diffRows(connection('before'), connection('after'), {tables: ['measurements_eu']})
    expect(partition.tables).toEqual([expect.objectContaining({name: 'public.measurements_eu', added: 1, changed: 0, removed: 0})])
  })

  test('--table filter, unknown tables, limit and onRow', async () => {
    const filtered = await diffRows(connection('before'), connection('after'), {tables: ['accounts', 'other.accounts', 'public.accounts']})
    expect(filtered.tablesCompared).toBe(2)
    expect(filtered.tables.map((t) => t.name)).toEqual(['public.accounts'])

    const unknown = diffRows(connection('before'), connection('after'), {tables: ['accounts', 'nope']})
    await expect(unknown).rejects.toMatchObject({code: 'TABLE_NOT_FOUND', message: expect.stringContaining('"nope"'), hint: expect.stringContaining('public.accounts')})
    await expect(diffRows(connection('before'), connection('after'), {tables: ['other.nope']})).rejects.toMatchObject({hint: expect.not.stringContaining('measurements_eu')})

    const seen: RowChange[] = []
    const limited = await diffRows(connection('before'), connection('after'), {tables: ['accounts'], limit: 2, onRow: (name, change) => name === 'public.accounts' && seen.push(change)})
    const accounts = table(limited.tables, 'public.accounts')
    expect(accounts).toMatchObject({added: 3, removed: 2, changed: 3})
    expect(keysOf(accounts.rows, 'id')).toEqual(['1', '3'])
    expect(seen).toHaveLength(8)
    expect(seen.slice(0, 2)).toEqual(accounts.rows)
    const none = await diffRows(connection('before'), connection('after'), {tables: ['accounts'], limit: 0})
    expect(none.tables[0]).toMatchObject({rows: [], changed: 3})
  })

  test('renders a Dolt-style text diff', async () => {
    const result = await diffRows(connection('before'), connection('after'), {tables: ['accounts', 'events', 'legacy'], limit: 3})
    const text = renderRowDiff(result)
    expect(text).toContain([
      'diff --zenith a/public.accounts b/public.accounts',
      '--- a/public.accounts',
      '+++ b/public.accounts',
      '@@ 3 added, 2 removed, 3 changed | key: id | new columns: email @@',
      '< id=1 email=NULL',
      '> id=1 email=one@example.com',
      '< id=3 balance=30.00',
      '> id=3 balance=999.00',
      '- id=4 name=user4 balance=40.00 note=NULL',
      '  ... 5 more not shown (3 of 8)',
    ].join('\n'))
    expect(text).toContain('@@ 2 added, 2 removed | no primary key: rows compared as a multiset @@\n- kind=a n=1\n- kind=a n=1\n+ kind=b n=2')
    expect(text).toContain('--- a/public.legacy\n+++ /dev/null\n@@ dropped table | 0 added, 5 removed, 0 changed | key: id @@')
    expect(renderRowDiff(await diffRows(connection('before'), connection('before')))).toBe('No data differences (13 tables compared).')
  })

  test('the statements turn before\'s data into after\'s', async () => {
    const statements: string[] = []
    for await (const statement of rowDiffStatements(connection('before'), connection('after'))) statements.push(statement)
    expect(statements).toContain('INSERT INTO "public"."gen" ("id", "x") OVERRIDING SYSTEM VALUE VALUES (\'100\', \'5\');')
    expect(statements).toContain('UPDATE ONLY "public"."gen" SET "x" = \'20\' WHERE "id" = \'2\';')
    expect(statements).toContain('DELETE FROM ONLY "public"."events" WHERE (ctid) IN (SELECT ctid FROM ONLY "public"."events" WHERE "kind"::text IS NOT DISTINCT FROM \'a\' AND "n"::text IS NOT DISTINCT FROM \'1\' LIMIT 2);')
    expect(statements.some((statement) => statement.includes('legacy'))).toBe(false)
    // Deletes first: the new ('b', 'x') sorts before the old ('b', 'y') and would meet its unique code.
    const uniq = statements.filter((statement) => statement.includes('"uniq"'))
    expect(uniq).toEqual([expect.stringMatching(/^DELETE FROM ONLY "public"."uniq" .*'y'/), 'INSERT INTO "public"."uniq" ("code", "label") VALUES (\'b\', \'x\');'])
    const gen = statements.filter((statement) => statement.includes('"gen"'))
    expect(gen.map((statement) => statement.split(' ')[0])).toEqual(['DELETE', 'UPDATE', 'INSERT'])

    await createDatabase('replay', 'before')
    await sql('replay', SCHEMA_STEP)
    await sql('replay', `begin; ${statements.join('\n')} commit;`)
    const result = await diffRows(connection('replay'), connection('after'))
    expect(result.tables).toEqual([])
    expect(result.tablesCompared).toBe(13)

    // Stopping early closes the sessions (a database with sessions cannot be dropped).
    for await (const statement of rowDiffStatements(connection('replay'), connection('before'))) if (statement) break
    await sql('postgres', 'drop database replay')
  })

  test('a 200k-row table streams: memory holds a few batches, not the table', async () => {
    await createDatabase('big_before')
    await sql('big_before', `
      create table big (id int primary key, payload text, n int);
      insert into big select g, repeat(md5(g::text), 8), g from generate_series(1, 200000) g;
      create table big_text (id text primary key, n int);
      insert into big_text select md5(g::text), g from generate_series(1, 50000) g;`)
    await sql('big_before', 'vacuum analyze')
    await createDatabase('big_after', 'big_before')
    await sql('big_after', `
      update big set n = -n where id % 200 = 0;
      delete from big where id % 200 = 1;
      insert into big select g, 'new', g from generate_series(200001, 201000) g;
      update big_text set n = 0 where n % 1000 = 0;`)

    const fetchSize = 500
    // Retained memory, not garbage V8 has yet to collect: a full collection before each sample.
    v8.setFlagsFromString('--expose-gc')
    const collect = vm.runInNewContext('gc') as () => void
    collect()
    const baseline = process.memoryUsage().heapUsed
    let peakHeap = baseline
    let changes = 0
    const started = Date.now()
    const result = await diffRows(connection('big_before'), connection('big_after'), {
      fetchSize,
      onRow() {
        if (++changes % 250 !== 0) return
        collect()
        peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed)
      },
    })
    const seconds = (Date.now() - started) / 1000
    expect(table(result.tables, 'public.big')).toMatchObject({added: 1000, removed: 1000, changed: 1000})
    expect(table(result.tables, 'public.big_text')).toMatchObject({added: 0, removed: 0, changed: 50})
    expect(result.rowsCompared).toBe(200000 + 200000 + 50000 * 2)
    // Two batches per side at most, however large the table.
    expect(result.peakRowsHeld).toBeGreaterThan(fetchSize)
    expect(result.peakRowsHeld).toBeLessThanOrEqual(4 * fetchSize)
    // The table as JS rows would be well over 150 MB; streamed, a few MB stay.
    expect(changes).toBe(3050)
    expect(peakHeap - baseline).toBeLessThan(32 * 1024 * 1024)
    process.stderr.write(`row diff: ${result.rowsCompared} rows in ${seconds.toFixed(2)} s (${Math.round(result.rowsCompared / seconds)} rows/s), heap +${Math.round((peakHeap - baseline) / 1024 / 1024)} MB\n`)
  })
})

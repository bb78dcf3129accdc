import path from 'node:path'

import {type LoopMount, canMount, mountLoop} from '../helpers/loop.js'
import {TestHome} from '../helpers/zenith.js'

/**
 * Issue 14, read-only instances: `pg create NAME --snapshot SNAP --read-only [--cow]` is a hot
 * standby over the snapshot (pg_is_in_recovery() true, writes refused as on any standby) whose
 * data stays the snapshot's across restarts; what would change it is refused with PG_READ_ONLY
 * and changes nothing. Ports 9000-9040.
 */
const describeBtrfs = canMount ? describe : describe.skip

interface PgItem {
  name: string
  role: string
  status: string
}

describe('read-only pgs over snapshots', () => {
  let home: TestHome

  beforeAll(async () => {
    home = await TestHome.create(9000)
    await home.ok(['pg', 'create', 'src'])
    await home.query('src', 'create table items (id int primary key, note text)')
    await home.query('src', "insert into items select g, 'before' from generate_series(1, 100) g")
    await home.ok(['snapshot', 'create', 'src@s1'])
    await home.query('src', "insert into items select g, 'after' from generate_series(101, 150) g")
  }, 120_000)

  afterAll(async () => {
    await home?.destroy()
  }, 60_000)

  const rows = async (pg: string) => (await home.query<{n: number; notes: string}>(pg, "select count(*)::int as n, string_agg(distinct note, ',') as notes from items"))[0]

  test('is a hot standby holding the snapshot\'s data, refuses writes, and stays so after a restart', async () => {
    const created = await home.ok(['pg', 'create', 'look', '--snapshot', 'src@s1', '--read-only', '--json'])
    expect(created.json).toMatchObject({name: 'look', role: 'read-only', status: 'running'})
    expect(await home.query('look', 'select pg_is_in_recovery() as recovering')).toEqual([{recovering: true}])
    expect(await rows('look')).toEqual({n: 100, notes: 'before'})
    await expect(home.query('look', "insert into items values (1000, 'x')")).rejects.toMatchObject({code: '25006'})
    await expect(home.query('look', 'create table other (id int)')).rejects.toMatchObject({code: '25006'})

    const listed = (await home.ok(['pg', 'list', '--json'])).json as PgItem[]
    expect(listed.find((pg) => pg.name === 'look')).toMatchObject({role: 'read-only', status: 'running'})
    expect(listed.find((pg) => pg.name === 'src')).toMatchObject({role: 'primary'})
    expect((await home.ok(['pg', 'list'])).stdout).toMatch(/^read-only\s+look\s/m)

    await home.ok(['pg', 'restart', 'look'])
    expect(await home.query('look', 'select pg_is_in_recovery() as recovering')).toEqual([{recovering: true}])
    await home.ok(['pg', 'stop', 'look'])
    await home.ok(['pg', 'start', 'look'])
    expect(await rows('look')).toEqual({n: 100, notes: 'before'})
    // The source goes on as before.
    expect(await rows('src')).toEqual({n: 150, notes: 'after,before'})
  }, 120_000)

  test('what would change its data is refused with PG_READ_ONLY and changes nothing', async () => {
    const snapshotsBefore = (await home.ok(['snapshot', 'list', '--json'])).json
    const snapshot = await home.run(['snapshot', 'create', 'look@x', '--json'])
    expect(snapshot.json?.error).toMatchObject({code: 'PG_READ_ONLY'})
    expect(snapshot.json.error.message).toMatch(/read-only .*src@s1/)
    expect(snapshot.json.error.hint).toMatch(/zenith pg create NAME --snapshot src@s1/)
    expect(snapshot.exitCode).toBe(4)
    const checkout = await home.run(['pg', 'checkout', 'look@HEAD{0}', '--json'])
    expect(checkout.json?.error?.code).toBe('PG_READ_ONLY')
    const pitr = await home.run(['pitr', 'create', 'ro', '--pg', 'look', '--json'])
    expect(pitr.json?.error?.code).toBe('PG_READ_ONLY')
    expect((await home.ok(['snapshot', 'list', '--json'])).json).toEqual(snapshotsBefore)
    expect((await home.ok(['pitr', 'list', '--json'])).json).toEqual([])
    expect(await home.query('look', 'select pg_is_in_recovery() as recovering')).toEqual([{recovering: true}])

    // A checkout of a real snapshot of the same storage is refused too, before anything moves.
    await home.ok(['snapshot', 'create', 'src@s2'])
    const other = await home.run(['pg', 'checkout', 'look@s2', '--json'])
    expect(other.json?.error?.code).toBe('PG_READ_ONLY')
    expect(await rows('look')).toEqual({n: 100, notes: 'before'})
  }, 120_000)

  test('needs a snapshot; is destroyed like any pg, and its snapshot with it gone is free again', async () => {
    const bare = await home.run(['pg', 'create', 'nothing', '--read-only', '--json'])
    expect(bare.exitCode).toBe(2)
    expect((await home.ok(['pg', 'list', '--json'])).json.map((pg: PgItem) => pg.name)).not.toContain('nothing')
    await home.ok(['pg', 'destroy', 'look'])
    await home.ok(['snapshot', 'destroy', 'src@s1'])
  }, 120_000)

  describeBtrfs('on btrfs with --cow', () => {
    let mount: LoopMount | undefined

    beforeAll(async () => {
      mount = await mountLoop('btrfs', 600)
      await home.ok(['storage', 'attach', '-t', 'btrfs', '-n', 'fast', '-c', `path=${path.join(mount.dir, 'zenith')}`, '-c', 'quota=off'])
      await home.ok(['pg', 'create', 'bsrc', '-s', 'fast'])
      await home.query('bsrc', "create table items as select g as id, 'before'::text as note from generate_series(1, 100) g")
      await home.ok(['snapshot', 'create', 'bsrc@s1'])
      await home.query('bsrc', "insert into items select g, 'after' from generate_series(101, 150) g")
    }, 120_000)

    afterAll(async () => {
      for (const pg of ['blook', 'bsrc']) await home.run(['pg', 'destroy', pg, '--force'])
      await mount?.unmount()
    }, 60_000)

    test('a thin read-only clone of a snapshot of a running pg is a consistent hot standby', async () => {
      const created = await home.ok(['pg', 'create', 'blook', '--snapshot', 'bsrc@s1', '--read-only', '--cow', '--json'])
      expect(created.json).toMatchObject({role: 'read-only', status: 'running', storage: 'fast'})
      expect(await home.query('blook', 'select pg_is_in_recovery() as recovering')).toEqual([{recovering: true}])
      expect(await rows('blook')).toEqual({n: 100, notes: 'before'})
      await expect(home.query('blook', 'delete from items')).rejects.toMatchObject({code: '25006'})
    }, 120_000)
  })
})

import {readFile, readdir} from 'node:fs/promises'
import path from 'node:path'

import {execa} from 'execa'

import {type LoopMount, canMount, mountLoop} from '../helpers/loop.js'
import {TestHome, expectConsistentPgbenchCopy} from '../helpers/zenith.js'

const PG_BIN = '/usr/lib/postgresql/15/bin'
/** Loop mounts need root: skipped (and counted as skipped) before the run otherwise. */
const describeWithMounts = canMount ? describe : describe.skip

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

describe.each(setups)('snapshots on $fs', ({fs, storage, thin}) => {
  let home: TestHome
  let mount: LoopMount | undefined
  // Decided before the run (test.skip, not an early return inside each test) so that the
  // closing line counts these as skipped, not passed; hooks do not run when every test skips.
  const testOnFs = fs === 'ext4' || canMount ? test : test.skip
  const firstPort = 6300 + setups.findIndex((setup) => setup.fs === fs) * 20
  const cow = thin ? ['--cow'] : []

  beforeAll(async () => {
    home = await TestHome.create(firstPort)
    if (fs === 'btrfs') {
      mount = await mountLoop('btrfs', 1200)
      await home.ok(['storage', 'attach', '-t', 'btrfs', '-n', storage, '-c', `path=${mount.dir}/zenith`])
    } else if (fs === 'xfs') {
      mount = await mountLoop('xfs', 1200)
      await home.ok(['storage', 'attach', '-t', 'local', '-n', storage, '-c', `path=${mount.dir}/zenith`])
    }
  })

  afterAll(async () => {
    await home?.destroy()
    await mount?.unmount()
  })

  const count = async (pg: string) => Number((await home.query<{n: string}>(pg, 'select count(*) as n from items'))[0].n)

  testOnFs('storage reports how it copies', async () => {
    const list = await home.ok(['storage', 'list', '--json'])
    const entry = list.json.find((item: {name: string}) => item.name === storage)
    expect(entry.copyMethod).toBe({ext4: 'copy', btrfs: 'btrfs', xfs: 'reflink'}[fs])
  })

  testOnFs('snapshot, change, checkout: old rows are back and HEAD{0} holds the new ones', async () => {
    await home.ok(['pg', 'create', 'dev', '-s', storage])
    await home.query('dev', 'create table items (id int primary key, note text); insert into items select g, md5(g::text) from generate_series(1, 5000) g')
    await home.ok(['snapshot', 'create', 'dev@before'])
    await home.query('dev', 'delete from items where id > 100; insert into items values (-1, \'after\')')
    expect(await count('dev')).toBe(101)
    const port = (await home.ok(['pg', 'show', 'dev', '--json'])).json.port

    const result = await home.ok(['pg', 'checkout', 'dev@before'])
    expect(result.stderr).toContain('Stopping postgres on dev.')
    expect(result.stderr).toContain('Rolling back dev@CURRENT to dev@before.')
    expect(result.stderr).toContain('Starting postgres on dev.')
    expect(await count('dev')).toBe(5000)
    expect((await home.ok(['pg', 'show', 'dev', '--json'])).json.port).toBe(port)

    const list = (await home.ok(['snapshot', 'list', '--pg', 'dev', '--json'])).json as Array<{name: string; parent?: string}>
    expect(list.map((item) => item.name).sort()).toEqual(['dev@CURRENT', 'dev@HEAD{0}', 'dev@before'])
    expect(list.find((item) => item.name === 'dev@CURRENT')?.parent).toBe('dev@before')

    await home.ok(['pg', 'create', 'head0', '--snapshot', 'dev@HEAD{0}', '-s', storage, ...cow])
    expect(await count('head0')).toBe(101)
    expect((await home.query<{note: string}>('head0', 'select note from items where id = -1'))[0].note).toBe('after')

    // Undo the checkout: HEAD{0} back, the rolled-back state saved as HEAD{1}.
    await home.ok(['pg', 'checkout', 'dev@HEAD{0}'])
    expect(await count('dev')).toBe(101)
    const names = ((await home.ok(['snapshot', 'list', '--pg', 'dev', '--json'])).json as Array<{name: string}>).map((item) => item.name)
    expect(names).toContain('dev@HEAD{1}')
  })

  testOnFs('snapshot sizes: exclusive on btrfs, logical elsewhere', async () => {
    const snapshot = (await home.ok(['snapshot', 'show', 'dev@before', '--json'])).json
    expect(snapshot.sizeExact).toBe(fs === 'btrfs')
    if (fs === 'btrfs') expect(snapshot.sizeBytes).toBeLessThan(snapshot.logicalBytes)
    else expect(snapshot.sizeBytes).toBeGreaterThan(1_000_000)
  })

  testOnFs('a clone of a snapshot of a running pg under write load is consistent', async () => {
    await home.ok(['pg', 'create', 'busy', '-s', storage])
    const url = await home.url('busy')
    await execa(path.join(PG_BIN, 'pgbench'), ['-i', '-s', '2', '-q', url])
    const load = execa(path.join(PG_BIN, 'pgbench'), ['-c', '4', '-T', '8', '-n', url], {reject: false})
    await new Promise((resolve) => setTimeout(resolve, 2000))
    await home.ok(['snapshot', 'create', 'busy@load'])
    await home.ok(['pg', 'create', 'loadclone', '--snapshot', 'busy@load', '-s', storage, ...cow])
    const loadResult = await load
    expect(loadResult.exitCode).toBe(0)

    await expectConsistentPgbenchCopy(home, 'loadclone')
  }, 180_000)

  testOnFs('destroy rules: dependents are named, --force overrides', async () => {
    const pgRefused = await home.run(['pg', 'destroy', 'busy', '--json'])
    expect(pgRefused.exitCode).toBe(4)
    expect(pgRefused.json.error.code).toBe('HAS_DEPENDENTS')
    expect(pgRefused.json.error.message).toContain('busy@load')

    if (thin) {
      // A thin clone is a view of the snapshot: named, and only --force goes past it.
      const snapshotRefused = await home.run(['snapshot', 'destroy', 'busy@load', '--json'])
      expect(snapshotRefused.exitCode).toBe(4)
      expect(snapshotRefused.json.error.code).toBe('HAS_DEPENDENTS')
      expect(snapshotRefused.json.error.message).toContain('clone loadclone')
      await home.ok(['snapshot', 'destroy', 'busy@load', '--force'])
    } else {
      // A full copy does not depend on its snapshot.
      await home.ok(['snapshot', 'destroy', 'busy@load'])
    }

    expect(await count('head0')).toBe(101)
    await home.ok(['pg', 'destroy', 'busy'])
    await home.ok(['pg', 'destroy', 'dev', '--force'])
    const left = ((await home.ok(['snapshot', 'list', '--json'])).json as Array<{name: string}>).map((item) => item.name)
    expect(left.filter((name) => name.startsWith('dev@') || name.startsWith('busy@'))).toEqual([])
    // The clones keep working without their snapshots.
    expect(Number((await home.query<{n: string}>('loadclone', 'select count(*) as n from pgbench_accounts'))[0].n)).toBe(200_000)
  })
})

describe('snapshot bad input changes nothing', () => {
  let home: TestHome
  let snapshot = async () => ''

  beforeAll(async () => {
    home = await TestHome.create(6360)
    await home.ok(['pg', 'create', 'app'])
    await home.ok(['snapshot', 'create', 'app@v1'])
    snapshot = async () => {
      const state = await readFile(path.join(home.home, 'state.json'), 'utf8')
      const storageRoot = path.join(home.home, 'storages', 'local')
      const folders = await Promise.all(['volumes', 'snapshots', '.scratch'].map((dir) => readdir(path.join(storageRoot, dir)).catch(() => [])))
      return JSON.stringify({state, folders})
    }
  })

  afterAll(async () => home?.destroy())

  test.each([
    [['snapshot', 'create', 'app@v1'], 'NAME_TAKEN', 4],
    [['snapshot', 'create', 'app@CURRENT'], 'INVALID_NAME', 2],
    [['snapshot', 'create', 'app@HEAD{0}'], 'INVALID_NAME', 2],
    [['snapshot', 'create', 'nope@v1'], 'PG_NOT_FOUND', 3],
    [['snapshot', 'create', 'app'], 'INVALID_REF', 2],
    [['snapshot', 'show', 'app@missing'], 'SNAPSHOT_NOT_FOUND', 3],
    [['snapshot', 'destroy', 'app@CURRENT'], 'INVALID_REF', 2],
    [['pg', 'create', 'x', '--snapshot', 'app@missing'], 'SNAPSHOT_NOT_FOUND', 3],
    [['pg', 'create', 'x', '--snapshot', 'app@v1', '--cow'], 'STORAGE_UNSUPPORTED', 6],
    [['pg', 'checkout', 'app@missing'], 'SNAPSHOT_NOT_FOUND', 3],
    [['pg', 'checkout', 'app@CURRENT'], 'INVALID_REF', 2],
    [['pg', 'checkout', 'app'], 'INVALID_REF', 2],
    [['storage', 'attach', '-t', 'btrfs', '-n', 'b', '-c', 'path=/tmp'], 'STORAGE_UNSUPPORTED', 6],
    [['storage', 'attach', '-t', 'local', '-n', 'local', '-c', 'path=/tmp/x'], 'NAME_TAKEN', 4],
    [['storage', 'attach', '-t', 'local', '-n', 'rel', '-c', 'path=relative'], 'INVALID_ARGUMENT', 2],
    [['storage', 'detach', 'local'], 'STORAGE_IN_USE', 4],
  ])('zenith %j -> %s', async (args, code, exitCode) => {
    const before = await snapshot()
    const result = await home.run([...args, '--json'])
    expect(result.json?.error?.code).toBe(code)
    expect(result.exitCode).toBe(exitCode)
    expect(await snapshot()).toBe(before)
  })

  test('--cow across storages is refused; a full copy across storages works', async () => {
    const other = path.join(home.home, 'other-storage')
    await home.ok(['storage', 'attach', '-t', 'local', '-n', 'other', '-c', `path=${other}`])
    const refused = await home.run(['pg', 'create', 'y', '-s', 'other', '--snapshot', 'app@v1', '--cow', '--json'])
    expect(refused.json.error.code).toBe('STORAGE_UNSUPPORTED')
    await home.ok(['pg', 'create', 'y', '-s', 'other', '--snapshot', 'app@v1'])
    expect((await home.ok(['pg', 'show', 'y', '--json'])).json.storage).toBe('other')
    const detach = await home.run(['storage', 'detach', 'other', '--json'])
    expect(detach.json.error.code).toBe('STORAGE_IN_USE')
    await home.ok(['pg', 'destroy', 'y'])
    await home.ok(['storage', 'detach', 'other'])
  })
})

describeWithMounts('disk full while snapshotting', () => {
  let home: TestHome
  let mount: LoopMount | undefined

  afterAll(async () => {
    await home?.destroy()
    await mount?.unmount()
  })

  test('leaves no partial snapshot and nothing in the store', async () => {
    home = await TestHome.create(6370)
    mount = await mountLoop('ext4', 160)
    await home.ok(['storage', 'attach', '-t', 'local', '-n', 'tiny', '-c', `path=${mount.dir}/zenith`])
    await home.ok(['pg', 'create', 'big', '-s', 'tiny'])
    await home.query('big', "create table filler as select g, repeat(md5(g::text), 20) as pad from generate_series(1, 60000) g; checkpoint")
    await home.ok(['pg', 'stop', 'big'])
    const result = await home.run(['snapshot', 'create', 'big@full', '--json'])
    expect(result.json?.error?.code).toBe('NOT_ENOUGH_DISK_SPACE')
    expect(((await home.ok(['snapshot', 'list', '--json'])).json as Array<{name: string}>).map((item) => item.name)).toEqual(['big@CURRENT'])
    const root = path.join(mount.dir, 'zenith')
    expect(await readdir(path.join(root, 'snapshots'))).toEqual([])
    expect(await readdir(path.join(root, '.scratch'))).toEqual([])
    await home.ok(['pg', 'start', 'big'])
    expect(Number((await home.query<{n: string}>('big', 'select count(*) as n from filler'))[0].n)).toBe(60000)
  }, 120_000)
})

describe('a killed checkout', () => {
  let home: TestHome

  afterAll(async () => home?.destroy())

  test.each(['Stopping postgres', 'Rolling back'])('killed at "%s": the next command repairs it and nothing is lost', async (step) => {
    home ??= await TestHome.create(6380)
    const pg = step === 'Stopping postgres' ? 'k1' : 'k2'
    await home.ok(['pg', 'create', pg])
    await home.query(pg, "create table items as select g as id, repeat('x', 500) as pad from generate_series(1, 100000) g")
    await home.ok(['snapshot', 'create', `${pg}@small`])
    await home.query(pg, 'insert into items select g, \'new\' from generate_series(100001, 150000) g')

    const child = execa('node', [path.resolve('bin/run.js'), 'pg', 'checkout', `${pg}@small`], {env: home.env(), reject: false, stdin: 'ignore'})
    await new Promise<void>((resolve) => {
      child.stderr!.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes(step)) {
          child.kill('SIGKILL')
          resolve()
        }
      })
      void child.then(() => resolve())
    })
    await child

    const list = await home.ok(['pg', 'list', '--json'])
    expect(list.json.find((item: {name: string}) => item.name === pg)).toBeDefined()
    // Whatever step it died at: the old CURRENT is saved as HEAD{0}, CURRENT is the snapshot.
    const snapshots = ((await home.ok(['snapshot', 'list', '--pg', pg, '--json'])).json as Array<{name: string}>).map((item) => item.name)
    expect(snapshots).toContain(`${pg}@HEAD{0}`)
    const status = (await home.ok(['pg', 'show', pg, '--json'])).json.status
    if (status !== 'running') await home.ok(['pg', 'start', pg])
    expect(Number((await home.query<{n: string}>(pg, 'select count(*) as n from items'))[0].n)).toBe(100000)
    await home.ok(['pg', 'create', `${pg}-head`, '--snapshot', `${pg}@HEAD{0}`])
    expect(Number((await home.query<{n: string}>(`${pg}-head`, 'select count(*) as n from items'))[0].n)).toBe(150000)
  }, 120_000)
})

describe('a parent that was destroyed', () => {
  let home: TestHome

  beforeAll(async () => {
    home = await TestHome.create(7260)
  })

  afterAll(async () => home?.destroy())

  test('snapshot list and show keep its name marked (destroyed); --json keeps the name with parentExists: false', async () => {
    await home.ok(['pg', 'create', 'pgdata1'])
    await home.ok(['snapshot', 'create', 'pgdata1@t0'])
    await home.ok(['pg', 'create', 'pgdata2', '--snapshot', 'pgdata1@t0'])
    await home.ok(['snapshot', 'create', 'pgdata2@t1'])
    const row = (stdout: string, id: string) => stdout.split('\n').find((line) => line.startsWith(`${id} `))!.split(/\s{2,}/)

    const before = await home.ok(['snapshot', 'list', '--json'])
    const byName = (json: Array<{name: string}>, name: string) => json.find((item) => item.name === name) as Record<string, unknown>
    expect(byName(before.json, 'pgdata2@CURRENT')).toMatchObject({parent: 'pgdata1@t0', parentExists: true})
    expect(byName(before.json, 'pgdata1@t0')).not.toHaveProperty('parentExists')
    expect(row((await home.ok(['snapshot', 'list'])).stdout, 'pgdata2@CURRENT')[2]).toBe('pgdata1@t0')

    // A full copy does not depend on its snapshot: destroying it is allowed.
    await home.ok(['snapshot', 'destroy', 'pgdata1@t0'])
    const table = (await home.ok(['snapshot', 'list'])).stdout
    expect(row(table, 'pgdata2@CURRENT')[2]).toBe('pgdata1@t0 (destroyed)')
    expect(row(table, 'pgdata2@t1')[2]).toBe('pgdata1@t0 (destroyed)')
    expect(row(table, 'pgdata1@CURRENT')[2]).toBe('-')
    const after = await home.ok(['snapshot', 'list', '--json'])
    for (const name of ['pgdata2@CURRENT', 'pgdata2@t1']) expect(byName(after.json, name)).toMatchObject({parent: 'pgdata1@t0', parentExists: false})
    expect((await home.ok(['snapshot', 'show', 'pgdata2@CURRENT'])).stdout).toContain('  parent: pgdata1@t0 (destroyed)')
    expect((await home.ok(['snapshot', 'show', 'pgdata2@t1', '--json'])).json).toMatchObject({parent: 'pgdata1@t0', parentExists: false})
  }, 120_000)
})

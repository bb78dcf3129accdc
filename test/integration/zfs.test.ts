import {existsSync} from 'node:fs'
import {mkdtemp, readFile, rm, stat} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {execa} from 'execa'

import {zfsImplementation} from '../../src/storage/drivers/zfs.js'
import {type ZfsPool, canUseZfs, createPool} from '../helpers/zfs.js'
import {ACCOUNTS_CHECKSUM, PGBENCH, TestHome, expectConsistentPgbenchCopy} from '../helpers/zenith.js'

/** Real ZFS (zfs-fuse here and in CI) needs root and the tools: skipped, and counted as skipped, otherwise. */
const describeOnZfs = canUseZfs ? describe : describe.skip

async function zfsNames(root: string): Promise<string[]> {
  const result = await execa('zfs', ['list', '-H', '-r', '-t', 'all', '-o', 'name', root])
  return String(result.stdout).split('\n').filter((line) => line !== '').sort()
}

async function zfsValue(property: string, dataset: string): Promise<string> {
  return String((await execa('zfs', ['get', '-H', '-p', '-o', 'value', property, dataset])).stdout).trim()
}

/** The dataset mounted at a folder. */
async function datasetAt(root: string, folder: string): Promise<string> {
  const result = await execa('zfs', ['list', '-H', '-r', '-o', 'name,mountpoint', root])
  const line = String(result.stdout).split('\n').find((item) => item.split('\t')[1] === folder)
  if (!line) throw new Error(`no dataset is mounted at ${folder}`)
  return line.split('\t')[0]
}

describeOnZfs('zfs storage', () => {
  let home: TestHome
  let pool: ZfsPool
  let share: string
  let dataset: string
  let root: string

  beforeAll(async () => {
    home = await TestHome.create(8500)
    pool = await createPool(2048)
    share = await mkdtemp(path.join(os.tmpdir(), 'zenith-zfs-share-'))
    dataset = `${pool.name}/zenith`
    // A dataset of someone else's in the same pool: zenith must never touch it.
    await execa('zfs', ['create', `${pool.name}/other`])
  }, 120_000)

  afterAll(async () => {
    await home?.destroy()
    await pool?.destroy()
    if (share) await rm(share, {recursive: true, force: true})
  }, 120_000)

  const count = async (pg: string, table = 'items') => Number((await home.query<{n: string}>(pg, `select count(*) as n from ${table}`))[0].n)
  const checksum = async (pg: string) => (await home.query<{sum: string}>(pg, ACCOUNTS_CHECKSUM))[0].sum
  const unchanged = async () => JSON.stringify({state: await readFile(path.join(home.home, 'state.json'), 'utf8').catch(() => ''), datasets: await zfsNames(pool.name)})

  test('tells OpenZFS from zfs-fuse', async () => {
    expect(await zfsImplementation()).toBe(existsSync('/dev/zfs') ? 'openzfs' : 'zfs-fuse')
  })

  test('attach refuses a missing pool (naming zpool list), a bare pool and bad options, and changes nothing', async () => {
    await home.ok(['storage', 'list'])
    const before = await unchanged()
    const missing = await home.run(['storage', 'attach', '-t', 'zfs', '-n', 'tank', '-c', 'dataset=nosuchpool/zenith', '--json'])
    expect(missing.exitCode).toBe(2)
    expect(missing.json.error.code).toBe('INVALID_ARGUMENT')
    expect(missing.json.error.message).toContain('There is no ZFS pool named "nosuchpool"')
    expect(missing.json.error.hint).toContain('`zpool list`')
    expect(missing.json.error.hint).toContain(pool.name)
    for (const options of [[`dataset=${pool.name}`], [], [`dataset=${pool.name}/z`, 'colour=red'], [`dataset=${pool.name}/z`, 'mountpoint=relative'],
      [`dataset=${pool.name}/other`, `mountpoint=${share}/elsewhere`], ['dataset=nosuchpool/a@b']]) {
      const refused = await home.run(['storage', 'attach', '-t', 'zfs', '-n', 'tank', ...options.flatMap((option) => ['-c', option]), '--json'])
      expect([options, refused.json?.error?.code, refused.exitCode]).toEqual([options, 'INVALID_ARGUMENT', 2])
    }

    expect(await unchanged()).toBe(before)
  })

  test('attach creates POOL/PATH, keeps everything under it; storage list gives bytes from the pool', async () => {
    const attached = await home.ok(['storage', 'attach', '-t', 'zfs', '-n', 'tank', '-c', `dataset=${dataset}`, '--json'])
    root = path.join(pool.mountpoint, 'zenith')
    expect(attached.json).toMatchObject({name: 'tank', type: 'zfs', path: root, options: {dataset}})
    expect(await zfsNames(pool.name)).toEqual([pool.name, `${pool.name}/other`, dataset, `${dataset}/snapshots`, `${dataset}/volumes`].sort())
    const listed = ((await home.ok(['storage', 'list', '--json'])).json as Array<{name: string; usedBytes: number; freeBytes: number}>).find((item) => item.name === 'tank')!
    expect(listed.usedBytes).toBe(Number(await zfsValue('used', dataset)))
    expect(Math.abs(listed.freeBytes - Number(await zfsValue('available', dataset)))).toBeLessThan(1024 * 1024)
    expect((await home.ok(['storage', 'list'])).stdout).toMatch(new RegExp(`^tank\\s+\\S+\\s+zfs\\s+dataset=${dataset}\\s+${root}$`, 'm'))
    const again = await home.run(['storage', 'attach', '-t', 'zfs', '-n', 'tank', '-c', `dataset=${dataset}`, '--json'])
    expect(again.json.error.code).toBe('NAME_TAKEN')
  })

  test('pg create: a dataset mounted as the data directory, owned by postgres; pg list USED is its referenced bytes', async () => {
    await home.ok(['pg', 'create', 'dev', '-s', 'tank'])
    const dataDir = path.join(root, 'volumes', 'dev')
    const volume = await datasetAt(dataset, dataDir)
    expect(volume.startsWith(`${dataset}/volumes/dev.`)).toBe(true)
    const owner = Number(String((await execa('id', ['-u', 'postgres'])).stdout))
    expect((await stat(dataDir)).uid).toBe(owner)
    await execa(PGBENCH, ['-i', '-s', '2', '-q', await home.url('dev')])
    await home.query('dev', 'checkpoint')
    const shown = (await home.ok(['pg', 'show', 'dev', '--json'])).json
    const referenced = Number(await zfsValue('referenced', volume))
    expect(shown.usedBytes).toBeGreaterThan(20_000_000)
    expect(Math.abs(shown.usedBytes - referenced) / referenced).toBeLessThan(0.1)
  })

  test('a snapshot of a running pg under pgbench load is one atomic zfs snapshot; its --cow clone (same storage without -s) is consistent and passes pg_amcheck', async () => {
    const url = await home.url('dev')
    const load = execa(PGBENCH, ['-c', '4', '-T', '8', '-n', url], {reject: false})
    await new Promise((resolve) => setTimeout(resolve, 2000))
    const created = await home.ok(['snapshot', 'create', 'dev@load', '--json'])
    expect(created.json).toMatchObject({name: 'dev@load', storage: 'tank', method: 'fs-snapshot', sizeExact: true})
    await home.ok(['pg', 'create', 'loadclone', '--snapshot', 'dev@load', '--cow'])
    expect((await load).exitCode).toBe(0)
    const clone = (await home.ok(['pg', 'show', 'loadclone', '--json'])).json
    expect(clone.storage).toBe('tank')
    // A ZFS clone of the snapshot's frozen image: no data was copied.
    const origin = await zfsValue('origin', await datasetAt(dataset, path.join(root, 'volumes', 'loadclone')))
    expect(origin).toMatch(new RegExp(`^${dataset}/snapshots/dev:40load\\..*@frozen$`))

    await expectConsistentPgbenchCopy(home, 'loadclone')
  }, 180_000)

  test('SIZE of a snapshot is what it retains: small at first, growing as the pg rewrites what it holds', async () => {
    const sizeOf = async () => (await home.ok(['snapshot', 'show', 'dev@load', '--json'])).json as {sizeBytes: number; sizeExact: boolean; logicalBytes: number}
    const first = await sizeOf()
    expect(first.sizeExact).toBe(true)
    expect(first.sizeBytes).toBeLessThan(first.logicalBytes / 2)
    await home.query('dev', 'update pgbench_accounts set abalance = abalance + 1; checkpoint')
    // ZFS accounts a snapshot's blocks when a transaction group is written (every few seconds).
    let grown = first
    for (let i = 0; i < 60 && grown.sizeBytes < first.sizeBytes + 10_000_000; i++) {
      await new Promise((resolve) => setTimeout(resolve, 500))
      grown = await sizeOf()
    }

    expect(grown.sizeBytes).toBeGreaterThan(first.sizeBytes + 10_000_000)
    const list = (await home.ok(['snapshot', 'list', '--json'])).json as Array<{name: string; sizeBytes: number}>
    expect(list.find((item) => item.name === 'dev@load')?.sizeBytes).toBeGreaterThanOrEqual(grown.sizeBytes - 1_000_000)
  }, 60_000)

  test('checkout keeps the old CURRENT as HEAD{n}, also while a clone of one of its snapshots runs', async () => {
    await home.query('dev', 'create table items (id int primary key, note text); insert into items select g, md5(g::text) from generate_series(1, 5000) g')
    await home.ok(['snapshot', 'create', 'dev@before'])
    await home.query('dev', 'delete from items where id > 100; insert into items values (-1, \'after\')')
    const port = (await home.ok(['pg', 'show', 'dev', '--json'])).json.port

    const result = await home.ok(['pg', 'checkout', 'dev@before'])
    expect(result.stderr).toContain('Rolling back dev@CURRENT to dev@before.')
    expect(await count('dev')).toBe(5000)
    expect((await home.ok(['pg', 'show', 'dev', '--json'])).json.port).toBe(port)
    const names = ((await home.ok(['snapshot', 'list', '--pg', 'dev', '--json'])).json as Array<{name: string}>).map((item) => item.name).sort()
    expect(names).toEqual(['dev@CURRENT', 'dev@HEAD{0}', 'dev@before', 'dev@load'])
    // The clone of dev@load was not disturbed.
    expect(await count('loadclone', 'pgbench_branches')).toBe(2)

    await home.ok(['pg', 'create', 'head0', '--snapshot', 'dev@HEAD{0}', '--cow'])
    expect(await count('head0')).toBe(101)
    expect((await home.query<{note: string}>('head0', 'select note from items where id = -1'))[0].note).toBe('after')
    await home.ok(['pg', 'checkout', 'dev@HEAD{0}'])
    expect(await count('dev')).toBe(101)
    expect(((await home.ok(['snapshot', 'list', '--pg', 'dev', '--json'])).json as Array<{name: string}>).map((item) => item.name)).toContain('dev@HEAD{1}')
    // Every snapshot still makes a working pg.
    await home.ok(['pg', 'create', 'before2', '--snapshot', 'dev@before', '--cow'])
    expect(await count('before2')).toBe(5000)
    await home.ok(['pg', 'destroy', 'before2'])
  }, 120_000)

  test('a checkout killed while rolling back is finished by the next command; nothing is lost', async () => {
    await home.ok(['pg', 'create', 'k', '-s', 'tank'])
    await home.query('k', "create table items as select g as id, repeat('x', 500) as pad from generate_series(1, 20000) g")
    await home.ok(['snapshot', 'create', 'k@small'])
    await home.query('k', 'insert into items select g, \'new\' from generate_series(20001, 30000) g')
    const child = execa('node', [path.resolve('bin/run.js'), 'pg', 'checkout', 'k@small'], {env: home.env(), reject: false, stdin: 'ignore'})
    await new Promise<void>((resolve) => {
      child.stderr!.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('Rolling back')) {
          child.kill('SIGKILL')
          resolve()
        }
      })
      void child.then(() => resolve())
    })
    await child
    const snapshots = ((await home.ok(['snapshot', 'list', '--pg', 'k', '--json'])).json as Array<{name: string}>).map((item) => item.name)
    expect(snapshots).toContain('k@HEAD{0}')
    if ((await home.ok(['pg', 'show', 'k', '--json'])).json.status !== 'running') await home.ok(['pg', 'start', 'k'])
    expect(await count('k')).toBe(20000)
    await home.ok(['pg', 'create', 'k-head', '--snapshot', 'k@HEAD{0}'])
    expect(await count('k-head')).toBe(30000)
    await home.ok(['pg', 'destroy', 'k-head'])
    await home.ok(['pg', 'destroy', 'k', '--force'])
    // Nothing of a killed command is left behind: no work in progress, no unmounted leftover.
    const left = String((await execa('zfs', ['list', '-H', '-r', '-o', 'name,mountpoint', dataset])).stdout)
    expect(left).not.toMatch(/\/scratch\//)
    expect(left).not.toMatch(/\/volumes\/k[.-]/)
  }, 120_000)

  test('a full copy is an independent dataset: its snapshot can be destroyed without --force', async () => {
    await home.ok(['snapshot', 'create', 'loadclone@copyme'])
    await home.ok(['pg', 'create', 'full', '--snapshot', 'loadclone@copyme'])
    expect(await zfsValue('origin', await datasetAt(dataset, path.join(root, 'volumes', 'full')))).toBe('-')
    expect(await checksum('full')).toBe(await checksum('loadclone'))
    await home.ok(['snapshot', 'destroy', 'loadclone@copyme'])
    expect(await count('full', 'pgbench_branches')).toBe(2)
  }, 120_000)

  test('push to a dir storage and pull back into zfs, export and import: identical table checksums', async () => {
    await home.ok(['storage', 'attach', '-t', 'dir', '-n', 'share', '-c', `path=${share}/zenith`])
    await home.ok(['snapshot', 'push', 'dev@load', '--to', 'share'])
    await home.ok(['snapshot', 'pull', '--from', 'share', 'dev@load', '--as', 'pulled', '-s', 'tank'])
    expect((await home.ok(['snapshot', 'show', 'pulled', '--json'])).json).toMatchObject({storage: 'tank', sizeExact: true})
    await home.ok(['pg', 'create', 'frompull', '--snapshot', 'pulled', '--cow'])
    expect((await home.ok(['pg', 'show', 'frompull', '--json'])).json.storage).toBe('tank')
    expect(await checksum('frompull')).toBe(await checksum('loadclone'))
    // And out of zfs into a plain folder storage: a full copy across storages.
    await home.ok(['pg', 'create', 'onlocal', '-s', 'local', '--snapshot', 'pulled'])
    expect(await checksum('onlocal')).toBe(await checksum('loadclone'))
    await home.ok(['pg', 'destroy', 'onlocal'])
    // Export from zfs (a temporary postgres on a clone) and import into it. (A pulled snapshot's
    // files belong to root, which the temporary postgres of an export cannot read on any
    // storage: so a snapshot of a pg here.)
    const archive = path.join(share, 'before.zenith')
    await home.ok(['snapshot', 'export', 'dev@before', '-o', archive])
    await home.ok(['snapshot', 'import', '--from', archive, '-s', 'tank', 'imported'])
    await home.ok(['pg', 'create', 'fromimport', '--snapshot', 'imported', '--cow'])
    expect(await count('fromimport')).toBe(5000)
    await home.ok(['pg', 'destroy', 'fromimport'])
    await home.ok(['snapshot', 'destroy', 'imported'])
  }, 240_000)

  test('bad input on zfs changes nothing', async () => {
    for (const [args, code] of [
      [['snapshot', 'create', 'dev@load'], 'NAME_TAKEN'],
      [['pg', 'create', 'dev', '-s', 'tank'], 'NAME_TAKEN'],
      [['pg', 'create', 'x', '--snapshot', 'dev@missing', '--cow'], 'SNAPSHOT_NOT_FOUND'],
      [['pg', 'create', 'x', '-s', 'local', '--snapshot', 'dev@load', '--cow'], 'STORAGE_UNSUPPORTED'],
      [['pg', 'checkout', 'dev@missing'], 'SNAPSHOT_NOT_FOUND'],
      [['pg', 'checkout', 'dev@CURRENT'], 'INVALID_REF'],
      [['snapshot', 'destroy', 'dev@CURRENT'], 'INVALID_REF'],
      [['storage', 'detach', 'tank'], 'STORAGE_IN_USE'],
    ] as Array<[string[], string]>) {
      const before = await unchanged()
      const result = await home.run([...args, '--json'])
      expect([args, result.json?.error?.code]).toEqual([args, code])
      expect(await unchanged()).toBe(before)
    }
  })

  test('destroy is dependency-aware: a snapshot with clones is refused naming them; pg destroy removes its datasets and nothing else', async () => {
    const refused = await home.run(['snapshot', 'destroy', 'dev@load', '--json'])
    expect(refused.exitCode).toBe(4)
    expect(refused.json.error.code).toBe('HAS_DEPENDENTS')
    expect(refused.json.error.message).toContain('clone loadclone')
    await home.ok(['snapshot', 'destroy', 'dev@load', '--force'])
    // The clone keeps its data: ZFS keeps the blocks it shares.
    expect(await count('loadclone', 'pgbench_accounts')).toBe(200_000)

    const pgRefused = await home.run(['pg', 'destroy', 'dev', '--json'])
    expect(pgRefused.json.error.code).toBe('HAS_DEPENDENTS')
    await home.ok(['pg', 'destroy', 'dev', '--force'])
    expect(((await home.ok(['snapshot', 'list', '--json'])).json as Array<{name: string}>).map((item) => item.name).filter((name) => name.startsWith('dev@'))).toEqual([])
    // Its clone made from HEAD{0} and the others still work.
    expect(await count('head0')).toBe(101)
    expect(await count('loadclone', 'pgbench_branches')).toBe(2)

    for (const pg of ['head0', 'loadclone', 'full', 'frompull']) await home.ok(['pg', 'destroy', pg, '--force'])
    await home.ok(['snapshot', 'destroy', 'pulled'])
    // Once the last user is gone, nothing of it is left, and the other dataset is untouched.
    expect(await zfsNames(pool.name)).toEqual([pool.name, `${pool.name}/other`, dataset, `${dataset}/snapshots`, `${dataset}/volumes`].sort())
  }, 120_000)
})

import {readdir} from 'node:fs/promises'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {execa} from 'execa'

import {type LoopMount, canMount, mountLoop} from '../helpers/loop.js'
import {BIN, TestHome} from '../helpers/zenith.js'

/**
 * Issue 14, replicas: `pg start PG --replica [--count N]` adds streaming replicas (pg_basebackup
 * through their slot on copy storage, a thin clone of an atomic image on btrfs) that follow the
 * primary, refuse writes, are listed under it with their lag, and obey the stop / start / destroy /
 * checkout rules; `pg promote` makes one a primary of its own; a killed one shows as crashed and
 * restarts; one whose primary dropped the WAL it needs shows as cut off. Ports 9200-9260.
 */
const describeBtrfs = canMount ? describe : describe.skip

interface Replication {
  state: string
  lagBytes?: number
  lagSeconds?: number
}

interface PgItem {
  name: string
  role: string
  status: string
  port: number
  primary?: string
  replication?: Replication
  dataDir: string
}

async function until<T>(probe: () => Promise<T>, accept: (value: T) => boolean, seconds = 20): Promise<T> {
  const deadline = Date.now() + seconds * 1000
  for (;;) {
    const value = await probe().catch((error: unknown) => error as T)
    if (accept(value) || Date.now() > deadline) return value
    await sleep(100)
  }
}

const list = async (home: TestHome) => (await home.ok(['pg', 'list', '--json'])).json as PgItem[]
const slots = async (home: TestHome, pg: string) => (await home.query<{slot_name: string}>(pg, "select slot_name from pg_replication_slots where slot_name like 'zenith_replica_%' order by 1")).map((row) => row.slot_name)

describe('replicas of a pg', () => {
  let home: TestHome

  beforeAll(async () => {
    home = await TestHome.create(9200)
    await home.ok(['pg', 'create', 'prim'])
    await home.query('prim', 'create table items (id int primary key, note text)')
    await home.query('prim', "insert into items select g, 'first' from generate_series(1, 100) g")
  }, 120_000)

  afterAll(async () => {
    await home?.destroy()
  }, 60_000)

  const count = async (pg: string) => (await home.query<{n: number}>(pg, 'select count(*)::int as n from items'))[0].n

  test('two replicas stream the primary\'s writes within seconds and refuse their own', async () => {
    const started = await home.ok(['pg', 'start', 'prim', '--replica', '--count', '2', '--json'])
    const replicas = started.json as PgItem[]
    expect(replicas.map((replica) => [replica.name, replica.role, replica.primary, replica.status])).toEqual([
      ['prim/replica-1', 'replica-1', 'prim', 'running'],
      ['prim/replica-2', 'replica-2', 'prim', 'running'],
    ])
    const primary = (await list(home)).find((pg) => pg.name === 'prim')!
    expect(new Set([primary.port, ...replicas.map((replica) => replica.port)]).size).toBe(3)
    for (const replica of replicas) {
      expect(replica.replication?.state).toBe('streaming')
      expect(await home.query(replica.name, 'select pg_is_in_recovery() as recovering')).toEqual([{recovering: true}])
      expect(await count(replica.name)).toBe(100)
    }

    await home.query('prim', "insert into items select g, 'second' from generate_series(101, 250) g")
    const began = Date.now()
    for (const replica of replicas) expect(await until(() => count(replica.name), (n) => n === 250, 10)).toBe(250)
    expect(Date.now() - began).toBeLessThan(10_000)
    for (const replica of replicas) {
      await expect(home.query(replica.name, "insert into items values (1000, 'x')")).rejects.toMatchObject({code: '25006'})
    }

    expect(await slots(home, 'prim')).toEqual(['zenith_replica_1', 'zenith_replica_2'])
  }, 180_000)

  test('pg list shows them under their primary with lag; pg show has a replicas line; JSON has each', async () => {
    const pgs = await list(home)
    expect(pgs.map((pg) => pg.name)).toEqual(['prim', 'prim/replica-1', 'prim/replica-2'])
    for (const replica of pgs.slice(1)) {
      expect(replica).toMatchObject({primary: 'prim', status: 'running', replication: {state: 'streaming'}})
      expect(typeof replica.replication!.lagBytes).toBe('number')
      expect(typeof replica.replication!.lagSeconds).toBe('number')
    }

    const text = (await home.ok(['pg', 'list'])).stdout.split('\n')
    expect(text[0]).toMatch(/^ROLE\s+PGDATA\s+USED\s+STORAGE\s+ENDPOINT\s+STATUS$/)
    expect(text[1]).toMatch(/^primary\s+prim\s/)
    expect(text[2]).toMatch(new RegExp(`^replica-1\\s+-\\s+-\\s+-\\s+localhost:${pgs[1].port}\\s+running$`))
    expect(text[3]).toMatch(new RegExp(`^replica-2\\s+-\\s+-\\s+-\\s+localhost:${pgs[2].port}\\s+running$`))

    const show = (await home.ok(['pg', 'show', 'prim'])).stdout
    expect(show).toMatch(new RegExp(`replicas: replica-1 localhost:${pgs[1].port} \\(streaming, lag \\d+(\\.\\d)?[BKMG].*\\), replica-2 localhost:${pgs[2].port} \\(streaming`))
    const json = (await home.ok(['pg', 'show', 'prim', '--json'])).json
    expect(json.replicas.map((replica: PgItem) => [replica.name, replica.role, replica.status, replica.replication?.state]))
      .toEqual([['prim/replica-1', 'replica-1', 'running', 'streaming'], ['prim/replica-2', 'replica-2', 'running', 'streaming']])
    expect((await home.ok(['pg', 'show', 'prim/replica-1'])).stdout).toMatch(/replica of: prim \(streaming/)
    // A replica has no CURRENT of its own in the snapshot list.
    expect(((await home.ok(['snapshot', 'list', '--json'])).json as Array<{name: string}>).map((item) => item.name)).toEqual(['prim@CURRENT'])
  }, 120_000)

  test('what would diverge from the primary is refused and changes nothing', async () => {
    const snapshot = await home.run(['snapshot', 'create', 'prim/replica-1@x', '--json'])
    expect(snapshot.json.error).toMatchObject({code: 'PG_READ_ONLY'})
    expect(snapshot.json.error.hint).toMatch(/zenith pg promote prim\/replica-1/)
    await home.ok(['snapshot', 'create', 'prim@s1'])
    const checkout = await home.run(['pg', 'checkout', 'prim@s1', '--json'])
    expect(checkout.json.error).toMatchObject({code: 'HAS_DEPENDENTS'})
    expect(checkout.json.error.hint).toMatch(/zenith pg destroy prim\/replica-1/)
    const pitr = await home.run(['pitr', 'create', 'r', '--pg', 'prim/replica-1', '--json'])
    expect(pitr.json.error.code).toBe('PG_READ_ONLY')
    const nested = await home.run(['pg', 'start', 'prim/replica-1', '--replica', '--json'])
    expect(nested.json.error.code).toBe('INVALID_ARGUMENT')
    expect((await list(home)).map((pg) => [pg.name, pg.status])).toEqual([['prim', 'running'], ['prim/replica-1', 'running'], ['prim/replica-2', 'running']])
    expect(await slots(home, 'prim')).toEqual(['zenith_replica_1', 'zenith_replica_2'])
    await home.ok(['snapshot', 'destroy', 'prim@s1'])
  }, 120_000)

  test('a killed replica shows as crashed and restarts streaming', async () => {
    const replica = (await list(home)).find((pg) => pg.name === 'prim/replica-2')!
    const {readFile} = await import('node:fs/promises')
    const pid = Number((await readFile(path.join(replica.dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0])
    process.kill(pid, 'SIGKILL')
    const crashed = await until(() => list(home), (pgs) => pgs.find((pg) => pg.name === 'prim/replica-2')?.status === 'crashed')
    expect(crashed.find((pg) => pg.name === 'prim/replica-2')).toMatchObject({status: 'crashed', replication: {state: 'disconnected'}})
    expect((await home.ok(['pg', 'list'])).stdout).toMatch(/^replica-2\s.*\scrashed$/m)

    await home.query('prim', "insert into items select g, 'third' from generate_series(251, 300) g")
    await home.ok(['pg', 'start', 'prim/replica-2'])
    expect(await until(() => count('prim/replica-2'), (n) => n === 300)).toBe(300)
    const again = await until(() => list(home), (pgs) => pgs.find((pg) => pg.name === 'prim/replica-2')?.replication?.state === 'streaming')
    expect(again.find((pg) => pg.name === 'prim/replica-2')?.replication?.state).toBe('streaming')
  }, 120_000)

  test('stopping the primary stops its replicas; starting it does not start them unless asked', async () => {
    await home.ok(['pg', 'stop', 'prim'])
    expect((await list(home)).map((pg) => pg.status)).toEqual(['stopped', 'stopped', 'stopped'])
    await home.ok(['pg', 'start', 'prim'])
    expect((await list(home)).map((pg) => pg.status)).toEqual(['running', 'stopped', 'stopped'])
    const started = await home.ok(['pg', 'start', 'prim', '--with-replicas', '--json'])
    expect((started.json as PgItem[]).map((pg) => pg.name)).toEqual(['prim/replica-1', 'prim/replica-2'])
    expect((await list(home)).map((pg) => pg.status)).toEqual(['running', 'running', 'running'])
    await home.query('prim', "insert into items select g, 'fourth' from generate_series(301, 310) g")
    expect(await until(() => count('prim/replica-1'), (n) => n === 310)).toBe(310)
  }, 120_000)

  test('pg promote makes a replica an independent primary and drops its slot', async () => {
    const promoted = await home.ok(['pg', 'promote', 'prim/replica-1', 'solo', '--json'])
    expect(promoted.json).toMatchObject({name: 'solo', role: 'primary', status: 'running'})
    expect(promoted.json.primary).toBeUndefined()
    expect(await home.query('solo', 'select pg_is_in_recovery() as recovering')).toEqual([{recovering: false}])
    await home.query('solo', "insert into items values (5000, 'solo')")
    expect(await count('solo')).toBe(311)
    expect(await count('prim')).toBe(310)
    expect(await slots(home, 'prim')).toEqual(['zenith_replica_2'])
    expect((await list(home)).map((pg) => [pg.name, pg.role])).toEqual([['prim', 'primary'], ['prim/replica-2', 'replica-2'], ['solo', 'primary']])
    // It is a pg like any other now: snapshots, logs, and the next replica of prim takes the free number.
    await home.ok(['snapshot', 'create', 'solo@after'])
    expect((await home.ok(['pg', 'logs', 'solo'])).stdout).toMatch(/promote|database system is ready/)
    await home.ok(['pg', 'destroy', 'solo', '--force'])
    const [next] = (await home.ok(['pg', 'start', 'prim', '--replica', '--json'])).json as PgItem[]
    expect(next.name).toBe('prim/replica-1')
    expect(await slots(home, 'prim')).toEqual(['zenith_replica_1', 'zenith_replica_2'])
    const wrong = await home.run(['pg', 'promote', 'prim', '--json'])
    expect(wrong.json.error.code).toBe('INVALID_ARGUMENT')
  }, 180_000)

  test('a replica whose primary dropped the WAL it needs is shown cut off', async () => {
    await home.ok(['pg', 'create', 'small', '--set', 'max_slot_wal_keep_size=32MB', '--set', 'max_wal_size=64MB'])
    await home.ok(['pg', 'start', 'small', '--replica'])
    await home.ok(['pg', 'stop', 'small/replica-1'])
    await home.query('small', 'create table filler (id int, pad text)')
    const state = await until(async () => {
      await home.query('small', "insert into filler select g, repeat('y', 500) from generate_series(1, 40000) g; checkpoint")
      return (await list(home)).find((pg) => pg.name === 'small/replica-1')?.replication?.state
    }, (value) => value === 'cut-off', 60)
    expect(state).toBe('cut-off')
    expect((await home.ok(['pg', 'list'])).stdout).toMatch(/^replica-1\s.*\sstopped, cut off$/m)
    expect((await home.ok(['pg', 'show', 'small/replica-1'])).stdout).toMatch(/replica of: small \(cut off/)
    await home.ok(['pg', 'destroy', 'small'])
  }, 180_000)

  test('a replica destroyed while its primary is stopped leaves no slot once the primary runs', async () => {
    await home.ok(['pg', 'stop', 'prim'])
    await home.ok(['pg', 'destroy', 'prim/replica-2'])
    await home.ok(['pg', 'start', 'prim'])
    expect(await slots(home, 'prim')).toEqual(['zenith_replica_1'])
  }, 120_000)

  test('a replica creation killed midway is removed by the next command, slot and folder', async () => {
    // Killed while pg_basebackup copies (it dies with zenith); a kill once the copy is started leaves a whole replica, released.
    for (const step of ['Copying prim with pg_basebackup']) {
      const child = execa('node', [BIN, 'pg', 'start', 'prim', '--replica'], {env: home.env(), reject: false, stdin: 'ignore'})
      await new Promise<void>((resolve) => {
        let seen = ''
        child.stderr?.on('data', (chunk: Buffer) => {
          seen += chunk.toString()
          if (seen.includes(step)) resolve()
        })
        void child.then(() => resolve())
      })
      child.kill('SIGKILL')
      await child
      const repaired = await home.ok(['pg', 'list', '--json'])
      expect(repaired.stderr).toMatch(/removed a replica whose creation was interrupted/)
      expect((repaired.json as PgItem[]).map((pg) => pg.name)).toEqual(['prim', 'prim/replica-1'])
      expect(await slots(home, 'prim')).toEqual(['zenith_replica_1'])
      expect((await readdir(path.join(home.home, 'storages', 'local', 'volumes'))).sort()).toEqual(['prim', 'prim.replica-1'])
    }
  }, 180_000)

  test('destroying a primary destroys its replicas', async () => {
    const destroyed = await home.ok(['pg', 'destroy', 'prim', '--json'])
    expect(destroyed.json).toMatchObject({name: 'prim', replicasDestroyed: ['prim/replica-1']})
    expect(await list(home)).toEqual([])
    expect(await readdir(path.join(home.home, 'storages', 'local', 'volumes'))).toEqual([])
  }, 120_000)
})

describeBtrfs('replicas on btrfs', () => {
  let home: TestHome
  let mount: LoopMount | undefined

  beforeAll(async () => {
    home = await TestHome.create(9240)
    mount = await mountLoop('btrfs', 800)
    await home.ok(['storage', 'attach', '-t', 'btrfs', '-n', 'fast', '-c', `path=${path.join(mount.dir, 'zenith')}`, '-c', 'quota=off'])
    await home.ok(['pg', 'create', 'bp', '-s', 'fast'])
    await home.query('bp', "create table items as select g as id, repeat('x', 200) as note from generate_series(1, 20000) g")
  }, 120_000)

  afterAll(async () => {
    await home?.destroy()
    await mount?.unmount()
  }, 60_000)

  test('a replica is a thin clone of an atomic image; it streams, and its image goes with it', async () => {
    const [replica] = (await home.ok(['pg', 'start', 'bp', '--replica', '--json'])).json as PgItem[]
    expect(replica).toMatchObject({name: 'bp/replica-1', storage: 'fast', status: 'running', replication: {state: 'streaming'}})
    await home.query('bp', 'insert into items select g, null from generate_series(20001, 20100) g')
    expect(await until(async () => (await home.query<{n: number}>('bp/replica-1', 'select count(*)::int as n from items'))[0].n, (n) => n === 20100)).toBe(20100)
    const snapshots = path.join(mount!.dir, 'zenith', 'snapshots')
    expect((await readdir(snapshots)).filter((name) => name.startsWith('bp.replica-1'))).toHaveLength(1)

    const destroyed = await home.ok(['pg', 'destroy', 'bp', '--json'])
    expect(destroyed.json).toMatchObject({name: 'bp', replicasDestroyed: ['bp/replica-1']})
    expect(await list(home)).toEqual([])
    expect((await readdir(snapshots)).filter((name) => name.startsWith('bp.replica-1'))).toEqual([])
  }, 180_000)
})

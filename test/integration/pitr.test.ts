import {readFile, stat} from 'node:fs/promises'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {execa} from 'execa'

import {S3_CREDENTIALS, S3Server} from '../helpers/s3.js'
import {PGBENCH, TestHome} from '../helpers/zenith.js'

/**
 * PITR areas against real postgres with pgbench writing: states recorded at several moments
 * (LSN, time, a digest of every table) must come back exactly from extract-snapshot, from the
 * pg's own storage and from an S3 area (s3rver); targets outside the window create nothing;
 * kill -9 of postgres while archiving loses nothing; gc keeps the window; destroy turns
 * archiving off.
 */
const DIGEST = `select md5(string_agg(x, ',' order by x)) as sum from (
  select 'a' || aid || ':' || abalance as x from pgbench_accounts union all
  select 'h' || tid || ':' || bid || ':' || aid || ':' || delta || ':' || mtime from pgbench_history union all
  select 'e' || id || ':' || note from events) rows`

interface Moment {
  lsn: string
  time: string
  digest: string
}

describe('PITR areas', () => {
  let home: TestHome
  let s3: S3Server
  const env = {...S3_CREDENTIALS}
  const moments: Moment[] = []

  /** pgbench for a while, then one marked row: a moment recorded right after its commit. */
  const writeAndRecord = async (label: string): Promise<Moment> => {
    await execa(PGBENCH, ['-n', '-c', '2', '-t', '150', await home.url('dev')])
    await home.query('dev', `insert into events(note) values ('${label}')`)
    const [row] = await home.query<{lsn: string; time: string}>('dev', "select pg_current_wal_lsn()::text as lsn, to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') as time")
    const [{sum}] = await home.query<{sum: string}>('dev', DIGEST)
    // Commits of the next round must have later times than the recorded one.
    await sleep(20)
    return {lsn: row.lsn, time: row.time, digest: sum}
  }

  const digestOf = async (snapshot: string, port: number): Promise<string> => {
    const pg = `x${port}`
    await home.ok(['pg', 'create', pg, '--snapshot', snapshot, '--port', String(port)])
    try {
      return (await home.query<{sum: string}>(pg, DIGEST))[0].sum
    } finally {
      await home.ok(['pg', 'destroy', pg])
    }
  }

  beforeAll(async () => {
    home = await TestHome.create(8700)
    s3 = await S3Server.start()
    await s3.createBucket('pitr')
    await home.ok(['storage', 'attach', '-t', 's3', '-n', 's3tank', '-c', 'bucket=pitr', '-c', 'prefix=team', '-c', `endpoint=${s3.endpoint}`], {env})
    await home.ok(['pg', 'create', 'dev'])
    await execa(PGBENCH, ['-i', '-s', '1', '-q', await home.url('dev')])
    await home.query('dev', 'create table events (id serial primary key, note text)')
  })

  afterAll(async () => {
    await home?.destroy()
    await s3?.stop()
  })

  test('pitr create turns archiving on (one restart), takes a base, and lists the window', async () => {
    const created = await home.ok(['pitr', 'create', 'week', '--pg', 'dev', '--ttl', '7d', '--json'], {env})
    expect(created.json).toMatchObject({name: 'week', pg: 'dev', storage: 'local', restarted: true, ttl: '7d', sizeLimit: 'inf', status: 'archiving'})
    expect(created.json.from.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/)
    expect(created.json.bases).toHaveLength(1)
    expect(created.json.bases[0].usable).toBe(true)
    // A second area on S3: no second restart, the same segments go to both.
    const second = await home.ok(['pitr', 'create', 'month', '--pg', 'dev', '--storage', 's3tank', '--ttl', '30d', '--size-limit', '10G', '--json'], {env})
    expect(second.json).toMatchObject({name: 'month', storage: 's3tank', restarted: false, sizeLimit: '10G'})
    const [setting] = await home.query<{command: string}>('dev', "select current_setting('archive_command') as command")
    // Files only on the command line: no credentials in `ps` or in the settings.
    expect(setting.command).not.toContain(S3_CREDENTIALS.AWS_SECRET_ACCESS_KEY)
    const config = path.join(home.home, 'pitr', 'dev', 'archive.json')
    expect(setting.command).toContain(config)
    expect((await stat(config)).mode & 0o777).toBe(0o600)
    expect(JSON.parse(await readFile(config, 'utf8')).areas.map((area: {name: string}) => area.name)).toEqual(['month', 'week'])

    const list = await home.ok(['pitr', 'list', '--json'], {env})
    expect(list.json.map((area: {name: string}) => area.name)).toEqual(['month', 'week'])
    const text = await home.ok(['pitr', 'list'], {env})
    expect(text.stdout.split('\n')[0]).toMatch(/^NAME\s+PG\s+STORAGE\s+FROM\s+TO\s+SIZE\s+TTL\s+LIMIT\s+STATUS/)
    const show = await home.ok(['pg', 'show', 'dev', '--json'], {env})
    expect(show.json.pitr.map((group: {storage: string}) => group.storage).sort()).toEqual(['local', 's3tank'])
  })

  test('states recorded under pgbench come back exactly, by LSN and by time, from both areas', async () => {
    for (const label of ['one', 'two', 'three']) moments.push(await writeAndRecord(label))
    // Written after the last moment: every extract must leave it out.
    await home.query('dev', "insert into events(note) values ('later')")
    let port = 8750
    for (const [index, moment] of moments.entries()) {
      const byLsn = await home.ok(['pitr', 'extract-snapshot', 'week', '--lsn', moment.lsn, `at_lsn_${index}`, '--json'], {env})
      expect(byLsn.json.snapshot.name).toBe(`at_lsn_${index}`)
      expect(await digestOf(`at_lsn_${index}`, port++)).toBe(moment.digest)
      await home.ok(['pitr', 'extract-snapshot', 'week', '--time', moment.time, `at_time_${index}`], {env})
      expect(await digestOf(`at_time_${index}`, port++)).toBe(moment.digest)
    }

    const fromS3 = await home.ok(['pitr', 'extract-snapshot', 'month', '--lsn', moments[1].lsn, 'from_s3', '--json'], {env})
    expect(fromS3.json.snapshot.storage).toBe('local')
    expect(await digestOf('from_s3', port++)).toBe(moments[1].digest)
    // The extracted snapshot is an ordinary one: listed, and no temporary record is left.
    const snapshots = (await home.ok(['snapshot', 'list', '--json'])).json.map((item: {name: string}) => item.name)
    expect(snapshots).toEqual(expect.arrayContaining(['at_lsn_0', 'at_time_2', 'from_s3']))
    expect(snapshots.filter((name: string) => name.startsWith('pitr.'))).toEqual([])
  })

  test('a target past the archived WAL of a running pg waits for the archiver instead of failing', async () => {
    await home.query('dev', "insert into events(note) values ('newest')")
    const [{lsn}] = await home.query<{lsn: string}>('dev', 'select pg_current_wal_lsn()::text as lsn')
    const [{sum}] = await home.query<{sum: string}>('dev', DIGEST)
    await home.ok(['pitr', 'extract-snapshot', 'week', '--lsn', lsn, 'newest'], {env})
    expect(await digestOf('newest', 8770)).toBe(sum)
    await home.ok(['pitr', 'extract-snapshot', 'week', '--time', 'now', 'now'], {env})
    expect(await digestOf('now', 8771)).toBe(sum)
  })

  test('targets outside the window are refused with the window in the message, and nothing is created', async () => {
    const before = (await home.ok(['snapshot', 'list', '--json'])).json.length
    const early = await home.run(['pitr', 'extract-snapshot', 'week', '--time', '2001-01-01T00:00:00Z', 'too_early', '--json'], {env})
    expect(early.exitCode).not.toBe(0)
    expect(early.json.error.code).toBe('PITR_TARGET_OUT_OF_RANGE')
    expect(early.json.error.message).toMatch(/window of PITR area week: from [0-9A-F]+\/[0-9A-F]+/)
    const low = await home.run(['pitr', 'extract-snapshot', 'week', '--lsn', '0/10', 'too_low', '--json'], {env})
    expect(low.json.error.code).toBe('PITR_TARGET_OUT_OF_RANGE')
    for (const flags of [['--lsn', 'nope'], ['--time', 'someday'], ['--xid', '-4'], [], ['--lsn', '0/1', '--time', 'now']]) {
      const bad = await home.run(['pitr', 'extract-snapshot', 'week', ...flags, 'bad', '--json'], {env})
      expect(bad.json.error.code).toBe('INVALID_ARGUMENT')
    }

    expect((await home.run(['pitr', 'extract-snapshot', 'nosuch', '--lsn', '0/1', '--json'])).json.error.code).toBe('PITR_NOT_FOUND')
    expect((await home.run(['pitr', 'extract-snapshot', 'week', '--lsn', moments[0].lsn, 'at_lsn_0', '--json'], {env})).json.error.code).toBe('NAME_TAKEN')
    expect((await home.ok(['snapshot', 'list', '--json'])).json.length).toBe(before)
  })

  test('kill -9 of postgres while pgbench writes: archiving catches up after the start, with no gap', async () => {
    const bench = execa(PGBENCH, ['-n', '-c', '2', '-T', '30', await home.url('dev')], {reject: false})
    await sleep(1500)
    const [{lsn}] = await home.query<{lsn: string}>('dev', 'select pg_current_wal_lsn()::text as lsn')
    const dataDir = (await home.ok(['pg', 'show', 'dev', '--json'])).json.dataDir
    const pid = Number((await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0])
    process.kill(pid, 'SIGKILL')
    await bench
    await home.ok(['pg', 'start', 'dev'])
    const [{sum}] = await home.query<{sum: string}>('dev', DIGEST)
    await home.query('dev', "insert into events(note) values ('after the crash')")
    // Everything committed before the kill survived it, and is in the archive: the state at the
    // end of the crashed server's WAL is the one the restarted server had.
    const [{crashEnd}] = await home.query<{crashEnd: string}>('dev', "select redo_lsn::text as \"crashEnd\" from pg_control_checkpoint()")
    await home.ok(['pitr', 'extract-snapshot', 'week', '--lsn', crashEnd, 'after_crash'], {env})
    expect(await digestOf('after_crash', 8772)).toBe(sum)
    await home.ok(['pitr', 'extract-snapshot', 'week', '--lsn', lsn, 'during_bench'], {env})
    const show = await home.ok(['pitr', 'show', 'week', '--json'], {env})
    expect(show.json.gaps).toEqual([])
    expect(show.json.status).toBe('archiving')
  })

  test('pitr gc keeps the window its limits allow: older bases and their WAL go, the newest base always stays', async () => {
    // TTL 7d keeps everything; a 1M size limit keeps only the newest base and its WAL.
    await home.ok(['pitr', 'create', 'tiny', '--pg', 'dev', '--size-limit', '1M'], {env})
    const early = await writeAndRecord('before the second base')
    const second = await home.ok(['pitr', 'gc', 'tiny', '--new-base', '--json'], {env})
    expect(second.json[0].baseTaken).toBe(2)
    expect(second.json[0].basesDropped).toEqual([1])
    expect(second.json[0].overLimit).toBe(true)
    const late = await writeAndRecord('after the second base')
    const shown = (await home.ok(['pitr', 'show', 'tiny', '--json'], {env})).json
    expect(shown.bases.map((base: {id: number}) => base.id)).toEqual([2])
    expect(shown.gaps).toEqual([])
    const refused = await home.run(['pitr', 'extract-snapshot', 'tiny', '--lsn', early.lsn, 'gone', '--json'], {env})
    expect(refused.json.error.code).toBe('PITR_TARGET_OUT_OF_RANGE')
    await home.ok(['pitr', 'extract-snapshot', 'tiny', '--lsn', late.lsn, 'kept'], {env})
    expect(await digestOf('kept', 8773)).toBe(late.digest)
    // The other areas keep theirs (a 7-day TTL, 10G): no base goes there (only WAL from before the first base).
    const week = await home.ok(['pitr', 'gc', 'week', '--json'], {env})
    expect(week.json[0].basesDropped).toEqual([])
    await home.ok(['pitr', 'extract-snapshot', 'week', '--lsn', early.lsn, 'early'], {env})
    expect(await digestOf('early', 8774)).toBe(early.digest)
  })

  test('a checkout moves the pg to a new timeline: archiving goes on, both histories stay extractable', async () => {
    await home.ok(['snapshot', 'create', 'dev@fork-point'])
    const old = await writeAndRecord('on the old timeline')
    await home.ok(['pg', 'checkout', 'dev@fork-point'], {env})
    const fresh = await writeAndRecord('on the new timeline')
    await home.ok(['pitr', 'extract-snapshot', 'week', '--lsn', fresh.lsn, 'new_timeline'], {env})
    expect(await digestOf('new_timeline', 8775)).toBe(fresh.digest)
    await home.ok(['pitr', 'extract-snapshot', 'week', '--time', old.time, 'old_timeline'], {env})
    expect(await digestOf('old_timeline', 8776)).toBe(old.digest)
    const show = (await home.ok(['pitr', 'show', 'week', '--json'], {env})).json
    expect(show.status).toBe('archiving')
    expect(show.timelines.length).toBeGreaterThanOrEqual(2)
    expect(show.timeline).toBe(Math.max(...show.timelines))
  })

  test('the archive command accepts a segment sent again with the same bytes and refuses other bytes under its name', async () => {
    const folder = path.join(home.home, 'storages', 'local', 'wal', 'week')
    const {readdir, writeFile: write, copyFile, chmod, mkdtemp, rm} = await import('node:fs/promises')
    const name = (await readdir(folder)).filter((item) => /^[0-9A-F]{24}$/.test(item)).sort()[0]
    const stored = await readFile(path.join(folder, name))
    const scratch = await mkdtemp(path.join(home.home, 'resend-'))
    await chmod(scratch, 0o755)
    const agent = [process.execPath, path.join(home.home, 'pitr', 'agent', 'main.js'), 'archive', path.join(home.home, 'pitr', 'dev', 'archive.json')]
    const asPostgres = (file: string) => execa(process.getuid?.() === 0 ? 'runuser' : agent[0], process.getuid?.() === 0 ? ['-u', 'postgres', '--', ...agent, file, name] : [...agent.slice(1), file, name], {reject: false})
    try {
      await copyFile(path.join(folder, name), path.join(scratch, name))
      await chmod(path.join(scratch, name), 0o644)
      expect((await asPostgres(path.join(scratch, name))).exitCode).toBe(0)
      const changed = Buffer.from(stored)
      changed[100] ^= 0xFF
      await write(path.join(scratch, name), changed)
      const refused = await asPostgres(path.join(scratch, name))
      expect(refused.exitCode).toBe(1)
      expect(refused.stderr).toContain('different content')
      expect((await readFile(path.join(folder, name))).equals(stored)).toBe(true)
    } finally {
      await rm(scratch, {recursive: true, force: true})
    }
  })

  test('pg destroy refuses while the pg has areas; pitr destroy deletes an area and turns archiving off with the last one', async () => {
    const refused = await home.run(['pg', 'destroy', 'dev', '--json'], {env})
    expect(refused.json.error.code).toBe('HAS_DEPENDENTS')
    await home.ok(['pitr', 'destroy', 'month'], {env})
    await home.ok(['pitr', 'destroy', 'tiny'], {env})
    const destroyed = await home.ok(['pitr', 'destroy', 'week', '--json'], {env})
    expect(destroyed.json).toEqual({name: 'week', archivingStopped: true})
    expect((await home.ok(['pitr', 'list', '--json'])).json).toEqual([])
    await home.ok(['pg', 'restart', 'dev'])
    const [{mode}] = await home.query<{mode: string}>('dev', "select current_setting('archive_mode') as mode")
    expect(mode).toBe('off')
    // Snapshots extracted from it stay: they are ordinary snapshots.
    expect((await home.ok(['snapshot', 'list', '--json'])).json.map((item: {name: string}) => item.name)).toContain('at_lsn_0')
  })
})

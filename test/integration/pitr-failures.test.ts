import {copyFile, chmod, mkdtemp, readFile, readdir, rm, stat, statfs} from 'node:fs/promises'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {ListObjectsV2Command} from '@aws-sdk/client-s3'
import {execa, execaSync} from 'execa'

import {type LoopMount, canMount, mountLoop} from '../helpers/loop.js'
import {S3_CREDENTIALS, S3Server} from '../helpers/s3.js'
import {PGBENCH, TestHome, expectConsistentPgbenchCopy, isRoot} from '../helpers/zenith.js'

/**
 * Issue 12, "no WAL lost": a full disk or an unreachable S3 endpoint under one area of a pg
 * delays that area's archiving while its other area's window keeps advancing; afterwards it
 * catches up with no gap (by `pitr gc`, or by the archive command itself). kill -9 of postgres
 * and of the archive command mid-segment loses nothing either. Segment names are checked for
 * contiguity from the files themselves, not only from zenith's own `gaps`.
 */
const hasExt4Tools = execaSync('which', ['mkfs.ext4', 'fallocate', 'dd'], {reject: false}).exitCode === 0
const describeFullDisk = canMount && hasExt4Tools ? describe : describe.skip
const SEGMENT = /^[0-9A-F]{24}$/

interface AreaInfo {
  name: string
  status: string
  lastError?: string
  to?: {lsn: string; time?: string}
}

function lsnValue(lsn: string): bigint {
  const [high, low] = lsn.split('/')
  return (BigInt(`0x${high}`) << 32n) | BigInt(`0x${low}`)
}

/** The segment after `name` (16 MiB segments: 256 per log id). */
function nextSegment(name: string): string {
  const timeline = name.slice(0, 8)
  let log = Number.parseInt(name.slice(8, 16), 16)
  let seg = Number.parseInt(name.slice(16), 16) + 1
  if (seg === 0x100) {
    log++
    seg = 0
  }

  return `${timeline}${log.toString(16).toUpperCase().padStart(8, '0')}${seg.toString(16).toUpperCase().padStart(8, '0')}`
}

/** The segments of one timeline missing between the first and the last of `names`. */
function missingSegments(names: string[]): string[] {
  const sorted = names.filter((name) => SEGMENT.test(name)).sort()
  const missing: string[] = []
  const present = new Set(sorted)
  for (let name = sorted[0]; name && name < sorted.at(-1)!; name = nextSegment(name)) if (!present.has(name)) missing.push(name)
  return missing
}

async function until(condition: () => Promise<boolean>, timeoutMs = 60_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(100)
  }
}

async function segmentsIn(folder: string): Promise<string[]> {
  return (await readdir(folder).catch(() => [] as string[])).filter((name) => SEGMENT.test(name)).sort()
}

describe('PITR failure guarantees', () => {
  let home: TestHome
  const env = {...S3_CREDENTIALS}
  const localWal = (area: string) => path.join(home.home, 'storages', 'local', 'wal', area)
  const spoolOf = (pg: string, area: string) => path.join(home.home, 'pitr', pg, area, 'spool')

  const areas = async (): Promise<Record<string, AreaInfo>> =>
    Object.fromEntries(((await home.ok(['pitr', 'list', '--json'], {env})).json as AreaInfo[]).map((area) => [area.name, area]))

  /** One marked row, then a WAL switch: returns the switched segment once postgres reports it archived. */
  const switchAndArchive = async (pg: string, note: string): Promise<string> => {
    await home.query(pg, `insert into events(note) values ('${note}')`)
    const [{file}] = await home.query<{file: string}>(pg, 'select pg_walfile_name(pg_switch_wal()) as file')
    await until(async () => {
      const [{last}] = await home.query<{last: string | null}>(pg, 'select last_archived_wal as last from pg_stat_archiver')
      return last !== null && last >= file
    }, 60_000, `postgres to archive ${file}`)
    return file
  }

  /** A state to extract later: the time right after its last commit, and the notes it holds. */
  const moment = async (pg: string): Promise<{time: string; notes: string[]}> => {
    const [{time}] = await home.query<{time: string}>(pg, "select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') as time")
    const notes = (await home.query<{note: string}>(pg, 'select note from events order by id')).map((row) => row.note)
    await sleep(20)
    return {time, notes}
  }

  const notesOf = async (snapshot: string, port: number): Promise<string[]> => {
    const pg = `x${port}`
    await home.ok(['pg', 'create', pg, '--snapshot', snapshot, '--port', String(port)])
    try {
      return (await home.query<{note: string}>(pg, 'select note from events order by id')).map((row) => row.note)
    } finally {
      await home.ok(['pg', 'destroy', pg])
    }
  }

  /** What a failed extract must not leave: a snapshot record, a temporary volume or instance folder. */
  const extractLeftovers = async (): Promise<string[]> => {
    const snapshots = ((await home.ok(['snapshot', 'list', '--json'])).json as Array<{name: string}>).map((item) => `snapshot ${item.name}`)
    const volumes = (await readdir(path.join(home.home, 'storages', 'local', 'volumes')).catch(() => [] as string[])).filter((name) => name.startsWith('.temp-'))
    return [...snapshots, ...volumes]
  }

  const createPg = async (name: string): Promise<void> => {
    await home.ok(['pg', 'create', name])
    await execa(PGBENCH, ['-i', '-s', '1', '-q', await home.url(name)])
    await home.query(name, 'create table events (id serial primary key, note text)')
  }

  beforeAll(async () => {
    home = await TestHome.create(8600)
  })

  afterAll(async () => {
    await home?.destroy()
  }, 120_000)

  describeFullDisk('an area on a full disk (ext4 loop mount)', () => {
    let mount: LoopMount | undefined
    let farDir: string
    const filler = () => path.join(mount!.dir, 'filler')

    beforeAll(async () => {
      mount = await mountLoop('ext4', 400)
      await home.ok(['storage', 'attach', '-t', 'dir', '-n', 'disk', '-c', `path=${path.join(mount.dir, 'zenith')}`])
      farDir = path.join(mount.dir, 'zenith', 'wal', 'far')
      await createPg('full')
      await home.ok(['pitr', 'create', 'near', '--pg', 'full'])
      await home.ok(['pitr', 'create', 'far', '--pg', 'full', '--storage', 'disk'])
    }, 240_000)

    afterAll(async () => {
      // The pg archives into the mount: stopped first, so that it can be unmounted.
      await home.run(['pitr', 'destroy', 'far'])
      await home.run(['pg', 'stop', 'full', '--mode', 'immediate'])
      await mount?.unmount()
    }, 120_000)

    test('the full area fails and spools, the other keeps its window advancing; after space is freed, gc catches it up with no gap', async () => {
      // Filled as root, so the blocks ext4 reserves for root are taken too.
      const {bsize, bfree} = await statfs(mount!.dir)
      await execa('fallocate', ['-l', String(Math.max(0, bfree - 8192) * bsize), filler()])
      await execa('dd', ['if=/dev/zero', `of=${filler()}-rest`, 'bs=64k'], {reject: false})
      const before = await areas()
      const outage: string[] = []
      for (let i = 0; i < 3; i++) outage.push(await switchAndArchive('full', `outage ${i}`))

      const during = await areas()
      expect(during.near.status).toBe('archiving')
      expect(lsnValue(during.near.to!.lsn)).toBeGreaterThan(lsnValue(before.near.to!.lsn))
      expect((await segmentsIn(localWal('near'))).slice(-3)).toEqual(outage)
      expect(during.far.status).toBe('failing')
      expect(during.far.lastError).toMatch(/no space left on device/i)
      expect(during.far.to!.lsn).toBe(before.far.to!.lsn)
      expect((await segmentsIn(farDir)).filter((name) => outage.includes(name))).toEqual([])
      const spooled = await segmentsIn(spoolOf('full', 'far'))
      expect(spooled).toEqual(expect.arrayContaining(outage))
      expect((await home.ok(['pitr', 'show', 'far', '--json'])).json.backlog).toBe(spooled.length)
      const text = await home.ok(['pitr', 'list'])
      expect(text.stdout).toMatch(/^far\s.*failing: .*no space left on device/im)

      // A target beyond the failing area's window: the archiver cannot bring it, nothing is made.
      const leftBefore = await extractLeftovers()
      const [{lsn}] = await home.query<{lsn: string}>('full', 'select pg_current_wal_lsn()::text as lsn')
      const refused = await home.run(['pitr', 'extract-snapshot', 'far', '--lsn', lsn, '--wait', '5', 'too_new', '--json'])
      expect(refused.json?.error?.code).toBe('PITR_ARCHIVE_FAILING')
      expect(refused.json.error.message).toMatch(/no space left on device/i)
      expect(await extractLeftovers()).toEqual(leftBefore)

      // gc on the still full area says why the spool did not go, and keeps it.
      const stuck = await home.ok(['pitr', 'gc', 'far', '--json'])
      expect(stuck.json[0].spoolSent).toBe(0)
      expect(stuck.json[0].spoolError).toMatch(/no space left on device/i)
      const waiting = await segmentsIn(spoolOf('full', 'far'))
      expect(waiting.length).toBeGreaterThanOrEqual(spooled.length)
      expect((await home.ok(['pitr', 'show', 'far', '--json'])).json.backlog).toBe(waiting.length)

      await rm(filler())
      await rm(`${filler()}-rest`)
      const caughtUp = await home.ok(['pitr', 'gc', 'far', '--json'])
      expect(caughtUp.json[0]).toMatchObject({spoolSent: waiting.length})
      expect(caughtUp.json[0].spoolError).toBeUndefined()
      expect(await segmentsIn(spoolOf('full', 'far'))).toEqual([])
      const shown = (await home.ok(['pitr', 'show', 'far', '--json'])).json
      expect(shown.backlog).toBe(0)
      expect(shown.status).toBe('archiving')
      expect(shown.gaps).toEqual([])
      expect(await segmentsIn(farDir)).toEqual(expect.arrayContaining(waiting))

      if (isRoot) {
        // zenith (root) stored those segments; the archive command (the postgres OS user) must
        // still be able to read them: postgres sends a segment again when a crash lost its .done.
        const uid = Number((await execa('id', ['-u', 'postgres'])).stdout)
        for (const name of await readdir(farDir)) expect({name, uid: (await stat(path.join(farDir, name))).uid}).toEqual({name, uid})
        const scratch = await mkdtemp(path.join(home.home, 'resend-'))
        try {
          await chmod(scratch, 0o755)
          const resent = path.join(scratch, waiting[0])
          await copyFile(path.join(farDir, waiting[0]), resent)
          await chmod(resent, 0o644)
          const agent = await execa('runuser', ['-u', 'postgres', '--', process.execPath, path.join(home.home, 'pitr', 'agent', 'main.js'), 'archive',
            path.join(home.home, 'pitr', 'full', 'archive.json'), resent, waiting[0]], {reject: false})
          expect(agent.stderr).toBe('')
          expect(agent.exitCode).toBe(0)
        } finally {
          await rm(scratch, {recursive: true, force: true})
        }

        expect(await segmentsIn(spoolOf('full', 'far'))).toEqual([])
      }

      // The archive command goes on into the area by itself.
      const after = await switchAndArchive('full', 'after the outage')
      const state = await moment('full')
      expect(await segmentsIn(farDir)).toContain(after)
      const names = await segmentsIn(farDir)
      expect(missingSegments(names)).toEqual([])
      expect(names[0] < outage[0]).toBe(true)
      const last = (await areas()).far
      expect(last.status).toBe('archiving')
      expect(last.lastError).toBeUndefined()

      await home.ok(['pitr', 'extract-snapshot', 'far', '--time', state.time, 'far_after'])
      const notes = await notesOf('far_after', 8640)
      expect(notes).toEqual(state.notes)
      expect(notes).toEqual(expect.arrayContaining(['outage 0', 'outage 1', 'outage 2', 'after the outage']))
    }, 420_000)
  })

  describe('an area on an S3 endpoint that stops answering', () => {
    let s3: S3Server

    beforeAll(async () => {
      s3 = await S3Server.start()
      await s3.createBucket('pitr')
      await home.ok(['storage', 'attach', '-t', 's3', '-n', 'cloud', '-c', 'bucket=pitr', '-c', 'prefix=team', '-c', `endpoint=${s3.endpoint}`], {env})
      await createPg('sky')
      await home.ok(['pitr', 'create', 'ground', '--pg', 'sky'], {env})
      await home.ok(['pitr', 'create', 'remote', '--pg', 'sky', '--storage', 'cloud'], {env})
    }, 240_000)

    afterAll(async () => {
      await home.run(['pg', 'stop', 'sky', '--mode', 'immediate'])
      await s3?.stop()
    }, 60_000)

    const remoteSegments = async (): Promise<string[]> => {
      const names: string[] = []
      let token: string | undefined
      do {
        const page = await s3.client().send(new ListObjectsV2Command({Bucket: 'pitr', Prefix: 'team/wal/remote/', ContinuationToken: token}))
        for (const item of page.Contents ?? []) names.push(item.Key!.slice('team/wal/remote/'.length))
        token = page.NextContinuationToken
      } while (token)
      return names.filter((name) => SEGMENT.test(name)).sort()
    }

    test('while the endpoint refuses connections the local area advances; the S3 area catches up by itself afterwards, with no gap', async () => {
      await s3.pause()
      const before = await areas()
      const outage: string[] = []
      for (let i = 0; i < 3; i++) outage.push(await switchAndArchive('sky', `outage ${i}`))
      const during = await areas()
      expect(during.ground.status).toBe('archiving')
      expect(lsnValue(during.ground.to!.lsn)).toBeGreaterThan(lsnValue(before.ground.to!.lsn))
      expect(during.remote.status).toBe('failing')
      expect(during.remote.lastError).toMatch(/127\.0\.0\.1|ECONNREFUSED|connect/i)
      expect(await segmentsIn(spoolOf('sky', 'remote'))).toEqual(expect.arrayContaining(outage))
      expect((await home.ok(['pitr', 'show', 'remote', '--json'], {env})).json.backlog).toBe((await segmentsIn(spoolOf('sky', 'remote'))).length)

      await s3.resume()
      // No gc: the next WAL file's archive command sends the spool first, in order.
      const after = await switchAndArchive('sky', 'after the outage')
      const state = await moment('sky')
      const names = await remoteSegments()
      expect(names).toEqual(expect.arrayContaining([...outage, after]))
      expect(missingSegments(names)).toEqual([])
      expect(await segmentsIn(spoolOf('sky', 'remote'))).toEqual([])
      const shown = (await home.ok(['pitr', 'show', 'remote', '--json'], {env})).json
      expect(shown).toMatchObject({status: 'archiving', backlog: 0, gaps: []})

      await home.ok(['pitr', 'extract-snapshot', 'remote', '--time', state.time, 'remote_after'], {env})
      expect(await notesOf('remote_after', 8641)).toEqual(state.notes)
    }, 300_000)
  })

  describe('kill -9 of postgres and of the archive command mid-segment', () => {
    beforeAll(async () => {
      await createPg('crash')
      await home.ok(['pitr', 'create', 'kept', '--pg', 'crash'])
    }, 240_000)

    afterAll(async () => {
      await home.run(['pg', 'stop', 'crash', '--mode', 'immediate'])
    }, 60_000)

    /** Archive commands of the pg `crash` running now (node .../main.js archive .../crash/archive.json ...). */
    const agents = async (): Promise<number[]> => {
      const config = path.join(home.home, 'pitr', 'crash', 'archive.json')
      const found: number[] = []
      for (const entry of (await readdir('/proc')).filter((item) => /^\d+$/.test(item))) {
        const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0')
        if (cmdline.includes('archive') && cmdline.includes(config)) found.push(Number(entry))
      }

      return found
    }

    test('a target past what was archived is out of range while the pg is down; after pg start archiving resumes with no gap', async () => {
      const dataDir = (await home.ok(['pg', 'show', 'crash', '--json'])).json.dataDir
      const postmaster = Number((await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0])
      const bench = execa(PGBENCH, ['-n', '-c', '2', '-T', '60', await home.url('crash')], {reject: false})
      let lsn = ''
      let killed: number[] = []
      try {
        await until(async () => (await agents()).length > 0, 50_000, 'an archive command to run')
        ;[{lsn}] = await home.query<{lsn: string}>('crash', 'select pg_current_wal_lsn()::text as lsn')
        killed = await agents()
        for (const pid of [...killed, postmaster]) process.kill(pid, 'SIGKILL')
      } finally {
        bench.kill('SIGKILL')
        await bench
      }

      await until(async () => !(await home.ok(['pg', 'list', '--json'])).json.some((pg: {name: string; status: string}) => pg.name === 'crash' && pg.status === 'running'),
        30_000, 'the pg to be seen down')
      const leftBefore = await extractLeftovers()
      const refused = await home.run(['pitr', 'extract-snapshot', 'kept', '--lsn', lsn, 'too_far', '--json'])
      expect(refused.json?.error?.code).toBe('PITR_TARGET_OUT_OF_RANGE')
      expect(refused.json.error.message).toMatch(/outside the window of PITR area kept/)
      expect(await extractLeftovers()).toEqual(leftBefore)

      await home.ok(['pg', 'start', 'crash'])
      await home.ok(['pitr', 'extract-snapshot', 'kept', '--lsn', lsn, 'at_kill'])
      const names = await segmentsIn(localWal('kept'))
      expect(missingSegments(names)).toEqual([])
      const shown = (await home.ok(['pitr', 'show', 'kept', '--json'])).json
      expect(shown).toMatchObject({status: 'archiving', gaps: []})
      await home.ok(['pg', 'create', 'atkill', '--snapshot', 'at_kill', '--port', '8642'])
      try {
        await expectConsistentPgbenchCopy(home, 'atkill')
      } finally {
        await home.ok(['pg', 'destroy', 'atkill'])
      }
    }, 300_000)
  })
})

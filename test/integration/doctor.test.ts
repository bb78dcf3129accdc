/**
 * `zenith doctor` through the built CLI against real postgres, real folders and a real
 * S3-protocol server (s3rver), in temporary ZENITH_HOMEs on ports 9800-9849.
 * Build first: npm run build
 */
import {existsSync} from 'node:fs'
import {chmod, mkdir, mkdtemp, rm, symlink, writeFile} from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'

import {execa} from 'execa'

import {type LoopMount, canMount, mountLoop} from '../helpers/loop.js'
import {S3_CREDENTIALS, S3Server} from '../helpers/s3.js'
import {type RunResult, TestHome, isRoot} from '../helpers/zenith.js'

const PG_BIN = '/usr/lib/postgresql/15/bin'
/** `ok`, `warn` or `FAIL` in a column four wide, two spaces, the check's name, its detail. */
const LINE = /^(ok(?= {2})|warn|FAIL) {2,4}(\S[^:]*): (.+)$/

interface Check {
  name: string
  status: 'ok' | 'warn' | 'fail'
  detail: string
  fix?: string
}

const homes: TestHome[] = []
let scratch: string

beforeAll(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'zenith-doctor-'))
  // As root, postgres runs as another OS user, which must be able to enter the storage folders.
  await chmod(scratch, 0o711)
})

afterAll(async () => {
  const results = await Promise.allSettled(homes.map((home) => home.destroy()))
  await rm(scratch, {recursive: true, force: true})
  const failed = results.filter((result) => result.status === 'rejected')
  if (failed.length > 0) throw new Error(`cleanup failed: ${failed.map((result) => String((result as PromiseRejectedResult).reason)).join('; ')}`)
})

async function newHome(firstPort: number): Promise<TestHome> {
  const home = await TestHome.create(firstPort)
  homes.push(home)
  return home
}

/** The checks of a human report, each with the fix line under it. */
function parseLines(stdout: string): Check[] {
  const checks: Check[] = []
  for (const line of stdout.split('\n').filter(Boolean)) {
    const fix = /^ {6}fix: (.+)$/.exec(line)
    if (fix) {
      expect(checks.length).toBeGreaterThan(0)
      checks.at(-1)!.fix = fix[1]
      continue
    }

    const match = LINE.exec(line)
    if (!match || line.slice(6, 7) === ' ') throw new Error(`not a doctor line: ${JSON.stringify(line)}\n${stdout}`)
    checks.push({name: match[2], status: match[1] === 'FAIL' ? 'fail' : match[1] as Check['status'], detail: match[3]})
  }

  return checks
}

/** Every check has the documented shape: a name, a status, a detail, and a fix for every failure. */
function expectReportShape(json: {ok: boolean; checks: Check[]}): void {
  expect(typeof json.ok).toBe('boolean')
  expect(json.checks.length).toBeGreaterThan(0)
  for (const check of json.checks) {
    expect(Object.keys(check).sort()).toEqual(check.fix === undefined ? ['detail', 'name', 'status'] : ['detail', 'fix', 'name', 'status'])
    expect(['ok', 'warn', 'fail']).toContain(check.status)
    expect(check.detail).not.toBe('')
    if (check.status === 'fail') expect(check.fix).toEqual(expect.any(String))
  }

  expect(json.ok).toBe(json.checks.every((check) => check.status !== 'fail'))
}

function named(checks: Check[], name: string): Check {
  const check = checks.find((item) => item.name === name)
  if (!check) throw new Error(`no check "${name}" in ${checks.map((item) => item.name).join(', ')}`)
  return check
}

/** A failed doctor: exit 6 (the environment), DOCTOR_FAILED with the first fix as hint, and the checks printed with it. */
function expectFailedJson(result: RunResult, failing: string[]): Check[] {
  expect(result.exitCode).toBe(6)
  expectReportShape(result.json)
  expect(result.json.ok).toBe(false)
  const failed = (result.json.checks as Check[]).filter((check) => check.status === 'fail')
  expect(failed.map((check) => check.name)).toEqual(failing)
  expect(result.json.error).toEqual({
    code: 'DOCTOR_FAILED',
    message: `${failed.length} of ${result.json.checks.length} checks failed: ${failing.join(', ')}.`,
    hint: `First fix (${failed[0].name}): ${failed[0].fix}.`,
  })
  return result.json.checks
}

function listen(port: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen({port, host: '127.0.0.1'}, () => resolve(server))
  })
}

describe('zenith doctor', () => {
  let home: TestHome

  beforeAll(async () => {
    home = await newHome(9800)
    await home.ok(['pg', 'create', 'dev'])
  })

  test('a healthy home with a running pg: exit 0, every check ok or warn, one line each', async () => {
    const started = Date.now()
    const result = await home.run(['doctor'])
    expect(result.exitCode).toBe(0)
    expect(result.stderr).toBe('')
    expect(Date.now() - started).toBeLessThan(10_000)
    const checks = parseLines(result.stdout)
    expect(checks.filter((check) => check.status === 'fail')).toEqual([])
    // A warning comes with its fix.
    for (const check of checks.filter((item) => item.status === 'warn')) expect(check.fix).toEqual(expect.any(String))
    expect(checks.map((check) => check.name)).toEqual(expect.arrayContaining(['home', 'store', 'user', 'postgres 15', 'storage local', 'storage local space', 'pg dev', 'sockets', 'ssh']))
    expect(named(checks, 'postgres 15').detail).toMatch(new RegExp(`^15\\.\\d+ in ${PG_BIN}, the default: initdb, pg_ctl, postgres, pg_basebackup, psql, pg_dump$`))
    expect(named(checks, 'pg dev').detail).toMatch(/^running \(pid \d+\); port 980\d is held by its own postgres$/)
    expect(named(checks, 'store').detail).toContain('schema version 2; 1 storage, 1 pg, 0 snapshots, 0 PITR areas')
    expect(named(checks, 'user').detail).toMatch(isRoot ? /^running as root: postgres runs as the OS user postgres/ : /not root: postgres runs as this user too$/)
  })

  test('--json: {ok, checks}, the same checks as the lines', async () => {
    const [json, text] = await Promise.all([home.run(['doctor', '--json']), home.run(['doctor'])])
    expect(json.exitCode).toBe(0)
    expect(Object.keys(json.json).sort()).toEqual(['checks', 'ok'])
    expectReportShape(json.json)
    expect(json.json.ok).toBe(true)
    expect((json.json.checks as Check[]).map((check) => [check.name, check.status])).toEqual(parseLines(text.stdout).map((check) => [check.name, check.status]))
  })

  test('a stopped pg whose port another process holds: FAIL with the way out', async () => {
    const other = await newHome(9810)
    await other.ok(['pg', 'create', 'held', '--no-start'])
    const {port} = (await other.ok(['pg', 'show', 'held', '--json'])).json
    const squatter = await listen(port)
    try {
      const result = await other.run(['doctor', '--json'])
      const pgCheck = named(expectFailedJson(result, ['pg held']), 'pg held')
      expect(pgCheck.detail).toBe(`stopped; its port ${port} is held by another process, so it cannot start there`)
      expect(pgCheck.fix).toContain('zenith pg start held --port N')
    } finally {
      await new Promise((resolve) => squatter.close(resolve))
    }

    expect(named((await other.ok(['doctor', '--json'])).json.checks, 'pg held').detail).toBe(`stopped; port ${port} is free`)
  })
})

describe('zenith doctor finds what is missing', () => {
  test('postgres binaries: ZENITH_PG_BIN at a folder without initdb gives a FAIL line with its fix, exit 6', async () => {
    const home = await newHome(9820)
    await home.ok(['pg', 'create', 'dev', '--no-start'])
    const bin = path.join(scratch, 'bin-without-initdb')
    await mkdir(bin)
    await symlink(path.join(PG_BIN, 'psql'), path.join(bin, 'psql'))
    const env = {ZENITH_PG_BIN: bin}

    const text = await home.run(['doctor'], {env})
    expect(text.exitCode).toBe(6)
    const checks = parseLines(text.stdout)
    expect(named(checks, 'postgres')).toEqual({
      name: 'postgres', status: 'fail',
      detail: `ZENITH_PG_BIN=${bin} has no PostgreSQL server binaries (missing initdb, pg_ctl, postgres)`,
      fix: expect.stringMatching(new RegExp(`^unset ZENITH_PG_BIN \\(zenith then finds PostgreSQL 15\\.\\d+ in ${PG_BIN}\\)`)),
    })
    // The pg that needs them fails too; the error names both and gives the first fix.
    expect(named(checks, 'pg dev').status).toBe('fail')
    expect(text.stdout).toMatch(/^FAIL {2}postgres: .+\n {6}fix: unset ZENITH_PG_BIN/m)
    expect(text.stderr).toContain('Error: 2 of ')
    expect(text.stderr).toContain('checks failed: postgres, pg dev.')
    expect(text.stderr).toContain('Hint: First fix (postgres): unset ZENITH_PG_BIN')

    expectFailedJson(await home.run(['doctor', '--json'], {env}), ['postgres', 'pg dev'])
  })

  test('a storage folder that was removed: FAIL with its fix; the others still ok', async () => {
    const home = await newHome(9825)
    const share = path.join(scratch, 'share')
    const other = path.join(scratch, 'other')
    await home.ok(['storage', 'attach', '-t', 'dir', '-n', 'share', '-c', `path=${share}`])
    await home.ok(['storage', 'attach', '-t', 'local', '-n', 'other', '-c', `path=${other}`])
    const healthy = await home.ok(['doctor', '--json'])
    expect(named(healthy.json.checks, 'storage share')).toMatchObject({status: 'ok', detail: `dir at ${share}: writable`})
    expect(named(healthy.json.checks, 'storage other')).toMatchObject({status: 'ok'})
    expect(named(healthy.json.checks, 'storage share space').detail).toMatch(/^\S+ free of \S+ \(\d+%\)$/)

    await rm(share, {recursive: true, force: true})
    await rm(other, {recursive: true, force: true})
    const text = await home.run(['doctor'])
    expect(text.exitCode).toBe(6)
    expect(text.stdout).toContain(`FAIL  storage share: dir at ${share}: its folder is missing\n      fix: Mount or restore ${share} (mkdir -p ${share} if it should start empty), or forget the storage: zenith storage detach share\n`)
    expect(text.stdout).toMatch(new RegExp(`^FAIL {2}storage other: local, \\w+ at ${other}: its folder is missing$`, 'm'))
    expect(text.stdout).toMatch(/^ok {4}storage local: /m)
    const checks = expectFailedJson(await home.run(['doctor', '--json']), ['storage other', 'storage share'])
    // A missing folder has no free space to report.
    expect(checks.map((check) => check.name)).not.toContain('storage share space')
    // Doctor repairs and creates nothing: the folders stay missing.
    expect(existsSync(share)).toBe(false)
    expect(existsSync(other)).toBe(false)
  })

  test('an s3 storage without credentials, or whose server stopped: FAIL within a few seconds', async () => {
    const s3 = await S3Server.start()
    const home = await newHome(9830)
    try {
      await s3.createBucket('doctor')
      await home.ok(['storage', 'attach', '-t', 's3', '-n', 'tank', '-c', 'bucket=doctor', '-c', `endpoint=${s3.endpoint}`], {env: S3_CREDENTIALS})
      const reachable = await home.ok(['doctor', '--json'], {env: S3_CREDENTIALS})
      expect(named(reachable.json.checks, 'storage tank')).toMatchObject({
        status: 'ok', detail: expect.stringMatching(new RegExp(`^s3 at s3://doctor: endpoint ${s3.endpoint}: credentials from the environment \\(AWS_ACCESS_KEY_ID\\), the bucket answers \\(\\d+ ms\\)$`)),
      })
      // No credentials anywhere the SDK looks: a FAIL that says so, without waiting for a metadata service.
      const noCredentials = {
        AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_SESSION_TOKEN: '', AWS_PROFILE: '',
        AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/credentials', AWS_CONFIG_FILE: '/nonexistent/config', AWS_EC2_METADATA_DISABLED: 'true',
      }
      const anonymous = named(expectFailedJson(await home.run(['doctor', '--json'], {env: noCredentials}), ['storage tank']), 'storage tank')
      expect(anonymous.detail).toContain(`endpoint ${s3.endpoint}: no S3 credentials found`)
      expect(anonymous.fix).toBe('Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) in the environment of zenith')

      await s3.pause()
      const started = Date.now()
      const result = await home.run(['doctor', '--json'], {env: S3_CREDENTIALS})
      expect(Date.now() - started).toBeLessThan(8000)
      const tank = named(expectFailedJson(result, ['storage tank']), 'storage tank')
      expect(tank.detail).toMatch(new RegExp(`^s3 at s3://doctor: endpoint ${s3.endpoint}: (Cannot reach the S3 server|the S3 server did not answer)`))
      expect(tank.fix).toEqual(expect.any(String))
    } finally {
      await s3.stop()
    }
  })

  test('a corrupt store: FAIL with its fix, and no storage or pg checks', async () => {
    const home = await newHome(9835)
    await home.ok(['storage', 'list'])
    await writeFile(path.join(home.home, 'state.json'), '{"version": 2, "pgs": {')
    const checks = expectFailedJson(await home.run(['doctor', '--json']), ['store'])
    expect(named(checks, 'store').detail).toBe(`The zenith store ${path.join(home.home, 'state.json')} is corrupt: it is not valid JSON`)
    expect(checks.some((check) => check.name.startsWith('storage ') || check.name.startsWith('pg '))).toBe(false)
  })

  test('a home that does not exist yet is reported, not created', async () => {
    const home = await newHome(9840)
    await rm(home.home, {recursive: true, force: true})
    const result = await home.ok(['doctor', '--json'])
    expect(named(result.json.checks, 'home')).toMatchObject({status: 'ok', detail: expect.stringContaining('does not exist yet; the first zenith command makes it')})
    expect(existsSync(home.home)).toBe(false)
  })

  ;(isRoot ? test : test.skip)('as root, an OS user for postgres that does not exist: FAIL with useradd', async () => {
    const home = await newHome(9845)
    await home.ok(['storage', 'list'])
    const checks = expectFailedJson(await home.run(['doctor', '--json'], {env: {ZENITH_PG_USER: 'zenith-no-such-user'}}), ['user'])
    expect(named(checks, 'user').fix).toContain('useradd --system zenith-no-such-user')
  })

  ;(isRoot ? test : test.skip)('as root, a storage folder the postgres OS user cannot enter: FAIL with the chmod that opens it', async () => {
    const home = await newHome(9848)
    const parent = path.join(scratch, 'closed')
    await mkdir(parent, {mode: 0o711})
    await home.ok(['storage', 'attach', '-t', 'local', '-n', 'closed', '-c', `path=${path.join(parent, 'zenith')}`])
    await chmod(parent, 0o700)
    const user = named(expectFailedJson(await home.run(['doctor', '--json']), ['user']), 'user')
    expect(user.detail).toMatch(new RegExp(`^running as root: postgres runs as the OS user postgres \\(uid \\d+, the default\\), which cannot enter ${path.join(parent, 'zenith')}$`))
    expect(user.fix).toBe(`chmod o+x ${parent}`)
  })
})

;(canMount ? describe : describe.skip)('zenith doctor on loop-mounted btrfs and XFS (root)', () => {
  const mounts: LoopMount[] = []

  afterAll(async () => {
    for (const mount of mounts) await mount.unmount()
  })

  test('what each filesystem offers, low space as a warning, and a filesystem that is no longer mounted as a FAIL', async () => {
    const [btrfs, xfs] = await Promise.all([mountLoop('btrfs', 256), mountLoop('xfs', 320)])
    mounts.push(btrfs, xfs)
    const home = await newHome(9847)
    await home.ok(['storage', 'attach', '-t', 'btrfs', '-n', 'fast', '-c', `path=${btrfs.dir}`])
    await home.ok(['storage', 'attach', '-t', 'local', '-n', 'xfs', '-c', `path=${xfs.dir}`])

    const mounted = await home.ok(['doctor', '--json'])
    expect(named(mounted.json.checks, 'storage fast')).toEqual({name: 'storage fast', status: 'ok',
      detail: `btrfs at ${btrfs.dir}: writable; btrfs subvolumes and snapshots, quota groups on (exact snapshot sizes)`})
    expect(named(mounted.json.checks, 'storage xfs')).toEqual({name: 'storage xfs', status: 'ok', detail: `local, reflink at ${xfs.dir}: writable; reflink copies (blocks shared)`})
    // A few hundred MiB: under the 1 GiB that a warning starts at; warnings do not fail the report.
    expect(named(mounted.json.checks, 'storage fast space')).toMatchObject({status: 'warn', detail: expect.stringMatching(/^only \S+ free of \S+ \(\d+%\)$/), fix: expect.stringContaining('zenith storage show fast')})

    // Unmounted: the folders are still there, empty, on the disk below.
    await execa('umount', [btrfs.dir])
    await execa('umount', [xfs.dir])
    const checks = expectFailedJson(await home.run(['doctor', '--json']), ['storage fast', 'storage xfs'])
    expect(named(checks, 'storage fast')).toMatchObject({detail: `btrfs at ${btrfs.dir}: not on btrfs any more (is its filesystem unmounted?)`, fix: `Mount the btrfs filesystem at ${btrfs.dir} again`})
    expect(named(checks, 'storage xfs').detail).toContain('its filesystem no longer shares blocks (reflink)')
  })
})

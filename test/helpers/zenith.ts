import {createHash} from 'node:crypto'
import {mkdtemp, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {execa} from 'execa'
import pg from 'pg'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
export const BIN = path.join(ROOT, 'bin', 'run.js')
export const isRoot = process.getuid?.() === 0

export interface RunResult {
  exitCode: number
  stdout: string
  stderr: string
  json: any
}

/**
 * A temporary ZENITH_HOME and a way to run the built CLI in it. `firstPort` keeps test files
 * that run at the same time on different ports.
 */
export class TestHome {
  private constructor(readonly home: string, readonly firstPort: number) {}

  static async create(firstPort: number, parent = os.tmpdir()): Promise<TestHome> {
    const home = await mkdtemp(path.join(parent, 'zenith-test-'))
    return new TestHome(home, firstPort)
  }

  env(extra: Record<string, string> = {}): Record<string, string> {
    return {ZENITH_HOME: this.home, ZENITH_FIRST_PORT: String(this.firstPort), ...extra}
  }

  /** Runs `zenith ...args`; never throws on a non-zero exit (tests assert on it). */
  async run(args: string[], options: {env?: Record<string, string>; input?: string} = {}): Promise<RunResult> {
    const result = await execa('node', [BIN, ...args], {
      env: this.env(options.env), reject: false, input: options.input, stdin: options.input === undefined ? 'ignore' : undefined,
    })
    let json: unknown
    if (args.includes('--json')) {
      try {
        json = JSON.parse(String(result.stdout))
      } catch {
        json = undefined
      }
    }

    return {exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr), json}
  }

  /** Like run, but fails the test with zenith's output when the command fails. */
  async ok(args: string[], options: {env?: Record<string, string>; input?: string} = {}): Promise<RunResult> {
    const result = await this.run(args, options)
    if (result.exitCode !== 0) throw new Error(`zenith ${args.join(' ')} exited ${result.exitCode}\n${result.stdout}\n${result.stderr}`)
    return result
  }

  /** Stops every pg of this home (immediately) and removes the home. */
  async destroy(): Promise<void> {
    const list = await this.run(['pg', 'list', '--json'])
    // A home whose store a test broke on purpose answers with an error, not a list.
    const pgs = (Array.isArray(list.json) ? list.json : []) as Array<{name: string; status: string}>
    for (const item of pgs) {
      if (item.status === 'running') await this.run(['pg', 'stop', item.name, '--mode', 'immediate'])
    }

    // The short socket folder zenith keeps for this home (see src/context.ts).
    const socketDir = path.join(os.tmpdir().length <= 20 ? os.tmpdir() : '/tmp', `zenith-${createHash('sha256').update(this.home).digest('hex').slice(0, 10)}`)
    await rm(socketDir, {recursive: true, force: true})
    await rm(this.home, {recursive: true, force: true}).catch(async () => {
      // btrfs subvolumes in a home need `btrfs subvolume delete`; the storage does it.
      await execa('rm', ['-rf', this.home], {reject: false})
    })
  }

  async url(name: string): Promise<string> {
    return (await this.ok(['pg', 'url', name])).stdout.trim()
  }

  async query<T = Record<string, unknown>>(name: string, sql: string): Promise<T[]> {
    const client = new pg.Client({connectionString: await this.url(name)})
    await client.connect()
    try {
      return (await client.query(sql)).rows as T[]
    } finally {
      await client.end()
    }
  }
}

export const PGBENCH = '/usr/lib/postgresql/15/bin/pgbench'
/** A digest of every row of pgbench_accounts, and their number: equal means the same data. */
export const ACCOUNTS_CHECKSUM = `select md5(string_agg(t::text, ',' order by aid)) as sum, count(*)::int as n from pgbench_accounts t`

/** In `home`: a pg `dev` with pgbench data (scale 1) and its snapshot `dev@fixture`. Returns the accounts digest. */
export async function pgbenchFixture(home: TestHome): Promise<string> {
  await home.ok(['pg', 'create', 'dev'])
  await execa(PGBENCH, ['-i', '-s', '1', '-q', await home.url('dev')])
  await home.ok(['snapshot', 'create', 'dev@fixture'])
  return (await home.query<{sum: string}>('dev', ACCOUNTS_CHECKSUM))[0].sum
}

/**
 * What a clone of a snapshot taken under pgbench load must pass: each pgbench transaction adds
 * the same delta to an account, a teller, a branch and history, so in a consistent image the four
 * sums agree; and pg_amcheck finds no damaged heap or index.
 */
export async function expectConsistentPgbenchCopy(home: TestHome, name: string): Promise<void> {
  const [sums] = await home.query<Record<string, string>>(name, `select
    (select sum(abalance) from pgbench_accounts) as a, (select sum(tbalance) from pgbench_tellers) as t,
    (select sum(bbalance) from pgbench_branches) as b, (select coalesce(sum(delta), 0) from pgbench_history) as h,
    (select count(*) from pgbench_history) as n`)
  expect(Number(sums.n)).toBeGreaterThan(0)
  expect(sums.a).toBe(sums.h)
  expect(sums.t).toBe(sums.h)
  expect(sums.b).toBe(sums.h)

  const {port} = (await home.ok(['pg', 'show', name, '--json'])).json
  const amcheck = await execa(path.join(path.dirname(PGBENCH), 'pg_amcheck'), ['--install-missing', '--heapallindexed', '-d', 'postgres', '-h', 'localhost', '-p', String(port), '-U', 'postgres'], {
    reject: false, env: {PGPASSWORD: new URL(await home.url(name)).password},
  })
  expect(amcheck.stderr + amcheck.stdout).toBe('')
  expect(amcheck.exitCode).toBe(0)
}

/**
 * The pg lifecycle through the built CLI (bin/run.js -> dist/) against real postgres, in
 * temporary ZENITH_HOMEs on ports 6000-6099. Build first: npx tsc -p tsconfig.build.json && npx oclif manifest
 */
import {existsSync, readFileSync} from 'node:fs'
import {mkdir, readFile, readdir, rm, writeFile} from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'

import {execa} from 'execa'

import {ROOT, type RunResult, TestHome, isRoot} from '../helpers/zenith.js'

const PSQL = '/usr/lib/postgresql/15/bin/psql'
const manifest = JSON.parse(readFileSync(path.join(ROOT, 'oclif.manifest.json'), 'utf8')) as {commands: Record<string, unknown>}
const hasSnapshotCreate = 'snapshot:create' in manifest.commands

const homes: TestHome[] = []
async function newHome(firstPort: number, parent?: string): Promise<TestHome> {
  const home = await TestHome.create(firstPort, parent)
  homes.push(home)
  return home
}

afterAll(async () => {
  // Every home, even when one of them fails to clean up.
  const results = await Promise.allSettled(homes.map((home) => home.destroy()))
  const failed = results.filter((result) => result.status === 'rejected')
  if (failed.length > 0) throw new Error(`cleanup failed: ${failed.map((result) => String((result as PromiseRejectedResult).reason)).join('; ')}`)
})

/** Listens on `port` (0: one the kernel picks, so no other test run can hold it). */
function listen(port: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen({port, host: '127.0.0.1'}, () => resolve(server))
  })
}

/** A port from `from` up that is free now (another run of these tests may hold some). */
async function freePort(from: number): Promise<number> {
  for (let port = from; port < from + 20; port++) {
    const server = await listen(port).catch(() => undefined)
    if (server) {
      await close(server)
      return port
    }
  }

  throw new Error(`no free port from ${from}`)
}

function close(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()))
}

function endpointOf(result: RunResult): number {
  const match = /^Started postgres on localhost:(\d+)$/m.exec(result.stdout)
  if (!match) throw new Error(`no "Started postgres on localhost:PORT" in:\n${result.stdout}\n${result.stderr}`)
  return Number(match[1])
}

/** Connects to the endpoint zenith printed, with the password from the store, and runs `sql`. */
async function queryPort(home: TestHome, name: string, port: number, sql: string): Promise<string> {
  const url = new URL(await home.url(name))
  expect(url.port).toBe(String(port))
  const result = await execa(PSQL, ['-X', '-At', '-h', 'localhost', '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-c', sql], {
    env: {PGPASSWORD: decodeURIComponent(url.password)}, reject: false,
  })
  if (result.exitCode !== 0) throw new Error(`psql on port ${port} failed: ${result.stderr}`)
  return String(result.stdout).trim()
}

async function status(home: TestHome, name: string): Promise<string | undefined> {
  const list = await home.ok(['pg', 'list', '--json'])
  return (list.json as Array<{name: string; status: string}>).find((pg) => pg.name === name)?.status
}

async function show(home: TestHome, name: string): Promise<{dataDir: string; port: number; status: string; logFile: string}> {
  return (await home.ok(['pg', 'show', name, '--json'])).json
}

async function postmasterPid(dataDir: string): Promise<number> {
  return Number((await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0])
}

/** A zombie (exited, not yet reaped by whoever adopted it) is not live. */
async function isLiveProcess(pid: number): Promise<boolean> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '')
  return text !== '' && !/^State:\s+Z/m.test(text)
}

/** Everything a failed command must leave as it was: the store's bytes and the data directories. */
async function stateOf(home: TestHome): Promise<{store: string; volumes: string[]; snapshots: string[]}> {
  const storage = path.join(home.home, 'storages', 'local')
  return {
    store: await readFile(path.join(home.home, 'state.json'), 'utf8'),
    volumes: (await readdir(path.join(storage, 'volumes'))).sort(),
    snapshots: (await readdir(path.join(storage, 'snapshots')).catch(() => [] as string[])).sort(),
  }
}

function expectError(result: RunResult, code: string, exitCode: number): void {
  expect({exitCode: result.exitCode, code: result.json?.error?.code}).toEqual({exitCode, code})
  expect(Object.keys(result.json.error).sort()).toEqual(['code', 'hint', 'message'])
  expect(result.json.error.message.length).toBeGreaterThan(10)
  expect(result.json.error.hint.length).toBeGreaterThan(10)
}

describe('pg lifecycle', () => {
  let home: TestHome

  beforeAll(async () => {
    home = await newHome(6000)
  })

  it('creates pgdata1 and pgdata2, both running at once on different ports and answering SQL', async () => {
    const first = await home.ok(['pg', 'create'])
    const second = await home.ok(['pg', 'create'])
    const [port1, port2] = [endpointOf(first), endpointOf(second)]
    expect(port1).not.toBe(port2)
    expect(port1).toBeGreaterThanOrEqual(6000)

    const list = (await home.ok(['pg', 'list', '--json'])).json as Array<{name: string; status: string; port: number}>
    expect(list.map((pg) => [pg.name, pg.status, pg.port])).toEqual([['pgdata1', 'running', port1], ['pgdata2', 'running', port2]])

    await queryPort(home, 'pgdata1', port1, 'create table t (x int); insert into t values (1)')
    expect(await queryPort(home, 'pgdata1', port1, 'select count(*) from t')).toBe('1')
    // Different servers, not one server twice.
    expect(await queryPort(home, 'pgdata2', port2, "select count(*) from pg_tables where tablename = 't'")).toBe('0')
    expect(await queryPort(home, 'pgdata2', port2, 'show port')).toBe(String(port2))

    const table = (await home.ok(['pg', 'list'])).stdout.split('\n')
    expect(table[0].split(/\s+/)).toEqual(['ROLE', 'PGDATA', 'USED', 'STORAGE', 'ENDPOINT', 'STATUS'])
    expect(table[1].split(/\s+/)).toEqual(['primary', 'pgdata1', expect.stringMatching(/^\d+(\.\d+)?[KMG]?B?$/), 'local', `localhost:${port1}`, 'running'])
  })

  it('stops and starts a pg, keeping its port and its data', async () => {
    const before = await show(home, 'pgdata1')
    const stopped = await home.ok(['pg', 'stop', 'pgdata1'])
    expect(stopped.stdout).toContain('Stopped postgres on pgdata1')
    expect(await status(home, 'pgdata1')).toBe('stopped')
    expect(existsSync(path.join(before.dataDir, 'postmaster.pid'))).toBe(false)
    await expect(queryPort(home, 'pgdata1', before.port, 'select 1')).rejects.toThrow()

    const started = await home.ok(['pg', 'start', 'pgdata1'])
    expect(endpointOf(started)).toBe(before.port)
    expect(await queryPort(home, 'pgdata1', before.port, 'select count(*) from t')).toBe('1')
  })

  // Skipped before the run, not by an early return, so that the closing line counts it as skipped.
  const asRoot = isRoot ? it : it.skip
  asRoot('runs postgres as the postgres OS user, with a 0700 data directory, when zenith is root', async () => {
    const {dataDir} = await show(home, 'pgdata1')
    const pid = await postmasterPid(dataDir)
    const uid = /^Uid:\s+(\d+)/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))![1]
    const postgresUid = String((await execa('id', ['-u', 'postgres'])).stdout).trim()
    expect(uid).toBe(postgresUid)
    expect(uid).not.toBe('0')
    const {stdout} = await execa('stat', ['-c', '%a %u', dataDir])
    expect(String(stdout).trim()).toBe(`700 ${postgresUid}`)
  })

  it('shows a killed postgres as crashed and restarts it with its data', async () => {
    const {dataDir, port} = await show(home, 'pgdata1')
    await queryPort(home, 'pgdata1', port, 'insert into t values (2)')
    const pid = await postmasterPid(dataDir)
    process.kill(pid, 'SIGKILL')
    for (let i = 0; i < 50 && await isLiveProcess(pid); i++) await new Promise((resolve) => setTimeout(resolve, 100))

    expect(await status(home, 'pgdata1')).toBe('crashed')
    expect((await home.ok(['pg', 'list'])).stdout).toMatch(/pgdata1.*crashed/)
    const stop = await home.run(['pg', 'stop', 'pgdata1', '--json'])
    expectError(stop, 'PG_NOT_RUNNING', 4)
    expect(stop.json.error.message).toContain('crashed')

    const started = await home.ok(['pg', 'start', 'pgdata1'])
    expect(endpointOf(started)).toBe(port)
    expect(await status(home, 'pgdata1')).toBe('running')
    expect(await queryPort(home, 'pgdata1', port, 'select string_agg(x::text, \',\' order by x) from t')).toBe('1,2')
  })

  it('restarts a running pg: a new postmaster on the same port', async () => {
    const before = await show(home, 'pgdata1')
    const oldPid = await postmasterPid(before.dataDir)
    await home.ok(['pg', 'restart', 'pgdata1'])
    const after = await show(home, 'pgdata1')
    expect(after.status).toBe('running')
    expect(await postmasterPid(after.dataDir)).not.toBe(oldPid)
    expect(await queryPort(home, 'pgdata1', before.port, 'select count(*) from t')).toBe('2')
  })

  it('shows postgres log lines with pg logs', async () => {
    const logs = await home.ok(['pg', 'logs', 'pgdata1'])
    expect(logs.stdout).toContain('database system is ready to accept connections')
    // The crash recovery of the test above is in the log too.
    expect(logs.stdout).toMatch(/database system was interrupted|not properly shut down|redo/)
    const two = await home.ok(['pg', 'logs', 'pgdata1', '-n', '2'])
    expect(two.stdout.trim().split('\n')).toHaveLength(2)
  })

  it('prints a URL that psql connects with, and runs psql with pg psql', async () => {
    const url = await home.url('pgdata2')
    expect(url).toMatch(/^postgresql:\/\/postgres:[^@]+@localhost:\d+\/postgres$/)
    const viaUrl = await execa(PSQL, ['-X', '-At', url, '-c', 'select 6 * 7'])
    expect(String(viaUrl.stdout).trim()).toBe('42')

    const psql = await home.run(['pg', 'psql', 'pgdata2', '--', '-c', 'select 1'])
    expect(psql.exitCode).toBe(0)
    expect(psql.stdout).toMatch(/^\s*1\s*$/m)
    const failing = await home.run(['pg', 'psql', 'pgdata2', '--', '-v', 'ON_ERROR_STOP=1', '-c', 'select * from no_such_table'])
    expect(failing.exitCode).not.toBe(0)
  })

  it('refuses --port held by another process with PORT_IN_USE, changing nothing', async () => {
    const server = await listen(0)
    const port = (server.address() as net.AddressInfo).port
    try {
      const before = await stateOf(home)
      const result = await home.run(['pg', 'create', 'blocked', '--port', String(port), '--json'])
      expectError(result, 'PORT_IN_USE', 4)
      expect(result.json.error.message).toContain(String(port))
      expect(result.json.error.hint).toContain('--port')
      expect(await stateOf(home)).toEqual(before)
    } finally {
      await close(server)
    }
  })

  it('creates on a chosen free port with settings', async () => {
    const port = await freePort(6031)
    const created = await home.ok(['pg', 'create', 'custom', '--port', String(port), '--set', 'work_mem=7MB', '--set', "cluster_name=it's"])
    expect(endpointOf(created)).toBe(port)
    expect(await queryPort(home, 'custom', port, 'show work_mem')).toBe('7MB')
    expect(await queryPort(home, 'custom', port, 'show cluster_name')).toBe("it's")
  })

  const destroyWithSnapshots = hasSnapshotCreate ? it : it.skip
  // Runs once `zenith snapshot create` exists (it is being added in src/snapshot/**).
  destroyWithSnapshots('refuses to destroy a pg with snapshots unless --force', async () => {
    await home.ok(['snapshot', 'create', 'custom@tag'])
    const before = await stateOf(home)
    const refused = await home.run(['pg', 'destroy', 'custom', '--json'])
    expectError(refused, 'HAS_DEPENDENTS', 4)
    expect(refused.json.error.message).toContain('custom@tag')
    expect(await stateOf(home)).toEqual(before)
    expect(await status(home, 'custom')).toBe('running')

    await home.ok(['pg', 'destroy', 'custom', '--force'])
    const after = await stateOf(home)
    expect(after.volumes).not.toContain('custom')
    expect(JSON.parse(after.store).snapshots).toEqual({})
  })

  it('destroys a running pg: process, data directory and record gone', async () => {
    const {dataDir, port} = await show(home, 'pgdata2')
    const pid = await postmasterPid(dataDir)
    const destroyed = await home.ok(['pg', 'destroy', 'pgdata2'])
    expect(destroyed.stdout).toContain('Destroyed pgdata2')
    expect(existsSync(dataDir)).toBe(false)
    for (let i = 0; i < 30 && await isLiveProcess(pid); i++) await new Promise((resolve) => setTimeout(resolve, 100))
    expect(await isLiveProcess(pid)).toBe(false)
    expect(await status(home, 'pgdata2')).toBeUndefined()
    expect(JSON.parse(await readFile(path.join(home.home, 'state.json'), 'utf8')).pgs.pgdata2).toBeUndefined()
    const gone = await execa(PSQL, ['-X', '-At', '-h', 'localhost', '-p', String(port), '-U', 'postgres', '-c', 'select 1'], {reject: false, env: {PGCONNECT_TIMEOUT: '3'}})
    expect(gone.stderr).toMatch(/Connection refused|could not connect/)

    // The default name is free again and goes to the first free pgdataN.
    const again = await home.ok(['pg', 'create', '--no-start'])
    expect(again.stdout).toContain('pgdata2')
    expect(await status(home, 'pgdata2')).toBe('stopped')
  })
})

describe('bad input: one clear error, nothing changed', () => {
  let home: TestHome

  beforeAll(async () => {
    home = await newHome(6020)
    await home.ok(['pg', 'create', 'taken'])
    await home.ok(['pg', 'create', 'idle', '--no-start'])
  })

  // Every row has all five columns: jest passes a `done` callback to a test taking more arguments than its row.
  const cases: Array<[string, string[], string, number, Record<string, string>]> = [
    ['an empty name', ['pg', 'create', ''], 'INVALID_NAME', 2, {}],
    ['a name with @', ['pg', 'create', 'a@b'], 'INVALID_NAME', 2, {}],
    ['a name with /', ['pg', 'create', 'a/b'], 'INVALID_NAME', 2, {}],
    ['the name ..', ['pg', 'create', '..'], 'INVALID_NAME', 2, {}],
    ['the reserved name CURRENT', ['pg', 'create', 'CURRENT'], 'INVALID_NAME', 2, {}],
    ['the reserved name HEAD{1}', ['pg', 'create', 'HEAD{1}'], 'INVALID_NAME', 2, {}],
    ['a name that is taken', ['pg', 'create', 'taken'], 'NAME_TAKEN', 4, {}],
    ['a --set without =', ['pg', 'create', 'x', '--set', 'shared_buffers'], 'INVALID_ARGUMENT', 2, {}],
    ['a --set of a setting zenith manages', ['pg', 'create', 'x', '--set', 'port=1'], 'INVALID_ARGUMENT', 2, {}],
    ['a --set with a bad key', ['pg', 'create', 'x', '--set', 'a b=1'], 'INVALID_ARGUMENT', 2, {}],
    ['a storage that does not exist', ['pg', 'create', 'x', '-s', 'nosuch'], 'STORAGE_NOT_FOUND', 3, {}],
    ['start of an unknown pg', ['pg', 'start', 'nosuch'], 'PG_NOT_FOUND', 3, {}],
    ['stop of an unknown pg', ['pg', 'stop', 'nosuch'], 'PG_NOT_FOUND', 3, {}],
    ['destroy of an unknown pg', ['pg', 'destroy', 'nosuch'], 'PG_NOT_FOUND', 3, {}],
    ['show of an unknown pg', ['pg', 'show', 'nosuch'], 'PG_NOT_FOUND', 3, {}],
    ['url of an unknown pg', ['pg', 'url', 'nosuch'], 'PG_NOT_FOUND', 3, {}],
    ['logs of an unknown pg', ['pg', 'logs', 'nosuch'], 'PG_NOT_FOUND', 3, {}],
    ['start of a running pg', ['pg', 'start', 'taken'], 'PG_RUNNING', 4, {}],
    ['stop of a stopped pg', ['pg', 'stop', 'idle'], 'PG_NOT_RUNNING', 4, {}],
    ['an unknown flag', ['pg', 'create', 'x', '--bogus'], 'INVALID_ARGUMENT', 2, {}],
    ['an unknown stop mode', ['pg', 'stop', 'taken', '--mode', 'gentle'], 'INVALID_ARGUMENT', 2, {}],
    ['missing postgres binaries', ['pg', 'create', 'x'], 'PG_BINARIES_NOT_FOUND', 6, {ZENITH_PG_BIN: '/nonexistent/bin'}],
  ]

  it.each(cases)('%s', async (_label, args, code, exitCode, env) => {
    const before = await stateOf(home)
    const result = await home.run([...args, '--json'], {env})
    expectError(result, code, exitCode)
    expect(await stateOf(home)).toEqual(before)

    // The same without --json: a one-line message and a hint on stderr, nothing on stdout.
    const plain = await home.run(args, {env})
    expect(plain.exitCode).toBe(exitCode)
    expect(plain.stdout).toBe('')
    expect(plain.stderr).toContain(`Error: ${result.json.error.message.split('\n')[0]}`)
    expect(plain.stderr).toContain('Hint: ')
    expect(await stateOf(home)).toEqual(before)
  })

  it('names what to install when no postgres binaries are found', async () => {
    const result = await home.run(['pg', 'create', 'x', '--json'], {env: {ZENITH_PG_BIN: '/nonexistent/bin'}})
    expect(result.json.error.hint).toMatch(/apt-get install postgresql-\d+/)
    expect(result.json.error.hint).toContain('ZENITH_PG_BIN')
  })

  it('stop twice and start twice: the second of each fails and the pg keeps running / stays stopped', async () => {
    await home.ok(['pg', 'stop', 'taken'])
    expectError(await home.run(['pg', 'stop', 'taken', '--json']), 'PG_NOT_RUNNING', 4)
    expect(await status(home, 'taken')).toBe('stopped')
    await home.ok(['pg', 'start', 'taken'])
    expectError(await home.run(['pg', 'start', 'taken', '--json']), 'PG_RUNNING', 4)
    expect(await status(home, 'taken')).toBe('running')
    expect(await queryPort(home, 'taken', (await show(home, 'taken')).port, 'select 1')).toBe('1')
  })
})

describe('concurrent commands', () => {
  it('20 pg create --no-start at once: all recorded, each with its own data directory and port', async () => {
    const home = await newHome(6060)
    await home.ok(['storage', 'list']) // first use: creates the home and the local storage
    const names = Array.from({length: 20}, (_, i) => `c${i + 1}`)
    const results = await Promise.all(names.map((name) => home.run(['pg', 'create', name, '--no-start'])))
    expect(results.map((result) => [result.exitCode, result.stderr.includes('Error')])).toEqual(names.map(() => [0, false]))

    const list = (await home.ok(['pg', 'list', '--json'])).json as Array<{name: string; port: number; status: string}>
    expect(list.map((pg) => pg.name).sort()).toEqual([...names].sort())
    expect(new Set(list.map((pg) => pg.port)).size).toBe(20)
    expect(list.every((pg) => pg.status === 'stopped')).toBe(true)
    const volumes = await readdir(path.join(home.home, 'storages', 'local', 'volumes'))
    expect(volumes.sort()).toEqual([...names].sort())
    for (const name of names) {
      expect(existsSync(path.join(home.home, 'storages', 'local', 'volumes', name, 'PG_VERSION'))).toBe(true)
    }
  }, 150_000)
})

describe('the CLI itself', () => {
  let home: TestHome

  beforeAll(async () => {
    home = await newHome(6080)
  })

  it('lists the topics in --help', async () => {
    const help = await home.ok(['--help'])
    expect(help.stdout).toMatch(/^TOPICS$/m)
    expect(help.stdout).toMatch(/^\s+pg\s+\S/m)
    expect(help.stdout).toMatch(/^\s+storage\s+\S/m)
  })

  it('suggests the closest command for a typo, without a terminal', async () => {
    const result = await home.run(['pg', 'creat'])
    expect(result.exitCode).toBe(2)
    expect(result.stderr).toContain('Did you mean "pg create"?')
    const json = await home.run(['pg', 'lsit', '--json'])
    expect(json.exitCode).toBe(2)
    expect(json.json.error.hint).toBe('Did you mean "pg list"?')
    // Arguments after the typo are not part of the command, and stay in the suggestion.
    const withArgs = await home.run(['pg', 'craete', 'foo', '--port', '7399'])
    expect(withArgs.stderr).toContain('"pg craete" is not a zenith command.')
    expect(withArgs.stderr).toContain('Did you mean "pg create foo"?')
  })

  it('has every command of the planned surface: doctor, autocomplete and version run', async () => {
    // The unit test of command-not-found covers NOT_AVAILABLE_YET for commands still to come.
    expect((await home.ok(['version'])).stdout).toMatch(/^zenith-pg\//)
    expect((await home.run(['doctor', '--json'])).json.checks).toEqual(expect.any(Array))
    expect((await home.ok(['autocomplete', 'bash'], {env: {XDG_CACHE_HOME: path.join(home.home, 'cache')}})).stdout).toMatch(/autocomplete script bash/)
  })

  it.each([
    ['corrupt', '{"version": 1, "pgs": {', 'STORE_CORRUPT'],
    ['from a newer zenith', '{"version": 999, "storages": {}, "pgs": {}, "snapshots": {}, "pitr": {}}', 'STORE_TOO_NEW'],
  ])('refuses a %s store with exit 5 and leaves it as it was', async (_label, text, code) => {
    const broken = await newHome(6086)
    await writeFile(path.join(broken.home, 'state.json'), text)
    for (const args of [['pg', 'list', '--json'], ['pg', 'create', 'x', '--no-start', '--json']]) {
      const result = await broken.run(args)
      expectError(result, code, 5)
      expect(await readFile(path.join(broken.home, 'state.json'), 'utf8')).toBe(text)
    }

    expect(existsSync(path.join(broken.home, 'storages', 'local', 'volumes', 'x'))).toBe(false)
  })

  it('starts postgres when ZENITH_HOME is longer than a unix socket path may be', async () => {
    const parent = path.join(os.tmpdir(), `zenith-long-${'x'.repeat(60)}`, 'y'.repeat(60))
    await mkdir(parent, {recursive: true})
    let long: TestHome | undefined
    try {
      long = await TestHome.create(6085, parent)
      expect(long.home.length).toBeGreaterThan(120)
      const created = await long.ok(['pg', 'create', 'deep'])
      expect(await queryPort(long, 'deep', endpointOf(created), 'select 1')).toBe('1')
      await long.ok(['pg', 'destroy', 'deep'])
    } finally {
      // Destroyed here, before its parent folders go (a later destroy would recreate the home).
      await long?.destroy()
      await rm(path.dirname(parent), {recursive: true, force: true})
    }
  })

  it('a client of zenith outlives the pg it is connected to stopping with --mode immediate', async () => {
    // pg emits 'error' on a client whose server goes (after failing the query in flight); with no
    // listener Node throws it and the process dies: `zenith serve` did, its sampler connected to a
    // clone being destroyed. Here the query in flight fails, and this test process lives on.
    const {newClient} = await import('../../src/pg/client.js')
    const home = await newHome(6090)
    await home.ok(['pg', 'create', 'gone'])
    const client = await newClient({connectionString: await home.url('gone')})
    await client.connect()
    const running = expect(client.query('select pg_sleep(30)')).rejects.toThrow(/terminat/)
    await home.ok(['pg', 'stop', 'gone', '--mode', 'immediate'])
    await running
    await new Promise((resolve) => setTimeout(resolve, 500))
    await expect(client.query('select 1')).rejects.toThrow(/not queryable|terminated|closed/)
  })
})

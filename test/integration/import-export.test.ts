import {createReadStream} from 'node:fs'
import {chmod, chown, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile} from 'node:fs/promises'
import http from 'node:http'
import type {AddressInfo} from 'node:net'
import os from 'node:os'
import path from 'node:path'

import {execa} from 'execa'
import pg from 'pg'

import {BIN, TestHome, isRoot} from '../helpers/zenith.js'

/**
 * Import and export against real servers: a second postgres started here is the source (port
 * 6190, pgbench data); zenith homes use ports from 6100. Needs root (to run postgres as the
 * `postgres` OS user) and PostgreSQL 15 binaries.
 */
const PG_BIN = '/usr/lib/postgresql/15/bin'
const SOURCE_PORT = 6190
const DEAD_PORT = 6199
const PASSWORD = 'secret pass'
const CHECKSUM = "select md5(string_agg(t::text, ',' order by aid)) as sum, count(*)::int as rows from pgbench_accounts t"
const maybe = isRoot ? describe : describe.skip

let work: string
let source: SourceServer
let home: TestHome
let other: TestHome
let expected: {sum: string; rows: number}
let server: http.Server | undefined

class SourceServer {
  readonly dataDir: string
  constructor(readonly dir: string, readonly port: number) {
    this.dataDir = path.join(dir, 'data')
  }

  async start(): Promise<void> {
    await mkdir(this.dir, {recursive: true})
    await chown(this.dir, ...await postgresIds())
    await asPostgres('initdb', ['-D', this.dataDir, '-U', 'postgres', '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--locale=C'])
    await writeFile(path.join(this.dataDir, 'pg_hba.conf'), [
      'local all all trust', 'local replication all trust',
      'host all all 127.0.0.1/32 scram-sha-256', 'host replication all 127.0.0.1/32 scram-sha-256', '',
    ].join('\n'))
    await asPostgres('pg_ctl', ['-D', this.dataDir, '-l', path.join(this.dir, 'log'), '-w', 'start',
      '-o', `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1`])
    await asPostgres('psql', ['-h', this.dir, '-p', String(this.port), '-qX', '-c', `create role repl login replication superuser password '${PASSWORD}'`, '-c', 'create database bench'])
    await asPostgres('pgbench', ['-h', this.dir, '-p', String(this.port), '-i', '-s', '2', '-q', 'bench'])
  }

  async stop(): Promise<void> {
    await asPostgres('pg_ctl', ['-D', this.dataDir, '-m', 'fast', '-w', 'stop']).catch(() => undefined)
  }

  url(user = 'repl', password = PASSWORD, port = this.port): string {
    return `basebackup://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}/`
  }

  query(sql: string) {
    return queryUrl(`postgresql://repl:${encodeURIComponent(PASSWORD)}@127.0.0.1:${this.port}/bench`, sql)
  }
}

async function postgresIds(): Promise<[number, number]> {
  const uid = Number((await execa('id', ['-u', 'postgres'])).stdout)
  const gid = Number((await execa('id', ['-g', 'postgres'])).stdout)
  return [uid, gid]
}

function asPostgres(tool: string, args: string[]) {
  return execa('runuser', ['-u', 'postgres', '--', path.join(PG_BIN, tool), ...args], {cwd: '/', stdin: 'ignore'})
}

async function queryUrl(url: string, sql: string): Promise<any[]> {
  const client = new pg.Client({connectionString: url})
  await client.connect()
  try {
    return (await client.query(sql)).rows
  } finally {
    await client.end()
  }
}

/** The checksum of pgbench_accounts in a pg of `where`, started from `snapshot`. */
async function checksumOf(where: TestHome, pgName: string, snapshot: string): Promise<{sum: string; rows: number}> {
  await where.ok(['pg', 'create', pgName, '--snapshot', snapshot])
  const url = (await where.url(pgName)).replace(/\/postgres$/, '/bench')
  const [row] = await queryUrl(url, CHECKSUM)
  await where.ok(['pg', 'stop', pgName])
  return row
}

/** What a failed import must leave unchanged: the store's snapshots and the storage's folders. */
async function footprint(where: TestHome) {
  const list = await where.ok(['snapshot', 'list', '--json'])
  const folder = path.join(where.home, 'storages', 'local')
  return {
    // pg@CURRENT rows are the live data directories of pgs, not stored snapshots.
    snapshots: (list.json as Array<{name: string}>).map((item) => item.name).filter((name) => !name.endsWith('@CURRENT')).sort(),
    folders: (await readdir(path.join(folder, 'snapshots')).catch(() => [])).sort(),
    scratch: (await readdir(path.join(folder, '.scratch')).catch(() => [])).sort(),
    volumes: (await readdir(path.join(folder, 'volumes')).catch(() => [])).filter((name) => name.startsWith('.')).sort(),
  }
}

async function serve(handler: http.RequestListener): Promise<string> {
  server = http.createServer(handler)
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server!.address() as AddressInfo).port}`
}

async function closeServer(): Promise<void> {
  if (!server) return
  server.closeAllConnections()
  await new Promise((resolve) => server!.close(resolve))
  server = undefined
}

maybe('snapshot import / export against a real postgres', () => {
  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'zenith-ie-'))
    await chown(work, ...await postgresIds())
    source = new SourceServer(path.join(work, 'source'), SOURCE_PORT)
    home = await TestHome.create(6100)
    other = await TestHome.create(6110)
    await source.start()
    expected = (await source.query(CHECKSUM))[0]
  }, 180_000)

  afterAll(async () => {
    await closeServer()
    await home?.destroy()
    await other?.destroy()
    await source?.stop()
    await rm(work, {recursive: true, force: true})
  }, 120_000)

  test('basebackup:// import, with progress lines on stderr; a pg started on it has the same rows', async () => {
    const result = await home.ok(['snapshot', 'import', '--from', source.url(), 'prod'])
    expect(result.stdout).toMatch(/Imported snapshot prod/)
    expect(result.stderr).toMatch(/Importing prod: .* in .*s/)
    expect(result.stdout + result.stderr).not.toContain(PASSWORD)
    expect(await checksumOf(home, 'fromprod', 'prod')).toEqual(expected)
    expect(expected.rows).toBe(200_000)
  })

  test('--json: the result on stdout, no progress', async () => {
    const result = await home.ok(['snapshot', 'import', '--from', source.url(), '--json'])
    expect(result.json).toMatchObject({snapshot: '127.0.0.1', kind: 'basebackup', pgVersion: 15, storage: 'local'})
    expect(result.stderr).toBe('')
    await home.ok(['snapshot', 'destroy', '127.0.0.1'])
  })

  test('export to .zenith, import under another home, same rows', async () => {
    const file = path.join(work, 'prod.zenith')
    const exported = await home.ok(['snapshot', 'export', 'prod', '-o', file, '--json'])
    expect(exported.json).toMatchObject({snapshot: 'prod', format: 'zenith', compression: 'gzip'})
    const listing = await execa('tar', ['tzf', file])
    expect(listing.stdout.split('\n')[0]).toBe('manifest.json')
    expect(listing.stdout).toContain('backup_manifest')
    const imported = await other.ok(['snapshot', 'import', '--from', file, '--json'])
    expect(imported.json).toMatchObject({snapshot: 'prod', kind: 'archive', verified: 'sha256'})
    expect(await checksumOf(other, 'copy', 'prod')).toEqual(expected)
  })

  test('export to a missing folder, to a folder, to a read-only folder: a clear error before any work, nothing left', async () => {
    const readOnly = path.join(work, 'read-only')
    await mkdir(readOnly, {recursive: true})
    await chmod(readOnly, 0o555)
    const cases: Array<[string, string]> = [
      [path.join(work, 'no', 'such', 'dir', 'out.zenith'), 'INVALID_ARGUMENT'],
      [work, 'INVALID_ARGUMENT'],
      // root writes anywhere: the read-only folder is refused only for other users.
      ...(isRoot ? [] : [[path.join(readOnly, 'out.zenith'), 'PERMISSION_DENIED'] as [string, string]]),
    ]
    for (const [output, code] of cases) {
      const before = await footprint(home)
      const result = await home.run(['snapshot', 'export', 'prod', '-o', output, '--force', '--json'])
      expect(result.exitCode).not.toBe(0)
      expect(result.json?.error?.code).toBe(code)
      expect(result.json.error.hint).toBeTruthy()
      expect(await footprint(home)).toEqual(before)
    }

    expect((await readdir(work)).filter((entry) => entry.includes('.partial-p'))).toEqual([])
  })

  test('an extracted export (zenith and tar formats) passes pg_verifybackup', async () => {
    const tarFile = path.join(work, 'prod.tar')
    await home.ok(['snapshot', 'export', 'prod', '--format', 'tar', '-o', tarFile])
    for (const [file, flags] of [[tarFile, 'xf'], [path.join(work, 'prod.zenith'), 'xzf']]) {
      const dir = path.join(work, `verify-${path.basename(file)}`)
      await mkdir(dir)
      await execa('tar', [flags, file, '-C', dir])
      await rm(path.join(dir, 'manifest.json'), {force: true})
      await execa('chown', ['-R', 'postgres:', dir])
      const verified = await asPostgres('pg_verifybackup', [dir])
      expect(verified.stdout).toMatch(/backup successfully verified/)
    }
  })

  test('dump and sql exports restore into a fresh pg with the same rows', async () => {
    const dumpFile = path.join(work, 'prod.dump.tar')
    const dumped = await home.ok(['snapshot', 'export', 'prod', '--format', 'dump', '-o', dumpFile, '--json'])
    expect(dumped.json.databases).toEqual(['bench', 'postgres'])
    const dumpDir = path.join(work, 'dump')
    await mkdir(dumpDir)
    await execa('tar', ['xf', dumpFile, '-C', dumpDir])
    expect((await readdir(dumpDir)).sort()).toEqual(['bench.dump', 'globals.sql', 'postgres.dump'])
    await home.ok(['pg', 'create', 'fromdump'])
    const dumpUrl = await home.url('fromdump')
    await execa(path.join(PG_BIN, 'psql'), ['-qX', '-d', dumpUrl, '-f', path.join(dumpDir, 'globals.sql')], {reject: false})
    await execa(path.join(PG_BIN, 'pg_restore'), ['-C', '-d', dumpUrl, path.join(dumpDir, 'bench.dump')])
    expect((await queryUrl(dumpUrl.replace(/\/postgres$/, '/bench'), CHECKSUM))[0]).toEqual(expected)

    const sqlFile = path.join(work, 'prod.sql')
    const sql = await execa('node', [BIN, 'snapshot', 'export', 'prod', '--format', 'sql', '-o', '-'], {env: home.env()})
    await writeFile(sqlFile, sql.stdout)
    expect(sql.stdout).toContain('CREATE DATABASE bench')
    await home.ok(['pg', 'create', 'fromsql'])
    const sqlUrl = await home.url('fromsql')
    await execa(path.join(PG_BIN, 'psql'), ['-qX', '-d', sqlUrl, '-f', sqlFile], {reject: false})
    expect((await queryUrl(sqlUrl.replace(/\/postgres$/, '/bench'), CHECKSUM))[0]).toEqual(expected)
    await home.ok(['pg', 'stop', 'fromdump'])
    await home.ok(['pg', 'stop', 'fromsql'])
  })

  test('import over HTTP from a local server, streamed; a 404 is SOURCE_UNREACHABLE', async () => {
    const file = path.join(work, 'prod.zenith')
    const size = (await stat(file)).size
    const base = await serve((request, response) => {
      if (request.url !== '/files/movies.zenith') {
        response.writeHead(404).end('not found')
        return
      }

      response.writeHead(200, {'content-length': String(size)})
      createReadStream(file).pipe(response)
    })
    const imported = await other.ok(['snapshot', 'import', '--from', `${base}/files/movies.zenith`, 'movies', '--json'])
    expect(imported.json).toMatchObject({snapshot: 'movies', kind: 'archive'})
    expect(await checksumOf(other, 'movies', 'movies')).toEqual(expected)
    const before = await footprint(other)
    // pg create --snapshot URL: an implicit import whose temporary snapshot is gone afterwards.
    expect(await checksumOf(other, 'fromweb', `${base}/files/movies.zenith`)).toEqual(expected)
    expect(await footprint(other)).toEqual(before)
    const missing = await other.run(['snapshot', 'import', '--from', `${base}/nope.zenith`, '--json'])
    expect(missing.json.error.code).toBe('SOURCE_UNREACHABLE')
    expect(await footprint(other)).toEqual(before)
    await closeServer()
  })

  test('https://user:password@: sent as basic authentication; the password is never printed', async () => {
    const secret = 'hunter2-https'
    const expectedAuth = `Basic ${Buffer.from(`alice:${secret}`).toString('base64')}`
    const base = await serve((request, response) => {
      if (request.headers.authorization !== expectedAuth) {
        response.writeHead(401, {'www-authenticate': 'Basic realm="x"'}).end('who are you')
        return
      }

      // Past the authentication: a body that is no archive, refused as such.
      response.writeHead(200).end('not an archive')
    })
    try {
      const before = await footprint(other)
      const url = (password: string) => base.replace('http://', `http://alice:${password}@`) + '/files/x.zenith'
      const refused = await other.run(['snapshot', 'import', '--from', url('wrong-pass'), '--json'])
      expect(refused.json.error.code).toBe('SOURCE_UNREACHABLE')
      expect(refused.json.error.message).toContain('HTTP 401')
      expect(refused.stdout + refused.stderr).not.toContain('wrong-pass')

      const human = await other.run(['snapshot', 'import', '--from', url(secret)])
      expect(human.exitCode).toBe(7)
      const accepted = await other.run(['snapshot', 'import', '--from', url(secret), '--json'])
      expect(accepted.json.error.code).toBe('ARCHIVE_INVALID')
      for (const result of [human, accepted]) expect(result.stdout + result.stderr).not.toContain(secret)
      expect(await footprint(other)).toEqual(before)
    } finally {
      await closeServer()
    }
  })

  test('basebackup:// without a password: PGPASSWORD, then ~/.pgpass (PGPASSFILE); never on a command line', async () => {
    const url = `basebackup://repl@127.0.0.1:${SOURCE_PORT}/`
    // Every process's command line while the imports run: zenith's and pg_basebackup's.
    const seen = new Set<string>()
    let watching = true
    const watcher = (async () => {
      while (watching) {
        for (const line of String((await execa('ps', ['-eo', 'args'])).stdout).split('\n')) if (/pg_basebackup|run\.js/.test(line)) seen.add(line)
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    })()
    // A root-owned 0600 file that the postgres OS user (who runs pg_basebackup) cannot read.
    const secrets = await mkdtemp(path.join(os.tmpdir(), 'zenith-pgpass-'))
    try {
      const noPassword = await home.run(['snapshot', 'import', '--from', url, 'nopass', '--json'], {env: {PGPASSWORD: '', PGPASSFILE: path.join(secrets, 'missing')}})
      expect(noPassword.json.error.code).toBe('AUTH_FAILED')
      expect(noPassword.json.error.hint).toContain('PGPASSWORD')
      expect(noPassword.json.error.hint).toContain('.pgpass')

      await home.ok(['snapshot', 'import', '--from', url, 'viaenv'], {env: {PGPASSWORD: PASSWORD}})
      const pgpass = path.join(secrets, 'pgpass')
      await writeFile(pgpass, `127.0.0.1:${SOURCE_PORT}:replication:repl:${PASSWORD.replaceAll(':', '\\:')}\n`, {mode: 0o600})
      const viaFile = await home.ok(['snapshot', 'import', '--from', url, 'viapgpass'], {env: {PGPASSWORD: '', PGPASSFILE: pgpass}})
      expect(viaFile.stdout + viaFile.stderr).not.toContain(PASSWORD)
      expect(viaFile.stderr).not.toContain('Warning')
    } finally {
      watching = false
      await watcher
      await rm(secrets, {recursive: true, force: true})
    }

    expect([...seen].some((line) => line.includes('pg_basebackup'))).toBe(true)
    expect([...seen].filter((line) => line.includes(PASSWORD))).toEqual([])
    await home.ok(['snapshot', 'destroy', 'viaenv'])
    await home.ok(['snapshot', 'destroy', 'viapgpass'])
  })

  test('a tar-format basebackup (base.tar + pg_wal.tar + backup_manifest) imports and is checked by pg_verifybackup', async () => {
    const dir = path.join(work, 'tarbackup')
    await asPostgres('pg_basebackup', ['-h', source.dir, '-p', String(SOURCE_PORT), '-U', 'postgres', '-w', '-D', dir, '-Ft', '-X', 'stream', '-c', 'fast'])
    const imported = await home.ok(['snapshot', 'import', '--from', path.join(dir, 'base.tar'), 'fromtar', '--json'])
    expect(imported.json).toMatchObject({snapshot: 'fromtar', kind: 'tar', verified: 'pg_verifybackup'})
    expect(await checksumOf(home, 'fromtar', 'fromtar')).toEqual(expected)
  })

  describe('bad input changes nothing', () => {
    let file: string
    beforeAll(async () => {
      file = path.join(work, 'plain.zenith')
      await home.ok(['snapshot', 'export', 'prod', '-o', file, '-c', 'none'])
    })

    const cases: Array<[string, () => Promise<string>, string[]]> = [
      ['truncated archive', async () => {
        const bad = path.join(work, 'truncated.zenith')
        const bytes = await readFile(file)
        await writeFile(bad, bytes.subarray(0, Math.floor(bytes.length * 0.7)))
        return bad
      }, ['ARCHIVE_INVALID']],
      ['corrupted byte', async () => {
        const bad = path.join(work, 'corrupt.zenith')
        const bytes = await readFile(file)
        bytes[Math.floor(bytes.length * 0.5)] ^= 0x55
        await writeFile(bad, bytes)
        return bad
      }, ['CHECKSUM_MISMATCH']],
      ['corrupted byte in a gzip archive', async () => {
        const bad = path.join(work, 'corrupt-gz.zenith')
        const bytes = await readFile(path.join(work, 'prod.zenith'))
        bytes[Math.floor(bytes.length * 0.5)] ^= 0x55
        await writeFile(bad, bytes)
        return bad
      }, ['CHECKSUM_MISMATCH']],
      ['wrong version', async () => {
        const bad = path.join(work, 'future.zenith')
        const tar = await import('tar-stream')
        const pack = tar.pack()
        pack.entry({name: 'manifest.json'}, JSON.stringify({format: 'zenith-archive', version: 99, files: []}))
        pack.finalize()
        const chunks: Buffer[] = []
        for await (const chunk of pack as unknown as AsyncIterable<Buffer>) chunks.push(chunk)
        await writeFile(bad, Buffer.concat(chunks))
        return bad
      }, ['ARCHIVE_INVALID']],
      ['not an archive', async () => {
        const bad = path.join(work, 'notes.zenith')
        await writeFile(bad, 'hello, this is not a tar file\n'.repeat(100))
        return bad
      }, ['ARCHIVE_INVALID']],
      ['running data directory', async () => source.dataDir, ['PG_RUNNING']],
      ['unreachable basebackup host', async () => source.url('repl', PASSWORD, DEAD_PORT), ['SOURCE_UNREACHABLE']],
      ['wrong password', async () => source.url('repl', 'wrong'), ['AUTH_FAILED']],
    ]

    for (const [label, make, codes] of cases) {
      test(label, async () => {
        const from = await make()
        const before = await footprint(home)
        const result = await home.run(['snapshot', 'import', '--from', from, 'bad', '--json'])
        expect(result.exitCode).not.toBe(0)
        expect(codes).toContain(result.json?.error?.code)
        expect(result.json.error.hint).toBeTruthy()
        expect(await footprint(home)).toEqual(before)
      })
    }
  })

  test('Ctrl-C and kill -9 during an import leave nothing visible and the space is reclaimed', async () => {
    const file = path.join(work, 'plain.zenith')
    const bytes = await readFile(file)
    // Sends 40% of the archive, then stalls: the import is caught mid-way.
    const base = await serve((_request, response) => {
      response.writeHead(200, {'content-length': String(bytes.length)})
      response.write(bytes.subarray(0, Math.floor(bytes.length * 0.4)))
    })
    const before = await footprint(home)
    for (const signal of ['SIGINT', 'SIGKILL'] as const) {
      const child = execa('node', [BIN, 'snapshot', 'import', '--from', `${base}/slow.zenith`, 'halfway'], {env: home.env(), reject: false})
      // Wait until the snapshot is reserved and being written.
      for (let i = 0; i < 100; i++) {
        const state = JSON.parse(await readFile(path.join(home.home, 'state.json'), 'utf8').catch(() => '{}'))
        if (state.snapshots?.halfway) break
        await new Promise((resolve) => setTimeout(resolve, 100))
      }

      child.kill(signal)
      const result = await child
      if (signal === 'SIGINT') {
        expect(result.exitCode).toBe(130)
        expect(result.stderr).toMatch(/nothing was kept/i)
      }

      // The next command repairs what a kill left; afterwards everything is as before.
      expect(await footprint(home)).toEqual(before)
    }

    await closeServer()
  })

  test('a stopped data directory imports (a running one was refused above)', async () => {
    await source.stop()
    const imported = await home.ok(['snapshot', 'import', '--from', source.dataDir, 'stopped', '--json'])
    expect(imported.json).toMatchObject({snapshot: 'stopped', kind: 'data-directory'})
    expect(await checksumOf(home, 'fromstopped', 'stopped')).toEqual(expected)
  })
})

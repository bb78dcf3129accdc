import {readFile, readdir, rm} from 'node:fs/promises'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {type ResultPromise, execa} from 'execa'
import pg from 'pg'

import {BIN, TestHome} from '../helpers/zenith.js'

/**
 * Issue 15, the REST API (`zenith serve`): every route through real HTTP against the built CLI
 * and real postgres. Ports 9700-9760: pgs from 9700, the server on 9759.
 */
const PORT = 9759
const BASE = `http://127.0.0.1:${PORT}`

interface Reply {
  status: number
  json: any
}

interface Clone {
  id: string
  status: {code: string; message: string}
  protected: boolean
  deleteAt: string | null
  snapshot: {id: string}
  db: {connStr: string; port: number; username: string} | null
}

describe('zenith serve: the REST API', () => {
  let home: TestHome
  let server: ResultPromise | undefined
  let token = ''
  let serverOutput = ''

  const start = async () => {
    serverOutput = ''
    server = execa('node', [BIN, 'serve', '--port', String(PORT)], {env: home.env({ZENITH_API_REAPER_SECONDS: '1'}), reject: false, stdin: 'ignore'})
    server.stdout?.on('data', (chunk: Buffer) => (serverOutput += chunk.toString()))
    server.stderr?.on('data', (chunk: Buffer) => (serverOutput += chunk.toString()))
    for (let i = 0; i < 100; i++) {
      if (await fetch(`${BASE}/status`).then(() => true, () => false)) return
      if (server.exitCode !== null) break
      await sleep(100)
    }

    throw new Error(`zenith serve did not start:\n${serverOutput}`)
  }

  const api = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {'Verification-Token': token}): Promise<Reply> => {
    const response = await fetch(`${BASE}${path}`, {
      method,
      headers: {...headers, ...(body === undefined ? {} : {'Content-Type': 'application/json'})},
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    })
    const text = await response.text()
    return {status: response.status, json: text ? JSON.parse(text) : undefined}
  }

  /** Polls the clone until its status is `code` (fails early on FATAL). */
  const waitFor = async (id: string, code: string, seconds = 60): Promise<Clone> => {
    let last: Reply | undefined
    for (const deadline = Date.now() + seconds * 1000; Date.now() < deadline; await sleep(200)) {
      last = await api('GET', `/clone/${id}`)
      if (last.json?.status?.code === code) return last.json as Clone
      if (last.json?.status?.code === 'FATAL') break
    }

    throw new Error(`clone ${id} did not reach ${code}: ${JSON.stringify(last)}\n${serverOutput}`)
  }

  const waitGone = async (id: string, seconds = 60): Promise<Reply> => {
    let last: Reply | undefined
    for (const deadline = Date.now() + seconds * 1000; Date.now() < deadline; await sleep(250)) {
      last = await api('GET', `/clone/${id}`)
      if (last.status === 404) return last
    }

    throw new Error(`clone ${id} was not deleted: ${JSON.stringify(last)}\n${serverOutput}`)
  }

  const query = async <T>(connStr: string, sql: string): Promise<T[]> => {
    const client = new pg.Client({connectionString: connStr})
    await client.connect()
    try {
      return (await client.query(sql)).rows as T[]
    } finally {
      await client.end()
    }
  }

  const items = async (connStr: string) => (await query<{n: number}>(connStr, 'select count(*)::int as n from items'))[0].n

  beforeAll(async () => {
    home = await TestHome.create(9700)
    await home.ok(['pg', 'create', 'dev'])
    await home.query('dev', 'create table items (id int primary key, note text)')
    await home.query('dev', "insert into items select g, 'fixture' from generate_series(1, 100) g")
    await home.ok(['snapshot', 'create', 'dev@fixture'])
    token = (await home.ok(['serve', '--print-token'])).stdout.trim()
    await start()
  }, 120_000)

  afterAll(async () => {
    if (server && server.exitCode === null) {
      server.kill('SIGKILL')
      await server
    }

    await home?.destroy()
  }, 120_000)

  test('refuses a missing or wrong token with 401 and the error model; the token file is 0600', async () => {
    const missing = await api('GET', '/status', undefined, {})
    expect(missing.status).toBe(401)
    expect(missing.json).toMatchObject({code: 'AUTH_FAILED', name: 'Auth failed', message: expect.stringContaining('no Verification-Token'), hint: expect.any(String)})
    const wrong = await api('POST', '/clone', {snapshot: {id: 'dev@fixture'}}, {'Verification-Token': `${token}x`})
    expect(wrong.status).toBe(401)
    expect(wrong.json.code).toBe('AUTH_FAILED')
    // A refused creation made nothing.
    expect((await home.ok(['pg', 'list', '--json'])).json.map((item: {name: string}) => item.name)).toEqual(['dev'])
    const printed = await home.ok(['serve', '--print-token', '--json'])
    expect(printed.json).toMatchObject({token, source: 'file'})
    const {stdout: mode} = await execa('stat', ['-c', '%a', printed.json.file])
    expect(mode.trim()).toBe('600')
    expect((await home.ok(['serve', '--print-token'], {env: {ZENITH_API_TOKEN: 'from-env'}})).stdout.trim()).toBe('from-env')
  })

  test('status, snapshots, pgs, one pg, storages and pitr answer', async () => {
    const status = await api('GET', '/status')
    expect(status.status).toBe(200)
    expect(status.json).toMatchObject({status: {code: 'OK'}, numClones: 0, clones: [], expectedCloningTime: null})
    expect(status.json.disk).toEqual([expect.objectContaining({name: 'local', size: expect.any(Number), free: expect.any(Number)})])
    expect(status.json.disk[0].size).toBeGreaterThan(status.json.disk[0].free)
    expect(status.json.snapshots.map((snapshot: {id: string}) => snapshot.id)).toEqual(['dev@fixture'])
    expect((await api('GET', '/snapshots')).json).toEqual([expect.objectContaining({id: 'dev@fixture', pg: 'dev', storage: 'local'})])
    expect((await api('GET', '/pgs')).json).toEqual([expect.objectContaining({name: 'dev', status: 'running'})])
    expect((await api('GET', '/pg/dev')).json).toMatchObject({name: 'dev', port: 9700})
    expect((await api('GET', '/storages')).json).toEqual([expect.objectContaining({name: 'local', type: 'local'})])
    expect((await api('GET', '/pitr')).json).toEqual([])
  })

  test('POST /snapshot makes PG@TAG; an unknown pg is 404 PG_NOT_FOUND, a taken name 409', async () => {
    const made = await api('POST', '/snapshot', {pg: 'dev', tag: 'api'})
    expect(made.status).toBe(201)
    expect(made.json).toMatchObject({id: 'dev@api', pg: 'dev', tag: 'api'})
    expect((await home.ok(['snapshot', 'list', '--json'])).json.map((item: {name: string}) => item.name)).toContain('dev@api')
    expect(await api('POST', '/snapshot', {pg: 'nope', tag: 'x'})).toMatchObject({status: 404, json: {code: 'PG_NOT_FOUND'}})
    expect(await api('POST', '/snapshot', {pg: 'dev', tag: 'api'})).toMatchObject({status: 409, json: {code: 'NAME_TAKEN'}})
  })

  test('a clone: CREATING at once, then OK; psql reaches it; reset brings the data back', async () => {
    const created = await api('POST', '/clone', {id: 'c1', snapshot: {id: 'dev@fixture'}})
    expect(created.status).toBe(202)
    expect(created.json).toMatchObject({id: 'c1', status: {code: 'CREATING'}, snapshot: {id: 'dev@fixture'}})
    const ready = await waitFor('c1', 'OK')
    expect(ready).toMatchObject({protected: false, deleteAt: null, snapshot: {id: 'dev@fixture'}, cloningTime: expect.any(Number), cloneSize: expect.any(Number)})
    expect(ready.db).toMatchObject({username: 'postgres', host: 'localhost', port: expect.any(Number)})
    expect(await items(ready.db!.connStr)).toBe(100)

    // The store keeps it: `pg list` shows the clone and its API record.
    const listed = (await home.ok(['pg', 'list', '--json'])).json.find((item: {name: string}) => item.name === 'c1')
    expect(listed).toMatchObject({status: 'running', origin: {snapshot: 'dev@fixture'}, clone: {snapshot: 'dev@fixture', protected: false}})
    expect((await home.ok(['pg', 'list'])).stdout).toMatch(/c1 .*running, API clone/)
    expect((await api('GET', '/status')).json).toMatchObject({numClones: 1, clones: [expect.objectContaining({id: 'c1'})], expectedCloningTime: expect.any(Number)})

    await query(ready.db!.connStr, 'delete from items where id > 10')
    expect(await items(ready.db!.connStr)).toBe(10)
    const reset = await api('POST', '/clone/c1/reset')
    expect(reset.status).toBe(202)
    expect(reset.json.status.code).toBe('RESETTING')
    const again = await waitFor('c1', 'OK')
    expect(again.db!.port).toBe(ready.db!.port)
    expect(await items(again.db!.connStr)).toBe(100)

    // To another snapshot by snapshotID, then one of its own (a checkout).
    await query(again.db!.connStr, "insert into items values (1000, 'own')")
    const own = await api('POST', '/snapshot', {pg: 'c1', tag: 'own'})
    expect(own.status).toBe(201)
    await query(again.db!.connStr, 'delete from items')
    expect(await api('POST', '/clone/c1/reset', {snapshotID: 'dev@api'})).toMatchObject({status: 409, json: {code: 'HAS_DEPENDENTS'}})
    expect((await api('POST', '/clone/c1/reset', {snapshotID: 'c1@own'})).status).toBe(202)
    const checkedOut = await waitFor('c1', 'OK')
    expect(checkedOut.snapshot.id).toBe('c1@own')
    expect(await items(checkedOut.db!.connStr)).toBe(101)
  })

  test('db: {username, password} makes a login role in the clone, kept over a reset; a bad role name is refused', async () => {
    expect(await api('POST', '/clone', {id: 'withuser', snapshot: {id: 'dev@fixture'}, db: {username: 'Bad-Name', password: 'x'}})).toMatchObject({status: 400, json: {code: 'INVALID_ARGUMENT'}})
    expect(await api('POST', '/clone', {id: 'withuser', snapshot: {id: 'dev@fixture'}, db: {username: 'postgres', password: 'x'}})).toMatchObject({status: 400, json: {code: 'INVALID_ARGUMENT'}})
    expect((await api('GET', '/clone/withuser')).status).toBe(404)
    expect((await api('POST', '/clone', {id: 'withuser', snapshot: {id: 'dev@fixture'}, db: {username: 'app', password: 'secret one'}})).status).toBe(202)
    const ready = await waitFor('withuser', 'OK')
    expect(ready.db).toMatchObject({username: 'app', connStr: `postgresql://app@localhost:${ready.db!.port}/postgres`})
    const withPassword = (password: string) => `postgresql://app:${encodeURIComponent(password)}@localhost:${ready.db!.port}/postgres`
    expect(await query(withPassword('secret one'), 'select current_user as who')).toEqual([{who: 'app'}])
    await expect(query(withPassword('wrong'), 'select 1')).rejects.toMatchObject({code: '28P01'})
    // Only a verifier is kept: the password is nowhere in the store.
    expect(await readFile(path.join(home.home, 'state.json'), 'utf8')).not.toContain('secret one')
    expect((await api('POST', '/clone/withuser/reset')).status).toBe(202)
    const again = await waitFor('withuser', 'OK')
    expect(await query(withPassword('secret one'), 'select count(*)::int as n from items')).toEqual([{n: 100}])
    expect(again.db!.username).toBe('app')
    expect((await api('DELETE', '/clone/withuser')).status).toBe(202)
    await waitGone('withuser')
  })

  test('a protected clone is not deleted (409) until PATCH unprotects it; then DELETE removes it', async () => {
    expect(await api('POST', '/clone', {id: 'keep', snapshot: {id: 'dev@fixture'}, protected: true})).toMatchObject({status: 202, json: {status: {code: 'CREATING'}, protected: true}})
    await waitFor('keep', 'OK')
    const refused = await api('DELETE', '/clone/keep')
    expect(refused).toMatchObject({status: 409, json: {code: 'CLONE_PROTECTED', name: 'Clone protected', hint: expect.stringContaining('PATCH')}})
    expect((await api('GET', '/clone/keep')).json.status.code).toBe('OK')

    const patched = await api('PATCH', '/clone/keep', {protected: false})
    expect(patched).toMatchObject({status: 200, json: {id: 'keep', protected: false}})
    const deleting = await api('DELETE', '/clone/keep')
    expect(deleting).toMatchObject({status: 202, json: {status: {code: 'DELETING'}}})
    expect((await waitGone('keep')).json).toMatchObject({code: 'CLONE_NOT_FOUND'})
    expect((await home.ok(['pg', 'list', '--json'])).json.map((item: {name: string}) => item.name)).not.toContain('keep')
  })

  test('bad input, unknown ids and unknown routes get coded errors', async () => {
    expect(await api('POST', '/clone', '{"snapshot": ')).toMatchObject({status: 400, json: {code: 'INVALID_ARGUMENT', message: expect.stringContaining('not valid JSON')}})
    expect(await api('POST', '/clone', {})).toMatchObject({status: 400, json: {code: 'INVALID_ARGUMENT', message: expect.stringContaining('snapshot')}})
    expect(await api('POST', '/clone', {snapshot: {id: 'dev@fixture'}, colour: 'red'})).toMatchObject({status: 400, json: {code: 'INVALID_ARGUMENT', message: expect.stringContaining('"colour"')}})
    expect(await api('POST', '/clone', {snapshot: {id: 'dev@fixture'}, deleteAt: 'tomorrow'})).toMatchObject({status: 400, json: {code: 'INVALID_ARGUMENT'}})
    expect(await api('POST', '/clone', {id: 'a/b', snapshot: {id: 'dev@fixture'}})).toMatchObject({status: 400, json: {code: 'INVALID_NAME'}})
    expect(await api('POST', '/clone', {id: 'dev', snapshot: {id: 'dev@fixture'}})).toMatchObject({status: 409, json: {code: 'NAME_TAKEN'}})
    expect(await api('POST', '/clone', {snapshot: {id: 'dev@nope'}})).toMatchObject({status: 404, json: {code: 'SNAPSHOT_NOT_FOUND'}})
    expect(await api('PATCH', '/clone/c1', {})).toMatchObject({status: 400, json: {code: 'INVALID_ARGUMENT'}})
    for (const [method, path] of [['GET', '/clone/nope'], ['PATCH', '/clone/nope'], ['POST', '/clone/nope/reset'], ['DELETE', '/clone/nope']]) {
      const reply = await api(method, path, method === 'PATCH' ? {protected: true} : undefined)
      expect(reply).toMatchObject({status: 404, json: {code: 'CLONE_NOT_FOUND', name: 'Clone not found', message: expect.stringContaining('nope'), hint: expect.any(String)}})
    }

    // A pg that the API did not make is no clone of it.
    expect(await api('DELETE', '/clone/dev')).toMatchObject({status: 404, json: {code: 'CLONE_NOT_FOUND'}})
    expect(await api('GET', '/pg/nope')).toMatchObject({status: 404, json: {code: 'PG_NOT_FOUND'}})
    expect(await api('GET', '/nowhere')).toMatchObject({status: 404, json: {code: 'ROUTE_NOT_FOUND'}})
    expect((await home.ok(['pg', 'list', '--json'])).json.map((item: {name: string}) => item.name).sort()).toEqual(['c1', 'dev'])
  })

  test('a replica is reached by its URL-encoded name', async () => {
    await home.ok(['pg', 'start', 'dev', '--replica'])
    expect((await api('GET', '/pg/dev%2Freplica-1')).json).toMatchObject({name: 'dev/replica-1', role: 'replica-1', primary: 'dev'})
    await home.ok(['pg', 'destroy', 'dev/replica-1'])
  })

  test('two clients creating at once both get their clone', async () => {
    const [a, b] = await Promise.all([
      api('POST', '/clone', {snapshot: {id: 'dev@fixture'}}),
      api('POST', '/clone', {snapshot: {id: 'dev@api'}}),
    ])
    expect([a.status, b.status]).toEqual([202, 202])
    expect(a.json.id).not.toBe(b.json.id)
    const [readyA, readyB] = await Promise.all([waitFor(a.json.id, 'OK'), waitFor(b.json.id, 'OK')])
    expect(readyA.db!.port).not.toBe(readyB.db!.port)
    expect(await items(readyA.db!.connStr)).toBe(100)
    expect(await items(readyB.db!.connStr)).toBe(100)
    for (const id of [a.json.id, b.json.id]) expect((await api('DELETE', `/clone/${id}`)).status).toBe(202)
    await Promise.all([waitGone(a.json.id), waitGone(b.json.id)])
  })

  test('auto-delete: a deleteAt in the past, and idle clones (not while a client is connected); never a protected one', async () => {
    const past = new Date(Date.now() - 60_000).toISOString()
    expect((await api('POST', '/clone', {id: 'due', snapshot: {id: 'dev@fixture'}, deleteAt: past})).status).toBe(202)
    expect((await api('POST', '/clone', {id: 'guarded', snapshot: {id: 'dev@fixture'}, deleteAt: past, maxIdleMinutes: 0.01, protected: true})).status).toBe(202)
    expect((await api('POST', '/clone', {id: 'idle', snapshot: {id: 'dev@fixture'}, maxIdleMinutes: 0.05})).status).toBe(202)
    await waitFor('guarded', 'OK')
    const idle = await waitFor('idle', 'OK')
    // Connected, it is not idle: it outlives its 3 s limit while the session is open.
    const client = new pg.Client({connectionString: idle.db!.connStr})
    await client.connect()
    try {
      await sleep(6000)
      expect((await api('GET', '/clone/idle')).json.status.code).toBe('OK')
    } finally {
      await client.end()
    }

    await waitGone('due')
    await waitGone('idle', 30)
    expect(serverOutput).toMatch(/Clone due was deleted \(its deleteAt .* has passed\)/)
    expect(serverOutput).toMatch(/Clone idle was deleted \(no connections for/)
    expect((await api('GET', '/clone/guarded')).json).toMatchObject({status: {code: 'OK'}, protected: true})
  })

  test('a creation that fails is FATAL with its reason, leaves no pg, and DELETE clears it', async () => {
    // A snapshot whose data directory lost pg_control: postgres cannot start on a copy of it.
    expect((await api('POST', '/snapshot', {pg: 'dev', tag: 'broken'})).status).toBe(201)
    const state = JSON.parse(await readFile(path.join(home.home, 'state.json'), 'utf8'))
    const {volume} = state.snapshots['dev@broken']
    const [folder] = (await readdir(path.join(home.home, 'storages', 'local'), {recursive: true})).filter((entry) => path.basename(entry) === volume)
    await rm(path.join(home.home, 'storages', 'local', folder, 'global', 'pg_control'))

    expect((await api('POST', '/clone', {id: 'doomed', snapshot: {id: 'dev@broken'}})).status).toBe(202)
    const failed = await (async () => {
      for (const deadline = Date.now() + 60_000; Date.now() < deadline; await sleep(200)) {
        const reply = await api('GET', '/clone/doomed')
        if (reply.json.status.code === 'FATAL') return reply.json as Clone
      }

      throw new Error(`clone doomed never became FATAL\n${serverOutput}`)
    })()
    expect(failed.status.message).toMatch(/^PG_START_FAILED: /)
    expect(failed.db).toBeNull()
    expect((await home.ok(['pg', 'list', '--json'])).json.map((item: {name: string}) => item.name)).not.toContain('doomed')
    expect((await api('GET', '/status')).json.clones.map((clone: Clone) => clone.id)).toContain('doomed')
    expect((await api('DELETE', '/clone/doomed')).status).toBe(202)
    expect(await api('GET', '/clone/doomed')).toMatchObject({status: 404, json: {code: 'CLONE_NOT_FOUND'}})
    await home.ok(['snapshot', 'destroy', 'dev@broken'])
  })

  test('GET /diff compares two snapshots as snapshot diff --json does; a bad mode is 400', async () => {
    const diff = await api('GET', '/diff?from=dev%40fixture&to=dev%40CURRENT&mode=data')
    expect(diff.status).toBe(200)
    expect(diff.json).toMatchObject({mode: 'data', before: 'dev@fixture', after: 'dev@CURRENT', tablesCompared: expect.any(Number)})
    expect((await api('GET', '/diff?from=dev%40fixture&to=dev%40CURRENT&mode=everything')).json).toMatchObject({code: 'INVALID_ARGUMENT'})
    expect((await api('GET', '/diff?from=dev%40fixture&to=nosuch')).json).toMatchObject({code: 'SNAPSHOT_NOT_FOUND'})
    const documented = (await api('GET', '/openapi.json')).json.paths['/diff'].get.parameters.map((parameter: {name: string; in: string}) => `${parameter.in}:${parameter.name}`)
    expect(documented).toEqual(['query:from', 'query:to', 'query:mode', 'query:limit'])
  })

  test('pgs, storages and PITR areas are made, started, stopped and removed over the API', async () => {
    expect(await api('POST', '/pg', {cow: true})).toMatchObject({status: 400, json: {code: 'INVALID_ARGUMENT'}})
    const created = await api('POST', '/pg', {name: 'apipg', settings: ['work_mem=8MB']})
    expect(created).toMatchObject({status: 201, json: {name: 'apipg', role: 'primary', status: 'running', settings: {work_mem: '8MB'}}})
    expect((await api('POST', '/pg/apipg/stop')).json).toMatchObject({name: 'apipg', status: 'stopped'})
    expect((await api('POST', '/pg/apipg/stop')).json).toMatchObject({code: 'PG_NOT_RUNNING'})
    expect((await api('POST', '/pg/apipg/start')).json).toMatchObject({name: 'apipg', status: 'running'})

    expect(await api('POST', '/pitr', {name: 'apiarea', pg: 'apipg', ttl: '1d'})).toMatchObject({status: 201, json: {name: 'apiarea', pg: 'apipg'}})
    expect((await api('GET', '/pitr')).json.map((area: {name: string}) => area.name)).toContain('apiarea')
    expect(await api('DELETE', '/pg/apipg')).toMatchObject({status: 409, json: {code: 'HAS_DEPENDENTS'}})
    expect(await api('DELETE', '/pitr/apiarea')).toMatchObject({status: 200, json: {name: 'apiarea'}})

    const folder = path.join(home.home, 'shared-folder')
    expect(await api('POST', '/storage', {type: 'dir', name: 'share', options: {path: folder}})).toMatchObject({status: 201, json: {name: 'share', type: 'dir'}})
    expect((await api('GET', '/storages')).json.map((storage: {name: string}) => storage.name)).toContain('share')
    expect(await api('POST', '/storage', {type: 'nosuch', name: 'x'})).toMatchObject({status: 400})
    expect(await api('DELETE', '/storage/share')).toMatchObject({status: 200, json: {name: 'share'}})

    expect(await api('DELETE', '/pg/apipg')).toMatchObject({status: 200, json: {name: 'apipg'}})
    expect((await api('GET', '/pg/apipg')).json).toMatchObject({code: 'PG_NOT_FOUND'})
  }, 180_000)

  test('/openapi.json lists every route with its request schema', async () => {
    const {status, json} = await api('GET', '/openapi.json')
    expect(status).toBe(200)
    expect(json.openapi).toBe('3.1.0')
    const routes = Object.entries(json.paths as Record<string, object>).flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`)).sort()
    expect(routes).toEqual([
      'DELETE /clone/{id}', 'DELETE /pg/{name}', 'DELETE /pitr/{name}', 'DELETE /snapshot/{id}', 'DELETE /storage/{name}', 'GET /clone/{id}', 'GET /diff', 'GET /openapi.json',
      'GET /pg/{name}', 'GET /pg/{name}/metrics', 'GET /pg/{name}/url', 'GET /pgs', 'GET /pitr', 'GET /snapshots', 'GET /status', 'GET /storages', 'PATCH /clone/{id}',
      'POST /clone', 'POST /clone/{id}/reset', 'POST /pg', 'POST /pg/{name}/start', 'POST /pg/{name}/stop', 'POST /pitr', 'POST /snapshot', 'POST /storage',
    ])
    expect(json.paths['/clone'].post.requestBody.content['application/json'].schema).toMatchObject({required: ['snapshot'], properties: {snapshot: {type: 'object'}, maxIdleMinutes: {type: 'number'}}})
    expect(json.components.securitySchemes.verificationToken).toMatchObject({in: 'header', name: 'Verification-Token'})
  })

  test('SIGTERM stops the server with exit code 0 after the clone it was making; a restarted server knows its clones', async () => {
    expect((await api('POST', '/clone', {id: 'late', snapshot: {id: 'dev@fixture'}, protected: true})).json.status.code).toBe('CREATING')
    server!.kill('SIGTERM')
    const result = await server!
    expect(result.exitCode).toBe(0)
    expect(serverOutput).toContain('SIGTERM: stopping')
    expect(serverOutput).toContain('Clone late of dev@fixture is ready')
    await expect(fetch(`${BASE}/status`)).rejects.toThrow()
    expect((await home.ok(['pg', 'show', 'late', '--json'])).json).toMatchObject({status: 'running', clone: {protected: true, cloningTime: expect.any(Number)}})

    await start()
    const status = (await api('GET', '/status')).json
    expect(status.clones.map((clone: Clone) => clone.id).sort()).toEqual(['c1', 'guarded', 'late'])
    const late = await waitFor('late', 'OK', 5)
    expect(await items(late.db!.connStr)).toBe(100)
    expect(status.expectedCloningTime).toBeGreaterThan(0)
    expect((await api('GET', '/clone/guarded')).json).toMatchObject({status: {code: 'OK'}, protected: true})
  })

  test('on a non-loopback address it warns; ZENITH_API_TOKEN is the token when set; a taken port is PORT_IN_USE', async () => {
    const other = execa('node', [BIN, 'serve', '--port', '9758', '--listen', '0.0.0.0'], {env: home.env({ZENITH_API_TOKEN: 'env-token'}), reject: false, stdin: 'ignore'})
    try {
      let reply: Response | undefined
      for (let i = 0; i < 100 && !reply; i++) reply = await fetch('http://127.0.0.1:9758/status', {headers: {'Verification-Token': 'env-token'}}).catch(async () => sleep(100).then(() => undefined))
      expect(reply?.status).toBe(200)
      expect((await fetch('http://127.0.0.1:9758/status', {headers: {'Verification-Token': token}})).status).toBe(401)
    } finally {
      other.kill('SIGTERM')
    }

    const result = await other
    expect(result.exitCode).toBe(0)
    expect(String(result.stderr)).toMatch(/Warning: listening on 0\.0\.0\.0, not loopback/)

    const taken = await home.run(['serve', '--port', String(PORT), '--json'])
    expect(taken.exitCode).toBe(4)
    expect(taken.json).toMatchObject({error: {code: 'PORT_IN_USE'}})
  })
})

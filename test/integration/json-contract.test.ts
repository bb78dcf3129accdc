/**
 * The output contract scripts rely on: the flags of every command, and the keys (with JSON types,
 * nested objects and the elements of lists included) of the --json output of every command that
 * has one, and of the error shape. A change here must be deliberate. After an intended change,
 * rebuild and regenerate the snapshots with
 *
 *   npx tsc -p tsconfig.build.json && npx oclif manifest && \
 *   UPDATE_CONTRACT=1 NODE_OPTIONS=--experimental-vm-modules npx jest test/integration/json-contract.test.ts
 *
 * and review the diff of test/contract/*.json.
 */
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {chmod, mkdtemp, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {execa} from 'execa'

import {BIN, ROOT, type RunResult, TestHome} from '../helpers/zenith.js'

const UPDATE = process.env.UPDATE_CONTRACT === '1'
const CONTRACT_DIR = path.join(ROOT, 'test', 'contract')
/** Commands without --json: their output is not a result (psql's own terminal session). */
const WITHOUT_JSON = ['pg:psql', 'complete']
/** Values that are maps of the user's own keys (postgres settings, storage options): only "object" is the contract. */
const FREE_FORM = new Set(['settings', 'options'])

/** Compares `actual` with the committed snapshot `file`, or rewrites it under UPDATE_CONTRACT=1. */
function expectContract(file: string, actual: unknown): void {
  const target = path.join(CONTRACT_DIR, file)
  if (UPDATE || !existsSync(target)) {
    if (!UPDATE) throw new Error(`${target} is missing; generate it with UPDATE_CONTRACT=1 (see the top of this file).`)
    writeFileSync(target, JSON.stringify(actual, null, 2) + '\n')
    return
  }

  expect(actual).toEqual(JSON.parse(readFileSync(target, 'utf8')))
}

type Shape = string | Shape[] | {[key: string]: Shape}

/**
 * Keys and JSON types of a value, what a script reading it depends on: objects key by key
 * (sorted), a list as the shape of its first element (or "array" when empty).
 */
function shapeOf(value: unknown, key?: string): Shape {
  if (value === null) return 'null'
  if (Array.isArray(value)) return value.length === 0 ? 'array' : [shapeOf(value[0])]
  if (typeof value === 'object' && !(key && FREE_FORM.has(key))) {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b))
      .map(([name, item]) => [name, shapeOf(item, name)]))
  }

  return typeof value
}

interface ManifestCommand {
  args: Record<string, {required?: boolean}>
  flags: Record<string, {type: string; char?: string; multiple?: boolean; options?: string[]; default?: unknown}>
}

function manifestCommands(): Record<string, ManifestCommand> {
  return (JSON.parse(readFileSync(path.join(ROOT, 'oclif.manifest.json'), 'utf8')) as {commands: Record<string, ManifestCommand>}).commands
}

describe('command flags (oclif.manifest.json)', () => {
  it('of every command match test/contract/commands.json', () => {
    const commands = manifestCommands()
    const contract = Object.fromEntries(Object.keys(commands).sort().map((id) => {
      const command = commands[id]
      return [id, {
        args: Object.entries(command.args).map(([name, arg]) => (arg.required ? `${name} (required)` : name)),
        flags: Object.entries(command.flags).sort(([a], [b]) => a.localeCompare(b)).map(([name, flag]) => [
          `--${name}`,
          flag.char ? `-${flag.char}` : '',
          flag.type,
          flag.multiple ? 'multiple' : '',
          flag.options ? `one of ${flag.options.join('|')}` : '',
        ].filter(Boolean).join(' ')),
      }]
    }))
    expectContract('commands.json', contract)
  })
})

describe('--json output', () => {
  let home: TestHome
  let receiver: TestHome
  let scratch: string
  const shapes: Record<string, Shape> = {}

  beforeAll(async () => {
    home = await TestHome.create(8300)
    receiver = await TestHome.create(8320)
    scratch = await mkdtemp(path.join(os.tmpdir(), 'zenith-contract-'))
    // As root, postgres runs as another OS user, which must be able to enter the storage folders.
    await chmod(scratch, 0o711)
  })

  afterAll(async () => {
    await home?.destroy()
    await receiver?.destroy()
    await rm(scratch, {recursive: true, force: true})
  })

  /** Runs a command with --json, checks stdout is one JSON document, and records its shape. */
  async function pin(name: string, args: string[], pick: (json: any) => unknown = (json) => json, on = home): Promise<RunResult> {
    const result = await on.ok([...args, '--json'])
    expect(() => JSON.parse(result.stdout)).not.toThrow()
    shapes[name] = shapeOf(pick(result.json))
    return result
  }

  // One scenario in steps (each needs the one before); the last compares what they recorded.
  const STEP = 300_000

  it('of config and the pg lifecycle', async () => {
    // Settings first: the rest of the run uses the defaults.
    await pin('config list', ['config', 'list'])
    await pin('version', ['version'])
    await pin('config set', ['config', 'set', 'default-storage', 'local'])
    await pin('config get', ['config', 'get', 'default-storage'])
    await pin('config unset', ['config', 'unset', 'default-storage'])

    const created = await pin('pg create', ['pg', 'create', 'shape'])
    expect(created.json.status).toBe('running')
    const list = await pin('pg list', ['pg', 'list'])
    expect(list.json).toHaveLength(1)
    await pin('pg url', ['pg', 'url', 'shape'])
    await pin('pg logs', ['pg', 'logs', 'shape'])
    await pin('pg stop', ['pg', 'stop', 'shape'])
    await pin('pg start', ['pg', 'start', 'shape'])
    await pin('pg restart', ['pg', 'restart', 'shape'])

    // doctor: the report; a failed one is the same report with the error beside it (exit 6).
    await pin('doctor', ['doctor'])
    const failed = await home.run(['doctor', '--json'], {env: {ZENITH_PG_BIN: path.join(scratch, 'no-such-bin')}})
    expect(failed.exitCode).toBe(6)
    shapes['doctor (a failure)'] = shapeOf({...failed.json, checks: failed.json.checks.filter((check: {status: string}) => check.status === 'fail')})

    // Replicas: each is an entry of its own in pg list, with its primary and replication state.
    await pin('pg start --replica', ['pg', 'start', 'shape', '--replica'])
    await pin('pg list (a replica)', ['pg', 'list'], (json) => json.find((item: {primary?: string}) => item.primary))
    await pin('pg show (a primary with a replica)', ['pg', 'show', 'shape'], (json) => json.replicas)
    await pin('pg promote', ['pg', 'promote', 'shape/replica-1', 'shape-promoted'])
    await home.ok(['pg', 'destroy', 'shape-promoted'])
  }, STEP)

  it('of snapshots and checkout', async () => {

    await pin('snapshot create', ['snapshot', 'create', 'shape@one'])
    await pin('snapshot list', ['snapshot', 'list'], (json) => [json.find((item: {name: string}) => item.name === 'shape@one')])
    await pin('snapshot show', ['snapshot', 'show', 'shape@one'])
    await pin('pg checkout', ['pg', 'checkout', 'shape@one'])

    // A pg made from a snapshot that is then destroyed: its CURRENT names the parent, parentExists false.
    await home.ok(['snapshot', 'create', 'shape@t0'])
    await home.ok(['pg', 'create', 'child', '--snapshot', 'shape@t0'])
    await home.ok(['snapshot', 'destroy', 'shape@t0'])
    const snapshots = await pin('snapshot list (with a parent)', ['snapshot', 'list'], (json) => [json.find((item: {name: string}) => item.name === 'child@CURRENT')])
    expect(snapshots.json.find((snapshot: {name: string}) => snapshot.name === 'child@CURRENT')).toMatchObject({parent: 'shape@t0', parentExists: false})
    await pin('snapshot show (with a parent)', ['snapshot', 'show', 'child@CURRENT'])
    await home.ok(['pg', 'destroy', 'child'])
  }, STEP)

  it('of storages, push, pull and a remote destroy', async () => {

    await pin('storage attach', ['storage', 'attach', '-t', 'dir', '-n', 'share', '-c', `path=${path.join(scratch, 'share')}`])
    await pin('storage attach (local)', ['storage', 'attach', '-t', 'local', '-n', 'other', '-c', `path=${path.join(scratch, 'other')}`])
    await pin('storage list', ['storage', 'list'], (json) => [json.find((item: {name: string}) => item.name === 'local')])
    await pin('storage show', ['storage', 'show', 'local'])
    await pin('snapshot push', ['snapshot', 'push', 'shape@one', '--to', 'share'])
    // With its snapshots on two storages, so that the shape of the groups is pinned too.
    await pin('pg show', ['pg', 'show', 'shape'])
    await pin('snapshot list --storage (remote)', ['snapshot', 'list', '--storage', 'share'])
    await pin('snapshot pull', ['snapshot', 'pull', '--from', 'share', 'shape@one', '--as', 'pulled'])
    await pin('snapshot destroy --storage (remote)', ['snapshot', 'destroy', 'shape@one', '--storage', 'share'])
    await pin('storage detach', ['storage', 'detach', 'share'])
  }, STEP)

  it('of export, import and destroy', async () => {

    const archive = path.join(scratch, 'shape.zenith')
    await pin('snapshot export', ['snapshot', 'export', 'shape@one', '-o', archive])
    await pin('snapshot import', ['snapshot', 'import', '--from', archive, 'imported'])
    await pin('snapshot destroy', ['snapshot', 'destroy', 'imported'])
  }, STEP)

  it('of PITR areas', async () => {
    await pin('pitr create', ['pitr', 'create', 'shape_area', '--pg', 'shape', '--ttl', '1d'])
    await pin('pitr list', ['pitr', 'list'])
    await pin('pitr show', ['pitr', 'show', 'shape_area'])
    const [{lsn}] = await home.query<{lsn: string}>('shape', 'select pg_current_wal_lsn()::text as lsn')
    await pin('pitr extract-snapshot', ['pitr', 'extract-snapshot', 'shape_area', '--lsn', lsn, 'extracted'])
    await pin('pitr gc', ['pitr', 'gc', 'shape_area'])
    await pin('pitr destroy', ['pitr', 'destroy', 'shape_area'])
    await home.ok(['snapshot', 'destroy', 'extracted'])
  }, STEP)

  it('of snapshot diff, in its three modes', async () => {
    await home.query('shape', 'create table if not exists diffed (id int primary key, note text); insert into diffed values (1, \'a\') on conflict do nothing')
    await home.ok(['snapshot', 'create', 'shape@diff-a'])
    await home.query('shape', 'update diffed set note = \'b\'; create index if not exists diffed_note on diffed (note)')
    await pin('snapshot diff', ['snapshot', 'diff', 'shape@diff-a', 'shape@CURRENT'], (json) => ({...json, relations: json.relations.slice(0, 1)}))
    await pin('snapshot diff --schema', ['snapshot', 'diff', 'shape@diff-a', 'shape@CURRENT', '--schema'], (json) => ({...json, objects: json.objects.slice(0, 1)}))
    await pin('snapshot diff --data', ['snapshot', 'diff', 'shape@diff-a', 'shape@CURRENT', '--data'])
    await home.ok(['snapshot', 'destroy', 'shape@diff-a'])
  }, STEP)

  it('of recv, with the URL on stderr', async () => {

    // recv: the URL on stderr while it waits, the result alone on stdout.
    const child = execa('node', [BIN, 'snapshot', 'recv', '--json'], {env: receiver.env(), reject: false, buffer: true})
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr!.on('data', (data: Buffer) => {
        const match = /^zenith:\/\/\S+$/m.exec(data.toString())
        if (match) resolve(match[0])
      })
      child.on('exit', () => reject(new Error('recv exited before printing its URL')))
    })
    await pin('snapshot push (zenith://)', ['snapshot', 'push', 'shape@one', '--to', url])
    const received = await child
    expect(received.exitCode).toBe(0)
    shapes['snapshot recv'] = shapeOf(JSON.parse(String(received.stdout)))
  }, STEP)

  it('of serve: --print-token, console, and the result after SIGTERM with the address on stderr', async () => {
    await pin('serve (--print-token)', ['serve', '--print-token'])
    // Port 9757: of the API test's range (9700-9760).
    const child = execa('node', [BIN, 'serve', '--port', '9757', '--json'], {env: home.env(), reject: false, buffer: true})
    await new Promise<void>((resolve, reject) => {
      child.stderr!.on('data', (data: Buffer) => {
        if (/^zenith API on http:\/\/127\.0\.0\.1:9757/m.test(data.toString())) resolve()
      })
      child.on('exit', () => reject(new Error('serve exited before it listened')))
    })
    // console with a server running for the home: its address, and it returns at once.
    const opened = await pin('console (--no-open, a server runs)', ['console', '--no-open'])
    expect(opened.json).toMatchObject({url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:9757\/\?token=/), started: false})
    child.kill('SIGTERM')
    const served = await child
    expect(served.exitCode).toBe(0)
    shapes.serve = shapeOf(JSON.parse(String(served.stdout)))
  }, STEP)

  it('of an error, and all of them as test/contract/json-shapes.json pins them', async () => {

    const error = await home.run(['pg', 'show', 'nosuch', '--json'])
    expect(error.exitCode).toBe(3)
    expect(Object.keys(error.json)).toEqual(['error'])
    shapes.error = shapeOf(error.json)
    // A parse error (the user's input) has the same shape, exit 2.
    const invalid = await home.run(['pg', 'list', '--nosuch', '--json'])
    expect(invalid.exitCode).toBe(2)
    expect(shapeOf(invalid.json)).toEqual(shapes.error)

    await pin('pg destroy', ['pg', 'destroy', 'shape', '--force'])
    expect((await home.ok(['pg', 'list', '--json'])).json).toEqual([])

    // Every command with --json has its shape pinned here.
    const commands = Object.keys(manifestCommands())
    for (const id of WITHOUT_JSON) expect(manifestCommands()[id].flags.json).toBeUndefined()
    const pinned = new Set(Object.keys(shapes).map((name) => name.split(' (')[0].replace(/ --\S+$/, '').replace(' ', ':')))
    expect(commands.filter((id) => !WITHOUT_JSON.includes(id) && !pinned.has(id))).toEqual([])
    expectContract('json-shapes.json', shapes)
  }, STEP)
})

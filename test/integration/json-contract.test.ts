/**
 * The output contract scripts rely on: the flags of each command of the pg lifecycle and storage
 * list/show, and the keys (with JSON types) of their --json output and of the error shape. A change
 * here must be deliberate. After an intended change, rebuild and regenerate the snapshots with
 *
 *   npx tsc -p tsconfig.build.json && npx oclif manifest && \
 *   UPDATE_CONTRACT=1 NODE_OPTIONS=--experimental-vm-modules npx jest test/integration/json-contract.test.ts
 *
 * and review the diff of test/contract/*.json. Commands of other areas (snapshot, import/export,
 * remotes) pin their own flags; this file covers the flags of the ones listed in COMMANDS, and
 * the --json shapes of those and of snapshot create, list, show, push and destroy (local and at a
 * dir remote).
 */
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {mkdtemp, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {ROOT, TestHome} from '../helpers/zenith.js'

const COMMANDS = [
  'pg:create', 'pg:destroy', 'pg:list', 'pg:logs', 'pg:psql', 'pg:restart', 'pg:show', 'pg:start', 'pg:stop', 'pg:url',
  'storage:list', 'storage:show',
]
const UPDATE = process.env.UPDATE_CONTRACT === '1'
const CONTRACT_DIR = path.join(ROOT, 'test', 'contract')

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

/** Keys and JSON types of an object, one level deep: what a script reading it depends on. */
function shapeOf(value: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(value).sort(([a], [b]) => a.localeCompare(b))
    .map(([key, item]) => [key, item === null ? 'null' : Array.isArray(item) ? 'array' : typeof item]))
}

interface ManifestCommand {
  args: Record<string, {required?: boolean}>
  flags: Record<string, {type: string; char?: string; multiple?: boolean; options?: string[]; default?: unknown}>
}

describe('command flags (oclif.manifest.json)', () => {
  it('match test/contract/commands.json', () => {
    const manifest = JSON.parse(readFileSync(path.join(ROOT, 'oclif.manifest.json'), 'utf8')) as {commands: Record<string, ManifestCommand>}
    const missing = COMMANDS.filter((id) => !manifest.commands[id])
    expect(missing).toEqual([])
    const contract = Object.fromEntries(COMMANDS.map((id) => {
      const command = manifest.commands[id]
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
  const shapes: Record<string, Record<string, string>> = {}

  beforeAll(async () => {
    home = await TestHome.create(6095)
  })

  afterAll(async () => {
    await home.destroy()
  })

  it('of pg create, list, show, url, logs, stop, start, destroy, storage list, show, snapshot create, list, show, push, destroy, and of an error', async () => {
    const created = await home.ok(['pg', 'create', 'shape', '--json'])
    shapes['pg create'] = shapeOf(created.json)
    expect(created.json.status).toBe('running')

    const list = await home.ok(['pg', 'list', '--json'])
    expect(Array.isArray(list.json)).toBe(true)
    expect(list.json).toHaveLength(1)
    shapes['pg list[]'] = shapeOf(list.json[0])
    shapes['pg show'] = shapeOf((await home.ok(['pg', 'show', 'shape', '--json'])).json)
    shapes['pg url'] = shapeOf((await home.ok(['pg', 'url', 'shape', '--json'])).json)
    shapes['pg logs'] = shapeOf((await home.ok(['pg', 'logs', 'shape', '--json'])).json)
    shapes['pg stop'] = shapeOf((await home.ok(['pg', 'stop', 'shape', '--json'])).json)
    shapes['pg start'] = shapeOf((await home.ok(['pg', 'start', 'shape', '--json'])).json)

    const storages = await home.ok(['storage', 'list', '--json'])
    expect(storages.json.map((storage: {name: string}) => storage.name)).toContain('local')
    shapes['storage list[]'] = shapeOf(storages.json.find((storage: {name: string}) => storage.name === 'local'))
    shapes['storage show'] = shapeOf((await home.ok(['storage', 'show', 'local', '--json'])).json)

    // A pg made from a snapshot that is then destroyed: its CURRENT names the parent, parentExists false.
    shapes['snapshot create'] = shapeOf((await home.ok(['snapshot', 'create', 'shape@t0', '--json'])).json)
    await home.ok(['pg', 'create', 'child', '--snapshot', 'shape@t0'])
    shapes['snapshot destroy'] = shapeOf((await home.ok(['snapshot', 'destroy', 'shape@t0', '--json'])).json)
    const snapshots = await home.ok(['snapshot', 'list', '--json'])
    const child = snapshots.json.find((snapshot: {name: string}) => snapshot.name === 'child@CURRENT')
    expect(child).toMatchObject({parent: 'shape@t0', parentExists: false})
    shapes['snapshot list[] (with a parent)'] = shapeOf(child)
    shapes['snapshot show'] = shapeOf((await home.ok(['snapshot', 'show', 'child@CURRENT', '--json'])).json)
    await home.ok(['pg', 'destroy', 'child'])

    const remote = await mkdtemp(path.join(os.tmpdir(), 'zenith-contract-'))
    try {
      await home.ok(['snapshot', 'create', 'shape@t1'])
      shapes['snapshot push'] = shapeOf((await home.ok(['snapshot', 'push', 'shape@t1', '--to', `file://${remote}`, '--json'])).json)
      shapes['snapshot destroy --storage (remote)'] = shapeOf((await home.ok(['snapshot', 'destroy', 'shape@t1', '--storage', `file://${remote}`, '--json'])).json)
      await home.ok(['snapshot', 'destroy', 'shape@t1'])
    } finally {
      await rm(remote, {recursive: true, force: true})
    }

    const error = await home.run(['pg', 'show', 'nosuch', '--json'])
    expect(error.exitCode).toBe(3)
    expect(Object.keys(error.json)).toEqual(['error'])
    shapes.error = shapeOf(error.json.error)

    shapes['pg destroy'] = shapeOf((await home.ok(['pg', 'destroy', 'shape', '--json'])).json)
    expect((await home.ok(['pg', 'list', '--json'])).json).toEqual([])

    expectContract('json-shapes.json', shapes)
  })
})

import {mkdtemp, readFile, readdir, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {execa} from 'execa'

import {isZenithError} from '../../src/errors.js'
import {type PitrRecord, SCHEMA_VERSION} from '../../src/state/schema.js'
import {Store} from '../../src/state/store.js'
import {ROOT} from '../helpers/zenith.js'

let home: string

beforeEach(async () => {
  home = await mkdtemp(path.join(os.tmpdir(), 'zenith-store-'))
})

afterEach(async () => {
  await rm(home, {recursive: true, force: true})
})

async function codeOf(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught)
  if (error === undefined) return 'no error'
  if (isZenithError(error)) return error.code
  throw error
}

describe('Store', () => {
  it('reads an empty store when there is no file, and writes none by reading', async () => {
    const store = new Store(home)
    expect(await store.read()).toEqual({version: SCHEMA_VERSION, storages: {}, pgs: {}, snapshots: {}, pitr: {}})
    expect(await readdir(home)).toEqual([])
  })

  it('saves what update leaves, in a 0600 file, and leaves no temporary file behind', async () => {
    const store = new Store(home)
    const result = await store.update((data) => {
      data.pitr.a = area('a')
      return 'done'
    })
    expect(result).toBe('done')
    expect((await new Store(home).read()).pitr.a.pg).toBe('dev')
    expect(await readdir(home)).toEqual(['state.json'])
    const {mode} = await import('node:fs/promises').then((fs) => fs.stat(store.file))
    expect(mode & 0o777).toBe(0o600)
  })

  it('saves nothing when the change throws', async () => {
    const store = new Store(home)
    await store.update((data) => {
      data.pitr.a = area('a')
    })
    const before = await readFile(store.file, 'utf8')
    await expect(store.update((data) => {
      delete data.pitr.a
      throw new Error('changed my mind')
    })).rejects.toThrow('changed my mind')
    expect(await readFile(store.file, 'utf8')).toBe(before)
    expect(await readdir(home)).toEqual(['state.json'])
  })

  it.each([
    ['not JSON', '{"version": 1, "pgs": {'],
    ['an array', '[]'],
    ['without a version', '{"pgs": {}}'],
    ['with a pgs that is not an object', '{"version": 1, "pgs": []}'],
    ['empty', ''],
  ])('gives STORE_CORRUPT for a file that is %s and never overwrites it', async (_label, text) => {
    const store = new Store(home)
    await writeFile(store.file, text)
    expect(await codeOf(store.read())).toBe('STORE_CORRUPT')
    expect(await codeOf(store.update((data) => {
      data.pitr.a = area('a')
    }))).toBe('STORE_CORRUPT')
    expect(await readFile(store.file, 'utf8')).toBe(text)
    expect((await readdir(home)).filter((file) => file.endsWith('.tmp'))).toEqual([])
  })

  it('gives STORE_TOO_NEW for a newer schema and leaves it untouched', async () => {
    const store = new Store(home)
    const text = JSON.stringify({version: SCHEMA_VERSION + 1, storages: {}, pgs: {}, snapshots: {}, pitr: {}, futureThing: {x: 1}})
    await writeFile(store.file, text)
    expect(await codeOf(store.read())).toBe('STORE_TOO_NEW')
    expect(await codeOf(store.update(() => undefined))).toBe('STORE_TOO_NEW')
    expect(await readFile(store.file, 'utf8')).toBe(text)
  })

  it('loses no update when 20 processes update at once', async () => {
    const script = path.join(home, 'add-key.mjs')
    await writeFile(script, [
      `import {Store} from ${JSON.stringify(path.join(ROOT, 'dist', 'state', 'store.js'))}`,
      'const [home, key] = process.argv.slice(2)',
      'await new Store(home).update(async (data) => {',
      // Widen the read-modify-write window so that a missing lock would show.
      '  await new Promise((resolve) => setTimeout(resolve, 5))',
      "  data.pitr[key] = {name: key, pg: 'dev', storage: 'local', createdAt: new Date().toISOString()}",
      '})',
    ].join('\n'))
    const keys = Array.from({length: 20}, (_, i) => `k${i + 1}`)
    const results = await Promise.all(keys.map((key) => execa('node', [script, home, key], {reject: false})))
    expect(results.map((result) => [result.exitCode, result.stderr])).toEqual(keys.map(() => [0, '']))
    const data = await new Store(home).read()
    expect(Object.keys(data.pitr).sort()).toEqual([...keys].sort())
    expect((await readdir(home)).filter((file) => file.endsWith('.tmp'))).toEqual([])
  })
})

function area(name: string): PitrRecord {
  return {name, pg: 'dev', storage: 'local', createdAt: 'now', state: 'ready', segmentSize: 16 * 1024 * 1024, systemId: '1', bases: [], nextBaseId: 1}
}

import {existsSync} from 'node:fs'
import {mkdtemp, readFile, rm, stat, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {isZenithError} from '../../src/errors.js'
import {getSetting, listSettings, setSetting, settingsFile, unsetSetting} from '../../src/settings.js'

let home: string
const savedPgUser = process.env.ZENITH_PG_USER

beforeEach(async () => {
  home = await mkdtemp(path.join(os.tmpdir(), 'zenith-settings-'))
  delete process.env.ZENITH_PG_USER
})

afterEach(async () => {
  await rm(home, {recursive: true, force: true})
  if (savedPgUser === undefined) delete process.env.ZENITH_PG_USER
  else process.env.ZENITH_PG_USER = savedPgUser
})

async function codeOf(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught)
  if (error === undefined) return 'no error'
  if (isZenithError(error)) return error.code
  throw error
}

describe('settings', () => {
  it('reads the defaults without a file, and writes none by reading', async () => {
    expect((await listSettings(home)).map(({key, value, source}) => [key, value, source])).toEqual([
      ['default-storage', 'local', 'default'],
      ['pg-user', 'postgres', 'default'],
    ])
    expect(existsSync(settingsFile(home))).toBe(false)
  })

  it('sets, gets and unsets a key in ZENITH_HOME/settings.json, with the format version recorded for migrations', async () => {
    expect(await setSetting(home, 'default-storage', 'fast')).toMatchObject({key: 'default-storage', value: 'fast', source: 'set'})
    expect(await getSetting(home, 'default-storage')).toMatchObject({value: 'fast', source: 'set'})
    const file = JSON.parse(await readFile(settingsFile(home), 'utf8'))
    expect(file['default-storage']).toBe('fast')
    expect(file.__internal__.migrations.version).toBe('1.0.0')
    expect(await unsetSetting(home, 'default-storage')).toMatchObject({value: 'local', source: 'default'})
    expect(await getSetting(home, 'default-storage')).toMatchObject({value: 'local', source: 'default'})
  })

  it('creates a missing home private', async () => {
    const nested = path.join(home, 'new-home')
    await setSetting(nested, 'pg-user', 'zenithpg')
    expect((await stat(nested)).mode & 0o777).toBe(0o700)
  })

  it('lets ZENITH_PG_USER win over the pg-user setting', async () => {
    await setSetting(home, 'pg-user', 'zenithpg')
    process.env.ZENITH_PG_USER = 'fromenv'
    expect(await getSetting(home, 'pg-user')).toMatchObject({value: 'fromenv', source: 'env'})
  })

  it('refuses unknown keys and invalid values, and changes nothing', async () => {
    expect(await codeOf(getSetting(home, 'nosuch'))).toBe('INVALID_ARGUMENT')
    expect(await codeOf(setSetting(home, 'nosuch', 'x'))).toBe('INVALID_ARGUMENT')
    expect(await codeOf(setSetting(home, 'default-storage', '../up'))).toBe('INVALID_NAME')
    expect(await codeOf(setSetting(home, 'pg-user', 'Root User'))).toBe('INVALID_ARGUMENT')
    expect(existsSync(settingsFile(home))).toBe(false)
  })

  it('names the file when it was edited out of its schema', async () => {
    await writeFile(settingsFile(home), JSON.stringify({'default-storage': 42}))
    const error = await getSetting(home, 'default-storage').then(() => undefined, (caught: unknown) => caught)
    expect(isZenithError(error) && error.message).toContain(settingsFile(home))
  })
})

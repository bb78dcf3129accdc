import {mkdtemp, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {ROOT} from '../helpers/zenith.js'

// zenith as a library: the built index exposes the domain functions the commands use.
describe('the library entry point', () => {
  let home: string

  afterAll(async () => rm(home, {recursive: true, force: true}))

  test('opens a home and answers without the CLI', async () => {
    const zenith = await import(path.join(ROOT, 'dist', 'index.js'))
    for (const name of ['createPg', 'startPg', 'stopPg', 'createSnapshot', 'checkout', 'importSnapshot', 'exportSnapshot', 'pushSnapshot', 'pullSnapshot', 'attachLocalStorage']) {
      expect(typeof zenith[name]).toBe('function')
    }

    home = await mkdtemp(path.join(os.tmpdir(), 'zenith-lib-'))
    const opened = await zenith.openZenith(home)
    expect(await zenith.listPgs(opened)).toEqual([])
    const storages = await zenith.listStorages(opened)
    expect(storages.map((storage: {name: string}) => storage.name)).toEqual(['local'])
    await expect(zenith.showPg(opened, 'nope')).rejects.toMatchObject({code: 'PG_NOT_FOUND'})
  })
})

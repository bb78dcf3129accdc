import {cp, mkdtemp, rm, symlink} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {execa} from 'execa'

import {ROOT} from '../helpers/zenith.js'

/**
 * `npm install -g .` from a clone, as the README says, with a temporary npm prefix. The clone is
 * a copy of what git tracks here plus the built dist/ (no download: its node_modules, when it
 * has one, links to this checkout's).
 */
describe('npm install -g . of a clone', () => {
  let work: string

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'zenith-install-'))
  })

  afterAll(async () => rm(work, {recursive: true, force: true}))

  async function clone(name: string): Promise<string> {
    const folder = path.join(work, name)
    const files = String((await execa('git', ['ls-files', '-co', '--exclude-standard'], {cwd: ROOT})).stdout).split('\n').filter((file) => file && !file.startsWith('node_modules'))
    for (const file of files) await cp(path.join(ROOT, file), path.join(folder, file), {recursive: true}).catch(() => undefined)
    return folder
  }

  const npmGlobal = (folder: string, prefix: string) => execa('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', '--offline', '.'], {cwd: folder, reject: false, env: {npm_config_update_notifier: 'false'}})

  test('without the dependencies installed in the clone: refused at install time, naming the command that works', async () => {
    const folder = await clone('fresh')
    const result = await npmGlobal(folder, path.join(work, 'prefix1'))
    expect(result.exitCode).not.toBe(0)
    expect(result.stderr).toContain(`cd ${folder} && npm install && npm install -g .`)
  })

  test('with them (npm install in the clone first): zenith runs from the global bin', async () => {
    const folder = await clone('ready')
    await symlink(path.join(ROOT, 'node_modules'), path.join(folder, 'node_modules'))
    // What `npm install` in the clone does last: its prepare script builds dist/.
    await execa('npm', ['run', 'prepare'], {cwd: folder})
    const prefix = path.join(work, 'prefix2')
    const result = await npmGlobal(folder, prefix)
    expect(result.exitCode).toBe(0)
    const version = await execa(path.join(prefix, 'bin', 'zenith'), ['--version'], {reject: false, cwd: work})
    expect(version.stderr).toBe('')
    expect(version.stdout).toMatch(/^zenith-pg\/\d+\.\d+\.\d+ /)
  }, 180_000)
})

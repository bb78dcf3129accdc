import {spawnSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import {chmod, cp, mkdir, mkdtemp, readdir, rm, symlink} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {execa} from 'execa'

import {ROOT, TestHome} from '../helpers/zenith.js'

/**
 * The ways to install zenith that the README's Install section names, each into a temporary npm
 * prefix, run from there: `npm install -g .` of a clone (fresh, and with its dependencies
 * installed), `npm install -g` of the packed tarball, the single executable (when `npm run
 * package` built it), and the Homebrew formula's syntax (when ruby is there; brew is not). A
 * clone is a copy of what git tracks here plus untracked, unignored files. pgs on ports 9900-9949.
 */
const BINARY = path.join(ROOT, 'build', `zenith-${process.platform}-${process.arch}`)
const withBinary = existsSync(BINARY) ? test : test.skip
const withRuby = spawnSync('ruby', ['--version']).status === 0 ? test : test.skip

describe('installs', () => {
  let work: string

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'zenith-install-'))
    // As root the postgres OS user runs programs through the PATH given below, which is in here.
    await chmod(work, 0o755)
  })

  afterAll(async () => rm(work, {recursive: true, force: true}))

  async function clone(name: string): Promise<string> {
    const folder = path.join(work, name)
    const files = String((await execa('git', ['ls-files', '-co', '--exclude-standard'], {cwd: ROOT})).stdout).split('\n').filter((file) => file && !file.startsWith('node_modules'))
    for (const file of files) await cp(path.join(ROOT, file), path.join(folder, file), {recursive: true}).catch(() => undefined)
    return folder
  }

  // --prefer-offline: what the npm cache holds (this checkout's npm ci filled it) is not fetched again.
  const npmGlobal = (folder: string, prefix: string, what = '.') => execa('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', '--prefer-offline', what], {
    cwd: folder, reject: false, env: {npm_config_update_notifier: 'false'},
  })

  async function expectVersion(zenith: string): Promise<void> {
    const version = await execa(zenith, ['--version'], {reject: false, cwd: work})
    expect(version.stderr).toBe('')
    expect(version.stdout).toMatch(/^zenith-pg\/\d+\.\d+\.\d+ /)
  }

  /** pg create, pg list --json and pg destroy with `zenith` in a temporary home. */
  async function expectPgSession(zenith: string, firstPort: number, env: Record<string, string> = {}): Promise<void> {
    const home = await TestHome.create(firstPort)
    const run = (args: string[]) => execa(zenith, args, {env: {...env, ...home.env()}, extendEnv: Object.keys(env).length === 0, reject: false, cwd: work})
    try {
      const created = await run(['pg', 'create', 'installed'])
      expect(created.stderr + created.stdout).toContain(`Started postgres on localhost:`)
      const list = JSON.parse(String((await run(['pg', 'list', '--json'])).stdout)) as Array<{name: string; status: string; port: number}>
      expect(list).toEqual([expect.objectContaining({name: 'installed', status: 'running'})])
      expect(list[0].port).toBeGreaterThanOrEqual(firstPort)
      const destroyed = await run(['pg', 'destroy', 'installed'])
      expect(destroyed.exitCode).toBe(0)
      expect(JSON.parse(String((await run(['pg', 'list', '--json'])).stdout))).toEqual([])
    } finally {
      await home.destroy()
    }
  }

  test('npm install -g . of a fresh clone: its prepare installs the dependencies into the clone and builds; zenith runs from the global bin', async () => {
    const folder = await clone('fresh')
    const prefix = path.join(work, 'prefix-fresh')
    const result = await npmGlobal(folder, prefix)
    expect({exitCode: result.exitCode, stderr: result.exitCode === 0 ? '' : result.stderr}).toEqual({exitCode: 0, stderr: ''})
    expect(existsSync(path.join(folder, 'dist', 'index.js'))).toBe(true)
    await expectVersion(path.join(prefix, 'bin', 'zenith'))
  }, 600_000)

  test('npm install -g . of a clone with its dependencies installed (npm install there first)', async () => {
    const folder = await clone('ready')
    await symlink(path.join(ROOT, 'node_modules'), path.join(folder, 'node_modules'))
    // What `npm install` in the clone does last: its prepare script builds dist/.
    await execa('npm', ['run', 'prepare'], {cwd: folder})
    const prefix = path.join(work, 'prefix-ready')
    const result = await npmGlobal(folder, prefix)
    expect(result.exitCode).toBe(0)
    await expectVersion(path.join(prefix, 'bin', 'zenith'))
  }, 300_000)

  test('npm pack holds only what runs; npm install -g of the tarball runs zenith, which manages a pg', async () => {
    const folder = await clone('packed')
    await symlink(path.join(ROOT, 'node_modules'), path.join(folder, 'node_modules'))
    // prepack builds dist/ and the oclif manifest (the clone has neither).
    const packed = await execa('npm', ['pack', '--json', '--pack-destination', work], {cwd: folder, env: {npm_config_update_notifier: 'false'}})
    // The build's own output comes first on stdout (oclif's "wrote manifest"), then the JSON report.
    const report = String(packed.stdout)
    const [{filename, files}] = JSON.parse(report.slice(report.search(/^\[$/m))) as Array<{filename: string; files: Array<{path: string}>}>
    const paths = files.map((file) => file.path)
    expect(paths).toEqual(expect.arrayContaining(['bin/run.js', 'dist/index.js', 'dist/wal-agent/main.js', 'dist/receive/chunk-writer.js', 'console/index.html', 'oclif.manifest.json', 'package.json']))
    const extra = paths.filter((file) => /^(test|bench|src|docs|scripts|build|node_modules)\//.test(file) || (file.endsWith('.ts') && !file.endsWith('.d.ts')) || /\.(png|jpe?g)$/.test(file))
    expect(extra).toEqual([])

    const prefix = path.join(work, 'prefix-tarball')
    const result = await npmGlobal(work, prefix, path.join(work, filename))
    expect({exitCode: result.exitCode, stderr: result.exitCode === 0 ? '' : result.stderr}).toEqual({exitCode: 0, stderr: ''})
    const zenith = path.join(prefix, 'bin', 'zenith')
    await expectVersion(zenith)
    await expectPgSession(zenith, 9900)
  }, 600_000)

  /** A folder of links to every program of /usr/bin, /bin, /usr/sbin and /sbin but node's (node may be in /usr/bin). */
  async function pathWithoutNode(): Promise<string> {
    const folder = path.join(work, 'path-without-node')
    await mkdir(folder)
    for (const dir of ['/usr/bin', '/bin', '/usr/sbin', '/sbin']) {
      for (const name of await readdir(dir).catch(() => [] as string[])) {
        if (['node', 'nodejs', 'npm', 'npx', 'corepack'].includes(name)) continue
        // EEXIST where /bin is /usr/bin: the first one found is kept.
        await symlink(path.join(dir, name), path.join(folder, name)).catch(() => undefined)
      }
    }

    return folder
  }

  withBinary('the single executable runs with no node on the PATH and manages a pg', async () => {
    const env = {PATH: await pathWithoutNode(), HOME: work}
    expect((await execa('sh', ['-c', 'command -v node'], {env, extendEnv: false, reject: false})).exitCode).not.toBe(0)
    await expectVersion(BINARY)
    // The same commands, topics and flags as the npm install's (the bundle lists src/commands itself).
    for (const args of [['--help'], ['pg', '--help'], ['snapshot', '--help'], ['pitr', '--help'], ['storage', '--help'], ['config', '--help']]) {
      const [binary, npm] = await Promise.all([execa(BINARY, args, {env, extendEnv: false}), execa('node', [path.join(ROOT, 'bin', 'run.js'), ...args])])
      expect(String(binary.stdout)).toBe(String(npm.stdout))
    }

    // --version, -v and `version` answer from the small boot script; anything else runs the
    // bundle from the code cache made at build time (a rejected cache would only be slower).
    for (const args of [['--version'], ['-v'], ['version'], ['version', '--json']]) {
      const [binary, npm] = await Promise.all([execa(BINARY, args, {env, extendEnv: false}), execa('node', [path.join(ROOT, 'bin', 'run.js'), ...args])])
      expect(String(binary.stdout)).toBe(String(npm.stdout))
    }

    const timing = await execa(BINARY, ['config', 'list'], {env: {...env, DEBUG: 'zenith:timing', ZENITH_HOME: path.join(work, 'home-timing')}, extendEnv: false})
    expect(String(timing.stderr)).toMatch(/^code cache of zenith.cjs: used$/m)
    await expectPgSession(BINARY, 9920, env)
  }, 300_000)

  withRuby('the Homebrew formula is valid ruby (brew itself is not here)', async () => {
    const result = await execa('ruby', ['-c', path.join(ROOT, 'packaging', 'homebrew', 'zenith.rb')], {reject: false})
    expect(result.stdout.trim()).toBe('Syntax OK')
  })
})

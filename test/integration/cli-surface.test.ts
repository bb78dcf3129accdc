import {existsSync} from 'node:fs'
import {mkdir, mkdtemp, readdir, readFile, rm, symlink} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {execa} from 'execa'

import {BIN, TestHome} from '../helpers/zenith.js'

/**
 * Issue 16, the small parts of the surface: shell completion by @oclif/plugin-autocomplete
 * (the generated bash function completes commands and flags in a real bash), `zenith version`
 * and `-v` beside --version, and the proposal's `pg create -n NAME`. Ports 9970-9979.
 */
describe('completion, version and pg create -n', () => {
  let home: TestHome
  let cache: string
  let bins: string

  beforeAll(async () => {
    home = await TestHome.create(9970)
    // The plugin writes its scripts under XDG_CACHE_HOME: a folder of this test's own.
    cache = await mkdtemp(path.join(os.tmpdir(), 'zenith-completion-'))
    bins = path.join(cache, 'bin')
    await mkdir(bins)
    await symlink(BIN, path.join(bins, 'zenith'))
  })

  afterAll(async () => {
    await home?.destroy()
    await rm(cache, {recursive: true, force: true})
  }, 60_000)

  /** What bash completes for the words typed so far (the last one may be partial). */
  const complete = async (words: string[]): Promise<string[]> => {
    const setup = (await home.ok(['autocomplete', 'script', 'bash'], {env: {XDG_CACHE_HOME: cache}})).stdout.trim()
    const line = words.map((word) => `'${word}'`).join(' ')
    const script = `${setup}\nCOMP_WORDS=(${line}); COMP_CWORD=${words.length - 1}; _zenith_complete_names; printf '%s\\n' "\${COMPREPLY[@]}"`
    // `zenith` on the PATH, as an installed one is: the scripts call it for names.
    const result = await execa('bash', ['-c', script], {env: {...home.env(), XDG_CACHE_HOME: cache, PATH: `${bins}:${process.env.PATH}`}})
    // bash shows each candidate once; the plugin's function lists a topic once per command in it.
    return [...new Set(result.stdout.split('\n').filter(Boolean))]
  }

  test('zenith autocomplete builds bash, zsh and powershell scripts; bash completes commands and flags', async () => {
    const instructions = await home.ok(['autocomplete', 'bash'], {env: {XDG_CACHE_HOME: cache}})
    expect(instructions.stdout).toMatch(/zenith autocomplete script bash/)
    await home.ok(['autocomplete', 'zsh'], {env: {XDG_CACHE_HOME: cache}})
    await home.ok(['autocomplete', 'powershell'], {env: {XDG_CACHE_HOME: cache}})
    const functions = path.join(cache, 'zenith', 'autocomplete', 'functions')
    expect((await readdir(functions)).sort()).toEqual(['bash', 'powershell', 'zsh'])

    expect(await complete(['zenith', 'sn'])).toEqual(['snapshot'])
    expect(await complete(['zenith', 'pg', 'chec'])).toEqual(['checkout'])
    expect(await complete(['zenith', 'snapshot', ''])).toEqual(expect.arrayContaining(['create', 'diff', 'export', 'import', 'list', 'pull', 'push']))
    expect(await complete(['zenith', 'pg', 'create', '--sn'])).toEqual(['--snapshot'])
    expect(await complete(['zenith', 'pitr', 'extract-snapshot', '--'])).toEqual(expect.arrayContaining(['--lsn', '--time', '--xid']))
  }, 60_000)

  test('names come from the store: pgs, snapshots, storages, each where its command takes one', async () => {
    await home.ok(['autocomplete', 'bash'], {env: {XDG_CACHE_HOME: cache}})
    await home.ok(['pg', 'create', 'dev', '--no-start'])
    await home.ok(['pg', 'create', 'devel', '--no-start'])
    await home.ok(['snapshot', 'create', 'dev@fixture'])
    await home.ok(['snapshot', 'create', 'dev@fresh'])
    expect(await complete(['zenith', 'pg', 'start', 'de'])).toEqual(['dev', 'devel'])
    expect(await complete(['zenith', 'pg', 'checkout', 'dev@f'])).toEqual(['dev@fixture', 'dev@fresh'])
    expect(await complete(['zenith', 'pg', 'create', 'copy', '--snapshot', 'dev@fi'])).toEqual(['dev@fixture'])
    expect(await complete(['zenith', 'pg', 'create', 'copy', '-s', ''])).toEqual(['local'])
    expect(await complete(['zenith', 'snapshot', 'diff', 'dev@fixture', 'dev@C'])).toEqual(['dev@CURRENT'])
    expect(await complete(['zenith', 'snapshot', 'create', 'devel'])).toEqual(['devel@'])
    // A new name, a flag, a number: nothing from the store.
    expect(await complete(['zenith', 'pg', 'create', 'd'])).toEqual([])
    expect(await complete(['zenith', 'pg', 'start', 'dev', '--port', ''])).toEqual([])
    // zsh's script has the same hook, and parses.
    await home.ok(['autocomplete', 'zsh'], {env: {XDG_CACHE_HOME: cache}})
    const zsh = await readFile(path.join(cache, 'zenith', 'autocomplete', 'functions', 'zsh', '_zenith'), 'utf8')
    expect(zsh).toMatch(/"\*: :_zenith_names"/)
    expect(zsh).toMatch(/_zenith_names\(\) \{[\s\S]*\n_zenith\n?$/)
  }, 120_000)

  const describeZsh = existsSync('/usr/bin/zsh') || existsSync('/bin/zsh') ? test : test.skip
  describeZsh('the zsh script loads in zsh', async () => {
    const setup = (await home.ok(['autocomplete', 'script', 'zsh'], {env: {XDG_CACHE_HOME: cache}})).stdout.trim()
    await execa('zsh', ['-c', `autoload -U compinit; compinit -u; ${setup}`], {env: {...home.env(), XDG_CACHE_HOME: cache}})
    // With zenith's names hook in it, the completion function still parses.
    await execa('zsh', ['-n', path.join(cache, 'zenith', 'autocomplete', 'functions', 'zsh', '_zenith')])
  }, 60_000)

  test('zenith version, -v and --version say the same; version --json has the parts', async () => {
    const flag = (await home.ok(['--version'])).stdout
    expect(flag).toMatch(/^zenith-pg\/\d+\.\d+\.\d+ linux-x64 node-v\d+/)
    expect((await home.ok(['-v'])).stdout).toBe(flag)
    expect((await home.ok(['version'])).stdout).toBe(flag)
    const json = (await home.ok(['version', '--json'])).json
    expect(json).toEqual({version: expect.stringMatching(/^\d+\.\d+\.\d+/), platform: 'linux', arch: 'x64', node: process.version, userAgent: flag})
  })

  test('pg create -n NAME names the pg; two different names are refused and nothing is made', async () => {
    const created = await home.ok(['pg', 'create', '-n', 'named', '--no-start', '--json'])
    expect(created.json.name).toBe('named')
    const same = await home.ok(['pg', 'create', 'twice', '-n', 'twice', '--no-start', '--json'])
    expect(same.json.name).toBe('twice')
    const both = await home.run(['pg', 'create', 'one', '-n', 'other', '--no-start', '--json'])
    expect(both.exitCode).toBe(2)
    expect(both.json.error.code).toBe('INVALID_ARGUMENT')
    expect((await home.ok(['pg', 'list', '--json'])).json.map((pg: {name: string}) => pg.name).sort()).toEqual(['dev', 'devel', 'named', 'twice'])
  })
})

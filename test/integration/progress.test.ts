import {existsSync} from 'node:fs'
import path from 'node:path'

import {execa} from 'execa'

import {BIN, TestHome} from '../helpers/zenith.js'

/**
 * Issue 16, progress: on a terminal (a real pty from util-linux `script`) each step of a
 * multi-step command is a listr2 task that ends with a tick and its duration, the result is
 * printed after the last step, a byte stream is a bar whose rate shows only after a second; in
 * a pipe the same steps are plain lines; under --json stderr has no steps. Ports 9960-9969.
 */
const SCRIPT = '/usr/bin/script'
const describeTty = existsSync(SCRIPT) ? describe : describe.skip
// Colour and cursor codes out, carriage returns as line ends: what a person reads.
// eslint-disable-next-line no-control-regex
const plain = (text: string) => text.replace(/\u001B\[[0-9;?]*[A-Za-z]|\u001B[78]/g, '').replace(/\r\n?/g, '\n')

describeTty('progress of multi-step commands', () => {
  let home: TestHome

  /** `zenith ...args` on a pty 120 columns wide; stdout and stderr both land in the transcript. */
  const onTerminal = async (args: string[]) => {
    const command = ['stty cols 120;', 'exec', 'node', BIN, ...args].map((part, index) => (index < 2 ? part : `'${part}'`)).join(' ')
    const result = await execa(SCRIPT, ['-qefc', command, '/dev/null'], {env: {...home.env(), TERM: 'xterm-256color'}, reject: false, stdin: 'ignore'})
    return {exitCode: result.exitCode, text: plain(String(result.stdout))}
  }

  beforeAll(async () => {
    home = await TestHome.create(9960)
    await home.ok(['pg', 'create', 'dev'])
    await home.query('dev', 'create table items as select g as id from generate_series(1, 1000) g')
    await home.ok(['snapshot', 'create', 'dev@fixture'])
  }, 120_000)

  afterAll(async () => {
    await home?.destroy()
  }, 120_000)

  test('on a terminal every step ends with a tick and its duration, and the result comes after the last one', async () => {
    const {exitCode, text} = await onTerminal(['pg', 'checkout', 'dev@fixture'])
    expect(exitCode).toBe(0)
    const steps = ['Stopping postgres on dev', 'Rolling back dev@CURRENT to dev@fixture', 'Starting postgres on dev']
    const at = steps.map((step) => {
      const match = new RegExp(`✔ ${step.replace(/[@{}]/g, '\\$&')} \\[\\d+(\\.\\d)?s\\]`).exec(text)
      expect(match).not.toBeNull()
      return match!.index
    })
    expect([...at].sort((a, b) => a - b)).toEqual(at)
    expect(text.indexOf('Checked out dev@fixture')).toBeGreaterThan(at[2])
  }, 60_000)

  test('a failed step is marked, and the error follows it', async () => {
    // Nothing listens on port 1: pg_basebackup fails inside the step.
    const {exitCode, text} = await onTerminal(['snapshot', 'import', '--from', 'basebackup://postgres@127.0.0.1:1/', 'unreachable'])
    expect(exitCode).not.toBe(0)
    const failed = /✖ Taking a base backup of basebackup:\/\/postgres@127\.0\.0\.1:1\/ into snapshot unreachable/.exec(text)
    expect(failed).not.toBeNull()
    expect(text.indexOf('Error: Cannot reach basebackup://postgres@127.0.0.1:1/')).toBeGreaterThan(failed!.index)
    expect(text).not.toMatch(/Node\.js v|at .*progress\.js/)
  }, 60_000)

  test('a byte stream draws a bar; a transfer under a second shows no rate', async () => {
    const {exitCode, text} = await onTerminal(['snapshot', 'export', 'dev@fixture', '-o', path.join(home.home, 'fixture.zenith')])
    expect(exitCode).toBe(0)
    expect(text).toMatch(/Copying dev@fixture \[[=-]+\] \d+% \| \S+\/\S+ \| /)
    // No rate from the first frame, nor one of a transfer shorter than a second.
    expect(text).not.toMatch(/\| 0B\/s/)
    for (const line of text.split('\n').filter((item) => / in 0\.\ds/.test(item))) expect(line).not.toMatch(/\/s\)/)
    expect(text).toMatch(/Exported dev@fixture as zenith to /)
  }, 60_000)

  test('in a pipe the same steps are plain lines; under --json there are none', async () => {
    const piped = await home.ok(['pg', 'checkout', 'dev@fixture'])
    expect(piped.stderr).toMatch(/^Stopping postgres on dev\.\nRolling back dev@CURRENT to dev@fixture\.\nStarting postgres on dev\.$/)
    const json = await home.ok(['pg', 'checkout', 'dev@fixture', '--json'])
    expect(json.stderr).toBe('')
    expect(json.json.name).toBe('dev')
  }, 60_000)
})

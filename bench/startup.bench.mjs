#!/usr/bin/env node
/* global process, console */
// `zenith --version` start-up: the single executable (build/zenith-<platform>-<arch>, from
// `npm run package`) against the npm install (`node bin/run.js`, the built dist/), and a bare
// `node -e 0` for scale; and the PITR archive agent's start-up, which postgres pays once per WAL
// segment: the executable given --zenith-wal-agent against node dist/wal-agent/main.js (both
// without arguments: they print their usage and exit 2). Rounds alternate who goes first; medians.
//   node bench/run.mjs startup -- --runs 5
import {existsSync} from 'node:fs'
import path from 'node:path'
import {execa} from 'execa'
import {bin, median, option, root, timed} from './lib.mjs'

const runs = Number(option('--runs', '5'))
const binary = path.join(root, 'build', `zenith-${process.platform}-${process.arch}`)
if (!existsSync(binary)) {
  console.error(`No ${path.relative(root, binary)}: run npm run package first.`)
  process.exit(1)
}

const contenders = {
  'single executable': () => execa(binary, ['--version'], {stdin: 'ignore'}),
  'npm install (node bin/run.js)': () => execa('node', [bin, '--version'], {stdin: 'ignore'}),
  'node -e 0': () => execa('node', ['-e', '0'], {stdin: 'ignore'}),
  'agent, single executable': () => execa(binary, ['--zenith-wal-agent'], {stdin: 'ignore', reject: false}),
  'agent, node main.js': () => execa('node', [path.join(root, 'dist', 'wal-agent', 'main.js')], {stdin: 'ignore', reject: false}),
}
const names = Object.keys(contenders)
// One run each first: the page cache then holds both, as it would on a machine in use.
for (const name of names) await contenders[name]()
const times = Object.fromEntries(names.map((name) => [name, []]))
for (let round = 0; round < runs; round++) {
  const order = round % 2 === 0 ? names : [...names].reverse()
  for (const name of order) times[name].push(await timed(contenders[name]))
}

const [sea, npm, , seaAgent, nodeAgent] = names.map((name) => median(times[name]))
for (const name of names) console.log(`${name.padEnd(31)} median ${median(times[name]).toFixed(3)} s  (${times[name].map((t) => t.toFixed(3)).join(', ')})`)
console.log(`zenith --version, median of ${runs}: single executable ${sea.toFixed(2)} s, npm install ${npm.toFixed(2)} s (${(sea / npm).toFixed(2)}x)`)
console.log(`archive agent start-up, median of ${runs}: single executable ${seaAgent.toFixed(2)} s, node main.js ${nodeAgent.toFixed(2)} s (${(seaAgent / nodeAgent).toFixed(2)}x)`)

#!/usr/bin/env node
/* global process, console */
// Runs the benchmarks: every bench/*.bench.mjs, or the ones named (with or without the suffix).
// Arguments after `--` go to each benchmark. Each prints its own figures and ratios.
//   node bench/run.mjs                   # all
//   node bench/run.mjs pg-create         # bench/pg-create.bench.mjs
//   node bench/run.mjs pg-create -- --runs 7
import {readdir} from 'node:fs/promises'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {execa} from 'execa'

const here = path.dirname(fileURLToPath(import.meta.url))
const argv = process.argv.slice(2)
const split = argv.indexOf('--')
const names = split === -1 ? argv : argv.slice(0, split)
const passed = split === -1 ? [] : argv.slice(split + 1)

const available = (await readdir(here)).filter((file) => file.endsWith('.bench.mjs')).sort()
const wanted = names.length === 0 ? available : names.map((name) => (name.endsWith('.bench.mjs') ? name : `${name}.bench.mjs`))
const unknown = wanted.filter((file) => !available.includes(file))
if (unknown.length > 0) {
  console.error(`Unknown benchmark: ${unknown.join(', ')}. Available: ${available.map((file) => file.replace('.bench.mjs', '')).join(', ')}`)
  process.exit(2)
}

const outcomes = []
for (const file of wanted) {
  console.log(`\n=== ${file.replace('.bench.mjs', '')} ===`)
  const start = process.hrtime.bigint()
  const result = await execa('node', [path.join(here, file), ...passed], {stdio: 'inherit', reject: false})
  outcomes.push({file, exitCode: result.exitCode, seconds: Number(process.hrtime.bigint() - start) / 1e9})
}

console.log('\n=== summary ===')
for (const outcome of outcomes) console.log(`${outcome.exitCode === 0 ? 'ok    ' : 'FAILED'} ${outcome.file} (${outcome.seconds.toFixed(1)} s)`)
process.exitCode = outcomes.some((outcome) => outcome.exitCode !== 0) ? 1 : 0

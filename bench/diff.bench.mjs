#!/usr/bin/env node
/* global process, console */
// `zenith snapshot diff` timing (issue 13): two snapshots of a pgbench database that differ by 1%
// of pgbench_accounts (one contiguous range of aids updated, as a migration would), per medium:
//   - size diff (`snapshot diff A B`) against `cmp -s` over every pair of files of the two
//     snapshot folders (the baseline a user would run; it stops at a file's first difference, so
//     it does less than zenith, which finds every changed page);
//   - `--data --table pgbench_accounts`: rows compared per second and the peak RSS of the zenith
//     process (/usr/bin/time), at two scales, so that "constant memory" can be read off.
// Media: `ext4` (the `local` storage on the machine's ext4: copies) and `btrfs` (a loop-mounted image:
// extent comparison). Needs root (loop mount) and a built dist/. Ports from 9400.
//   node bench/diff.bench.mjs [--media ext4,btrfs] [--scale 50] [--data-scales 10,50] [--runs 3]
import {mkdir, readdir, rm} from 'node:fs/promises'
import path from 'node:path'
import {execa} from 'execa'

import {median, option, timed, workFolder, zenithIn} from './lib.mjs'

const pgBin = '/usr/lib/postgresql/15/bin'
const media = option('--media', 'ext4,btrfs').split(',')
const scale = Number(option('--scale', '50'))
const dataScales = option('--data-scales', '10,50').split(',').map(Number)
const runs = Number(option('--runs', '3'))

if (process.getuid?.() !== 0) {
  console.log('diff bench: skipped (needs root for the btrfs loop mount)')
  process.exit(0)
}

const base = await workFolder('diff')
const env = {ZENITH_HOME: path.join(base, 'home'), ZENITH_FIRST_PORT: '9400'}
const zenith = zenithIn(env)
const cleanups = []

/** The storage of `medium` and the folder it keeps its files in. */
async function attach(medium) {
  if (medium === 'ext4') return {storage: 'local', root: path.join(env.ZENITH_HOME, 'storages', 'local')}
  const mnt = path.join(base, medium)
  await mkdir(mnt)
  const image = path.join(base, 'btrfs.img')
  await execa('truncate', ['-s', `${Math.max(scale, ...dataScales) * 60 + 3000}M`, image])
  await execa('mkfs.btrfs', ['-q', image])
  await execa('mount', ['-o', 'loop', image, mnt])
  cleanups.push(() => execa('umount', [mnt], {reject: false}))
  await execa('chmod', ['0755', mnt])
  await zenith('storage', 'attach', '-t', 'btrfs', '-n', medium, '-c', `path=${mnt}/zenith`, '-c', 'quota=off')
  return {storage: medium, root: path.join(mnt, 'zenith')}
}

/** The folder of snapshot `name` in a storage rooted at `root` (snapshots/<name>.<id>). */
async function snapshotFolder(root, name) {
  const folder = path.join(root, 'snapshots')
  const found = (await readdir(folder)).find((entry) => entry.startsWith(`${name}.`))
  if (!found) throw new Error(`no folder of ${name} in ${folder}`)
  return path.join(folder, found)
}

/** A pg on `medium` with pgbench at `atScale`, snapshot @before, 1% of the accounts updated, snapshot @after. */
async function prepare(storage, pg, atScale) {
  await zenith('pg', 'create', pg, '-s', storage)
  const url = (await zenith('pg', 'url', pg)).stdout.trim()
  await execa(path.join(pgBin, 'pgbench'), ['-i', '-q', '-s', String(atScale), url])
  await execa('psql', [url, '-qc', 'checkpoint'])
  await zenith('snapshot', 'create', `${pg}@before`)
  const accounts = atScale * 100_000
  await execa('psql', [url, '-qc', `update pgbench_accounts set abalance = abalance + 1 where aid <= ${accounts / 100}`])
  await execa('psql', [url, '-qc', 'checkpoint'])
  await zenith('snapshot', 'create', `${pg}@after`)
  await zenith('pg', 'stop', pg)
  return {accounts, changed: accounts / 100}
}

/** `cmp -s` over every file of `a` and its namesake in `b` (a missing one counts as different). */
async function cmpFolders(a, b) {
  const script = 'cd "$1" && find . -type f -print0 | { n=0; while IFS= read -r -d "" f; do cmp -s "$f" "$2/$f" || n=$((n+1)); done; echo "$n"; }'
  return Number((await execa('bash', ['-c', script, 'cmp', a, b])).stdout.trim())
}

async function peakRss(argv) {
  const result = await execa('/usr/bin/time', ['-f', '%M', 'node', path.join(process.cwd(), 'bin', 'run.js'), ...argv], {env: {...process.env, ...env}, stdin: 'ignore', reject: false, cwd: process.cwd()})
  if (result.exitCode !== 0) throw new Error(`zenith ${argv.join(' ')} failed: ${result.stderr}`)
  const lines = result.stderr.trim().split('\n')
  return {kib: Number(lines.at(-1)), json: JSON.parse(result.stdout)}
}

try {
  const sizeRows = []
  const dataRows = []
  for (const medium of media) {
    const {storage, root} = await attach(medium)
    const pg = `${medium}${scale}`
    await prepare(storage, pg, scale)
    const diffTimes = []
    let summary
    for (let run = 0; run < runs; run++) {
      diffTimes.push(await timed(async () => {
        summary = JSON.parse((await zenith('snapshot', 'diff', `${pg}@before`, `${pg}@after`, '--json')).stdout)
      }))
    }

    const [a, b] = [await snapshotFolder(root, `${pg}@before`), await snapshotFolder(root, `${pg}@after`)]
    let differing = 0
    const cmpTimes = []
    for (let run = 0; run < runs; run++) cmpTimes.push(await timed(async () => {
      differing = await cmpFolders(a, b)
    }))
    const accounts = summary.relations?.find((relation) => relation.name.endsWith('pgbench_accounts'))
    sizeRows.push({medium, diff: median(diffTimes), cmp: median(cmpTimes), differing, changedBytes: summary.bytesChanged, accountsChanged: accounts?.bytesChanged, shared: summary.bytesShared})

    for (const atScale of dataScales) {
      const dataPg = atScale === scale ? pg : `${medium}d${atScale}`
      if (atScale !== scale) await prepare(storage, dataPg, atScale)
      let measured
      const seconds = await timed(async () => {
        measured = await peakRss(['snapshot', 'diff', `${dataPg}@before`, `${dataPg}@after`, '--data', '--table', 'pgbench_accounts', '--json'])
      })
      const table = measured.json.tables?.[0] ?? {}
      dataRows.push({medium, scale: atScale, seconds, rows: measured.json.rowsCompared, changed: table.changed ?? table.rowsChanged, peakRowsHeld: measured.json.peakRowsHeld, rssMb: measured.kib / 1024})
    }
  }

  console.log(`\nsize diff, pgbench scale ${scale}, 1% of pgbench_accounts updated (medians of ${runs} runs; seconds)`)
  console.log('medium  snapshot diff  cmp -s (all files)  files differing  diff speed / cmp  bytes changed  accounts changed  bytes shared')
  for (const row of sizeRows) {
    console.log([row.medium.padEnd(7), row.diff.toFixed(2).padEnd(14), row.cmp.toFixed(2).padEnd(19), String(row.differing).padEnd(16),
      `${(row.cmp / row.diff).toFixed(2)}x`.padEnd(17), String(row.changedBytes).padEnd(14), String(row.accountsChanged).padEnd(17), String(row.shared)].join(' '))
  }

  console.log('\n--data --table pgbench_accounts')
  console.log('medium  scale  seconds  rows compared  rows/s  changed  peak rows held  peak RSS (MB)')
  for (const row of dataRows) {
    console.log([row.medium.padEnd(7), String(row.scale).padEnd(6), row.seconds.toFixed(2).padEnd(8), String(row.rows).padEnd(14),
      String(Math.round(row.rows / row.seconds)).padEnd(7), String(row.changed).padEnd(8), String(row.peakRowsHeld).padEnd(15), row.rssMb.toFixed(0)].join(' '))
  }
} finally {
  const list = await zenith('pg', 'list', '--json').catch(() => ({stdout: '[]'}))
  for (const pg of JSON.parse(list.stdout || '[]')) if (pg.status === 'running') await zenith('pg', 'stop', pg.name, '--mode', 'immediate').catch(() => undefined)
  for (const cleanup of cleanups.reverse()) await cleanup()
  await rm(base, {recursive: true, force: true})
}

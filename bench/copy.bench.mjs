#!/usr/bin/env node
// The plain-copy fallback (ext4, the machine's own disk): `snapshot create` of a stopped pg and
// a full-copy `pg create --snapshot` versus `cp -a --reflink=never` (+ sync) of the same data directory.
//   node bench/copy.bench.mjs [--scale 20] [--runs 3]
import {rm} from 'node:fs/promises'
import path from 'node:path'
import {execa} from 'execa'

import {median, option, timed, workFolder, zenithIn} from './lib.mjs'

const scale = Number(option('--scale', '20'))
const runs = Number(option('--runs', '3'))
const base = await workFolder('copy')
const env = {ZENITH_HOME: path.join(base, 'home'), ZENITH_FIRST_PORT: '7200'}
const zenith = zenithIn(env)

try {
  await zenith('pg', 'create', 'src')
  const url = (await zenith('pg', 'url', 'src')).stdout.trim()
  await execa('/usr/lib/postgresql/15/bin/pgbench', ['-i', '-q', '-s', String(scale), url])
  const show = JSON.parse((await zenith('pg', 'show', 'src', '--json')).stdout)
  await zenith('pg', 'stop', 'src')
  const storage = JSON.parse((await zenith('storage', 'show', 'local', '--json')).stdout)
  const snapshotTimes = []
  const copyTimes = []
  const baseline = async (run) => {
    // A snapshot is on disk before zenith calls it ready; the fair baseline syncs too.
    copyTimes.push(await timed(async () => {
      await execa('cp', ['-a', '--reflink=never', show.dataDir, path.join(base, `cp${run}`)])
      await execa('sync', ['-f', base])
    }))
  }

  const snapshot = async (run) => {
    snapshotTimes.push(await timed(() => zenith('snapshot', 'create', `src@s${run}`)))
  }

  // Alternate who goes first: each write slows down as the disk fills and discards run.
  for (let run = 0; run < runs; run++) {
    for (const step of run % 2 === 0 ? [baseline, snapshot] : [snapshot, baseline]) {
      await execa('sync')
      await step(run)
    }

    await rm(path.join(base, `cp${run}`), {recursive: true, force: true})
    await zenith('snapshot', 'destroy', `src@s${run}`)
    await execa('sync')
  }

  const snapshotSeconds = median(snapshotTimes)
  const copy = median(copyTimes)
  console.log(`plain copy on ${storage.copyMethod} storage, pgbench scale ${scale} (${Math.round(show.usedBytes / 1048576)}M), medians of ${runs}:`)
  console.log(`  zenith snapshot create (stopped pg): ${snapshotSeconds.toFixed(3)} s`)
  console.log(`  cp -a --reflink=never && sync -f:    ${copy.toFixed(3)} s`)
  console.log(`  ratio: ${(snapshotSeconds / copy).toFixed(2)}x (target: within 1.10x)`)
} finally {
  await zenith('pg', 'destroy', 'src', '--force').catch(() => undefined)
  await rm(base, {recursive: true, force: true})
}

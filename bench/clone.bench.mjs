#!/usr/bin/env node
/* global process, console, setTimeout */
// Thin clone and snapshot timing on copy-on-write storages (a loop-mounted btrfs, a ZFS pool on a
// file), at two database sizes, against the baselines a developer would otherwise use, in the
// same run: `pg_ctl start` alone, `CREATE DATABASE ... TEMPLATE` and `cp -a --reflink=never`.
// Needs root (loop mount, zpool) and a built dist/; ZFS is zfs-fuse here (started for the run
// when no ZFS answers, and stopped again).
// A second part clones snapshots taken right after a bulk load (no checkpoint of its own) against
// snapshots of the same data taken after a CHECKPOINT: clone time must not depend on how
// recently the source was written.
//   node bench/clone.bench.mjs [--media btrfs,zfs] [--scales 5,50] [--runs 3] [--fresh-scale 5]
import {rm, mkdir} from 'node:fs/promises'
import path from 'node:path'
import {execa} from 'execa'

import {ensureZfs, median, option, timed, workFolder, zenithIn} from './lib.mjs'

const pgBin = '/usr/lib/postgresql/15/bin'
const media = option('--media', 'btrfs,zfs').split(',')
const scales = option('--scales', '5,50').split(',').map(Number)
const runs = Number(option('--runs', '3'))
const freshScale = Number(option('--fresh-scale', '5'))

if (process.getuid?.() !== 0) {
  console.log('clone bench: skipped (needs root for the btrfs loop mount and the ZFS pool)')
  process.exit(0)
}

const base = await workFolder('clone')
const home = path.join(base, 'home')
const env = {ZENITH_HOME: home, ZENITH_FIRST_PORT: '7100'}
const zenith = zenithIn(env)
const asPostgres = (command, argv) => execa('runuser', ['-u', 'postgres', '--', command, ...argv], {cwd: '/'})
const imageMb = Math.max(...scales) * 100 + 3000
const cleanups = []

/** A btrfs image, loop-mounted, attached as storage `btrfs`; returns the folder copies go to. */
async function setUpBtrfs() {
  const image = path.join(base, 'btrfs.img')
  const mnt = path.join(base, 'btrfs')
  await mkdir(mnt)
  await execa('truncate', ['-s', `${imageMb}M`, image])
  await execa('mkfs.btrfs', ['-q', image])
  await execa('mount', ['-o', 'loop', image, mnt])
  cleanups.push(() => execa('umount', [mnt], {reject: false}))
  await zenith('storage', 'attach', '-t', 'btrfs', '-n', 'btrfs', '-c', `path=${mnt}/zenith`, '-c', 'quota=off')
  return mnt
}

/** A ZFS pool on a file (zfs-fuse started when no ZFS answers), attached as storage `zfs`. */
async function setUpZfs() {
  await ensureZfs(base, cleanups)
  const pool = `zbench${process.pid}`
  const file = path.join(base, 'zfs.img')
  const mnt = path.join(base, 'zfs')
  await execa('truncate', ['-s', `${imageMb}M`, file])
  await execa('zpool', ['create', '-m', mnt, pool, file])
  cleanups.push(() => execa('zpool', ['destroy', '-f', pool], {reject: false}))
  await execa('chmod', ['0755', mnt])
  await zenith('storage', 'attach', '-t', 'zfs', '-n', 'zfs', '-c', `dataset=${pool}/zenith`)
  return mnt
}

try {
  const rows = []
  const freshRows = []
  for (const medium of media) {
    const mnt = medium === 'zfs' ? await setUpZfs() : await setUpBtrfs()
    for (const scale of scales) {
      const source = `${medium}${scale}`
      await zenith('pg', 'create', source, '-s', medium)
      const url = (await zenith('pg', 'url', source)).stdout.trim()
      await execa('psql', [url, '-qc', 'create database bench'])
      const benchUrl = url.replace(/\/postgres$/, '/bench')
      await execa(path.join(pgBin, 'pgbench'), ['-i', '-q', '-s', String(scale), benchUrl])
      await execa('psql', [url, '-qc', 'checkpoint'])
      const size = Number((await execa('psql', [benchUrl, '-tAc', 'select pg_database_size(current_database())'])).stdout)

      const snapshotTimes = []
      const cloneTimes = []
      const startTimes = []
      for (let run = 0; run < runs; run++) {
        snapshotTimes.push(await timed(() => zenith('snapshot', 'create', `${source}@s${run}`)))
        const clone = `${source}c${run}`
        cloneTimes.push(await timed(() => zenith('pg', 'create', clone, '--snapshot', `${source}@s${run}`, '--cow')))
        // Baseline: postgres' own start on the same (already recovered) data directory.
        const show = JSON.parse((await zenith('pg', 'show', clone, '--json')).stdout)
        await zenith('pg', 'stop', clone)
        startTimes.push(await timed(() => asPostgres(path.join(pgBin, 'pg_ctl'), ['start', '-w', '-s', '-D', show.dataDir, '-l', '/dev/null'])))
        await asPostgres(path.join(pgBin, 'pg_ctl'), ['stop', '-s', '-D', show.dataDir, '-m', 'fast'])
        await zenith('pg', 'destroy', clone)
      }

      const templateTimes = []
      for (let run = 0; run < runs; run++) {
        templateTimes.push(await timed(() => execa('psql', [url, '-qc', `create database copy${run} template bench`])))
        await execa('psql', [url, '-qc', `drop database copy${run}`])
      }

      const show = JSON.parse((await zenith('pg', 'show', source, '--json')).stdout)
      await zenith('pg', 'stop', source)
      const copyTimes = []
      for (let run = 0; run < Math.min(runs, 2); run++) {
        const target = path.join(mnt, `cp-${scale}-${run}`)
        copyTimes.push(await timed(() => execa('cp', ['-a', '--reflink=never', show.dataDir, target])))
        await rm(target, {recursive: true, force: true})
      }

      await zenith('pg', 'destroy', source, '--force')
      rows.push({medium, scale, sizeMb: Math.round(size / 1048576), snapshot: median(snapshotTimes), clone: median(cloneTimes), pgctlStart: median(startTimes), template: median(templateTimes), cp: median(copyTimes)})
    }

    // Fresh vs settled: the same pgbench load, snapshotted at once or after a CHECKPOINT.
    const fresh = `${medium}fresh`
    await zenith('pg', 'create', fresh, '-s', medium)
    const freshUrl = (await zenith('pg', 'url', fresh)).stdout.trim()
    const times = {fresh: {snapshot: [], clone: []}, settled: {snapshot: [], clone: []}}
    for (let run = 0; run < runs; run++) {
      for (const kind of ['fresh', 'settled']) {
        await execa(path.join(pgBin, 'pgbench'), ['-i', '-q', '-s', String(freshScale), freshUrl])
        if (kind === 'settled') await execa('psql', [freshUrl, '-qc', 'checkpoint'])
        times[kind].snapshot.push(await timed(() => zenith('snapshot', 'create', `${fresh}@${kind}${run}`)))
        times[kind].clone.push(await timed(() => zenith('pg', 'create', `${medium}${kind}${run}`, '--snapshot', `${fresh}@${kind}${run}`, '--cow')))
        await zenith('pg', 'destroy', `${medium}${kind}${run}`)
      }
    }

    await zenith('pg', 'destroy', fresh, '--force')
    freshRows.push({medium, fresh: median(times.fresh.clone), settled: median(times.settled.clone), freshSnapshot: median(times.fresh.snapshot), settledSnapshot: median(times.settled.snapshot)})
  }

  console.log('\nthin clone (medians of', runs, 'runs; seconds)')
  console.log('medium  scale  db size  snapshot create  clone (--cow)  pg_ctl start  clone - start  CREATE DATABASE TEMPLATE  cp -a --reflink=never  template/clone  cp/clone')
  for (const row of rows) {
    console.log([
      row.medium.padEnd(7), String(row.scale).padEnd(5), `${row.sizeMb}M`.padEnd(8), row.snapshot.toFixed(3).padEnd(16), row.clone.toFixed(3).padEnd(14),
      row.pgctlStart.toFixed(3).padEnd(13), (row.clone - row.pgctlStart).toFixed(3).padEnd(14), row.template.toFixed(3).padEnd(25),
      row.cp.toFixed(3).padEnd(22), `${(row.template / row.clone).toFixed(1)}x`.padEnd(15), `${(row.cp / row.clone).toFixed(1)}x`,
    ].join(' '))
  }

  for (const medium of media) {
    const [small, large] = rows.filter((row) => row.medium === medium)
    if (small && large) console.log(`${medium}: clone time at scale ${large.scale} vs ${small.scale}: ${(large.clone / small.clone).toFixed(2)}x (target: within 1.25x)`)
  }

  for (const row of freshRows) {
    console.log(`\n${row.medium}: clone of a snapshot taken right after pgbench -i -s ${freshScale}: ${row.fresh.toFixed(3)} s (snapshot create ${row.freshSnapshot.toFixed(3)} s)`)
    console.log(`${row.medium}: clone of a snapshot of the same data after a CHECKPOINT: ${row.settled.toFixed(3)} s (snapshot create ${row.settledSnapshot.toFixed(3)} s)`)
    console.log(`${row.medium}: fresh / settled: ${(row.fresh / row.settled).toFixed(2)}x (target: within 1.10x)`)
  }
} finally {
  const list = await zenith('pg', 'list', '--json').catch(() => ({stdout: '[]'}))
  for (const pg of JSON.parse(list.stdout || '[]')) if (pg.status === 'running') await zenith('pg', 'stop', pg.name, '--mode', 'immediate').catch(() => undefined)
  for (const cleanup of cleanups.reverse()) await cleanup()
  await rm(base, {recursive: true, force: true})
}

#!/usr/bin/env node
/* global process, console */
// `zenith pg start PG --replica` timing (issue 14) on btrfs, at two database sizes: from the
// command to a replica that streams, against the baseline a user would run by hand in the same
// process, `pg_basebackup -R -X stream -c fast` into a folder of the same btrfs + `pg_ctl start -w`.
// zenith's replica is an atomic snapshot + a thin clone, so its time should not grow with the
// size; the baseline copies every byte. Needs root (loop mount) and a built dist/. Ports from 9300.
//   node bench/replica.bench.mjs [--scales 10,60] [--runs 3]
import {mkdir, rm} from 'node:fs/promises'
import path from 'node:path'
import {execa} from 'execa'

import {median, option, timed, workFolder, zenithIn} from './lib.mjs'

const pgBin = '/usr/lib/postgresql/15/bin'
const scales = option('--scales', '10,60').split(',').map(Number)
const runs = Number(option('--runs', '3'))

if (process.getuid?.() !== 0) {
  console.log('replica bench: skipped (needs root for the btrfs loop mount)')
  process.exit(0)
}

const base = await workFolder('replica')
const env = {ZENITH_HOME: path.join(base, 'home'), ZENITH_FIRST_PORT: '9300'}
const zenith = zenithIn(env)
const mnt = path.join(base, 'btrfs')
const asPostgres = (command, args) => execa('runuser', ['-u', 'postgres', '--', command, ...args], {stdin: 'ignore', cwd: '/'})
let mounted = false

try {
  await mkdir(mnt)
  const image = path.join(base, 'btrfs.img')
  await execa('truncate', ['-s', `${Math.max(...scales) * 16 * 3 + 3000}M`, image])
  await execa('mkfs.btrfs', ['-q', image])
  await execa('mount', ['-o', 'loop', image, mnt])
  mounted = true
  await execa('chmod', ['0755', mnt])
  await zenith('storage', 'attach', '-t', 'btrfs', '-n', 'fast', '-c', `path=${mnt}/zenith`, '-c', 'quota=off')
  const manual = path.join(mnt, 'manual')
  await mkdir(manual)
  await execa('chown', ['postgres:postgres', manual])

  const rows = []
  for (const scale of scales) {
    const pg = `p${scale}`
    await zenith('pg', 'create', pg, '-s', 'fast')
    const url = (await zenith('pg', 'url', pg)).stdout.trim()
    await execa(path.join(pgBin, 'pgbench'), ['-i', '-q', '-s', String(scale), url])
    await execa('psql', [url, '-qc', 'checkpoint'])
    const bytes = Number((await execa('psql', [url, '-Atc', 'select sum(pg_database_size(datname)) from pg_database'])).stdout)

    const replicaTimes = []
    for (let run = 0; run < runs; run++) {
      replicaTimes.push(await timed(() => zenith('pg', 'start', pg, '--replica')))
      await zenith('pg', 'destroy', `${pg}/replica-1`)
    }

    const manualTimes = []
    for (let run = 0; run < runs; run++) {
      const dir = path.join(manual, `r${run}`)
      manualTimes.push(await timed(async () => {
        await execa(path.join(pgBin, 'pg_basebackup'), ['-D', dir, '-R', '-X', 'stream', '-c', 'fast', '-d', url], {stdin: 'ignore'})
        await execa('chown', ['-R', 'postgres:postgres', dir])
        await execa('chmod', ['0700', dir])
        await asPostgres(path.join(pgBin, 'pg_ctl'), ['start', '-w', '-s', '-D', dir, '-l', path.join(manual, `r${run}.log`), '-o', `-p 9399 -c unix_socket_directories=${manual} -c listen_addresses=''`])
      }))
      await asPostgres(path.join(pgBin, 'pg_ctl'), ['stop', '-m', 'immediate', '-s', '-D', dir])
      await rm(dir, {recursive: true, force: true})
    }

    rows.push({scale, bytes, zenith: median(replicaTimes), manual: median(manualTimes)})
    await zenith('pg', 'destroy', pg)
  }

  console.log(`\nreplica start on btrfs (medians of ${runs} runs; seconds, until the replica accepts connections)`)
  console.log('pgbench scale  database  zenith pg start --replica  pg_basebackup -R + pg_ctl start  zenith speed')
  for (const row of rows) {
    console.log([String(row.scale).padEnd(14), `${(row.bytes / 1024 / 1024).toFixed(0)} MB`.padEnd(9), row.zenith.toFixed(2).padEnd(26),
      row.manual.toFixed(2).padEnd(32), `${(row.manual / row.zenith).toFixed(2)}x`].join(' '))
  }
} finally {
  const list = await zenith('pg', 'list', '--json').catch(() => ({stdout: '[]'}))
  for (const pg of JSON.parse(list.stdout || '[]')) if (pg.status === 'running') await zenith('pg', 'stop', pg.name, '--mode', 'immediate').catch(() => undefined)
  await execa('pkill', ['-f', `${mnt}/manual`], {reject: false})
  if (mounted) await execa('umount', [mnt], {reject: false})
  await rm(base, {recursive: true, force: true})
}

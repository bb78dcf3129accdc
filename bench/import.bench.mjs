#!/usr/bin/env node
/* global process, console */
/**
 * Import/export benchmark (run after a build: `node bench/import.mjs`; needs root and PostgreSQL
 * 15). Starts a source postgres with pgbench data, then in the same run:
 *  - import throughput: `zenith snapshot import --from basebackup://` versus raw
 *    `pg_basebackup -D dir -X stream -c fast` of the same server (target: ratio >= 0.9);
 *  - export throughput and compressed size of `snapshot export` for each codec.
 * BENCH_SCALE (pgbench scale, default 10 = ~160 MB) and BENCH_ROUNDS (default 3) tune it.
 */
import {execa} from 'execa'
import {chown, mkdir, mkdtemp, rm, stat} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const BIN = path.join(ROOT, 'bin', 'run.js')
const PG_BIN = process.env.ZENITH_PG_BIN ?? '/usr/lib/postgresql/15/bin'
const PORT = 6196
const SCALE = Number(process.env.BENCH_SCALE ?? 10)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const PASSWORD = 'bench'

const work = await mkdtemp(path.join(os.tmpdir(), 'zenith-bench-import-'))
const sourceDir = path.join(work, 'source')
const home = path.join(work, 'home')
const env = {...process.env, ZENITH_HOME: home, ZENITH_FIRST_PORT: '6120'}
const asPostgres = (tool, args, options = {}) => execa('runuser', ['-u', 'postgres', '--', path.join(PG_BIN, tool), ...args], {cwd: '/', stdin: 'ignore', ...options})
const zenith = (args) => execa('node', [BIN, ...args], {env, stdin: 'ignore'})
const seconds = async (fn) => {
  const started = process.hrtime.bigint()
  await fn()
  return Number(process.hrtime.bigint() - started) / 1e9
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]
const mb = (bytes) => (bytes / 1024 / 1024).toFixed(1)

async function du(dir) {
  const {stdout} = await execa('du', ['-sb', dir])
  return Number(stdout.split(/\s/)[0])
}

try {
  await mkdir(sourceDir, {recursive: true})
  await chown(work, Number((await execa('id', ['-u', 'postgres'])).stdout), Number((await execa('id', ['-g', 'postgres'])).stdout))
  await chown(sourceDir, Number((await execa('id', ['-u', 'postgres'])).stdout), Number((await execa('id', ['-g', 'postgres'])).stdout))
  const data = path.join(sourceDir, 'data')
  await asPostgres('initdb', ['-D', data, '-U', 'postgres', '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--locale=C'])
  await execa('sh', ['-c', `echo "host replication all 127.0.0.1/32 scram-sha-256" >> ${data}/pg_hba.conf`])
  await asPostgres('pg_ctl', ['-D', data, '-l', path.join(sourceDir, 'log'), '-w', 'start', '-o', `-p ${PORT} -k ${sourceDir} -c listen_addresses=127.0.0.1`])
  await asPostgres('psql', ['-h', sourceDir, '-p', String(PORT), '-qX', '-c', `create role repl login replication superuser password '${PASSWORD}'`, '-c', 'create database bench'])
  await asPostgres('pgbench', ['-h', sourceDir, '-p', String(PORT), '-i', '-s', String(SCALE), '-q', 'bench'])
  await asPostgres('psql', ['-h', sourceDir, '-p', String(PORT), '-qX', '-c', 'checkpoint'])
  const dbBytes = await du(data)
  console.log(`source: pgbench scale ${SCALE}, data directory ${mb(dbBytes)} MB; ${ROUNDS} rounds, alternating`)

  // Import: raw pg_basebackup vs zenith, alternating so both see the same machine state.
  const raw = []
  const ours = []
  const rawDir = path.join(work, 'raw')
  for (let round = 0; round < ROUNDS; round++) {
    await rm(rawDir, {recursive: true, force: true})
    await mkdir(rawDir)
    await chown(rawDir, Number((await execa('id', ['-u', 'postgres'])).stdout), 0)
    raw.push(await seconds(() => asPostgres('pg_basebackup', ['-d', `host=127.0.0.1 port=${PORT} user=repl`, '-D', rawDir, '-X', 'stream', '-c', 'fast'], {env: {PGPASSWORD: PASSWORD}})))
    const name = `bench${round}`
    ours.push(await seconds(() => zenith(['snapshot', 'import', '--from', `basebackup://repl:${PASSWORD}@127.0.0.1:${PORT}/`, name])))
    if (round < ROUNDS - 1) await zenith(['snapshot', 'destroy', name])
  }

  const copied = await du(rawDir)
  const rawRate = copied / median(raw)
  const ourRate = copied / median(ours)
  console.log('\nimport (median of rounds)')
  console.log(`  raw pg_basebackup -X stream -c fast : ${median(raw).toFixed(2)} s  ${mb(rawRate)} MB/s`)
  console.log(`  zenith snapshot import basebackup:// : ${median(ours).toFixed(2)} s  ${mb(ourRate)} MB/s  (whole CLI run)`)
  console.log(`  ratio zenith/raw throughput          : ${(ourRate / rawRate).toFixed(2)}x (target >= 0.9)`)

  // Export: every codec from the last imported snapshot.
  console.log('\nexport (temporary postgres + pg_basebackup + checksums + archive)')
  console.log('  codec      seconds  content MB/s  size MB  ratio')
  for (const codec of ['none', 'gzip-fast', 'gzip', 'brotli']) {
    const file = path.join(work, `bench.${codec}.zenith`)
    let result
    const time = await seconds(async () => {
      result = await zenith(['snapshot', 'export', `bench${ROUNDS - 1}`, '-o', file, '-c', codec, '--json'])
    })
    const {contentBytes} = JSON.parse(result.stdout)
    const size = (await stat(file)).size
    console.log(`  ${codec.padEnd(9)}  ${time.toFixed(2).padStart(7)}  ${mb(contentBytes / time).padStart(12)}  ${mb(size).padStart(7)}  ${(size / contentBytes).toFixed(3)}`)
    await rm(file)
  }
} finally {
  await asPostgres('pg_ctl', ['-D', path.join(sourceDir, 'data'), '-m', 'immediate', '-w', 'stop'], {reject: false})
  await rm(work, {recursive: true, force: true})
}

#!/usr/bin/env node
/* global process, console */
// `zenith pg create` + `zenith pg stop` (the whole CLI: node start-up, store, port choice,
// initdb, pg_ctl start, pg_ctl stop) against the same work done by hand with the same initdb
// options: initdb + pg_ctl start -w + pg_ctl stop -w, run as the postgres OS user when root.
// Alternating rounds in one run, medians, ratio. Then `zenith --version` start-up (median of 10).
// Needs the built CLI (npx tsc -p tsconfig.build.json && npx oclif manifest) and PostgreSQL 15.
//   node bench/run.mjs pg-create [-- --runs 5]
import {chown, mkdir, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {execa} from 'execa'

import {workFolder} from './lib.mjs'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const bin = path.join(root, 'bin', 'run.js')
const pgBin = process.env.ZENITH_PG_BIN || '/usr/lib/postgresql/15/bin'
const args = process.argv.slice(2)
const runs = Number(args.includes('--runs') ? args[args.indexOf('--runs') + 1] : 5)
// Ports of the pg-lifecycle test range's top end, away from other benchmarks (7100+, 6190+).
const ZENITH_PORT = 6098
const MANUAL_PORT = 6099

const isRoot = process.getuid?.() === 0
const postgresUser = isRoot ? await idOf('postgres') : undefined
const asPostgres = (command, argv) => (isRoot ? ['runuser', ['-u', 'postgres', '--', command, ...argv]] : [command, argv])

const base = await workFolder('create')
const env = {...process.env, ZENITH_HOME: path.join(base, 'home'), ZENITH_FIRST_PORT: String(ZENITH_PORT)}
const zenith = (...argv) => execa('node', [bin, ...argv], {env, stdin: 'ignore'})
const seconds = async (work) => {
  const start = process.hrtime.bigint()
  await work()
  return Number(process.hrtime.bigint() - start) / 1e9
}
const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

async function idOf(user) {
  const [uid, gid] = await Promise.all([execa('id', ['-u', user]), execa('id', ['-g', user])])
  return {uid: Number(uid.stdout), gid: Number(gid.stdout)}
}

async function zenithRound(n) {
  const name = `bench${n}`
  const create = await seconds(() => zenith('pg', 'create', name))
  const stop = await seconds(() => zenith('pg', 'stop', name))
  await zenith('pg', 'destroy', name)
  return {create, stop, total: create + stop}
}

async function manualRound(n) {
  const dir = path.join(base, `manual${n}`)
  const dataDir = path.join(dir, 'data')
  await mkdir(dir, {mode: 0o700})
  const pwfile = path.join(dir, 'pw')
  await writeFile(pwfile, 'secret\n', {mode: 0o600})
  if (postgresUser) {
    await chown(dir, postgresUser.uid, postgresUser.gid)
    await chown(pwfile, postgresUser.uid, postgresUser.gid)
  }

  const run = (tool, argv) => execa(...asPostgres(path.join(pgBin, tool), argv), {cwd: '/', stdin: 'ignore'})
  const initdb = await seconds(() => run('initdb', ['-D', dataDir, '-U', 'postgres', '--pwfile', pwfile, '-E', 'UTF8', '--locale', 'C',
    '--auth-local', 'trust', '--auth-host', 'scram-sha-256']))
  const start = await seconds(() => run('pg_ctl', ['start', '-D', dataDir, '-l', path.join(dir, 'log'), '-w', '-s',
    '-o', `-p ${MANUAL_PORT} -k ${dir} -c listen_addresses=localhost`]))
  const stop = await seconds(() => run('pg_ctl', ['stop', '-D', dataDir, '-m', 'fast', '-w', '-s']))
  await rm(dir, {recursive: true, force: true})
  return {create: initdb + start, stop, total: initdb + start + stop}
}

try {
  await zenith('storage', 'list') // first use: home, store and storage detection are not part of a create
  const zenithRounds = []
  const manualRounds = []
  for (let n = 1; n <= runs; n++) {
    // Alternate who goes first so that neither always runs on a warmer cache.
    if (n % 2 === 1) {
      zenithRounds.push(await zenithRound(n))
      manualRounds.push(await manualRound(n))
    } else {
      manualRounds.push(await manualRound(n))
      zenithRounds.push(await zenithRound(n))
    }
  }

  const versions = []
  const bareNode = []
  for (let n = 0; n < 10; n++) {
    versions.push(await seconds(() => execa('node', [bin, '--version'], {env})))
    bareNode.push(await seconds(() => execa('node', ['-e', '0'])))
  }

  const figure = (rounds, key) => median(rounds.map((round) => round[key]))
  const row = (label, key) => console.log(`${label.padEnd(34)} ${figure(zenithRounds, key).toFixed(3).padStart(8)} s ${figure(manualRounds, key).toFixed(3).padStart(8)} s ${(figure(zenithRounds, key) / figure(manualRounds, key)).toFixed(2).padStart(6)}x`)
  console.log(`pg create + stop: zenith CLI vs by hand (${isRoot ? 'as the postgres OS user' : 'as the current user'}), median of ${runs} alternating rounds, ${os.cpus().length} cores, load ${os.loadavg()[0].toFixed(1)}`)
  console.log(`${''.padEnd(34)} ${'zenith'.padStart(10)} ${'by hand'.padStart(10)} ${'ratio'.padStart(7)}`)
  row('create+start / initdb+pg_ctl start', 'create')
  row('stop / pg_ctl stop', 'stop')
  row('total', 'total')
  const version = median(versions)
  console.log(`zenith --version start-up: median of 10 ${version.toFixed(3)} s (target < 0.3 s: ${version < 0.3 ? 'met' : 'NOT met'}); bare \`node -e 0\`: ${median(bareNode).toFixed(3)} s`)
} finally {
  const list = await zenith('pg', 'list', '--json').catch(() => ({stdout: '[]'}))
  for (const pg of JSON.parse(list.stdout || '[]')) if (pg.status === 'running') await zenith('pg', 'stop', pg.name, '--mode', 'immediate').catch(() => undefined)
  await rm(base, {recursive: true, force: true})
}

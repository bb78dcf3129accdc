#!/usr/bin/env node
/* global process, console */
// Fixed costs (issue 17): what each command costs over the work it does, each beside its
// baseline measured in the same run (alternating, median of --runs):
//   start-up   `zenith --version` and `zenith pg list` (10 pgs) vs `node -e 0`
//   snapshot   `zenith snapshot create` of a running pg on btrfs vs `btrfs subvolume snapshot -r`, on ZFS vs `zfs snapshot`
//   clone      `zenith pg create C --snapshot S --cow` (btrfs, XFS reflink, ZFS) vs `pg_ctl start -w` on the same data
//   import     `zenith snapshot import --from basebackup://` vs raw `pg_basebackup -X stream -c fast`
//   pull       `zenith snapshot pull` from s3rver vs raw GetObject of the same data as one tar
// Needs root (loop mounts, runuser), PostgreSQL 15, a built dist/ (npm run build), ports 9850-9899.
//   node bench/run.mjs overhead -- [--runs 5] [--parts startup,snapshot,clone,import,pull]
//     [--media btrfs,xfs] [--scale 50] [--import-scale 10] [--pull-scale 10] [--root DIR]
// --root runs another build of zenith (a checkout with its own dist/) against the same baselines.
import {spawn} from 'node:child_process'
import {createWriteStream} from 'node:fs'
import {chown, mkdir, readdir, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {pipeline} from 'node:stream/promises'

import {execa} from 'execa'

import {ensureZfs, median, option, root, timed, workFolder} from './lib.mjs'

const runs = Number(option('--runs', '5'))
const parts = option('--parts', 'startup,snapshot,clone,import,pull').split(',')
const media = option('--media', 'btrfs,xfs').split(',')
const scale = Number(option('--scale', '50'))
const importScale = Number(option('--import-scale', '10'))
const pullScale = Number(option('--pull-scale', '10'))
const zenithRoot = path.resolve(option('--root', root))
const bin = path.join(zenithRoot, 'bin', 'run.js')
const pgBin = process.env.ZENITH_PG_BIN || '/usr/lib/postgresql/15/bin'
const credentials = {AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1'}

if (process.getuid?.() !== 0) {
  console.log('overhead bench: skipped (needs root for loop mounts and runuser)')
  process.exit(0)
}

const base = await workFolder('overhead')
const cleanups = []
const homes = []
const rows = []
const postgresId = await idOf('postgres')
const asPostgres = (tool, argv, options = {}) => execa('runuser', ['-u', 'postgres', '--', path.join(pgBin, tool), ...argv], {cwd: '/', stdin: 'ignore', ...options})

/** The built zenith in `home`, first port `port`. */
function zenithIn(home, port, extra = {}) {
  homes.push(home)
  const env = {...process.env, ...credentials, ZENITH_HOME: home, ZENITH_FIRST_PORT: String(port), ...extra}
  return (...argv) => execa('node', [bin, ...argv], {env, stdin: 'ignore'})
}

/** Runs `ours` and `theirs` `runs` times, alternating who goes first; `between` after each pair. */
async function alternate(label, ours, theirs, {baseline, between, before} = {}) {
  const mine = []
  const other = []
  for (let run = 0; run < runs; run++) {
    const pair = [async () => mine.push(await timed(() => ours(run))), async () => other.push(await timed(() => theirs(run)))]
    if (run % 2 === 1) pair.reverse()
    for (const step of pair) {
      await before?.(run)
      await step()
    }

    await between?.(run)
  }

  const row = {label, baseline, zenith: median(mine), base: median(other), all: mine.map((value, i) => value - other[i])}
  rows.push(row)
  print(row)
  return row
}

function print(row) {
  const over = row.zenith - row.base
  console.log(`${row.label.padEnd(46)} ${row.zenith.toFixed(3)} s  vs ${row.baseline.padEnd(40)} ${row.base.toFixed(3)} s  overhead ${over.toFixed(3)} s  ratio ${(row.base / row.zenith).toFixed(2)}x  (per run: ${row.all.map((value) => value.toFixed(2)).join(' ')})`)
}

async function idOf(user) {
  const [uid, gid] = await Promise.all([execa('id', ['-u', user]), execa('id', ['-g', user])])
  return {uid: Number(uid.stdout), gid: Number(gid.stdout)}
}

async function loadAverage() {
  return os.loadavg().map((value) => value.toFixed(1)).join(' ')
}

async function startup() {
  const zenith = zenithIn(path.join(base, 'startup'), 9880)
  await zenith('storage', 'list')
  await alternate('zenith --version', () => zenith('--version'), () => execa('node', ['-e', '0']), {baseline: 'node -e 0'})
  for (let i = 0; i < 10; i++) await zenith('pg', 'create', `p${i}`)
  await zenith('pg', 'stop', 'p9')
  await alternate('zenith pg list (10 pgs, 9 running)', () => zenith('pg', 'list'), () => execa('node', ['-e', '0']), {baseline: 'node -e 0'})
  await alternate('zenith pg list --json (10 pgs)', () => zenith('pg', 'list', '--json'), () => execa('node', ['-e', '0']), {baseline: 'node -e 0'})
}

/** A loop-mounted btrfs or XFS (reflink) image, or a ZFS pool on a file, attached as storage `medium`. */
async function mountMedium(zenith, medium) {
  const image = path.join(base, `${medium}.img`)
  const mnt = path.join(base, medium)
  await mkdir(mnt)
  if (medium === 'zfs') return mountZfs(zenith, image, mnt)
  await execa('truncate', ['-s', `${scale * 60 + 3000}M`, image])
  if (medium === 'btrfs') await execa('mkfs.btrfs', ['-q', image])
  else await execa('mkfs.xfs', ['-q', '-m', 'reflink=1', image])
  await execa('mount', ['-o', 'loop', image, mnt])
  cleanups.push(() => execa('umount', [mnt], {reject: false}))
  if (medium === 'btrfs') await zenith('storage', 'attach', '-t', 'btrfs', '-n', medium, '-c', `path=${mnt}/zenith`, '-c', 'quota=off')
  else await zenith('storage', 'attach', '-t', 'local', '-n', medium, '-c', `path=${mnt}/zenith`)
  return mnt
}

async function mountZfs(zenith, image, mnt) {
  await ensureZfs(base, cleanups)
  const pool = `zover${process.pid}`
  await execa('truncate', ['-s', `${scale * 60 + 3000}M`, image])
  await execa('zpool', ['create', '-m', mnt, pool, image])
  cleanups.push(() => execa('zpool', ['destroy', '-f', pool], {reject: false}))
  await execa('chmod', ['0755', mnt])
  await zenith('storage', 'attach', '-t', 'zfs', '-n', 'zfs', '-c', `dataset=${pool}/zenith`)
  return mnt
}

async function snapshotsAndClones() {
  let port = 9850
  for (const medium of media) {
    const zenith = zenithIn(path.join(base, `home-${medium}`), port)
    port += 10
    const mnt = await mountMedium(zenith, medium)
    const source = `src${medium}`
    await zenith('pg', 'create', source, '-s', medium)
    const url = (await zenith('pg', 'url', source)).stdout.trim()
    await execa(path.join(pgBin, 'pgbench'), ['-i', '-q', '-s', String(scale), url])
    await execa('psql', [url, '-qc', 'checkpoint'])
    const size = (await execa('du', ['-sh', JSON.parse((await zenith('pg', 'show', source, '--json')).stdout).dataDir])).stdout.split('\t')[0]
    console.log(`${medium}: pgbench scale ${scale}, data directory ${size}, load ${await loadAverage()}`)
    const volume = JSON.parse((await zenith('pg', 'show', source, '--json')).stdout).dataDir

    // Untimed first runs: the first command of a home fills its caches (binaries search).
    await zenith('snapshot', 'create', `${source}@warm`)
    await zenith('pg', 'create', 'warm', '--snapshot', `${source}@warm`, '--cow')
    await zenith('pg', 'destroy', 'warm')
    if (parts.includes('snapshot') && medium === 'btrfs') {
      // The baseline: the filesystem's own snapshot of the same running data directory.
      await alternate(`${medium}: zenith snapshot create (running pg)`, (run) => zenith('snapshot', 'create', `${source}@s${run}`),
        (run) => execa('btrfs', ['subvolume', 'snapshot', '-r', volume, path.join(mnt, `raw${run}`)]),
        {baseline: 'btrfs subvolume snapshot -r', between: (run) => execa('btrfs', ['subvolume', 'delete', path.join(mnt, `raw${run}`)])})
    } else if (parts.includes('snapshot') && medium === 'zfs') {
      // The baseline: `zfs snapshot` of the dataset holding the same running data directory.
      const dataset = (await execa('zfs', ['list', '-H', '-o', 'name,mountpoint'])).stdout.split('\n').map((line) => line.split('\t')).find(([, mountpoint]) => mountpoint === volume)[0]
      await alternate(`${medium}: zenith snapshot create (running pg)`, (run) => zenith('snapshot', 'create', `${source}@s${run}`),
        (run) => execa('zfs', ['snapshot', `${dataset}@raw${run}`]),
        {baseline: 'zfs snapshot', between: (run) => execa('zfs', ['destroy', `${dataset}@raw${run}`])})
    } else {
      for (let run = 0; run < runs; run++) await zenith('snapshot', 'create', `${source}@s${run}`)
    }

    if (parts.includes('clone')) {
      // The baseline: postgres' own start on the clone's data directory (recovered by then), after
      // zenith stopped the clone again; so zenith always goes first here.
      const mine = []
      const other = []
      for (let run = 0; run < runs; run++) {
        mine.push(await timed(() => zenith('pg', 'create', `c${run}`, '--snapshot', `${source}@s${run}`, '--cow')))
        const dataDir = JSON.parse((await zenith('pg', 'show', `c${run}`, '--json')).stdout).dataDir
        await zenith('pg', 'stop', `c${run}`)
        other.push(await timed(() => asPostgres('pg_ctl', ['start', '-w', '-s', '-D', dataDir, '-l', '/dev/null'])))
        await asPostgres('pg_ctl', ['stop', '-s', '-D', dataDir, '-m', 'fast'])
        await zenith('pg', 'destroy', `c${run}`)
      }

      const row = {label: `${medium}: zenith pg create --snapshot --cow`, baseline: 'pg_ctl start -w (same data)', zenith: median(mine), base: median(other), all: mine.map((value, i) => value - other[i])}
      rows.push(row)
      print(row)
    }

    await zenith('pg', 'stop', source)
  }
}

async function importPart() {
  const port = 9876
  const sourceDir = path.join(base, 'import-source')
  const data = path.join(sourceDir, 'data')
  await mkdir(sourceDir)
  await chown(sourceDir, postgresId.uid, postgresId.gid)
  await asPostgres('initdb', ['-D', data, '-U', 'postgres', '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--locale=C'])
  await execa('sh', ['-c', `echo "host replication all 127.0.0.1/32 scram-sha-256" >> ${data}/pg_hba.conf`])
  await asPostgres('pg_ctl', ['-D', data, '-l', path.join(sourceDir, 'log'), '-w', 'start', '-o', `-p ${port} -k ${sourceDir} -c listen_addresses=127.0.0.1`])
  cleanups.push(() => asPostgres('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop'], {reject: false}))
  const psql = (...argv) => asPostgres('psql', ['-h', sourceDir, '-p', String(port), '-qX', ...argv])
  await psql('-c', "create role repl login replication superuser password 'bench'", '-c', 'create database bench')
  await asPostgres('pgbench', ['-h', sourceDir, '-p', String(port), '-i', '-s', String(importScale), '-q', 'bench'])
  await psql('-c', 'checkpoint')
  const size = (await execa('du', ['-sh', data])).stdout.split('\t')[0]
  console.log(`import: pgbench scale ${importScale}, source data directory ${size}, load ${await loadAverage()}`)
  const zenith = zenithIn(path.join(base, 'home-import'), 9877)
  const rawDir = path.join(base, 'import-raw')
  await zenith('snapshot', 'import', '--from', `basebackup://repl:bench@127.0.0.1:${port}/`, 'warm')
  await zenith('snapshot', 'destroy', 'warm')
  await alternate('zenith snapshot import --from basebackup://', (run) => zenith('snapshot', 'import', '--from', `basebackup://repl:bench@127.0.0.1:${port}/`, `imported${run}`),
    async () => {
      await rm(rawDir, {recursive: true, force: true})
      await mkdir(rawDir)
      await chown(rawDir, postgresId.uid, postgresId.gid)
      await asPostgres('pg_basebackup', ['-d', `host=127.0.0.1 port=${port} user=repl`, '-D', rawDir, '-X', 'stream', '-c', 'fast'], {env: {PGPASSWORD: 'bench'}})
    }, {baseline: 'pg_basebackup -X stream -c fast', between: (run) => zenith('snapshot', 'destroy', `imported${run}`)})
  await rm(rawDir, {recursive: true, force: true})
}

async function pullPart() {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
  const {CreateBucketCommand, GetObjectCommand, S3Client} = await import('@aws-sdk/client-s3')
  const {Upload} = await import('@aws-sdk/lib-storage')
  const server = await startS3rver(path.join(base, 's3'), 9890)
  cleanups.push(() => server.kill())
  const endpoint = 'http://127.0.0.1:9890'
  const client = new S3Client({endpoint, region: 'us-east-1', forcePathStyle: true, credentials: {accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER'},
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED'})
  await client.send(new CreateBucketCommand({Bucket: 'bench'}))
  const homeA = path.join(base, 'home-push')
  const source = zenithIn(homeA, 9895, {ZENITH_S3_ENDPOINT: endpoint})
  await source('pg', 'create', 'bench')
  const url = (await source('pg', 'url', 'bench')).stdout.trim()
  await execa(path.join(pgBin, 'pgbench'), ['-i', '-q', '-s', String(pullScale), url])
  await source('snapshot', 'create', 'bench@one')
  await source('pg', 'stop', 'bench')
  await source('snapshot', 'push', 'bench@one', '--to', 's3://bench/zenith')
  const snapshots = path.join(homeA, 'storages', 'local', 'snapshots')
  const folder = path.join(snapshots, (await readdir(snapshots)).find((name) => name.startsWith('bench@one')))
  const tar = spawn('tar', ['-cf', '-', '-C', folder, '.'], {stdio: ['ignore', 'pipe', 'inherit']})
  await new Upload({client, params: {Bucket: 'bench', Key: 'raw.tar', Body: tar.stdout}, queueSize: 4, partSize: 8 * 1024 * 1024}).done()
  const size = (await execa('du', ['-sh', folder])).stdout.split('\t')[0]
  console.log(`pull: pgbench scale ${pullScale}, snapshot ${size}, load ${await loadAverage()}`)
  const homeB = path.join(base, 'home-pull')
  const target = zenithIn(homeB, 9897, {ZENITH_S3_ENDPOINT: endpoint})
  const rawFile = path.join(base, 'raw.tar')
  // One home for every round (set up and warmed by a first pull); the pulled snapshot is
  // destroyed after each round, so every pull writes everything again.
  await target('snapshot', 'pull', '--from', 's3://bench/zenith', 'bench@one')
  await target('snapshot', 'destroy', 'bench@one')
  await alternate('zenith snapshot pull from S3', async () => {
    await target('snapshot', 'pull', '--from', 's3://bench/zenith', 'bench@one')
  }, async () => {
    const object = await client.send(new GetObjectCommand({Bucket: 'bench', Key: 'raw.tar'}))
    await pipeline(object.Body, createWriteStream(rawFile))
  }, {baseline: 'GetObject of the same data as one tar', before: () => execa('sync'), async between() {
    await rm(rawFile, {force: true})
    await target('snapshot', 'destroy', 'bench@one')
  }})
}

/** s3rver in its own process, so that its CPU does not share an event loop with either side. */
async function startS3rver(directory, port) {
  const script = `import S3rver from 's3rver'
const server = new S3rver({address: '127.0.0.1', port: ${port}, silent: true, directory: ${JSON.stringify(directory)}})
await server.run()
console.log('ready')`
  const child = spawn('node', ['--input-type=module', '-e', script], {cwd: root, stdio: ['ignore', 'pipe', 'inherit']})
  await new Promise((resolve, reject) => {
    child.stdout.once('data', resolve)
    child.once('exit', (code) => reject(new Error(`s3rver exited with ${code}`)))
  })
  return child
}

try {
  console.log(`fixed costs of ${path.relative(process.cwd(), zenithRoot) || '.'}: median of ${runs} alternating runs, ${os.cpus().length} cores, load ${await loadAverage()}`)
  if (parts.includes('startup')) await startup()
  if (parts.includes('snapshot') || parts.includes('clone')) await snapshotsAndClones()
  if (parts.includes('import')) await importPart()
  if (parts.includes('pull')) await pullPart()
  console.log(`\nsummary (load ${await loadAverage()})`)
  for (const row of rows) print(row)
} finally {
  for (const home of new Set(homes)) {
    const env = {...process.env, ZENITH_HOME: home}
    const list = await execa('node', [bin, 'pg', 'list', '--json'], {env, reject: false})
    for (const pg of JSON.parse(list.stdout || '[]')) {
      if (pg.status === 'running') await execa('node', [bin, 'pg', 'stop', pg.name, '--mode', 'immediate'], {env, reject: false})
    }
  }

  for (const cleanup of cleanups.reverse()) await cleanup()
  await rm(base, {recursive: true, force: true})
}

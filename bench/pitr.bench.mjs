#!/usr/bin/env node
/* global process, console, setTimeout */
// zenith's PITR against pgBackRest (Debian `pgbackrest`, installed by this benchmark when
// missing), per medium (`copy`: a local storage on the machine's ext4; `btrfs`: a loop-mounted
// image), in one run. Needs root (runuser, the loop mount), PostgreSQL 15 and a built dist/.
//
// (1) Archiving under load: `pgbench -c 8 -j 2 -T SECONDS` (unthrottled) against
//   - a plain postgres initdb'd here, archive_command = `pgbackrest archive-push %p` (defaults:
//     gz compression, synchronous push) after `stanza-create` and a full backup, and
//   - a zenith pg after `zenith pitr create`.
//   When pgbench stops: the WAL not yet archived (bytes, segments: pg_current_wal_lsn() against
//   pg_stat_archiver.last_archived_wal), then `pg_switch_wal()` and the time until the archiver
//   has archived that segment. Target: zenith's lag no more than pgBackRest's.
// (2) Point-in-time extract at the LSN taken half way through the zenith pg's pgbench run, from
//   the same WAL by both tools: a pgBackRest stanza of the zenith pg itself (a full backup taken
//   before pgbench with --no-archive-check; the pg keeps its WAL with wal_keep_size, and after
//   the lag measurement its segments are pushed with `pgbackrest archive-push`, so pgBackRest's
//   repository holds the very segments zenith archived). Timed: `pgbackrest restore --type=lsn
//   --target-action=promote` into an empty folder + start + wait until promoted, against
//   `zenith pitr extract-snapshot AREA --lsn LSN SNAP` (and + `zenith pg create --snapshot SNAP`,
//   `--cow` on btrfs). Both restored databases must hold the same pgbench state. Target: zenith
//   at most 1.0x pgBackRest's time on `copy`, far below on btrfs. The plain postgres' own stanza
//   is restored at its own half-way LSN too, for reference (the brief's baseline, live-archived).
//
//   node bench/pitr.bench.mjs [--media copy,btrfs] [--seconds 60] [--scale 20] [--clients 8] [--threads 2]
// Ports 9100-9199.
import {appendFile, chown, mkdir, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {execa} from 'execa'

import {option, timed, workFolder, zenithIn} from './lib.mjs'

const pgBin = '/usr/lib/postgresql/15/bin'
const media = option('--media', 'copy,btrfs').split(',')
const seconds = Number(option('--seconds', '60'))
const scale = Number(option('--scale', '20'))
const clients = option('--clients', '8')
const threads = option('--threads', '2')
const imageGb = Number(option('--image-gb', '40'))
// wal_keep_size on both pgs once their bases are taken: the zenith pg keeps its WAL for the
// pgBackRest stanza of it; the plain postgres gets the same setting so that both write (not
// recycle) segments alike.
const walKeep = '64GB'
const ports = {zenithPg: 9110, zenithClone: 9111, plain: 9150, plainRestore: 9151, zenithRestore: 9152}

if (process.getuid?.() !== 0) {
  console.log('pitr bench: skipped (needs root: runuser postgres, the btrfs loop mount)')
  process.exit(0)
}

for (const medium of media) {
  if (!['copy', 'btrfs'].includes(medium)) {
    console.error(`pitr bench: unknown medium ${medium} (copy, btrfs)`)
    process.exit(2)
  }
}

if ((await execa('sh', ['-c', 'command -v pgbackrest'], {reject: false})).exitCode !== 0) {
  console.log('installing pgbackrest (apt-get)')
  const install = () => execa('apt-get', ['install', '-y', '-q', 'pgbackrest'], {reject: false, env: {...process.env, DEBIAN_FRONTEND: 'noninteractive'}})
  if ((await install()).exitCode !== 0) {
    await execa('apt-get', ['update', '-q'])
    await execa('apt-get', ['install', '-y', '-q', 'pgbackrest'], {env: {...process.env, DEBIAN_FRONTEND: 'noninteractive'}})
  }
}

const pgbackrestVersion = (await execa('pgbackrest', ['version'])).stdout.trim()
const base = await workFolder('pitr')
const sockets = path.join(base, 'sockets')
const env = {ZENITH_HOME: path.join(base, 'home'), ZENITH_FIRST_PORT: '9100'}
const zenith = zenithIn(env)
const postgresUid = Number((await execa('id', ['-u', 'postgres'])).stdout)
const postgresGid = Number((await execa('id', ['-g', 'postgres'])).stdout)
const asPostgres = (command, argv, options = {}) => execa('runuser', ['-u', 'postgres', '--', command, ...argv], {cwd: '/', stdin: 'ignore', ...options})
const pgCtl = (argv, options) => asPostgres(path.join(pgBin, 'pg_ctl'), argv, options)
const sql = async (url, query) => (await execa('psql', ['-XAtq', '-v', 'ON_ERROR_STOP=1', url, '-c', query], {stdin: 'ignore'})).stdout.trim()
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const mb = (bytes) => (Number(bytes) / 1048576).toFixed(1)
const startedPostgres = new Set() // data directories of postgres servers started here (not by zenith)
const mounts = []
const began = Date.now()
const progress = (message) => console.log(`[${((Date.now() - began) / 1000).toFixed(0).padStart(4)} s] ${message}`)

async function postgresFolder(folder, mode = 0o700) {
  await mkdir(folder, {recursive: true, mode})
  await chown(folder, postgresUid, postgresGid)
  return folder
}

/** `X/Y` as a number of bytes. */
const lsnBytes = (lsn) => {
  const [high, low] = lsn.split('/')
  return (BigInt(`0x${high}`) << 32n) + BigInt(`0x${low}`)
}

/** A database's pgbench state: what both restores must agree on. */
async function pgbenchState(url) {
  const [accounts, history] = await Promise.all([
    sql(url, 'select sum(abalance) || \' \' || count(*) from pgbench_accounts'),
    sql(url, 'select count(*) from pgbench_history'),
  ])
  const [balance, rows] = accounts.split(' ')
  return {sumAbalance: balance, accounts: Number(rows), history: Number(history)}
}

async function waitPromoted(url, timeoutSeconds = 600) {
  const deadline = Date.now() + timeoutSeconds * 1000
  for (;;) {
    const answer = await execa('psql', ['-XAtq', url, '-c', 'select pg_is_in_recovery()'], {stdin: 'ignore', reject: false})
    if (answer.exitCode === 0 && answer.stdout.trim() === 'f') return
    if (/password|authentication/.test(answer.stderr)) throw new Error(`${url}: ${answer.stderr}`)
    if (Date.now() > deadline) throw new Error(`${url}: still in recovery (or not answering) after ${timeoutSeconds} s: ${answer.stderr}`)
    await sleep(20)
  }
}

/** Switches to a new WAL segment and waits (server side, 10 ms polls) until the archiver has archived the old one. */
async function switchAndWaitArchived(url, timeoutSeconds = 900) {
  const segment = await sql(url, 'select pg_walfile_name(pg_switch_wal())')
  await sql(url, `do $$ declare deadline timestamptz := clock_timestamp() + interval '${timeoutSeconds} seconds'; begin
    loop
      perform pg_stat_clear_snapshot();
      exit when coalesce(left((select last_archived_wal from pg_stat_archiver), 24), '') >= '${segment}';
      if clock_timestamp() > deadline then raise exception 'segment ${segment} not archived after ${timeoutSeconds} s'; end if;
      perform pg_sleep(0.01);
    end loop; end $$`)
  return segment
}

async function archiverState(url) {
  const row = await sql(url, `select pg_current_wal_lsn() || ' ' || pg_walfile_name(pg_current_wal_lsn()) || ' ' || coalesce(last_archived_wal, '-') || ' ' || archived_count || ' ' || failed_count
    || ' ' || (select setting from pg_settings where name = 'wal_segment_size') from pg_stat_archiver`)
  const [lsn, currentWal, lastArchived, archived, failed, segmentSize] = row.split(' ')
  const size = BigInt(segmentSize)
  const archivedUpTo = lastArchived === '-' ? 0n : archivedEnd(lastArchived.slice(0, 24), size)
  const notArchived = lsnBytes(lsn) - archivedUpTo
  const segments = lastArchived === '-' ? undefined : Number(BigInt(`0x${currentWal.slice(8, 24)}`) - BigInt(`0x${lastArchived.slice(8, 24)}`))
  return {lsn, currentWal, lastArchived, archived: Number(archived), failed: Number(failed), notArchivedBytes: notArchived > 0n ? Number(notArchived) : 0, segments}
}

/** The first byte after segment `name`: (log << 32) + (seg + 1) * size. */
function archivedEnd(name, size) {
  return (BigInt(`0x${name.slice(8, 16)}`) << 32n) + (BigInt(`0x${name.slice(16, 24)}`) + 1n) * size
}

/**
 * Runs pgbench against `benchUrl`, noting the LSN half way and sampling the archiver lag every
 * second; when pgbench ends, the lag at that moment, then the time until the archive has caught up.
 */
async function load(adminUrl, benchUrl) {
  const startLsn = await sql(adminUrl, 'select pg_current_wal_lsn()')
  const before = await archiverState(adminUrl)
  const started = Date.now()
  const bench = execa(path.join(pgBin, 'pgbench'), ['-c', clients, '-j', threads, '-T', String(seconds), benchUrl], {stdin: 'ignore'})
  let midLsn
  let maxLag = {notArchivedBytes: 0, segments: 0}
  let running = true
  const sampler = (async () => {
    while (running) {
      await sleep(1000)
      if (!running) break
      if (midLsn === undefined && Date.now() - started >= (seconds * 1000) / 2) midLsn = await sql(adminUrl, 'select pg_current_wal_lsn()')
      const state = await archiverState(adminUrl).catch(() => undefined)
      if (state && state.notArchivedBytes > maxLag.notArchivedBytes) maxLag = state
    }
  })()
  const result = await bench
  running = false
  const stopped = process.hrtime.bigint()
  const atStop = await archiverState(adminUrl)
  const caughtUpSegment = await switchAndWaitArchived(adminUrl)
  const catchUp = Number(process.hrtime.bigint() - stopped) / 1e9
  await sampler
  const elapsed = (Date.now() - started) / 1000
  const tps = Number(/tps = ([\d.]+)/.exec(result.stdout)?.[1])
  const walBytes = Number(lsnBytes(atStop.lsn) - lsnBytes(startLsn))
  const after = await archiverState(adminUrl)
  return {tps, startLsn, midLsn, atStop, maxLag, catchUp, caughtUpSegment, walBytes, elapsed, failed: after.failed - before.failed}
}

async function pgbackrestConfig(root) {
  const folder = await postgresFolder(path.join(root, 'pgbackrest'), 0o755)
  for (const sub of ['repo', 'log', 'lock', 'spool']) await postgresFolder(path.join(folder, sub))
  const file = path.join(folder, 'pgbackrest.conf')
  await writeFile(file, [
    '[global]', `repo1-path=${folder}/repo`, `log-path=${folder}/log`, `lock-path=${folder}/lock`, `spool-path=${folder}/spool`,
    'repo1-retention-full=9999', 'start-fast=y', 'log-level-console=warn', 'log-level-file=info', '',
  ].join('\n'))
  await chown(file, postgresUid, postgresGid)
  const addStanza = (stanza, dataDir, port, socketDir) => appendFile(file, [`[${stanza}]`, `pg1-path=${dataDir}`, `pg1-port=${port}`, `pg1-socket-path=${socketDir}`, ''].join('\n'))
  const pgbackrest = (argv, options) => asPostgres('pgbackrest', [`--config=${file}`, ...argv], options)
  return {file, folder, addStanza, pgbackrest}
}

/** pgBackRest restore of `stanza` at `lsn` into an empty folder, start on `port`, wait until promoted: timed as one. */
async function pgbackrestRestore(br, stanza, lsn, folder, port) {
  await postgresFolder(folder)
  // Over the socket (trust): a restored zenith pg wants a password over TCP.
  const url = `postgresql://postgres@/bench?host=${encodeURIComponent(sockets)}&port=${port}`
  const seconds_ = await timed(async () => {
    await br.pgbackrest([`--stanza=${stanza}`, '--type=lsn', `--target=${lsn}`, '--target-exclusive', '--target-action=promote', `--pg1-path=${folder}`, 'restore'])
    startedPostgres.add(folder)
    // The restored configuration is the source's: its port, sockets and archive_command (which
    // would push the new timeline into the source's archive) are overridden.
    await pgCtl(['start', '-w', '-s', '-t', '600', '-D', folder, '-l', `${folder}.log`, '-o', `-p ${port} -k ${sockets} -c listen_addresses=127.0.0.1 -c archive_mode=off`])
    await waitPromoted(url)
  })
  const state = await pgbenchState(url)
  const log = await readFile(`${folder}.log`, 'utf8')
  const stop = /recovery stopping [^\n]*/.exec(log)?.[0]
  await stopPostgres(folder)
  await rm(folder, {recursive: true, force: true})
  return {seconds: seconds_, state, stop}
}

async function stopPostgres(dataDir) {
  await pgCtl(['stop', '-m', 'immediate', '-w', '-s', '-D', dataDir], {reject: false})
  startedPostgres.delete(dataDir)
}

/** wal_keep_size, set after the base (zenith's, pgBackRest's) so that no base carries the WAL it keeps. */
async function keepWal(url) {
  await sql(url, `alter system set wal_keep_size = '${walKeep}'`)
  await sql(url, 'select pg_reload_conf()')
}

async function du(folder) {
  const result = await execa('du', ['-sb', folder], {reject: false})
  return Number(result.stdout.split(/\s/)[0]) || 0
}

/** Is `zenith pitr` in this build? (Until it lands, the zenith side reports itself as not run.) */
async function pitrAvailable() {
  const probe = await zenith('pitr', 'list', '--json').catch((error) => error)
  if (probe.exitCode === 0) return true
  const text = `${probe.stderr || probe.stdout}`.trim()
  try {
    const answer = JSON.parse(text)
    return answer.error?.code ?? answer.code ?? text
  } catch {
    return text.split('\n')[0]
  }
}

/** (1) and the reference restore on a plain postgres archiving with pgBackRest. */
async function plainSide(root, br) {
  const folder = await postgresFolder(path.join(root, 'plain'), 0o755)
  const dataDir = path.join(folder, 'data')
  await asPostgres(path.join(pgBin, 'initdb'), ['-D', dataDir, '-U', 'postgres', '-E', 'UTF8', '--locale', 'C', '--auth', 'trust'])
  await appendFile(path.join(dataDir, 'postgresql.conf'), [
    '', '# pitr bench', `port = ${ports.plain}`, "listen_addresses = '127.0.0.1'", `unix_socket_directories = '${sockets}'`,
    'archive_mode = on', `archive_command = 'pgbackrest --config=${br.file} --stanza=bench archive-push %p'`, '',
  ].join('\n'))
  await br.addStanza('bench', dataDir, ports.plain, sockets)
  startedPostgres.add(dataDir)
  await pgCtl(['start', '-w', '-s', '-D', dataDir, '-l', path.join(folder, 'log')])
  const adminUrl = `postgresql://postgres@127.0.0.1:${ports.plain}/postgres`
  const benchUrl = adminUrl.replace(/\/postgres$/, '/bench')
  await sql(adminUrl, 'create database bench')
  await execa(path.join(pgBin, 'pgbench'), ['-i', '-q', '-s', String(scale), benchUrl])
  await sql(adminUrl, 'checkpoint')
  const backup = await timed(async () => {
    await br.pgbackrest(['--stanza=bench', 'stanza-create'])
    await br.pgbackrest(['--stanza=bench', 'backup', '--type=full'])
  })
  await keepWal(adminUrl)
  await sql(adminUrl, 'checkpoint')
  await switchAndWaitArchived(adminUrl)
  progress('plain postgres + pgBackRest: pgbench')
  const run = await load(adminUrl, benchUrl)
  progress('plain postgres + pgBackRest: restore at the half-way LSN')
  const archiveBytes = await du(path.join(br.folder, 'repo', 'archive', 'bench'))
  const backupBytes = await du(path.join(br.folder, 'repo', 'backup', 'bench'))
  await stopPostgres(dataDir)
  await rm(dataDir, {recursive: true, force: true})
  const restore = await pgbackrestRestore(br, 'bench', run.midLsn, path.join(root, 'restore-plain'), ports.plainRestore)
  return {run, backup, archiveBytes, backupBytes, restore}
}

/** (1) for zenith and (2) for both tools on the zenith pg's WAL. */
async function zenithSide(root, br, storage, medium, order, pitr) {
  const pg = `${medium}pg`
  const area = `${medium}area`
  const snapshot = `${medium}mid`
  const clone = `${medium}x`
  await zenith('pg', 'create', pg, '-s', storage, '--port', String(ports.zenithPg))
  const adminUrl = (await zenith('pg', 'url', pg)).stdout.trim()
  const benchUrl = adminUrl.replace(/\/postgres$/, '/bench')
  await sql(adminUrl, 'create database bench')
  await execa(path.join(pgBin, 'pgbench'), ['-i', '-q', '-s', String(scale), benchUrl])
  await sql(adminUrl, 'checkpoint')
  const out = {pitr}
  if (pitr === true) {
    out.create = await timed(() => zenith('pitr', 'create', area, '--pg', pg, '--storage', storage, '--json'))
  } else {
    // zenith pitr is not in this build: archive nowhere, so that the pgBackRest part still runs.
    await sql(adminUrl, 'alter system set archive_mode = on')
    await sql(adminUrl, "alter system set archive_command = '/bin/true'")
    await zenith('pg', 'restart', pg)
  }

  const dataDir = JSON.parse((await zenith('pg', 'show', pg, '--json')).stdout).dataDir
  const socketDir = (await sql(adminUrl, 'show unix_socket_directories')).split(',')[0].trim()
  await keepWal(adminUrl)
  await br.addStanza('zenith', dataDir, ports.zenithPg, socketDir)
  await br.pgbackrest(['--stanza=zenith', 'stanza-create'])
  // zenith archives this pg: pgBackRest's copy of its WAL is pushed from pg_wal afterwards.
  await br.pgbackrest(['--stanza=zenith', 'backup', '--type=full', '--no-archive-check'])
  await sql(adminUrl, 'checkpoint')
  await switchAndWaitArchived(adminUrl)
  progress(`zenith pg on ${storage}: pgbench`)
  out.run = await load(adminUrl, benchUrl)
  progress(`zenith pg on ${storage}: pushing its WAL to pgBackRest, then restore and extract`)
  if (pitr === true) out.show = JSON.parse((await zenith('pitr', 'show', area, '--json')).stdout)

  // The same WAL into pgBackRest's stanza of this pg: every complete segment in pg_wal.
  const current = await sql(adminUrl, 'select pg_walfile_name(pg_current_wal_lsn())')
  const segments = (await readdir(path.join(dataDir, 'pg_wal'))).filter((name) => /^[0-9A-F]{24}$/.test(name) && name < current).sort()
  out.pushed = await timed(async () => {
    for (const name of segments) await br.pgbackrest(['--stanza=zenith', 'archive-push', `--pg1-path=${dataDir}`, path.join(dataDir, 'pg_wal', name)])
  })
  out.pushedSegments = segments.length
  await zenith('pg', 'stop', pg)

  const lsn = out.run.midLsn
  const zenithExtract = async () => {
    if (pitr !== true) return
    const cloneUrl = async () => (await zenith('pg', 'url', clone)).stdout.trim().replace(/\/postgres$/, '/bench')
    try {
      out.extract = await timed(() => zenith('pitr', 'extract-snapshot', area, '--lsn', lsn, snapshot, '--json'))
      out.clone = await timed(async () => {
        await zenith('pg', 'create', clone, '--snapshot', snapshot, ...(medium === 'btrfs' ? ['--cow'] : []), '--port', String(ports.zenithClone))
        await waitPromoted(await cloneUrl())
      })
      out.zenithState = await pgbenchState(await cloneUrl())
    } catch (error) {
      out.zenithError = `${error.command ?? ''}\n${error.stderr || error.message}`.trim()
    }
  }

  const restore = async () => {
    out.restore = await pgbackrestRestore(br, 'zenith', lsn, path.join(root, 'restore-zenith'), ports.zenithRestore)
  }

  for (const step of order === 0 ? [restore, zenithExtract] : [zenithExtract, restore]) await step()
  out.archiveBytes = await du(path.join(br.folder, 'repo', 'archive', 'zenith'))
  await zenith('pg', 'destroy', clone, '--force').catch(() => undefined)
  await zenith('snapshot', 'destroy', snapshot).catch(() => undefined)
  if (pitr === true) await zenith('pitr', 'destroy', area, '--force').catch(() => undefined)
  await zenith('pg', 'destroy', pg, '--force').catch(() => undefined)
  return out
}

async function setUpMedium(medium) {
  if (medium === 'copy') {
    const root = await postgresFolder(path.join(base, 'copy'), 0o755)
    await zenith('storage', 'attach', '-t', 'local', '-n', 'copy', '-c', `path=${root}/zenith`)
    return {root, storage: 'copy'}
  }

  const image = path.join(base, 'btrfs.img')
  const mnt = path.join(base, 'btrfs')
  await mkdir(mnt)
  await execa('truncate', ['-s', `${imageGb}G`, image])
  await execa('mkfs.btrfs', ['-q', image])
  await execa('mount', ['-o', 'loop', image, mnt])
  mounts.push(mnt)
  await execa('chmod', ['0755', mnt])
  await zenith('storage', 'attach', '-t', 'btrfs', '-n', 'btrfs', '-c', `path=${mnt}/zenith`, '-c', 'quota=off')
  return {root: await postgresFolder(path.join(mnt, 'bench'), 0o755), storage: 'btrfs'}
}

let cleaned = false
async function cleanUp() {
  if (cleaned) return
  cleaned = true
  const pitrs = await zenith('pitr', 'list', '--json').catch(() => ({stdout: '[]'}))
  for (const area of JSON.parse(pitrs.stdout || '[]')) await zenith('pitr', 'destroy', area.name, '--force').catch(() => undefined)
  const list = await zenith('pg', 'list', '--json').catch(() => ({stdout: '[]'}))
  for (const pg of JSON.parse(list.stdout || '[]')) if (pg.status === 'running') await zenith('pg', 'stop', pg.name, '--mode', 'immediate').catch(() => undefined)
  for (const dataDir of [...startedPostgres]) await stopPostgres(dataDir)
  // Anything still running out of this run's folder (an archive_command in flight, a server
  // zenith started): by process id, found through its command line.
  for (const pid of await readdir('/proc').catch(() => [])) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
    if (cmdline.includes(base)) {
      try {
        process.kill(Number(pid), 'SIGKILL')
      } catch {
        // gone already
      }
    }
  }

  for (const mnt of mounts.reverse()) {
    let result
    for (let attempt = 0; attempt < 20; attempt++) {
      result = await execa('umount', [mnt], {reject: false})
      if (result.exitCode === 0) break
      await sleep(500)
    }

    if (result.exitCode !== 0) console.error(`pitr bench: could not unmount ${mnt}: ${result.stderr}`)
  }

  await rm(base, {recursive: true, force: true})
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    console.error(`pitr bench: ${signal}, cleaning up`)
    cleanUp().finally(() => process.exit(130))
  })
}

const results = []
let failed = false
try {
  await postgresFolder(sockets, 0o755)
  const pitr = await pitrAvailable()
  if (pitr !== true) console.log(`zenith pitr is not available in this build (${pitr}): only the pgBackRest side runs`)
  for (const [index, medium] of media.entries()) {
    const {root, storage} = await setUpMedium(medium)
    const br = await pgbackrestConfig(root)
    const order = index % 2
    let plain
    let ours
    // Alternate which side goes first from one medium to the next.
    if (order === 0) {
      plain = await plainSide(root, br)
      ours = await zenithSide(root, br, storage, medium, order, pitr)
    } else {
      ours = await zenithSide(root, br, storage, medium, order, pitr)
      plain = await plainSide(root, br)
    }

    results.push({medium, plain, ours})
    report({medium, plain, ours})
  }
} catch (error) {
  failed = true
  console.error(error.stack ?? error)
  if (error.stderr) console.error(error.stderr)
} finally {
  await cleanUp()
}

function lagLine(label, run) {
  const stop = run.atStop
  return `${label.padEnd(26)} ${run.tps.toFixed(0).padStart(6)}  ${mb(run.walBytes).padStart(8)}  ${(run.walBytes / 1048576 / seconds).toFixed(1).padStart(6)}  ${mb(stop.notArchivedBytes).padStart(8)} ${String(stop.segments - 1).padStart(4)}  ${mb(run.maxLag.notArchivedBytes).padStart(8)}  ${run.catchUp.toFixed(2).padStart(8)}  ${String(run.failed).padStart(6)}`
}

function report({medium, plain, ours}) {
  const state = (s) => (s ? `sum(abalance)=${s.sumAbalance} accounts=${s.accounts} history=${s.history}` : '-')
  console.log(`\n=== ${medium}: pgbench -c ${clients} -j ${threads} -T ${seconds}, scale ${scale}; ${os.cpus().length} cores, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}; ${pgbackrestVersion} ===`)
  console.log('(1) archiving under load')
  console.log(`${''.padEnd(26)} ${'tps'.padStart(6)}  ${'WAL MB'.padStart(8)}  ${'MB/s'.padStart(6)}  ${'lag MB'.padStart(8)} ${'full'.padStart(4)}  ${'max lag'.padStart(8)}  ${'catch-up'.padStart(8)}  ${'failed'.padStart(6)}`)
  console.log(lagLine('pgBackRest archive-push', plain.run))
  if (ours.pitr === true) {
    console.log(lagLine('zenith pitr', ours.run))
    const full = (run) => run.atStop.segments - 1
    const ratio = ours.run.catchUp / plain.run.catchUp
    console.log(`lag MB: WAL not archived when pgbench stopped, the current (unfinished) segment included; full: complete segments waiting for the archiver then`)
    console.log(`zenith / pgBackRest: complete segments waiting at stop ${full(ours.run)} vs ${full(plain.run)} (target: no more: ${full(ours.run) <= full(plain.run) ? 'met' : 'NOT met'}); catch-up after pg_switch_wal ${ratio.toFixed(2)}x (target <= 1.0x: ${ratio <= 1 ? 'met' : 'NOT met'})`)
    const bases = (ours.show?.bases ?? []).reduce((sum, b) => sum + (b.bytes ?? 0), 0)
    console.log(`stored: pgBackRest WAL archive ${mb(plain.archiveBytes)} MB (gz) + full backup ${mb(plain.backupBytes)} MB, for ${mb(plain.run.walBytes)} MB of WAL under pgbench; zenith area: WAL ${mb(ours.show?.walBytes ?? 0)} MB in ${ours.show?.segments} segments + bases ${mb(bases)} MB (sizeBytes ${mb(ours.show?.sizeBytes ?? 0)} MB), for ${mb(ours.run.walBytes)} MB`)
    console.log(`zenith pitr create ${ours.create.toFixed(2)} s; pgbackrest stanza-create + backup --type=full ${plain.backup.toFixed(2)} s`)
    if (ours.show) console.log(`zenith pitr show after catch-up: to=${JSON.stringify(ours.show.to)} lastArchived=${JSON.stringify(ours.show.lastArchived)} status=${ours.show.status}; caught-up segment ${ours.run.caughtUpSegment}`)
  } else {
    console.log(`(zenith pg with archive_command=/bin/true, for the pgBackRest part only) ${lagLine('', ours.run).trim()}`)
  }

  console.log(`(2) point-in-time extract at ${ours.run.midLsn} (half way through the zenith pg's run; ${ours.pushedSegments} segments pushed to pgBackRest in ${ours.pushed.toFixed(1)} s, not timed)`)
  console.log(`pgbackrest restore --type=lsn + start + promoted: ${ours.restore.seconds.toFixed(2)} s  ${state(ours.restore.state)}  (${ours.restore.stop})`)
  console.log(`  reference: the plain postgres' live-archived stanza at its own half-way LSN ${plain.run.midLsn}: ${plain.restore.seconds.toFixed(2)} s`)
  if (ours.pitr !== true) return
  if (ours.zenithError) {
    failed = true
    console.log(`zenith extract FAILED: ${ours.zenithError}`)
    return
  }

  const same = JSON.stringify(ours.zenithState) === JSON.stringify(ours.restore.state)
  if (!same) failed = true
  console.log(`zenith pitr extract-snapshot: ${ours.extract.toFixed(2)} s; + pg create --snapshot${medium === 'btrfs' ? ' --cow' : ''} until promoted: ${ours.clone.toFixed(2)} s  ${state(ours.zenithState)}`)
  console.log(`states ${same ? 'EQUAL' : 'DIFFER'}; extract / pgBackRest: ${(ours.extract / ours.restore.seconds).toFixed(2)}x, extract + create / pgBackRest: ${((ours.extract + ours.clone) / ours.restore.seconds).toFixed(2)}x (target <= 1.0x${medium === 'btrfs' ? ', far below on btrfs' : ''})`)
}

process.exitCode = failed ? 1 : 0

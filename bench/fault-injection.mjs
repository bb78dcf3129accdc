#!/usr/bin/env node
// Fault injection for zenith: kill -9 at random and named moments, races between commands on one
// pg, bad inputs, and 100 concurrent commands. Drives the built CLI (`node bin/run.js`) in
// temporary ZENITH_HOMEs under /tmp (removed at the end), on ports 7400-7799 unless
// ZENITH_FI_FIRST_PORT says otherwise. Prints one table; nothing in it is hard-coded: every
// figure is counted from what the commands did. See docs/reliability.md.
//
//   node bench/fault-injection.mjs [--trials N] [--only kills,race,bad-inputs,concurrency] [--json] [--verbose]
//
// --trials N (default 6): kill trials per operation = N, main race trials = 5N (30 by default),
// trials per race pair = ceil(N/3), concurrent commands = 100 (fixed).
import {createHash} from 'node:crypto'
import {existsSync, readFileSync, readdirSync, statSync} from 'node:fs'
import {chmod, mkdtemp, readFile, readdir, rm, writeFile, mkdir, truncate, open, stat} from 'node:fs/promises'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {execa} from 'execa'
import pg from 'pg'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const BIN = path.join(ROOT, 'bin', 'run.js')
const argv = process.argv.slice(2)
const flag = (name) => argv.includes(name)
const option = (name, fallback) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : fallback)
const TRIALS = Math.max(1, Number(option('--trials', '6')))
const ONLY = option('--only', undefined)?.split(',')
const VERBOSE = flag('--verbose')
const JSON_OUT = flag('--json')
const FIRST_PORT = Number(process.env.ZENITH_FI_FIRST_PORT ?? 7400)
const COMMAND_TIMEOUT_MS = 120_000
const SCENARIOS = ['kills', 'race', 'bad-inputs', 'concurrency']
if (ONLY && !ONLY.every((name) => SCENARIOS.includes(name))) {
  console.error(`--only takes one of ${SCENARIOS.join(', ')}`)
  process.exit(2)
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const now = () => performance.now()
const log = (...parts) => console.error(...parts)
const detail = (...parts) => VERBOSE && console.error('   ', ...parts)
const random = (low, high) => low + Math.random() * (high - low)

// ---------------------------------------------------------------------------------------------
// Homes: a ZENITH_HOME, a port range, the CLI run in it.

const homes = []
let nextPortBlock = 0

class Home {
  constructor(dir, firstPort) {
    this.dir = dir
    this.firstPort = firstPort
  }

  static async make(label) {
    const dir = await mkdtemp(`/tmp/zfi-${label}-`)
    await chmod(dir, 0o755) // the postgres OS user must traverse it when we are root
    const firstPort = FIRST_PORT + 40 * nextPortBlock++
    if (firstPort + 40 > FIRST_PORT + 400) throw new Error('out of ports')
    const home = new Home(dir, firstPort)
    homes.push(home)
    return home
  }

  env(extra = {}) {
    return {...process.env, ZENITH_HOME: this.dir, ZENITH_FIRST_PORT: String(this.firstPort), ...extra}
  }

  /** The running CLI (an execa child; `await` gives its result, never rejects). */
  spawn(args, extraEnv = {}, timeout = COMMAND_TIMEOUT_MS) {
    return execa('node', [BIN, ...args], {env: this.env(extraEnv), reject: false, stdin: 'ignore', timeout, killSignal: 'SIGKILL'})
  }

  async run(args, extraEnv = {}, timeout = COMMAND_TIMEOUT_MS) {
    return outcome(args, await this.spawn(args, extraEnv, timeout), timeout)
  }

  async ok(args, extraEnv = {}) {
    const result = await this.run(args, extraEnv)
    if (result.exitCode !== 0) throw new Error(`zenith ${args.join(' ')} exited ${result.exitCode}: ${result.stdout}\n${result.stderr}`)
    return result
  }

  async pgs() {
    const result = await this.run(['pg', 'list', '--json'])
    return Array.isArray(result.json) ? result.json : []
  }

  async snapshots(extra = []) {
    const result = await this.run(['snapshot', 'list', '--json', ...extra])
    return Array.isArray(result.json) ? result.json.filter((s) => s.tag !== 'CURRENT') : []
  }

  async url(name) {
    return (await this.ok(['pg', 'url', name])).stdout.trim()
  }

  async query(name, sql, params) {
    const client = new pg.Client({connectionString: await this.url(name), connectionTimeoutMillis: 10_000})
    await client.connect()
    try {
      return (await client.query(sql, params)).rows
    } finally {
      await client.end().catch(() => {})
    }
  }

  /** Starts `name` when it is not running; returns the failed result if it cannot. */
  async ensureRunning(name) {
    const item = (await this.pgs()).find((p) => p.name === name)
    if (item?.status === 'running') return undefined
    const result = await this.run(['pg', 'start', name])
    return result.exitCode === 0 ? undefined : result
  }

  state() {
    try {
      return readFileSync(path.join(this.dir, 'state.json'), 'utf8')
    } catch {
      return ''
    }
  }

  async destroy() {
    for (const item of await this.pgs()) {
      if (item.status === 'running') await this.run(['pg', 'stop', item.name, '--mode', 'immediate'])
    }

    await killAll(processesOf(this.dir))
    await rm(socketDir(this.dir), {recursive: true, force: true})
    await rm(this.dir, {recursive: true, force: true})
  }
}

function socketDir(home) {
  return path.join('/tmp', `zenith-${createHash('sha256').update(home).digest('hex').slice(0, 10)}`)
}

/** What a CLI run gave: exit code, output, parsed --json, error code, whether it printed BUG. */
function outcome(args, result, timeout = COMMAND_TIMEOUT_MS) {
  const stdout = String(result.stdout ?? '')
  const stderr = String(result.stderr ?? '')
  let json
  try {
    json = JSON.parse(stdout)
  } catch {}

  return {
    args, exitCode: result.exitCode ?? -1, stdout, stderr, json, timedOut: Boolean(result.timedOut),
    code: json?.error?.code,
    bug: /\bBUG\b/.test(stdout + stderr) || result.exitCode === 1,
    short: result.timedOut ? `hung: killed after ${timeout / 1000} s` : result.exitCode === 0 ? 'ok' : `exit ${result.exitCode}${json?.error?.code ? ` ${json.error.code}` : ''}: ${(json?.error?.message ?? (stderr || stdout)).trim().split('\n').slice(-2).join(' | ').slice(0, 240)}`,
  }
}

// ---------------------------------------------------------------------------------------------
// Processes, leftovers, orphans.

/** Processes whose command line names a path in `home` (pg_basebackup, postmasters, tar...). */
function processesOf(home) {
  const found = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue
    let cmdline
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean)
    } catch {
      continue
    }

    if (cmdline.some((arg) => arg === home || arg.startsWith(home + '/') || arg.includes('=' + home + '/'))) found.push({pid: Number(entry), args: cmdline})
  }

  return found
}

/** Processes of `home` that should not be there: anything but the postmasters of its running pgs. */
async function strayProcesses(home, pgs) {
  const running = new Set(pgs.filter((p) => p.status === 'running').map((p) => path.resolve(p.dataDir)))
  return processesOf(home.dir).filter((proc) => {
    const exe = path.basename(proc.args[0])
    const dataDir = proc.args[proc.args.indexOf('-D') + 1]
    if (exe === 'postgres' && proc.args.includes('-D') && running.has(path.resolve(dataDir))) return false
    return true
  })
}

async function killAll(procs) {
  for (const proc of procs) {
    try {
      process.kill(proc.pid, path.basename(proc.args[0]) === 'postgres' ? 'SIGQUIT' : 'SIGKILL')
    } catch {}
  }

  if (procs.length > 0) await sleep(500)
  for (const proc of procs) {
    try {
      process.kill(proc.pid, 'SIGKILL')
    } catch {}
  }
}

function list(dir) {
  try {
    return readdirSync(dir)
  } catch {
    return []
  }
}

/** Files under `dir` (not descending into data directories, snapshots or caches). */
function walk(dir, skip = () => false, out = []) {
  for (const entry of list(dir)) {
    const full = path.join(dir, entry)
    let info
    try {
      info = statSync(full)
    } catch {
      continue
    }

    out.push(full)
    if (info.isDirectory() && !skip(full)) walk(full, skip, out)
  }

  return out
}

/**
 * What a killed or failed command may have left: scratch entries, partial outputs, temporary
 * files, data directories and snapshot folders that no record names.
 */
function leftovers(home, extraDirs = []) {
  return leftoverPaths(home, extraDirs).map((item) => item.shown)
}

/** The same, each with its full path (to clear it once counted). */
function leftoverPaths(home, extraDirs = []) {
  const found = []
  let data = {}
  try {
    data = JSON.parse(home.state())
  } catch {}

  const volumes = new Set(Object.values(data.pgs ?? {}).map((p) => p.volume))
  const snapshotVolumes = new Set(Object.values(data.snapshots ?? {}).map((s) => s.volume))
  for (const storage of Object.values(data.storages ?? {})) {
    if (!storage.path || storage.type === 'dir') continue
    for (const entry of list(path.join(storage.path, '.scratch'))) found.push({shown: `${storage.name}/.scratch/${entry}`, full: path.join(storage.path, '.scratch', entry)})
    for (const entry of list(path.join(storage.path, 'volumes'))) if (!volumes.has(entry)) found.push({shown: `${storage.name}/volumes/${entry} (no pg)`, full: path.join(storage.path, 'volumes', entry)})
    for (const entry of list(path.join(storage.path, 'snapshots'))) if (!snapshotVolumes.has(entry)) found.push({shown: `${storage.name}/snapshots/${entry} (no snapshot)`, full: path.join(storage.path, 'snapshots', entry)})
  }

  const skip = (full) => /\/(volumes|snapshots|cache|logs)$/.test(full) && !full.includes('/share/') ? true : /\/(volumes|snapshots)\/[^/]+$/.test(full)
  for (const file of [...walk(home.dir, skip), ...extraDirs.flatMap((dir) => walk(dir))]) {
    const base = path.basename(file)
    if (/\.partial-p\d+$/.test(base) || /\.tmp$/.test(base)) found.push({shown: path.relative(home.dir, file), full: file})
  }

  return found
}

/** A listing of the folders a bad input must not change (not the live data directories' contents). */
function storageListing(home, extraDirs) {
  const entries = []
  for (const storage of ['volumes', 'snapshots', '.scratch']) {
    for (const entry of list(path.join(home.dir, 'storages', 'local', storage))) entries.push(`local/${storage}/${entry}`)
  }

  for (const dir of extraDirs) for (const file of walk(dir)) entries.push(path.relative(path.dirname(dir), file))
  for (const entry of list(home.dir)) entries.push(entry)
  return entries.sort().join('\n')
}

// ---------------------------------------------------------------------------------------------
// Data fingerprints.

const TABLE_ROWS = 200_000
const FINGERPRINT = 'select count(*)::int as n, coalesce(sum(v), 0)::bigint::text as s from t'

async function fillTable(home, name, rows = TABLE_ROWS) {
  await home.query(name, `create table t(id serial primary key, v int not null, pad text); insert into t(v, pad) select i, md5(i::text) from generate_series(1, ${rows}) i; checkpoint`)
  return fingerprint(home, name)
}

async function fingerprint(home, name) {
  const [row] = await home.query(name, FINGERPRINT)
  return `${row.n}/${row.s}`
}

let verifyCounter = 0
/**
 * Whether snapshot `snap` is restorable and holds `expected` (the fingerprint of table t): a full
 * copy is created from it, started and queried, then destroyed.
 */
async function verifySnapshot(home, snap, expected) {
  const name = `vfy${verifyCounter++}`
  const created = await home.run(['pg', 'create', name, '--snapshot', snap])
  try {
    if (created.exitCode !== 0) return `pg create --snapshot ${snap}: ${created.short}`
    const got = await fingerprint(home, name)
    return got === expected ? undefined : `${snap} holds ${got}, expected ${expected}`
  } catch (error) {
    return `${snap}: ${error.message}`
  } finally {
    await home.run(['pg', 'destroy', name, '--force'])
  }
}

// ---------------------------------------------------------------------------------------------
// Results.

const results = []

function row(scenario, group, counts, notes = []) {
  results.push({scenario, group, ...counts, notes})
}

function printTable() {
  const groups = {
    kills: ['tried', 'killed', 'recovered', 'data lost', 'unusable', 'stray procs', 'leftovers'],
    race: ['tried', 'lost writes', 'PANICs', 'BUGs', 'unclear errors', 'leftovers'],
    'bad-inputs': ['tried', 'clear errors', 'BUGs', 'state changed', 'stray procs'],
    concurrency: ['tried', 'succeeded', 'clear errors', 'BUGs', 'missing', 'orphans', 'store ok'],
  }
  for (const [scenario, columns] of Object.entries(groups)) {
    const rows = results.filter((r) => r.scenario === scenario)
    if (rows.length === 0) continue
    const header = ['group', ...columns]
    const body = rows.map((r) => [r.group, ...columns.map((c) => String(r[c] ?? '-'))])
    const total = ['TOTAL', ...columns.map((c) => (rows.every((r) => typeof r[c] === 'number') ? String(rows.reduce((sum, r) => sum + r[c], 0)) : '-'))]
    if (rows.length > 1) body.push(total)
    const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)))
    const line = (cells) => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ')
    console.log(`\n${scenario}`)
    console.log(line(header))
    for (const b of body) console.log(line(b))
  }

  const notes = results.flatMap((r) => r.notes.map((n) => `${r.scenario}/${r.group}: ${n}`))
  if (notes.length > 0) {
    console.log('\nfindings')
    for (const n of [...new Set(notes)]) console.log(`- ${n}`)
  }
}

// ---------------------------------------------------------------------------------------------
// 1. Kills.

/** Polls `predicate` until it holds or `child` exits. */
async function until(child, predicate, state) {
  while (!state.exited) {
    try {
      if (predicate()) return true
    } catch {}

    await sleep(8)
  }

  return false
}

const exists = (file) => existsSync(file)
const entries = (dir, pattern) => list(dir).filter((e) => pattern.test(e))
const hasProcess = (home, pattern) => () => processesOf(home.dir).some((p) => pattern.test(p.args.join(' ')))

async function kills() {
  const home = await Home.make('kills')
  const source = await Home.make('source') // a second zenith home: the basebackup:// source
  const local = path.join(home.dir, 'storages', 'local')
  const share = path.join(home.dir, 'share')
  const outDir = path.join(home.dir, 'out')
  await mkdir(share)
  await mkdir(outDir)
  log('kills: setting up')
  await home.ok(['pg', 'create', 'src'])
  const srcPrint = await fillTable(home, 'src')
  await home.ok(['snapshot', 'create', 'src@base'])
  await home.ok(['pg', 'create', 'co'])
  await home.query('co', 'create table t(id serial primary key, v int not null, pad text)')
  await home.ok(['snapshot', 'create', 'co@t0'])
  await home.ok(['storage', 'attach', '-t', 'dir', '-n', 'share', '-c', `path=${share}`])
  await home.ok(['snapshot', 'push', 'src@base', '--to', 'share'])
  await home.ok(['pg', 'create', 'pp'])
  await fillTable(home, 'pp', 20_000)
  await source.ok(['pg', 'create', 'origin'])
  const originPrint = await fillTable(source, 'origin')
  const originUrl = new URL(await source.url('origin'))
  const basebackup = `basebackup://postgres@localhost:${originUrl.port}/`
  const passwordEnv = {PGPASSWORD: decodeURIComponent(originUrl.password)}
  const archive = path.join(home.dir, 'in', 'src.zenith')
  await mkdir(path.dirname(archive))
  await home.ok(['snapshot', 'export', 'src@base', '-o', archive])

  const newVolume = (dir, known) => () => list(dir).some((e) => !known.includes(e))
  const coVolume = path.join(local, 'volumes', 'co')
  let checkoutRows = 0

  /** Each operation: how to run it, its named moments, and what must hold after the repair. */
  const operations = [
    {
      name: 'pg checkout',
      async prepare(t) {
        await home.ensureRunning('co')
        checkoutRows = 100 + t
        await home.query('co', `insert into t(v) select i from generate_series(1, ${checkoutRows}) i`)
        return {before: await fingerprint(home, 'co'), heads: (await home.snapshots(['--pg', 'co'])).filter((s) => s.tag.startsWith('HEAD')).map((s) => s.name)}
      },
      args: () => ['pg', 'checkout', 'co@t0'],
      moments: [
        {name: 'postgres stopped', when: () => !exists(path.join(coVolume, 'postmaster.pid'))},
        {name: 'HEAD folder appears', dynamic: () => {
          const known = entries(path.join(local, 'snapshots'), /^co@HEAD/).length
          return () => entries(path.join(local, 'snapshots'), /^co@HEAD/).length > known
        }},
        {name: 'scratch entry appears', when: () => list(path.join(local, '.scratch')).length > 0},
        {name: 'postgres restarting', dynamic: () => {
          let stopped = false
          return () => {
            if (!exists(path.join(coVolume, 'postmaster.pid'))) stopped = true
            return stopped && exists(path.join(coVolume, 'postmaster.pid'))
          }
        }},
      ],
      async check(context) {
        const problems = []
        const heads = (await home.snapshots(['--pg', 'co'])).filter((s) => s.tag.startsWith('HEAD'))
        for (const old of context.heads) if (!heads.some((s) => s.name === old)) problems.push(`lost ${old}`)
        if (!(await home.snapshots()).some((s) => s.name === 'co@t0')) problems.push('lost co@t0')
        const failed = await home.ensureRunning('co')
        if (failed) return {lost: [...problems, `co does not start: ${failed.short}`]}
        const current = await fingerprint(home, 'co')
        if (current === context.before) return {lost: problems}
        if (current !== '0/0') return {lost: [...problems, `co holds ${current}: neither the old state ${context.before} nor co@t0`]}
        const fresh = heads.filter((s) => !context.heads.includes(s.name))
        if (fresh.length === 0) return {lost: [...problems, 'checked out, but no new HEAD{n} holds the old state']}
        const wrong = await verifySnapshot(home, fresh.at(-1).name, context.before)
        return {lost: wrong ? [...problems, `old state: ${wrong}`] : problems}
      },
    },
    {
      name: 'snapshot create (running pg)',
      prepare: async () => ({}),
      args: (t) => ['snapshot', 'create', `src@k${t}`],
      moments: [
        {name: 'scratch entry appears', when: () => list(path.join(local, '.scratch')).length > 0},
        {name: 'scratch entry +150ms', delayAfter: 150, when: () => list(path.join(local, '.scratch')).length > 0},
        {name: 'snapshot folder appears', when: () => entries(path.join(local, 'snapshots'), /^src@k/).length > 0},
      ],
      product: (t) => ({snapshot: `src@k${t}`, print: srcPrint}),
    },
    {
      name: 'snapshot import basebackup://',
      prepare: async () => ({}),
      env: passwordEnv,
      args: (t) => ['snapshot', 'import', '--from', basebackup, `bb${t}`],
      moments: [
        {name: 'pg_basebackup running', when: hasProcess(home, /pg_basebackup/)},
        {name: 'pg_basebackup running +150ms', delayAfter: 150, when: hasProcess(home, /pg_basebackup/)},
        {name: 'snapshot folder appears', when: () => entries(path.join(local, 'snapshots'), /^bb/).length > 0},
      ],
      product: (t) => ({snapshot: `bb${t}`, print: originPrint}),
    },
    {
      name: 'snapshot import FILE.zenith',
      prepare: async () => ({}),
      args: (t) => ['snapshot', 'import', '--from', archive, `fi${t}`],
      moments: [
        {name: 'scratch entry appears', when: () => list(path.join(local, '.scratch')).length > 0},
        {name: 'scratch entry +300ms', delayAfter: 300, when: () => list(path.join(local, '.scratch')).length > 0},
        {name: 'snapshot folder appears', when: () => entries(path.join(local, 'snapshots'), /^fi/).length > 0},
      ],
      product: (t) => ({snapshot: `fi${t}`, print: srcPrint}),
    },
    {
      name: 'snapshot export',
      prepare: async () => ({}),
      args: (t) => ['snapshot', 'export', 'src@base', '-o', path.join(outDir, `e${t}.zenith`)],
      moments: [
        {name: 'temporary postgres running', when: hasProcess(home, /postgres -D .*\/\.scratch\//)},
        {name: 'export scratch appears', when: () => entries(path.join(local, '.scratch'), /^export-/).length > 0},
        {name: '.partial file appears', when: () => entries(outDir, /\.partial-p/).length > 0},
      ],
      async check(context, t) {
        const file = path.join(outDir, `e${t}.zenith`)
        if (!exists(file)) return {lost: []}
        // A finished output must be a whole archive: import it.
        const imported = await home.run(['snapshot', 'import', '--from', file, `ev${t}`])
        await home.run(['snapshot', 'destroy', `ev${t}`, '--force'])
        await rm(file, {force: true})
        return {unusable: imported.exitCode === 0 ? [] : [`${path.basename(file)} is there but does not import: ${imported.short}`], lost: []}
      },
    },
    {
      name: 'pg create --snapshot (full copy)',
      prepare: async () => ({volumes: list(path.join(local, 'volumes'))}),
      args: (t) => ['pg', 'create', `cp${t}`, '--snapshot', 'src@base'],
      moments: [
        {name: 'volume folder appears', dynamic: () => newVolume(path.join(local, 'volumes'), list(path.join(local, 'volumes')))},
        {name: 'postgres starting', dynamic: () => {
          const known = list(path.join(local, 'volumes'))
          return () => list(path.join(local, 'volumes')).some((e) => !known.includes(e) && exists(path.join(local, 'volumes', e, 'postmaster.pid')))
        }},
      ],
      product: (t) => ({pg: `cp${t}`, print: srcPrint}),
    },
    {
      name: 'snapshot push --to dir',
      async prepare(t) {
        await home.query('pp', `insert into t(v, pad) select i, md5(random()::text) from generate_series(1, 20000) i`)
        await home.ok(['snapshot', 'create', `pp@p${t}`])
        return {pushed: (await home.snapshots(['--storage', 'share'])).map((s) => s.name), print: await fingerprint(home, 'pp')}
      },
      args: (t) => ['snapshot', 'push', `pp@p${t}`, '--to', 'share'],
      moments: [
        {name: 'temporary file in share', when: () => walk(share).some((f) => f.endsWith('.tmp'))},
        {name: 'new pack in share', dynamic: () => {
          const known = list(path.join(share, 'packs')).length
          return () => list(path.join(share, 'packs')).length > known
        }},
        {name: 'manifest being written', dynamic: () => () => walk(path.join(share, 'manifests')).some((f) => /pp@p/.test(f))},
      ],
      async check(context, t) {
        const listed = await home.run(['snapshot', 'list', '--storage', 'share', '--json'])
        if (listed.exitCode !== 0) return {lost: [`snapshot list --storage share: ${listed.short}`]}
        const names = listed.json.map((s) => s.name)
        const lost = context.pushed.filter((n) => !names.includes(n)).map((n) => `share lost ${n}`)
        const unusable = []
        if (names.includes(`pp@p${t}`)) {
          const pulled = await home.run(['snapshot', 'pull', '--from', 'share', `pp@p${t}`, '--as', `pv${t}`])
          if (pulled.exitCode !== 0) unusable.push(`pp@p${t} is listed in share but does not pull: ${pulled.short}`)
          else {
            const wrong = await verifySnapshot(home, `pv${t}`, context.print)
            if (wrong) unusable.push(wrong)
          }

          await home.run(['snapshot', 'destroy', `pv${t}`, '--force'])
        }

        await home.run(['snapshot', 'destroy', `pp@p${t}`, '--force'])
        return {lost, unusable}
      },
    },
    {
      name: 'snapshot pull --from dir',
      prepare: async () => ({}),
      args: (t) => ['snapshot', 'pull', '--from', 'share', 'src@base', '--as', `pl${t}`],
      moments: [
        {name: 'scratch entry appears', when: () => list(path.join(local, '.scratch')).length > 0},
        {name: 'scratch entry +200ms', delayAfter: 200, when: () => list(path.join(local, '.scratch')).length > 0},
        {name: 'snapshot folder appears', when: () => entries(path.join(local, 'snapshots'), /^pl/).length > 0},
      ],
      product: (t) => ({snapshot: `pl${t}`, print: srcPrint}),
    },
  ]

  // --cow only where the storage shares blocks; on a plain-copy storage it is refused up front.
  const cowProbe = await home.run(['pg', 'create', 'cowprobe', '--snapshot', 'src@base', '--cow', '--no-start', '--json'])
  await home.run(['pg', 'destroy', 'cowprobe', '--force'])
  if (cowProbe.exitCode === 0) {
    operations.push({...operations.find((o) => o.name.startsWith('pg create')), name: 'pg create --snapshot --cow', args: (t) => ['pg', 'create', `cw${t}`, '--snapshot', 'src@base', '--cow'], product: (t) => ({pg: `cw${t}`, print: srcPrint})})
  }

  let trial = 0
  for (const op of operations) {
    // Calibration: one run to the end measures the window for the uniform kills.
    const t0 = trial++
    const calibration = await op.prepare(t0)
    const started = now()
    const calibrated = await home.run(op.args(t0), op.env)
    const duration = now() - started
    if (calibrated.exitCode !== 0) {
      row('kills', op.name, {tried: 0, killed: 0, recovered: 0, 'data lost': 0, unusable: 0, 'stray procs': 0, leftovers: 0}, [`the unkilled command fails: ${calibrated.short}`])
      continue
    }

    await afterTrial(op, calibration, t0)
    log(`kills: ${op.name} (${(duration / 1000).toFixed(1)} s unkilled), ${TRIALS} trials`)
    const counts = {tried: 0, killed: 0, recovered: 0, 'data lost': 0, unusable: 0, 'stray procs': 0, leftovers: 0}
    const notes = []
    for (let i = 0; i < TRIALS; i++) {
      const t = trial++
      // Alternate: a uniform moment within the measured duration, then the next named moment.
      const named = i % 2 === 1 ? op.moments[Math.floor(i / 2) % op.moments.length] : undefined
      const context = await op.prepare(t)
      const state = {exited: false}
      const predicate = named ? (named.dynamic ? named.dynamic() : named.when) : undefined
      const child = home.spawn(op.args(t), op.env)
      child.then(() => (state.exited = true))
      let moment
      if (named) {
        const hit = await until(child, predicate, state)
        if (hit && named.delayAfter) await sleep(named.delayAfter)
        moment = hit ? named.name : undefined
      } else {
        const delay = random(0, duration)
        await Promise.race([sleep(delay), child])
        moment = `${Math.round(delay)} ms`
      }

      counts.tried++
      const killed = !state.exited && moment !== undefined
      if (killed) {
        child.kill('SIGKILL')
        counts.killed++
      }

      const finished = await child
      const label = `${op.name} #${i} killed at ${killed ? moment : `- (${named ? `${named.name} never seen` : 'exited first'})`}`
      const verdict = await checkAfterKill(home, op, context, t, [share])
      if (verdict.recovered) counts.recovered++
      else notes.push(`${label}: repair \`zenith pg list\` ${verdict.repair.short}`)
      if (verdict.lost.length > 0) {
        counts['data lost']++
        notes.push(`${label}: data lost: ${verdict.lost.join('; ')}`)
      }

      if (verdict.unusable.length > 0) {
        counts.unusable++
        notes.push(`${label}: ${verdict.unusable.join('; ')}`)
      }

      if (verdict.strays.length > 0) {
        counts['stray procs']++
        notes.push(`${label}: stray processes after the repair: ${verdict.strays.map((p) => path.basename(p.args[0])).join(', ')}`)
      }

      if (verdict.leftovers.length > 0) {
        counts.leftovers++
        notes.push(`${label}: leftovers after the repair: ${verdict.leftovers.slice(0, 4).join(', ')}${verdict.leftovers.length > 4 ? ` (+${verdict.leftovers.length - 4})` : ''}`)
      }

      if (!killed && finished.exitCode !== 0) notes.push(`${label}: the command itself failed: ${outcome([], finished).short}`)
      detail(label, JSON.stringify({recovered: verdict.recovered, lost: verdict.lost, strays: verdict.strays.length, leftovers: verdict.leftovers}))
      await afterTrial(op, context, t)
    }

    row('kills', op.name, counts, summarize(notes))
  }

  if (cowProbe.exitCode !== 0) row('kills', 'pg create --snapshot --cow', {tried: 0, killed: 0, recovered: 0, 'data lost': 0, unusable: 0, 'stray procs': 0, leftovers: 0}, [`skipped: the local storage here cannot --cow (${cowProbe.code})`])

  /** Removes what a trial made, so trials stay independent and the disk stays small. */
  async function afterTrial(op, context, t) {
    const product = op.product?.(t)
    if (product?.snapshot) await home.run(['snapshot', 'destroy', product.snapshot, '--force'])
    if (product?.pg) await home.run(['pg', 'destroy', product.pg, '--force'])
    await rm(path.join(outDir, `e${t}.zenith`), {force: true})
    if (op.name === 'snapshot push --to dir') await home.run(['snapshot', 'destroy', `pp@p${t}`, '--force'])
    await killAll(await strayProcesses(home, await home.pgs()))
    // A leftover is counted once, where it appeared: clear what the repair did not.
    for (const item of leftoverPaths(home, [share, outDir])) await rm(item.full, {recursive: true, force: true})
    for (const file of walk(outDir)) await rm(file, {recursive: true, force: true})
  }

  /** The repair (`pg list --json`), then everything that must hold after it. */
  async function checkAfterKill(home, op, context, t, extraDirs) {
    const repair = await home.run(['pg', 'list', '--json'])
    const recovered = repair.exitCode === 0 && !repair.bug
    if (!recovered) await home.run(['pg', 'list', '--json']) // get to a known state for the checks
    const pgs = await home.pgs()
    const strays = await strayProcesses(home, pgs)
    const found = leftovers(home, extraDirs)
    const lost = []
    const unusable = []
    try {
      const failed = await home.ensureRunning('src')
      if (failed) lost.push(`src does not start: ${failed.short}`)
      else if ((await fingerprint(home, 'src')) !== srcPrint) lost.push('src changed')
    } catch (error) {
      lost.push(`src: ${error.message}`)
    }

    const snaps = (await home.snapshots()).map((s) => s.name)
    for (const kept of ['src@base', 'co@t0']) if (!snaps.includes(kept)) lost.push(`lost ${kept}`)
    if (!(await home.snapshots(['--storage', 'share'])).some((s) => s.name === 'src@base')) lost.push('share lost src@base')
    try {
      if ((await fingerprint(source, 'origin')) !== originPrint) lost.push('the basebackup source changed')
    } catch (error) {
      lost.push(`basebackup source: ${error.message}`)
    }

    try {
      if (op.check) {
        const verdict = await op.check(context, t)
        lost.push(...(verdict.lost ?? []))
        unusable.push(...(verdict.unusable ?? []))
      }

      // What the command makes, when it is there after the repair, must be whole.
      const product = op.product?.(t)
      if (product?.snapshot && snaps.includes(product.snapshot)) {
        const wrong = await verifySnapshot(home, product.snapshot, product.print)
        if (wrong) unusable.push(wrong)
      }

      if (product?.pg && pgs.some((p) => p.name === product.pg)) {
        const failed = await home.ensureRunning(product.pg)
        if (failed) unusable.push(`${product.pg} does not start: ${failed.short}`)
        else {
          try {
            const got = await fingerprint(home, product.pg)
            if (got !== product.print) unusable.push(`${product.pg} holds ${got}`)
          } catch (error) {
            unusable.push(`${product.pg} refuses connections: ${error.message}`)
          }
        }
      }
    } catch (error) {
      lost.push(`check failed: ${error.message}`)
    }

    return {repair, recovered, strays, leftovers: found, lost, unusable}
  }
}

/** Groups repeated notes (same text once numbers are dropped) with a count. */
function summarize(notes) {
  const groups = new Map()
  for (const note of notes) {
    const key = note.replace(/#\d+ killed at [^:]*: /, '').replace(/\d+/g, 'N')
    const group = groups.get(key) ?? {first: note, count: 0}
    group.count++
    groups.set(key, group)
  }

  return [...groups.values()].map((g) => (g.count > 1 ? `${g.first} (x${g.count})` : g.first))
}

// ---------------------------------------------------------------------------------------------
// 2. Races.

/** Commits inserts into table w of a pg whenever it is up; records every acknowledged id. */
class Writer {
  constructor(url) {
    this.url = url
    this.acked = []
    this.nextId = 1
    this.running = false
  }

  start() {
    this.running = true
    this.loop = (async () => {
      let client
      while (this.running) {
        if (!client) {
          const fresh = new pg.Client({connectionString: this.url, connectionTimeoutMillis: 1000, query_timeout: 3000})
          fresh.on('error', () => {})
          try {
            await fresh.connect()
            client = fresh
          } catch {
            await fresh.end().catch(() => {})
            await sleep(5)
            continue
          }
        }

        const id = this.nextId++
        try {
          await client.query('insert into w(id) values ($1)', [id])
          this.acked.push({id, at: now()})
        } catch {
          await client.end().catch(() => {})
          client = undefined
        }

        await sleep(2)
      }

      await client?.end().catch(() => {})
    })()
  }

  /** Waits until `count` more inserts are acknowledged (at most `ms`). */
  async acks(count, ms = 3000) {
    const target = this.acked.length + count
    const deadline = now() + ms
    while (this.acked.length < target && now() < deadline) await sleep(10)
  }

  async stop() {
    this.running = false
    await this.loop
  }
}

async function races() {
  const home = await Home.make('race')
  log('race: setting up')
  let panicsSeen = 0
  let url
  async function build() {
    await home.ok(['pg', 'create', 'c0'])
    await home.query('c0', 'create table w(id int primary key)')
    await home.ok(['snapshot', 'create', 'c0@t0'])
    url = await home.url('c0')
    panicsSeen = 0
  }

  async function panics() {
    const logs = await home.run(['pg', 'logs', 'c0', '-n', '1000000'])
    return (logs.stdout.match(/PANIC/g) ?? []).length
  }

  /** Acknowledged ids that are in neither c0's data nor any snapshot of c0 taken since `known`. */
  async function missingWrites(acked, knownSnapshots) {
    if (acked.length === 0) return []
    const failed = await home.ensureRunning('c0')
    if (failed) return acked.map((a) => a.id) // cannot be read: counted as lost, reported
    const low = acked[0].id
    const high = acked.at(-1).id
    const present = new Set((await home.query('c0', 'select id from w where id between $1 and $2', [low, high])).map((r) => r.id))
    let missing = acked.filter((a) => !present.has(a.id))
    if (missing.length === 0) return []
    for (const snap of (await home.snapshots(['--pg', 'c0'])).filter((s) => !knownSnapshots.includes(s.name))) {
      const name = `hv${verifyCounter++}`
      if ((await home.run(['pg', 'create', name, '--snapshot', snap.name])).exitCode === 0) {
        try {
          const there = new Set((await home.query(name, 'select id from w where id between $1 and $2', [low, high])).map((r) => r.id))
          missing = missing.filter((a) => !there.has(a.id))
        } catch {}
      }

      await home.run(['pg', 'destroy', name, '--force'])
      if (missing.length === 0) break
    }

    return missing.map((a) => a.id)
  }

  await build()

  // The issue's race: stop; start in the background; 10 ms later, checkout.
  const raceTrials = 5 * TRIALS
  log(`race: pg start | pg checkout, ${raceTrials} trials`)
  const counts = {tried: 0, 'lost writes': 0, PANICs: 0, BUGs: 0, 'unclear errors': 0, leftovers: 0}
  const notes = []
  for (let i = 0; i < raceTrials; i++) {
    await home.ensureRunning('c0')
    const known = (await home.snapshots(['--pg', 'c0'])).map((s) => s.name)
    const writer = new Writer(url)
    writer.start()
    await writer.acks(5)
    await home.run(['pg', 'stop', 'c0'])
    const start = home.spawn(['pg', 'start', 'c0', '--json'])
    await sleep(10)
    const checkout = await home.run(['pg', 'checkout', 'c0@t0', '--json'])
    const checkoutEnd = now()
    const started = outcome(['pg', 'start', 'c0', '--json'], await start)
    await home.ensureRunning('c0')
    await writer.acks(5)
    await writer.stop()
    counts.tried++
    const lost = await missingWrites(writer.acked, known)
    const afterCheckout = lost.filter((id) => writer.acked.find((a) => a.id === id).at > checkoutEnd)
    const newPanics = (await panics()) - panicsSeen
    panicsSeen += newPanics
    const label = `#${i} (start ${started.short.slice(0, 60)}; checkout ${checkout.short.slice(0, 60)})`
    if (lost.length > 0) {
      counts['lost writes']++
      notes.push(`${label}: ${lost.length} of ${writer.acked.length} acknowledged inserts lost (${afterCheckout.length} acknowledged after the checkout returned)`)
    }

    if (newPanics > 0) {
      counts.PANICs++
      notes.push(`${label}: postgres logged PANIC`)
    }

    for (const result of [started, checkout]) {
      if (result.bug) {
        counts.BUGs++
        notes.push(`zenith ${result.args.join(' ')}: ${result.short}`)
      } else if (result.exitCode !== 0 && !['PG_BUSY', 'PG_RUNNING'].includes(result.code)) {
        counts['unclear errors']++
        notes.push(`zenith ${result.args.join(' ')}: ${result.short}`)
      }
    }

    const left = leftovers(home)
    if (left.length > 0) {
      counts.leftovers++
      notes.push(`${label}: left ${left.join(', ')}`)
      for (const item of leftoverPaths(home)) await rm(item.full, {recursive: true, force: true})
    }

    detail(label, `acked ${writer.acked.length}, lost ${lost.length}, panics ${newPanics}`)
    await dropNewSnapshots(known)
  }

  row('race', 'stop; start & checkout (issue 9)', counts, summarize(notes))

  // Every pair of commands on the same pg, started 0-30 ms apart, with the writer on.
  const commands = {
    start: () => ['pg', 'start', 'c0'],
    stop: () => ['pg', 'stop', 'c0'],
    restart: () => ['pg', 'restart', 'c0'],
    checkout: () => ['pg', 'checkout', 'c0@t0'],
    destroy: () => ['pg', 'destroy', 'c0', '--force'],
    'snapshot create': (n) => ['snapshot', 'create', `c0@r${n}`],
    clone: (n) => ['pg', 'create', `k${n}`, '--snapshot', 'c0@t0'],
  }
  const names = Object.keys(commands)
  const pairs = []
  for (let a = 0; a < names.length; a++) for (let b = a; b < names.length; b++) pairs.push([names[a], names[b]])
  const pairTrials = Math.ceil(TRIALS / 3)
  log(`race: ${pairs.length} pairs, ${pairTrials} trials each`)
  const allowed = ['PG_BUSY', 'PG_RUNNING', 'PG_NOT_RUNNING', 'PG_NOT_FOUND', 'SNAPSHOT_NOT_FOUND']
  let n = 0
  for (const [first, second] of pairs) {
    const pairCounts = {tried: 0, 'lost writes': 0, PANICs: 0, BUGs: 0, 'unclear errors': 0, leftovers: 0}
    const pairNotes = []
    for (let i = 0; i < pairTrials; i++) {
      // Half the trials start from a stopped pg, so that start has something to do.
      if (i % 2 === 0) await home.ensureRunning('c0')
      else await home.run(['pg', 'stop', 'c0'])
      const known = (await home.snapshots(['--pg', 'c0'])).map((s) => s.name)
      const writer = new Writer(url)
      writer.start()
      if (i % 2 === 0) await writer.acks(5)
      const ids = [n++, n++]
      const argsOne = [...commands[first](ids[0]), '--json']
      const argsTwo = [...commands[second](ids[1]), '--json']
      const one = home.spawn(argsOne)
      await sleep(random(0, 30))
      const two = home.spawn(argsTwo)
      const outcomes = [outcome(argsOne, await one), outcome(argsTwo, await two)]
      const destroyed = outcomes.some((o) => o.args[1] === 'destroy' && o.exitCode === 0)
      if (!destroyed) {
        await home.ensureRunning('c0')
        await writer.acks(5)
      }

      await writer.stop()
      pairCounts.tried++
      const label = `#${i} ${outcomes.map((o) => `[${o.args.slice(0, 3).join(' ')}: ${o.short.slice(0, 80)}]`).join(' ')}`
      if (!destroyed) {
        const lost = await missingWrites(writer.acked, known)
        if (lost.length > 0) {
          pairCounts['lost writes']++
          pairNotes.push(`${label}: ${lost.length} of ${writer.acked.length} acknowledged inserts lost`)
        }

        const newPanics = (await panics()) - panicsSeen
        panicsSeen += newPanics
        if (newPanics > 0) {
          pairCounts.PANICs++
          pairNotes.push(`${label}: postgres logged PANIC`)
        }
      }

      for (const result of outcomes) {
        if (result.bug) {
          pairCounts.BUGs++
          pairNotes.push(`zenith ${result.args.join(' ')}: ${result.short}`)
        } else if (result.exitCode !== 0 && !allowed.includes(result.code)) {
          pairCounts['unclear errors']++
          pairNotes.push(`zenith ${result.args.join(' ')}: ${result.short}`)
        }
      }

      const left = leftovers(home)
      if (left.length > 0) {
        pairCounts.leftovers++
        pairNotes.push(`${label}: left ${left.join(', ')}`)
        for (const item of leftoverPaths(home)) await rm(item.full, {recursive: true, force: true})
      }

      detail(label, `acked ${writer.acked.length}`)
      for (const id of ids) await home.run(['pg', 'destroy', `k${id}`, '--force'])
      if (destroyed || !(await home.pgs()).some((p) => p.name === 'c0')) {
        await home.run(['pg', 'destroy', 'c0', '--force'])
        await build()
      } else await dropNewSnapshots(known)
    }

    row('race', `${first} | ${second}`, pairCounts, summarize(pairNotes))
  }

  async function dropNewSnapshots(known) {
    for (const snap of (await home.snapshots(['--pg', 'c0'])).filter((s) => !known.includes(s.name) && s.tag !== 't0')) {
      await home.run(['snapshot', 'destroy', snap.name, '--force'])
    }
  }
}

// ---------------------------------------------------------------------------------------------
// 3. Bad inputs.

async function badInputs() {
  const home = await Home.make('bad')
  log('bad-inputs: setting up')
  const share = path.join(home.dir, 'share')
  const files = path.join(home.dir, 'files')
  await mkdir(share)
  await mkdir(files)
  await home.ok(['pg', 'create', 'b1'])
  await fillTable(home, 'b1', 10_000)
  await home.ok(['snapshot', 'create', 'b1@t0'])
  await home.ok(['pg', 'create', 'b2', '--no-start'])
  await home.ok(['storage', 'attach', '-t', 'dir', '-n', 'share', '-c', `path=${share}`])
  await home.ok(['snapshot', 'push', 'b1@t0', '--to', 'share'])
  const good = path.join(files, 'good.zenith')
  await home.ok(['snapshot', 'export', 'b1@t0', '-o', good])
  const bytes = await readFile(good)
  await writeFile(path.join(files, 'truncated.zenith'), bytes.subarray(0, Math.floor(bytes.length / 2)))
  const corrupt = Buffer.from(bytes)
  for (let i = Math.floor(corrupt.length * 0.6); i < Math.floor(corrupt.length * 0.6) + 64; i++) corrupt[i] ^= 0xff
  await writeFile(path.join(files, 'corrupt.zenith'), corrupt)
  await writeFile(path.join(files, 'random.zenith'), Buffer.from(Array.from({length: 65536}, () => Math.floor(Math.random() * 256))))
  await writeFile(path.join(files, 'empty.zenith'), '')
  await writeFile(path.join(files, 'notes.txt'), 'not an archive\n')
  const plainTar = path.join(files, 'plain.tar')
  await execa('tar', ['-cf', plainTar, '-C', files, 'notes.txt'])
  const b1Port = new URL(await home.url('b1')).port
  const pf = (name) => path.join(files, name)

  const cases = [
    ['pg', 'create', 'x1', '--port', '-1'],
    ['pg', 'create', 'x1', '--port', '0'],
    ['pg', 'create', 'x1', '--port', '99999'],
    ['pg', 'create', 'x1', '--port', b1Port],
    ['pg', 'create', 'x1', '--port', '1'],
    ['pg', 'start', 'b2', '--port', '-1'],
    ['pg', 'start', 'b2', '--port', '0'],
    ['pg', 'start', 'b2', '--port', '99999'],
    ['pg', 'start', 'b2', '--port', b1Port],
    ['pg', 'create', 'b1'],
    ['pg', 'create', 'bad name!'],
    ['pg', 'create', 'x1', '-s', 'nosuchstorage'],
    ['pg', 'create', 'x1', '--set', 'a b'],
    ['pg', 'create', 'x1', '--set', 'novalue'],
    ['pg', 'create', 'x1', '--set', 'shared_buffers=lots'],
    ['pg', 'create', 'x1', '--snapshot', 'nosuch@snap'],
    ['pg', 'create', 'x1', '--snapshot', 'b1@t0', '--cow'],
    ['pg', 'start', 'nosuch'],
    ['pg', 'stop', 'nosuch'],
    ['pg', 'stop', 'b2'],
    ['pg', 'start', 'b1'],
    ['pg', 'destroy', 'b1'],
    ['pg', 'destroy', 'nosuch'],
    ['pg', 'checkout', 'b1@nosuch'],
    ['pg', 'checkout', 'a@'],
    ['pg', 'checkout', '@b'],
    ['pg', 'checkout', 'b1@HEAD{-1}'],
    ['pg', 'checkout', 'b1@HEAD{99}'],
    ['pg', 'checkout', 'b1'],
    ['snapshot', 'create', 'b1@t0'],
    ['snapshot', 'create', 'nosuch@x'],
    ['snapshot', 'create', 'b1@'],
    ['snapshot', 'create', 'b1@CURRENT'],
    ['snapshot', 'create', 'b1@HEAD{0}'],
    ['snapshot', 'create', 'b1@a/b'],
    ['snapshot', 'destroy', 'nosuch@x'],
    ['snapshot', 'show', 'x@HEAD{-1}'],
    ['snapshot', 'import', '--from', pf('truncated.zenith'), 'i1'],
    ['snapshot', 'import', '--from', pf('corrupt.zenith'), 'i1'],
    ['snapshot', 'import', '--from', pf('random.zenith'), 'i1'],
    ['snapshot', 'import', '--from', pf('empty.zenith'), 'i1'],
    ['snapshot', 'import', '--from', pf('notes.txt'), 'i1'],
    ['snapshot', 'import', '--from', plainTar, 'i1'],
    ['snapshot', 'import', '--from', pf('missing.zenith'), 'i1'],
    ['snapshot', 'import', '--from', good, 'b1@t0'],
    ['snapshot', 'import', '--from', 'basebackup://postgres@127.0.0.1:1/', 'i1'],
    ['snapshot', 'import', '--from', 'basebackup://postgres@nohost.invalid:5432/', 'i1'],
    ['snapshot', 'import', '--from', `basebackup://nosuchuser@localhost:${b1Port}/`, 'i1'],
    ['snapshot', 'import', '--from', 'http://127.0.0.1:1/x.zenith', 'i1'],
    ['snapshot', 'import', '--from', 'ftp://example.invalid/x.zenith', 'i1'],
    ['snapshot', 'export', 'nosuch@x', '-o', pf('out.zenith')],
    ['snapshot', 'export', 'b1@t0', '--format', 'nope', '-o', pf('out.zenith')],
    ['snapshot', 'export', 'b1@t0', '-o', path.join(files, 'no', 'such', 'dir', 'out.zenith')],
    ['snapshot', 'push', 'nosuch@x', '--to', 'share'],
    ['snapshot', 'push', 'b1@t0', '--to', 'nosuchstorage'],
    ['snapshot', 'pull', '--from', 'share', 'nosuch@x'],
    ['snapshot', 'pull', '--from', 'share', 'b1@t0'],
    ['snapshot', 'pull', '--from', path.join(files, 'nosuchdir'), 'b1@t0'],
    ['storage', 'attach', '-t', 'dir', '-n', 'share', '-c', `path=${share}`],
    ['storage', 'attach', '-t', 'nope', '-n', 's2', '-c', `path=${files}`],
    ['storage', 'attach', '-t', 'dir', '-n', 's2'],
    ['storage', 'attach', '-t', 'local', '-n', 's2', '-c', 'path=/proc/nope'],
    ['storage', 'detach', 'local'],
    ['storage', 'show', 'nosuch'],
  ]
  log(`bad-inputs: ${cases.length} invocations`)
  const counts = {tried: 0, 'clear errors': 0, BUGs: 0, 'state changed': 0, 'stray procs': 0}
  const notes = []
  for (const args of cases) {
    const state = home.state()
    const listing = storageListing(home, [share])
    const pgsBefore = await home.pgs()
    const result = await home.run([...args, '--json'], {}, 30_000)
    counts.tried++
    const shown = `zenith ${args.join(' ').replaceAll(home.dir, '$HOME')}`
    const clear = result.exitCode !== 0 && result.exitCode !== 1 && typeof result.json?.error?.code === 'string' && !result.bug
    if (clear) counts['clear errors']++
    else notes.push(`${shown}: ${result.exitCode === 0 ? 'succeeded' : result.short.replaceAll(home.dir, '$HOME')}`)
    if (result.bug) counts.BUGs++
    const stateAfter = home.state()
    const listingAfter = storageListing(home, [share])
    if (stateAfter !== state || listingAfter !== listing) {
      counts['state changed']++
      notes.push(`${shown}: changed ${stateAfter !== state ? 'state.json' : ''}${stateAfter !== state && listingAfter !== listing ? ' and ' : ''}${listingAfter !== listing ? 'the storage folders' : ''}`)
    }

    const pgsAfter = await home.pgs()
    const strays = (await strayProcesses(home, pgsAfter)).concat(pgsAfter.filter((p) => p.status === 'running' && !pgsBefore.some((b) => b.name === p.name && b.status === 'running')).map((p) => ({pid: 0, args: [`postgres of ${p.name}`]})))
    if (strays.length > 0) {
      counts['stray procs']++
      notes.push(`${shown}: left running: ${strays.map((p) => path.basename(p.args[0])).join(', ')}`)
    }

    detail(shown, result.short)
    // Put the home back as it was, so that one case cannot change what the next one sees.
    if (stateAfter !== state || listingAfter !== listing || strays.length > 0) {
      for (const p of pgsAfter) if (p.status === 'running' && !pgsBefore.some((b) => b.name === p.name && b.status === 'running')) await home.run(['pg', 'stop', p.name, '--mode', 'immediate'])
      await killAll(await strayProcesses(home, await home.pgs()))
      await writeFile(path.join(home.dir, 'state.json'), state, {mode: 0o600})
      const keep = new Set(listing.split('\n'))
      for (const entry of listingAfter.split('\n')) {
        if (keep.has(entry)) continue
        const full = entry.startsWith('local/') ? path.join(home.dir, 'storages', entry) : entry.startsWith('share') ? path.join(home.dir, entry) : path.join(home.dir, entry)
        await rm(full, {recursive: true, force: true})
      }
    }
  }

  row('bad-inputs', 'invalid invocations', counts, notes)
}

// ---------------------------------------------------------------------------------------------
// 4. Concurrency.

async function concurrency() {
  const home = await Home.make('conc')
  log('concurrency: setting up')
  const pgNames = ['x0', 'x1', 'x2']
  for (const name of pgNames) {
    await home.ok(['pg', 'create', name])
    await home.query(name, 'create table t(v int); insert into t select generate_series(1, 1000)')
  }

  const total = 100
  const commands = []
  const listings = [['pg', 'list', '--json'], ['snapshot', 'list', '--json'], ['pg', 'show', 'x1', '--json'], ['storage', 'list', '--json'], ['snapshot', 'list', '--pg', 'x0', '--json']]
  for (let i = 0; i < total; i++) {
    commands.push(i % 2 === 0 ? ['snapshot', 'create', `${pgNames[(i / 2) % 3]}@c${i}`, '--json'] : listings[Math.floor(i / 2) % listings.length])
  }

  log(`concurrency: ${total} commands at once`)
  const outcomes = await Promise.all(commands.map(async (args) => outcome(args, await home.spawn(args))))
  const counts = {tried: total, succeeded: 0, 'clear errors': 0, BUGs: 0, missing: 0, orphans: 0, 'store ok': 'no'}
  const notes = []
  const listed = new Set((await home.snapshots()).map((s) => s.name))
  for (const result of outcomes) {
    const isCreate = result.args[1] === 'create'
    if (result.exitCode === 0) {
      counts.succeeded++
      if (isCreate && !listed.has(result.args[2])) {
        counts.missing++
        notes.push(`${result.args[2]} was created (exit 0) but is not in snapshot list`)
      }
    } else if (result.bug || !result.code) {
      counts.BUGs += result.bug ? 1 : 0
      notes.push(`zenith ${result.args.join(' ')}: ${result.short}`)
    } else {
      counts['clear errors']++
      if (isCreate && listed.has(result.args[2])) notes.push(`${result.args[2]} failed (${result.code}) but is listed`)
    }
  }

  try {
    const data = JSON.parse(home.state())
    counts['store ok'] = (await home.run(['pg', 'list', '--json'])).exitCode === 0 && data.pgs ? 'yes' : 'no'
    counts.orphans = leftovers(home).length
    for (const extra of leftovers(home)) notes.push(`left after the run: ${extra}`)
  } catch (error) {
    notes.push(`state.json does not parse: ${error.message}`)
  }

  const codes = {}
  for (const result of outcomes) if (result.exitCode !== 0) codes[result.code ?? 'none'] = (codes[result.code ?? 'none'] ?? 0) + 1
  if (Object.keys(codes).length > 0) notes.push(`error codes: ${Object.entries(codes).map(([c, k]) => `${c} x${k}`).join(', ')}`)
  row('concurrency', '50 snapshot create + 50 lists', counts, summarize(notes))
}

// ---------------------------------------------------------------------------------------------

async function main() {
  if (!existsSync(path.join(ROOT, 'dist'))) throw new Error('build first: npm run build')
  const began = now()
  const commit = (await execa('git', ['rev-parse', '--short', 'HEAD'], {cwd: ROOT, reject: false})).stdout
  log(`fault injection: commit ${commit}, --trials ${TRIALS}${ONLY ? `, --only ${ONLY.join(',')}` : ''}`)
  let failure
  try {
    if (!ONLY || ONLY.includes('kills')) await kills()
    if (!ONLY || ONLY.includes('race')) await races()
    if (!ONLY || ONLY.includes('bad-inputs')) await badInputs()
    if (!ONLY || ONLY.includes('concurrency')) await concurrency()
  } catch (error) {
    failure = error
  } finally {
    for (const home of homes) await home.destroy().catch((error) => log(`cleanup of ${home.dir}: ${error.message}`))
  }

  const minutes = ((now() - began) / 60_000).toFixed(1)
  console.log(`zenith fault injection: ${new Date().toISOString().slice(0, 10)}, commit ${commit}, --trials ${TRIALS}, ${minutes} min`)
  printTable()
  if (JSON_OUT) console.log(JSON.stringify({commit, trials: TRIALS, minutes: Number(minutes), results}, null, 2))
  if (failure) {
    console.error(`\nthe run stopped early: ${failure.stack}`)
    process.exitCode = 1
  }
}

// Ctrl-C: clean up, then print the groups finished so far (a partial run is still a measurement).
process.on('SIGINT', async () => {
  for (const home of homes) await home.destroy().catch(() => {})
  console.log('zenith fault injection: interrupted; the groups finished so far:')
  printTable()
  process.exit(130)
})

await main()

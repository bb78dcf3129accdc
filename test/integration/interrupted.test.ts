import {chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {execa, type ResultPromise} from 'execa'

import {PGBENCH, BIN, TestHome, isRoot} from '../helpers/zenith.js'

/**
 * Kills at named moments and a full disk: whatever zenith was doing, the next command exits 0
 * without a BUG, and no process, scratch folder or partial file of the killed one is left.
 * Ports 7000-7199. Needs root (postgres runs as the `postgres` OS user; tmpfs mounts).
 */
const maybe = isRoot ? describe : describe.skip
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

let work: string
let source: TestHome
let home: TestHome
let basebackupUrl: string

/** Live (not zombie) processes whose command line names `folder`: children of a killed zenith. */
async function processesUnder(folder: string): Promise<string[]> {
  const found: string[] = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue
    const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0').join(' ')
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '')
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
    if (cmdline.includes(folder) && state !== 'Z' && state !== '') found.push(`${entry} ${cmdline.slice(0, 160)}`)
  }

  return found
}

/** What a killed command may leave: scratch folders, temporary volumes, partial-output records. */
async function leftovers(where: TestHome, outputDir?: string): Promise<string[]> {
  const storage = path.join(where.home, 'storages', 'local')
  const list = async (dir: string, filter: (name: string) => boolean = () => true) =>
    (await readdir(dir).catch(() => [] as string[])).filter(filter).map((name) => path.join(dir, name))
  return [
    ...await list(path.join(storage, '.scratch')),
    ...await list(path.join(storage, 'volumes'), (name) => name.startsWith('.temp-')),
    ...await list(path.join(where.home, 'scratch')),
    ...outputDir ? await list(outputDir, (name) => name.includes('.partial-p')) : [],
  ]
}

async function until(condition: () => Promise<boolean>, timeoutMs = 30_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await condition()) return true
    await sleep(10)
  }

  return false
}

function start(where: TestHome, args: string[]): ResultPromise {
  return execa('node', [BIN, ...args], {env: where.env(), reject: false, stdin: 'ignore'})
}

/** kill -9 of zenith itself (not its children: they must die with it or be stopped by the repair). */
async function killNine(child: ResultPromise): Promise<void> {
  process.kill(child.pid!, 'SIGKILL')
  await child
}

/** The next command repairs: exit 0, no BUG, nothing of the killed command left. */
async function expectRepaired(where: TestHome, outputDir?: string): Promise<string> {
  const next = await where.run(['pg', 'list'])
  expect(next.stderr).not.toMatch(/BUG|unexpected error|Could not repair/)
  expect(next.exitCode).toBe(0)
  expect(await processesUnder(where.home)).toEqual([])
  expect(await leftovers(where, outputDir)).toEqual([])
  return next.stderr
}

maybe('a killed command is repaired by the next one', () => {
  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'zenith-kill-'))
    source = await TestHome.create(7100)
    home = await TestHome.create(7000)
    await source.ok(['pg', 'create', 'src'])
    const url = await source.url('src')
    // ~75 MB: pg_basebackup takes long enough to be caught at several points.
    await execa(PGBENCH, ['-i', '-s', '5', '-q', url])
    const parsed = new URL(url)
    basebackupUrl = `basebackup://postgres:${parsed.password}@127.0.0.1:${parsed.port}/`
    await home.ok(['snapshot', 'import', '--from', basebackupUrl, 'base'])
  }, 180_000)

  afterAll(async () => {
    await home?.destroy()
    await source?.destroy()
    await rm(work, {recursive: true, force: true})
  }, 120_000)

  test('kill -9 of a basebackup:// import: pg_basebackup dies with it, the repair finishes', async () => {
    let caught = 0
    for (const delay of [0, 30, 80, 150, 250, 400]) {
      const name = `killed${delay}`
      const child = start(home, ['snapshot', 'import', '--from', basebackupUrl, name])
      const running = await until(async () => (await processesUnder(home.home)).some((line) => line.includes('pg_basebackup')))
      expect(running).toBe(true)
      await sleep(delay)
      await killNine(child)
      const stderr = await expectRepaired(home)
      const snapshots = (await home.ok(['snapshot', 'list', '--json'])).json as Array<{name: string}>
      if (snapshots.some((item) => item.name === name)) {
        // It finished before the kill landed: a complete snapshot, nothing to repair.
        await home.ok(['snapshot', 'destroy', name])
      } else {
        caught++
        expect(stderr).toMatch(/Repaired/)
      }
    }

    expect(caught).toBeGreaterThanOrEqual(3)
  }, 300_000)

  test('the temporary file of a store write killed before its rename is removed by the next command', async () => {
    // A pid that is certainly gone: a process that ran and exited.
    const dead = (await execa('sh', ['-c', 'echo $$'])).stdout.trim()
    const leftover = path.join(home.home, `state.json.${dead}.0badc0de.tmp`)
    const live = path.join(home.home, `state.json.${process.pid}.0badc0de.tmp`)
    await writeFile(leftover, '{}')
    await writeFile(live, '{}')
    const next = await home.ok(['pg', 'list'])
    expect(next.stderr).toMatch(/temporary file of a killed store write/)
    await expect(stat(leftover)).rejects.toThrow()
    // A live writer's file is not touched.
    await stat(live)
    await rm(live)
  })

  test('the staging files of a push to a dir storage killed mid-write are removed by the next command (only this host\'s dead writers)', async () => {
    const share = path.join(work, 'staging-share')
    await home.ok(['storage', 'attach', '-t', 'dir', '-n', 'stage', '-c', `path=${share}`])
    const dead = (await execa('sh', ['-c', 'echo $$'])).stdout.trim()
    const host = os.hostname().replace(/[^\w-]/g, '_')
    const staged = (owner: string) => path.join(share, '.staging', owner, 'a1b2c3d4e5f6.tmp')
    const killed = staged(`${host}-p${dead}`)
    const live = staged(`${host}-p${process.pid}`)
    const otherHost = staged(`another-host-p${dead}`)
    for (const file of [killed, live, otherHost]) {
      await mkdir(path.dirname(file), {recursive: true})
      await writeFile(file, 'half a pack')
    }

    const next = await home.ok(['pg', 'list'])
    expect(next.stderr).toMatch(/temporary files of a killed write/)
    await expect(stat(path.dirname(killed))).rejects.toThrow()
    await stat(live)
    await stat(otherHost)
    await home.ok(['storage', 'detach', 'stage'])
  })

  test('a storage folder on a pseudo filesystem is refused at once (node\'s mkdir would hang on /proc)', async () => {
    for (const type of ['local', 'dir']) {
      const result = await home.run(['storage', 'attach', '-t', type, '-n', `proc${type}`, '-c', 'path=/proc/zenith-nope', '--json'])
      expect(result.json?.error?.code).toBe('INVALID_ARGUMENT')
    }

    expect((await home.ok(['storage', 'list', '--json'])).json.map((item: {name: string}) => item.name)).not.toContain('proclocal')
  }, 30_000)

  test('kill -9 of an export: its temporary postgres, scratch folders and FILE.partial-pPID are removed', async () => {
    const out = path.join(work, 'exports')
    await mkdir(out, {recursive: true})
    const volumes = path.join(home.home, 'storages', 'local', 'volumes')
    const scratch = path.join(home.home, 'storages', 'local', '.scratch')
    const moments: Array<[string, () => Promise<boolean>]> = [
      ['temporary postgres running', async () => (await processesUnder(path.join(volumes, '.temp-'))).length > 0],
      ['pg_basebackup into the export scratch', async () => (await processesUnder(path.join(scratch, 'export-'))).length > 0],
      ['writing FILE.partial-pPID', async () => (await readdir(out)).some((name) => name.includes('.partial-p'))],
    ]
    for (const [moment, reached] of moments) {
      const child = start(home, ['snapshot', 'export', 'base', '-o', path.join(out, 'base.zenith'), '--force'])
      expect([moment, await until(reached)]).toEqual([moment, true])
      await killNine(child)
      await expectRepaired(home, out)
      expect(await readdir(out)).toEqual([])
    }
  }, 300_000)
})

maybe('a full disk', () => {
  let work: string
  let home: TestHome
  let small: string
  let archive: string
  let mounted = false
  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'zenith-full-'))
    // The postgres OS user must reach the storage inside.
    await chmod(work, 0o755)
    small = path.join(work, 'small')
    await mkdir(small, {mode: 0o755})
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=20m,mode=0755', 'tmpfs', small])
    mounted = true
    home = await TestHome.create(7020)
    await home.ok(['pg', 'create', 'dev'])
    await execa(PGBENCH, ['-i', '-s', '3', '-q', await home.url('dev')])
    await home.ok(['snapshot', 'create', 'dev@full'])
    archive = path.join(work, 'dev.zenith')
    await home.ok(['snapshot', 'export', 'dev@full', '-o', archive])
    await home.ok(['storage', 'attach', '-t', 'local', '-n', 'small', '-c', `path=${path.join(small, 'storage')}`])
  }, 180_000)

  afterAll(async () => {
    await home?.destroy()
    if (mounted) await execa('umount', ['-l', small], {reject: false})
    await rm(work, {recursive: true, force: true})
  }, 120_000)

  /** Everything in the small storage but its empty layout folders. */
  async function smallContent(): Promise<string[]> {
    const root = path.join(small, 'storage')
    const found: string[] = []
    for (const dir of ['volumes', 'snapshots', '.scratch']) {
      for (const name of await readdir(path.join(root, dir)).catch(() => [] as string[])) found.push(`${dir}/${name}`)
    }

    return found
  }

  test.each([
    ['a .zenith archive', () => archive],
    ['a data directory copy', () => path.join(work, 'stopped')],
  ])('importing %s bigger than the storage gives NOT_ENOUGH_DISK_SPACE and leaves nothing', async (label, from) => {
    if (label === 'a data directory copy') {
      await home.ok(['snapshot', 'import', '--from', archive, 'unpacked'])
      const unpacked = path.join(home.home, 'storages', 'local', 'snapshots')
      const [folder] = (await readdir(unpacked)).filter((name) => name.startsWith('unpacked'))
      await execa('cp', ['-a', path.join(unpacked, folder), from()])
    }

    const result = await home.run(['snapshot', 'import', '--from', from(), 'huge', '-s', 'small', '--json'])
    expect(result.json?.error?.code).toBe('NOT_ENOUGH_DISK_SPACE')
    expect(result.exitCode).toBe(6)
    expect(await smallContent()).toEqual([])
    const list = (await home.ok(['snapshot', 'list', '--json'])).json as Array<{name: string}>
    expect(list.map((item) => item.name)).not.toContain('huge')
  }, 120_000)

  // Not a full disk, but the same promise of one clear error: damage inside a gzip stream is
  // CHECKSUM_MISMATCH (as docs/import-export.md says) wherever it hits, never ARCHIVE_INVALID.
  test('a corrupted byte anywhere in a gzip archive gives CHECKSUM_MISMATCH and leaves nothing', async () => {
    const bytes = await readFile(archive)
    const codes: string[] = []
    for (const at of [0.1, 0.3, 0.5, 0.7, 0.9]) {
      const bad = Buffer.from(bytes)
      bad[Math.floor(bad.length * at)] ^= 0x55
      const file = path.join(work, `corrupt-${at}.zenith`)
      await writeFile(file, bad)
      const result = await home.run(['snapshot', 'import', '--from', file, 'corrupt', '--json'])
      codes.push(`${at}: ${result.json?.error?.code}`)
    }

    expect(codes).toEqual(['0.1', '0.3', '0.5', '0.7', '0.9'].map((at) => `${at}: CHECKSUM_MISMATCH`))
    expect(await leftovers(home)).toEqual([])
  }, 120_000)

  test('an export onto a full disk gives NOT_ENOUGH_DISK_SPACE and leaves no partial file', async () => {
    const result = await home.run(['snapshot', 'export', 'dev@full', '-o', path.join(small, 'dev.zenith'), '-c', 'none', '--json'])
    expect(result.json?.error?.code).toBe('NOT_ENOUGH_DISK_SPACE')
    expect(result.exitCode).toBe(6)
    expect((await readdir(small)).filter((name) => name !== 'storage')).toEqual([])
    expect(await leftovers(home)).toEqual([])
  }, 120_000)
})

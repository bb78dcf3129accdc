#!/usr/bin/env node
/* global process, console */
// Push and pull throughput against the raw AWS SDK on the same s3rver, and the bytes a
// re-push sends after a 1% change. Usage: node bench/run.mjs push-pull -- [--scale 10] [--runs 3]
// Needs the built CLI (dist/), postgres 15 and s3rver (a devDependency).
import {spawn, execFileSync} from 'node:child_process'
import {createWriteStream} from 'node:fs'
import {readdir, rm} from 'node:fs/promises'
import path from 'node:path'
import {pipeline} from 'node:stream/promises'
import {fileURLToPath} from 'node:url'

import {median, option, workFolder} from './lib.mjs'

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
const {CreateBucketCommand, GetObjectCommand, ListObjectsCommand, S3Client} = await import('@aws-sdk/client-s3')
const {Upload} = await import('@aws-sdk/lib-storage')

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const BIN = path.join(ROOT, 'bin', 'run.js')
const PGBENCH = '/usr/lib/postgresql/15/bin/pgbench'
const scale = Number(option('--scale', 10))
const runs = Number(option('--runs', 3))
const credentials = {AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1'}

const work = await workFolder('push', 0o711)
const server = await startS3rver(path.join(work, 's3'))
const endpoint = `http://127.0.0.1:${server.port}`
const client = new S3Client({endpoint, region: 'us-east-1', forcePathStyle: true, credentials: {accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER'},
  requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED'})
await client.send(new CreateBucketCommand({Bucket: 'bench'}))

const homeA = path.join(work, 'a')
const homeB = path.join(work, 'b')
const zenith = (home, args, extra = {}) => JSON.parse(execFileSync('node', [BIN, ...args, '--json'], {
  env: {...process.env, ...credentials, ZENITH_HOME: home, ZENITH_FIRST_PORT: '6280', ZENITH_S3_ENDPOINT: endpoint, ...extra}, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 26,
}))
const timed = (fn) => {
  execFileSync('sync')
  const start = process.hrtime.bigint()
  const result = fn()
  return {result, seconds: Number(process.hrtime.bigint() - start) / 1e9}
}
const timedAsync = async (fn) => {
  execFileSync('sync')
  const start = process.hrtime.bigint()
  const result = await fn()
  return {result, seconds: Number(process.hrtime.bigint() - start) / 1e9}
}

try {
  zenith(homeA, ['pg', 'create', 'bench'])
  const url = execFileSync('node', [BIN, 'pg', 'url', 'bench'], {env: {...process.env, ZENITH_HOME: homeA}, encoding: 'utf8'}).trim()
  execFileSync(PGBENCH, ['-i', '-q', '-s', String(scale), url], {stdio: 'ignore'})
  zenith(homeA, ['snapshot', 'create', 'bench@one'])
  // Stopped: its checkpoints and WAL writes would land in the middle of the timed runs.
  zenith(homeA, ['pg', 'stop', 'bench'])
  const snapshotsDir = path.join(homeA, 'storages', 'local', 'snapshots')
  const folder = path.join(snapshotsDir, (await readdir(snapshotsDir)).find((name) => name.startsWith('bench@one')))

  // Rounds alternate the raw SDK and zenith on the same server, each step after a sync (so that
  // no step pays for the previous one's writeback), and every step moves everything again: the
  // push goes to a new prefix, the pull into a new home. Medians are reported.
  const rounds = []
  for (let round = 0; round < runs; round++) {
    const prefix = `zenith-${round}`
    // Baseline: the same data directory as one tar stream through lib-storage Upload, then GetObject to a file.
    const rawUp = await timedAsync(async () => {
      const tar = spawn('tar', ['-cf', '-', '-C', folder, '.'], {stdio: ['ignore', 'pipe', 'inherit']})
      await new Upload({client, params: {Bucket: 'bench', Key: `raw/${round}.tar`, Body: tar.stdout}, queueSize: 4, partSize: 8 * 1024 * 1024}).done()
    })
    const push = timed(() => zenith(homeA, ['snapshot', 'push', 'bench@one', '--to', `s3://bench/${prefix}`]))
    const rawDown = await timedAsync(async () => {
      const object = await client.send(new GetObjectCommand({Bucket: 'bench', Key: `raw/${round}.tar`}))
      await pipeline(object.Body, createWriteStream(path.join(work, 'raw.tar')))
    })
    await rm(path.join(work, 'raw.tar'))
    await rm(homeB, {recursive: true, force: true})
    const pull = timed(() => zenith(homeB, ['snapshot', 'pull', '--from', `s3://bench/${prefix}`, 'bench@one']))
    // A floor for any pull of stored objects: the raw SDK fetching the very pack objects a pull
    // reads (whole, 16 at a time, bodies to memory, nothing checked or written).
    const packKeys = (await listKeys(`${prefix}/packs/`)).filter((key) => !key.endsWith('.idx'))
    const rawPacks = await timedAsync(async () => {
      let next = 0
      await Promise.all(Array.from({length: 16}, async () => {
        while (next < packKeys.length) {
          const object = await client.send(new GetObjectCommand({Bucket: 'bench', Key: packKeys[next++]}))
          await object.Body.transformToByteArray()
        }
      }))
    })
    rounds.push({rawUp: rawUp.seconds, push: push.seconds, rawDown: rawDown.seconds, pull: pull.seconds, rawPacks: rawPacks.seconds, packs: packKeys.length, stored: push.result.sentBytes, logical: push.result.logicalBytes})
    console.log(`round ${round + 1}: push ${push.seconds.toFixed(2)} s vs raw Upload ${rawUp.seconds.toFixed(2)} s (${(rawUp.seconds / push.seconds).toFixed(2)}x); ` +
      `pull ${pull.seconds.toFixed(2)} s vs raw GetObject ${rawDown.seconds.toFixed(2)} s (${(rawDown.seconds / pull.seconds).toFixed(2)}x)`)
  }

  const logical = rounds[0].logical
  const mbps = (bytes, seconds) => (bytes / seconds / 1024 / 1024).toFixed(1)
  const mid = (key) => median(rounds.map((item) => item[key]))
  const ratios = (a, b) => rounds.map((item) => (item[a] / item[b]).toFixed(2)).join(', ')

  // A 1% change: a contiguous 1% of the accounts updated (an app's recent rows), then checkpoint.
  zenith(homeA, ['pg', 'start', 'bench'])
  const rows = scale * 100_000
  execFileSync('psql', [url, '-qc', `update pgbench_accounts set abalance = abalance + 1 where aid <= ${rows / 100}`, '-c', 'checkpoint'], {stdio: 'ignore'})
  zenith(homeA, ['snapshot', 'create', 'bench@two'])
  const repush = zenith(homeA, ['snapshot', 'push', 'bench@two', '--to', 's3://bench/zenith-0'])

  const lines = [
    `pgbench scale ${scale}: snapshot of ${mbps(logical, 1)} MiB logical, stored as ${mbps(rounds[0].stored, 1)} MiB of compressed chunks; medians of ${runs} rounds`,
    `push: ${mid('push').toFixed(2)} s (${mbps(logical, mid('push'))} MiB/s logical) vs raw Upload ${mid('rawUp').toFixed(2)} s (${mbps(logical, mid('rawUp'))} MiB/s): ratio ${(mid('rawUp') / mid('push')).toFixed(2)}x, per round ${ratios('rawUp', 'push')} (target >= 0.8x)`,
    `pull: ${mid('pull').toFixed(2)} s (${mbps(logical, mid('pull'))} MiB/s logical, verified, synced) vs raw GetObject ${mid('rawDown').toFixed(2)} s (${mbps(logical, mid('rawDown'))} MiB/s): ratio ${(mid('rawDown') / mid('pull')).toFixed(2)}x, per round ${ratios('rawDown', 'pull')} (target >= 0.8x)`,
    `raw GetObject of the ${rounds[0].packs} pack objects a pull reads (x16, to memory): ${mid('rawPacks').toFixed(2)} s`,
    `re-push after a 1% change: sent ${repush.sentBytes} B = ${(100 * repush.sentBytes / repush.logicalBytes).toFixed(2)}% of ${repush.logicalBytes} B (target <= 5%); changed chunks ${(100 * repush.changedBytes / repush.logicalBytes).toFixed(2)}% uncompressed; ${repush.chunksSent} chunks sent, ${repush.chunksAtRemote} already at the remote, ${repush.chunksRepeated} repeated within the snapshot`,
    `objects at the remote: ${(await listKeys('zenith-0/')).length} (packs, pack indexes, manifests, index)`,
  ]
  console.log(lines.join('\n'))
} finally {
  for (const home of [homeA, homeB]) {
    try {
      execFileSync('node', [BIN, 'pg', 'stop', 'bench', '--mode', 'immediate'], {env: {...process.env, ZENITH_HOME: home}, stdio: 'ignore'})
    } catch {
      // Not running (or never created): nothing to stop.
    }
  }

  server.child.kill()
  await rm(work, {recursive: true, force: true})
}

async function listKeys(prefix) {
  const keys = []
  let marker
  for (;;) {
    const page = await client.send(new ListObjectsCommand({Bucket: 'bench', Prefix: prefix, Marker: marker}))
    const items = page.Contents ?? []
    keys.push(...items.map((item) => item.Key))
    if (!page.IsTruncated || items.length === 0) return keys
    marker = items.at(-1).Key
  }
}

/** s3rver in its own process, so that its CPU does not share an event loop with either side. */
async function startS3rver(directory) {
  const script = `import S3rver from 's3rver'
const server = new S3rver({address: '127.0.0.1', port: 0, silent: true, directory: ${JSON.stringify(directory)}})
const {port} = await server.run()
console.log(port)`
  const child = spawn('node', ['--input-type=module', '-e', script], {cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit']})
  const port = await new Promise((resolve, reject) => {
    child.stdout.once('data', (data) => resolve(Number(String(data).trim())))
    child.once('exit', (code) => reject(new Error(`s3rver exited with ${code}`)))
  })
  return {child, port}
}


import {createHash} from 'node:crypto'
import {mkdtemp, readFile, readdir, rm, stat} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {DeleteObjectCommand, GetObjectCommand, ListObjectsCommand, ListObjectsV2Command, PutObjectCommand} from '@aws-sdk/client-s3'
import {execa} from 'execa'

import {S3_CREDENTIALS, S3Server} from '../helpers/s3.js'
import {BIN, TestHome} from '../helpers/zenith.js'

const PGBENCH = '/usr/lib/postgresql/15/bin/pgbench'
const BUCKET = 'team'
const ACCOUNTS_CHECKSUM = `select md5(string_agg(t::text, ',' order by aid)) as sum, count(*)::int as n from pgbench_accounts t`

/**
 * Remote storages against real components: s3rver speaking S3 to the real SDK on 127.0.0.1, a
 * plain folder, and `snapshot recv` over loopback HTTP. A source home makes pgbench snapshots;
 * other homes pull them, start postgres on them and compare table checksums.
 */
describe('remote storages', () => {
  let s3: S3Server
  let source: TestHome
  let env: Record<string, string>
  let sourceSum: string

  beforeAll(async () => {
    s3 = await S3Server.start()
    await s3.createBucket(BUCKET)
    source = await TestHome.create(6200)
    env = {...S3_CREDENTIALS}
    await source.ok(['pg', 'create', 'dev'])
    await execa(PGBENCH, ['-i', '-s', '1', '-q', await source.url('dev')])
    await source.ok(['snapshot', 'create', 'dev@fixture'])
    sourceSum = (await source.query<{sum: string}>('dev', ACCOUNTS_CHECKSUM))[0].sum
  }, 300_000)

  afterAll(async () => {
    await source?.destroy()
    await s3?.stop()
  })

  const attachS3 = (home: TestHome, name: string, prefix: string, extra: string[] = [], envOverride: Record<string, string> = {}) =>
    home.run(['storage', 'attach', '-t', 's3', '-n', name, '-c', `bucket=${BUCKET}`, '-c', `prefix=${prefix}`, '-c', `endpoint=${s3.endpoint}`, ...extra, '--json'], {env: {...env, ...envOverride}})

  const listChunks = async (prefix: string): Promise<string[]> => {
    const keys: string[] = []
    let marker: string | undefined
    for (;;) {
      // v1 paging: s3rver cannot make v2 continuation tokens on OpenSSL 3.
      const page = await s3.client().send(new ListObjectsCommand({Bucket: BUCKET, Prefix: `${prefix}/chunks/`, Marker: marker}))
      const items = page.Contents ?? []
      keys.push(...items.map((item) => item.Key!))
      if (!page.IsTruncated || items.length === 0) return keys
      marker = items.at(-1)!.Key
    }
  }

  /** Pulls into a fresh home, starts a pg on the snapshot and checks the accounts table. */
  const pullAndCheck = async (firstPort: number, from: string, snapshot: string): Promise<TestHome> => {
    const target = await TestHome.create(firstPort)
    const pulled = await target.ok(['snapshot', 'pull', '--from', from, snapshot, '--json'], {env})
    expect(pulled.json.snapshot.name).toBe(snapshot)
    await target.ok(['pg', 'create', 'copy', '--snapshot', snapshot])
    const rows = await target.query<{sum: string; n: number}>('copy', ACCOUNTS_CHECKSUM)
    expect(rows[0]).toEqual({sum: sourceSum, n: 100_000})
    return target
  }

  describe('s3', () => {
    test('attach probes the bucket: wrong credentials, missing bucket and no network fail clearly', async () => {
      const wrongKey = await attachS3(source, 'bad1', 'x', [], {AWS_ACCESS_KEY_ID: 'nobody'})
      expect(wrongKey.exitCode).toBe(6)
      expect(wrongKey.json.error.code).toBe('AUTH_FAILED')
      expect(JSON.stringify(wrongKey.json)).not.toContain('S3RVER')

      const missing = await source.run(['storage', 'attach', '-t', 's3', '-n', 'bad2', '-c', 'bucket=no-such-bucket', '-c', `endpoint=${s3.endpoint}`, '--json'], {env})
      expect(missing.exitCode).toBe(3)
      expect(missing.json.error.code).toBe('BUCKET_NOT_FOUND')

      const offline = await source.run(['storage', 'attach', '-t', 's3', '-n', 'bad3', '-c', `bucket=${BUCKET}`, '-c', 'endpoint=http://127.0.0.1:9', '--json'], {env})
      expect(offline.exitCode).toBe(6)
      expect(offline.json.error.code).toBe('SOURCE_UNREACHABLE')

      const list = await source.ok(['storage', 'list', '--json'])
      expect(list.json.map((item: {name: string}) => item.name)).toEqual(['local'])

      const ok = await attachS3(source, 's3tank', 'snaps')
      expect(ok.exitCode).toBe(0)
      const stored = await readFile(path.join(source.home, 'state.json'), 'utf8')
      expect(stored).not.toContain('S3RVER')
    })

    test('push, then pull into a second home: same table checksum', async () => {
      const push = await source.ok(['snapshot', 'push', 'dev@fixture', '--to', 's3tank', '--json'], {env})
      expect(push.json.upToDate).toBe(false)
      expect(push.json.chunksSent).toBeGreaterThan(0)
      expect(push.json.sentBytes).toBeLessThan(push.json.logicalBytes)

      const again = await source.ok(['snapshot', 'push', 'dev@fixture', '--to', 's3tank'], {env})
      expect(again.stdout).toContain('already has dev@fixture; nothing sent')

      const listed = await source.ok(['storage', 'show', 's3tank', '--json'], {env})
      expect(listed.json.snapshots).toEqual(['dev@fixture'])
      expect(listed.json.usedBytes).toBeGreaterThan(0)

      const target = await pullAndCheck(6210, `s3://${BUCKET}/snaps?endpoint=${encodeURIComponent(s3.endpoint)}`, 'dev@fixture')
      await target.destroy()
    })

    test('a re-push after a 1% change sends only changed chunks (at most 5% of the bytes)', async () => {
      await source.query('dev', 'update pgbench_accounts set abalance = abalance + 1 where aid <= 1000')
      await source.query('dev', 'checkpoint')
      await source.ok(['snapshot', 'create', 'dev@changed'])
      const push = await source.ok(['snapshot', 'push', 'dev@changed', '--to', 's3tank', '--json'], {env})
      const {sentBytes, changedBytes, logicalBytes} = push.json
      console.log(`re-push after 1% change: sent ${sentBytes} B (${(100 * sentBytes / logicalBytes).toFixed(2)}%), changed chunks ${changedBytes} B (${(100 * changedBytes / logicalBytes).toFixed(2)}%) of ${logicalBytes} B`)
      expect(sentBytes / logicalBytes).toBeLessThanOrEqual(0.05)
      // Uncompressed, the changed 1 MiB chunks are ~6% of a scale-1 snapshot (3.4% at scale 10).
      expect(changedBytes / logicalBytes).toBeLessThanOrEqual(0.1)
      expect(push.json.chunksSkipped).toBeGreaterThan(push.json.chunksSent)
    })

    test('the same name with different content is refused unless --force', async () => {
      const to = `s3://${BUCKET}/conflict`
      const withEndpoint = {env: {...env, ZENITH_S3_ENDPOINT: s3.endpoint}}
      await source.ok(['snapshot', 'push', 'dev@fixture', '--to', to], withEndpoint)
      // Someone else pushed a different dev@fixture there: the manifest of dev@changed under that name.
      const changed = await s3.client().send(new GetObjectCommand({Bucket: BUCKET, Key: 'snaps/manifests/dev@changed.json'}))
      const body = (await changed.Body!.transformToString()).replace('"snapshot":"dev@changed"', '"snapshot":"dev@fixture"')
      await s3.client().send(new PutObjectCommand({Bucket: BUCKET, Key: 'conflict/manifests/dev@fixture.json', Body: body}))

      const refused = await source.run(['snapshot', 'push', 'dev@fixture', '--to', to, '--json'], withEndpoint)
      expect(refused.exitCode).toBe(4)
      expect(refused.json.error.code).toBe('REMOTE_CONFLICT')
      const forced = await source.ok(['snapshot', 'push', 'dev@fixture', '--to', to, '--force', '--json'], withEndpoint)
      expect(forced.json.upToDate).toBe(false)
      const after = await source.ok(['snapshot', 'push', 'dev@fixture', '--to', to, '--json'], withEndpoint)
      expect(after.json.upToDate).toBe(true)
    })

    test('a corrupted chunk and a deleted chunk: CHECKSUM_MISMATCH naming it, nothing created; a re-run resumes', async () => {
      const target = await TestHome.create(6220)
      try {
        const chunks = await listChunks('snaps')
        const victim = chunks[Math.floor(chunks.length / 2)]
        const hash = victim.split('/').pop()!
        const original = Buffer.from(await (await s3.client().send(new GetObjectCommand({Bucket: BUCKET, Key: victim}))).Body!.transformToByteArray())

        await s3.client().send(new PutObjectCommand({Bucket: BUCKET, Key: victim, Body: Buffer.from('not the chunk you are looking for')}))
        const from = `s3://${BUCKET}/snaps?endpoint=${encodeURIComponent(s3.endpoint)}`
        const bad = await target.run(['snapshot', 'pull', '--from', from, 'dev@fixture', '--json'], {env})
        expect(bad.exitCode).toBe(7)
        expect(bad.json.error.code).toBe('CHECKSUM_MISMATCH')
        expect(bad.json.error.message).toContain(hash)
        expect((await target.ok(['snapshot', 'list', '--json'])).json).toEqual([])

        await s3.client().send(new DeleteObjectCommand({Bucket: BUCKET, Key: victim}))
        const gone = await target.run(['snapshot', 'pull', '--from', from, 'dev@fixture', '--json'], {env})
        expect(gone.exitCode).toBe(7)
        expect(gone.json.error.code).toBe('CHECKSUM_MISMATCH')
        expect(gone.json.error.message).toContain(`Chunk ${hash}`)
        expect(gone.json.error.message).toContain('missing')
        expect((await target.ok(['snapshot', 'list', '--json'])).json).toEqual([])
        const storageFolder = path.join(target.home, 'storages', 'local', 'snapshots')
        expect(await readdir(storageFolder).catch(() => [])).toEqual([])

        // Put it back: the re-run fetches only what the failed attempts did not verify.
        await s3.client().send(new PutObjectCommand({Bucket: BUCKET, Key: victim, Body: original}))
        const resumed = await target.ok(['snapshot', 'pull', '--from', from, 'dev@fixture', '--json'], {env})
        expect(resumed.json.chunksCached).toBeGreaterThan(0)
        expect(resumed.json.chunksFetched).toBe(1)
        expect(await readdir(path.join(target.home, 'cache')).catch(() => [])).toEqual([])
        await target.ok(['pg', 'create', 'copy', '--snapshot', 'dev@fixture'])
        expect((await target.query<{sum: string}>('copy', ACCOUNTS_CHECKSUM))[0].sum).toBe(sourceSum)
      } finally {
        await target.destroy()
      }
    })

    test('two pulls of the same snapshot into one home at once (--as): both complete, neither breaks the other', async () => {
      const target = await TestHome.create(6260)
      try {
        const from = `s3://${BUCKET}/snaps?endpoint=${encodeURIComponent(s3.endpoint)}`
        const [first, second] = await Promise.all(['first@fixture', 'second@fixture'].map((name) =>
          target.run(['snapshot', 'pull', '--from', from, 'dev@fixture', '--as', name, '--json'], {env})))
        expect([first.exitCode, second.exitCode]).toEqual([0, 0])
        // Each fetched everything itself: no pull used (or removed) the other's working folder.
        expect(first.json.chunksCached).toBe(0)
        expect(second.json.chunksCached).toBe(0)
        expect((await target.ok(['snapshot', 'list', '--json'])).json.map((item: {name: string}) => item.name).sort()).toEqual(['first@fixture', 'second@fixture'])
        expect(await readdir(path.join(target.home, 'cache')).catch(() => [])).toEqual([])
        const base = path.join(target.home, 'storages', 'local', 'snapshots')
        const folders = (await readdir(base)).sort()
        expect(await treeDigest(path.join(base, folders[0]))).toEqual(await treeDigest(path.join(base, folders[1])))
        await target.ok(['pg', 'create', 'copy', '--snapshot', 'second@fixture'])
        expect((await target.query<{sum: string}>('copy', ACCOUNTS_CHECKSUM))[0].sum).toBe(sourceSum)
      } finally {
        await target.destroy()
      }
    })

    test('a killed pull leaves nothing visible; the re-run adopts its verified chunks and fetches only the rest', async () => {
      const target = await TestHome.create(6270)
      try {
        const from = `s3://${BUCKET}/snaps?endpoint=${encodeURIComponent(s3.endpoint)}`
        const child = execa('node', [BIN, 'snapshot', 'pull', '--from', from, 'dev@fixture'], {env: target.env(env), reject: false})
        const cacheRoot = path.join(target.home, 'cache')
        const packBytes = async () => {
          let bytes = 0
          for (const folder of await readdir(cacheRoot).catch(() => [] as string[])) {
            for (const file of await readdir(path.join(cacheRoot, folder)).catch(() => [] as string[])) {
              bytes += (await stat(path.join(cacheRoot, folder, file)).catch(() => ({size: 0}))).size
            }
          }

          return bytes
        }

        for (let i = 0; i < 2000 && child.exitCode === null && await packBytes() < 64 * 1024; i++) {
          await new Promise((resolve) => setTimeout(resolve, 5))
        }

        child.kill('SIGKILL')
        const killed = await child
        expect(killed.signal).toBe('SIGKILL')
        expect((await target.ok(['snapshot', 'list', '--json'])).json).toEqual([])
        expect(await readdir(path.join(target.home, 'storages', 'local', 'snapshots')).catch(() => [])).toEqual([])

        const resumed = await target.ok(['snapshot', 'pull', '--from', from, 'dev@fixture', '--json'], {env})
        expect(resumed.json.chunksCached).toBeGreaterThan(0)
        expect(resumed.json.chunksFetched + resumed.json.chunksCached).toBe(new Set(JSON.parse(
          await (await s3.client().send(new GetObjectCommand({Bucket: BUCKET, Key: 'snaps/manifests/dev@fixture.json'}))).Body!.transformToString(),
        ).files.flatMap((file: {chunks: string[]}) => file.chunks)).size)
        expect(await readdir(cacheRoot)).toEqual([])
        await target.ok(['pg', 'create', 'copy', '--snapshot', 'dev@fixture'])
        expect((await target.query<{sum: string}>('copy', ACCOUNTS_CHECKSUM))[0].sum).toBe(sourceSum)
      } finally {
        await target.destroy()
      }
    })

    test('an interrupted push re-run sends only the missing chunks', async () => {
      const prefix = 'interrupted'
      const child = execa('node', [BIN, 'snapshot', 'push', 'dev@fixture', '--to', `s3://${BUCKET}/${prefix}`], {
        env: source.env({...env, ZENITH_S3_ENDPOINT: s3.endpoint}), reject: false,
      })
      let stored = 0
      for (let i = 0; i < 400 && stored < 100; i++) {
        await new Promise((resolve) => setTimeout(resolve, 25))
        stored = (await listChunks(prefix)).length
      }

      child.kill('SIGKILL')
      await child
      const before = (await listChunks(prefix)).length
      expect(before).toBeGreaterThan(0)
      const manifests = await s3.client().send(new ListObjectsV2Command({Bucket: BUCKET, Prefix: `${prefix}/manifests/`}))
      expect(manifests.Contents ?? []).toEqual([])

      const resumed = await source.ok(['snapshot', 'push', 'dev@fixture', '--to', `s3://${BUCKET}/${prefix}`, '--json'], {env: {...env, ZENITH_S3_ENDPOINT: s3.endpoint}})
      const total = (await listChunks(prefix)).length
      expect(resumed.json.chunksSent).toBe(total - before)
      expect(resumed.json.chunksSent).toBeLessThan(total)
    })
  })

  describe('dir', () => {
    test('attach, push, pull into a second home: same table checksum', async () => {
      const folder = await mkdtemp(path.join(os.tmpdir(), 'zenith-share-'))
      try {
        await source.ok(['storage', 'attach', '-t', 'dir', '-n', 'share', '-c', `path=${folder}/zenith`])
        const push = await source.ok(['snapshot', 'push', 'dev@fixture', '--to', 'share', '--json'])
        expect(push.json.chunksSent).toBeGreaterThan(0)
        expect((await readdir(path.join(folder, 'zenith'))).sort()).toEqual(['chunks', 'index.json', 'manifests'])
        const leftovers = (await readdir(path.join(folder, 'zenith', 'chunks'))).filter((name) => !/^[0-9a-f]{64}$/.test(name))
        expect(leftovers).toEqual([])
        const target = await pullAndCheck(6230, `file://${folder}/zenith`, 'dev@fixture')
        await target.destroy()

        const missing = await source.run(['storage', 'attach', '-t', 'dir', '-n', 'nowhere', '-c', 'path=/no/such/parent/zenith', '--json'])
        expect(missing.json.error.code).toBe('INVALID_ARGUMENT')
      } finally {
        await source.run(['storage', 'detach', 'share'])
        await rm(folder, {recursive: true, force: true})
      }
    })
  })

  describe('recv', () => {
    test('a wrong token is refused and logged; the right one delivers a verified snapshot', async () => {
      const target = await TestHome.create(6240)
      try {
        const receiver = execa('node', [BIN, 'snapshot', 'recv'], {env: target.env(), reject: false, buffer: true})
        const url = await new Promise<string>((resolve, reject) => {
          receiver.stdout!.on('data', (data: Buffer) => {
            const match = /zenith:\/\/\S+/.exec(data.toString())
            if (match) resolve(match[0])
          })
          receiver.on('exit', () => reject(new Error('recv exited before printing its URL')))
        })
        expect(url).toMatch(/^zenith:\/\/127\.0\.0\.1:\d+\/[\w-]{20,}$/)

        const wrong = await source.run(['snapshot', 'push', 'dev@fixture', '--to', url.replace(/\/[\w-]+$/, '/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'), '--json'])
        expect(wrong.exitCode).toBe(6)
        expect(wrong.json.error.code).toBe('AUTH_FAILED')
        expect((await target.ok(['snapshot', 'list', '--json'])).json).toEqual([])

        const push = await source.ok(['snapshot', 'push', 'dev@fixture', '--to', url, '--json'])
        expect(push.json.chunksSent).toBeGreaterThan(0)
        const done = await receiver
        expect(done.exitCode).toBe(0)
        expect(String(done.stderr)).toContain('Refused a request with a wrong token')
        expect(String(done.stdout)).toContain('Received dev@fixture')
        expect(await readdir(path.join(target.home, 'cache')).catch(() => [])).toEqual([])

        await target.ok(['pg', 'create', 'copy', '--snapshot', 'dev@fixture'])
        expect((await target.query<{sum: string}>('copy', ACCOUNTS_CHECKSUM))[0].sum).toBe(sourceSum)
      } finally {
        await target.destroy()
      }
    })
  })

  test('pulled snapshot folders are byte-identical to the source (sha256 of every file)', async () => {
    const target = await TestHome.create(6250)
    try {
      await target.ok(['snapshot', 'pull', '--from', `s3://${BUCKET}/snaps?endpoint=${encodeURIComponent(s3.endpoint)}`, 'dev@changed'], {env})
      const folderOf = async (home: TestHome) => {
        const base = path.join(home.home, 'storages', 'local', 'snapshots')
        const name = (await readdir(base)).find((entry) => entry.startsWith('dev@changed'))!
        return path.join(base, name)
      }

      expect(await treeDigest(await folderOf(target))).toEqual(await treeDigest(await folderOf(source)))
    } finally {
      await target.destroy()
    }
  })
})

/** path, type, mode and sha256 of every entry of a folder. */
async function treeDigest(root: string): Promise<string[]> {
  const {stdout} = await execa('find', ['.', '-mindepth', '1', '-printf', '%p %y %m %l\\n'], {cwd: root})
  const lines: string[] = []
  for (const line of stdout.split('\n').sort()) {
    const [entry, type] = line.split(' ')
    const digest = type === 'f' ? createHash('sha256').update(await readFile(path.join(root, entry))).digest('hex') : ''
    lines.push(`${line} ${digest}`)
  }

  return lines
}

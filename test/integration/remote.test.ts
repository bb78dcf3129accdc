import {createHash} from 'node:crypto'
import {mkdir, mkdtemp, open, readFile, readdir, rm, stat, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {DeleteObjectCommand, GetObjectCommand, ListObjectsCommand, PutObjectCommand} from '@aws-sdk/client-s3'
import {execa} from 'execa'

import {S3_CREDENTIALS, S3Server} from '../helpers/s3.js'
import {ACCOUNTS_CHECKSUM, BIN, TestHome, pgbenchFixture} from '../helpers/zenith.js'

const BUCKET = 'team'

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
    sourceSum = await pgbenchFixture(source)
  }, 300_000)

  afterAll(async () => {
    await source?.destroy()
    await s3?.stop()
  })

  const attachS3 = (home: TestHome, name: string, prefix: string, extra: string[] = [], envOverride: Record<string, string> = {}) =>
    home.run(['storage', 'attach', '-t', 's3', '-n', name, '-c', `bucket=${BUCKET}`, '-c', `prefix=${prefix}`, '-c', `endpoint=${s3.endpoint}`, ...extra, '--json'], {env: {...env, ...envOverride}})

  const listKeys = async (prefix: string): Promise<string[]> => {
    const keys: string[] = []
    let marker: string | undefined
    for (;;) {
      // v1 paging: s3rver cannot make v2 continuation tokens on OpenSSL 3.
      const page = await s3.client().send(new ListObjectsCommand({Bucket: BUCKET, Prefix: prefix, Marker: marker}))
      const items = page.Contents ?? []
      keys.push(...items.map((item) => item.Key!))
      if (!page.IsTruncated || items.length === 0) return keys
      marker = items.at(-1)!.Key
    }
  }

  const getObject = async (key: string): Promise<Buffer> =>
    Buffer.from(await (await s3.client().send(new GetObjectCommand({Bucket: BUCKET, Key: key}))).Body!.transformToByteArray())

  /** Chunk hash -> pack, for the complete packs (object and index both there) under a prefix. */
  const packedChunks = async (prefix: string): Promise<Map<string, string>> => {
    const keys = new Set(await listKeys(`${prefix}/packs/`))
    const chunks = new Map<string, string>()
    for (const key of keys) {
      if (!key.endsWith('.idx') || !keys.has(key.slice(0, -'.idx'.length))) continue
      const index = JSON.parse((await getObject(key)).toString()) as {pack: string; chunks: Array<[string, number, number]>}
      for (const [hash] of index.chunks) chunks.set(hash, index.pack)
    }

    return chunks
  }

  /** An s3:// URL of a prefix of the test bucket, naming the server it is on. */
  const s3Url = (prefix: string) => `s3://${BUCKET}/${prefix}?endpoint=${encodeURIComponent(s3.endpoint)}`

  /** A pg made from `snapshot` in `home` holds the source's accounts. */
  const expectSourceAccounts = async (home: TestHome, snapshot: string): Promise<void> => {
    await home.ok(['pg', 'create', 'copy', '--snapshot', snapshot])
    expect((await home.query<{sum: string}>('copy', ACCOUNTS_CHECKSUM))[0].sum).toBe(sourceSum)
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

      const target = await pullAndCheck(6210, s3Url('snaps'), 'dev@fixture')
      // A pulled snapshot's files were written by zenith itself (root in CI): an export runs a
      // temporary postgres on it, which must own every file of it, not only the top folder.
      const exported = await target.run(['snapshot', 'export', 'dev@fixture', '-o', path.join(target.home, 'pulled.zenith'), '--json'])
      expect(exported.json?.error).toBeUndefined()
      expect(exported.exitCode).toBe(0)
      await target.destroy()
    })

    test('a re-push after a 1% change sends only changed chunks (at most 5% of the bytes), in new packs', async () => {
      const before = await packedChunks('snaps')
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
      // The new chunks, and only they, are in the new pack(s); the old packs are untouched.
      const after = await packedChunks('snaps')
      expect(after.size - before.size).toBe(push.json.chunksSent)
      for (const [hash, pack] of before) expect(after.get(hash)).toBe(pack)
      const manifest = JSON.parse((await getObject('snaps/manifests/dev@changed.json')).toString()) as {packs: Record<string, unknown[]>}
      expect(Object.keys(manifest.packs).length).toBeGreaterThan(1)
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

    test('a corrupted chunk inside a pack and a deleted pack: CHECKSUM_MISMATCH naming them, nothing created; a re-run resumes', async () => {
      const target = await TestHome.create(6220)
      try {
        const manifest = JSON.parse((await getObject('snaps/manifests/dev@fixture.json')).toString()) as {packs: Record<string, Array<[string, number, number]>>}
        const [pack, entries] = Object.entries(manifest.packs)[0]
        const [hash, offset, length] = entries[Math.floor(entries.length / 2)]
        const key = `snaps/packs/${pack}`
        const original = await getObject(key)
        const damaged = Buffer.from(original)
        damaged.fill(0x55, offset + Math.floor(length / 2), offset + length)

        await s3.client().send(new PutObjectCommand({Bucket: BUCKET, Key: key, Body: damaged}))
        const from = s3Url('snaps')
        const bad = await target.run(['snapshot', 'pull', '--from', from, 'dev@fixture', '--json'], {env})
        expect(bad.exitCode).toBe(7)
        expect(bad.json.error.code).toBe('CHECKSUM_MISMATCH')
        expect(bad.json.error.message).toContain(`Chunk ${hash}`)
        expect(bad.json.error.message).toContain('corrupted')
        expect(bad.json.error.message).not.toContain('more damaged')
        expect((await target.ok(['snapshot', 'list', '--json'])).json).toEqual([])

        await s3.client().send(new DeleteObjectCommand({Bucket: BUCKET, Key: key}))
        const gone = await target.run(['snapshot', 'pull', '--from', from, 'dev@fixture', '--json'], {env})
        expect(gone.exitCode).toBe(7)
        expect(gone.json.error.code).toBe('CHECKSUM_MISMATCH')
        expect(gone.json.error.message).toContain(`Chunk ${hash}`)
        expect(gone.json.error.message).toContain(`pack packs/${pack} is gone`)
        expect((await target.ok(['snapshot', 'list', '--json'])).json).toEqual([])
        const storageFolder = path.join(target.home, 'storages', 'local', 'snapshots')
        expect(await readdir(storageFolder).catch(() => [])).toEqual([])

        // Put it back: the re-run fetches only what the failed attempts did not verify.
        await s3.client().send(new PutObjectCommand({Bucket: BUCKET, Key: key, Body: original}))
        const resumed = await target.ok(['snapshot', 'pull', '--from', from, 'dev@fixture', '--json'], {env})
        expect(resumed.json.chunksCached).toBeGreaterThan(0)
        expect(resumed.json.chunksFetched).toBe(1)
        expect(await readdir(path.join(target.home, 'cache')).catch(() => [])).toEqual([])
        await expectSourceAccounts(target, 'dev@fixture')
      } finally {
        await target.destroy()
      }
    })

    test('two pulls of the same snapshot into one home at once (--as): both complete, neither breaks the other', async () => {
      const target = await TestHome.create(6260)
      try {
        const from = s3Url('snaps')
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
        await expectSourceAccounts(target, 'second@fixture')
      } finally {
        await target.destroy()
      }
    })

    test('a killed pull leaves nothing visible; the re-run adopts its verified chunks and fetches only the rest', async () => {
      const target = await TestHome.create(6270)
      try {
        const from = s3Url('snaps')
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

        // A record the kill left damaged in the cache: the re-run finds it bad and fetches it again.
        const [cacheFolder] = await readdir(cacheRoot)
        const [cachePack] = await readdir(path.join(cacheRoot, cacheFolder))
        const damage = await open(path.join(cacheRoot, cacheFolder, cachePack), 'r+')
        await damage.write(Buffer.from('damaged by the test'), 0, 19, 36 + 20)
        await damage.close()

        const resumed = await target.ok(['snapshot', 'pull', '--from', from, 'dev@fixture', '--json'], {env})
        expect(resumed.json.chunksCached).toBeGreaterThan(0)
        expect(resumed.json.chunksFetched + resumed.json.chunksCached).toBe(new Set(JSON.parse(
          await (await s3.client().send(new GetObjectCommand({Bucket: BUCKET, Key: 'snaps/manifests/dev@fixture.json'}))).Body!.transformToString(),
        ).files.flatMap((file: {chunks: string[]}) => file.chunks)).size)
        expect(await readdir(cacheRoot)).toEqual([])
        await expectSourceAccounts(target, 'dev@fixture')
      } finally {
        await target.destroy()
      }
    })

    test('an interrupted push re-run sends only the chunks not in a complete pack', async () => {
      const prefix = 'interrupted'
      // Small packs, so that the push is killed with some packs stored and others not.
      const pushEnv = {...env, ZENITH_S3_ENDPOINT: s3.endpoint, ZENITH_PACK_BYTES: String(64 * 1024)}
      const child = execa('node', [BIN, 'snapshot', 'push', 'dev@fixture', '--to', `s3://${BUCKET}/${prefix}`], {env: source.env(pushEnv), reject: false})
      for (let i = 0; i < 800 && (await listKeys(`${prefix}/packs/`)).filter((key) => key.endsWith('.idx')).length < 2; i++) {
        await new Promise((resolve) => setTimeout(resolve, 10))
      }

      child.kill('SIGKILL')
      const killed = await child
      expect(killed.signal).toBe('SIGKILL')
      const before = await packedChunks(prefix)
      expect(before.size).toBeGreaterThan(0)
      expect(await listKeys(`${prefix}/manifests/`)).toEqual([])

      const resumed = await source.ok(['snapshot', 'push', 'dev@fixture', '--to', `s3://${BUCKET}/${prefix}`, '--json'], {env: pushEnv})
      const manifest = JSON.parse((await getObject(`${prefix}/manifests/dev@fixture.json`)).toString()) as {files: Array<{chunks: string[]}>}
      const distinct = new Set(manifest.files.flatMap((file) => file.chunks))
      expect(resumed.json.chunksSent).toBe([...distinct].filter((hash) => !before.has(hash)).length)
      expect(resumed.json.chunksSent).toBeLessThan(distinct.size)

      const target = await pullAndCheck(6290, s3Url(prefix), 'dev@fixture')
      await target.destroy()
    })

    test('destroy in a remote storage deletes the packs only that snapshot used; the others still pull', async () => {
      const prefix = 'gc'
      expect((await attachS3(source, 'gctank', prefix)).exitCode).toBe(0)
      await source.ok(['snapshot', 'push', 'dev@fixture', '--to', 'gctank'], {env})
      const fixturePacks = new Set((await packedChunks(prefix)).values())
      await source.ok(['snapshot', 'push', 'dev@changed', '--to', 'gctank'], {env})
      const allPacks = new Set((await packedChunks(prefix)).values())
      const changedOnly = [...allPacks].filter((pack) => !fixturePacks.has(pack))
      expect(changedOnly.length).toBeGreaterThan(0)
      expect(Object.keys(JSON.parse((await getObject(`${prefix}/pack-index.json`)).toString()).packs).sort()).toEqual([...allPacks].sort())
      const usedBefore = (await source.ok(['storage', 'show', 'gctank', '--json'], {env})).json.usedBytes

      // Unknown name: an error, nothing deleted.
      const keysBefore = await listKeys(`${prefix}/`)
      const unknown = await source.run(['snapshot', 'destroy', 'dev@nope', '--storage', 'gctank', '--json'], {env})
      expect(unknown.exitCode).toBe(3)
      expect(unknown.json.error.code).toBe('SNAPSHOT_NOT_FOUND')
      expect(await listKeys(`${prefix}/`)).toEqual(keysBefore)

      // dev@changed shares most chunks with dev@fixture: only the packs of its changed chunks go.
      const destroyed = await source.ok(['snapshot', 'destroy', 'dev@changed', '--storage', 'gctank', '--json'], {env})
      expect(destroyed.json).toMatchObject({name: 'dev@changed', collected: true, packsDeleted: changedOnly.length})
      const left = new Set((await packedChunks(prefix)).values())
      expect([...left].sort()).toEqual([...fixturePacks].sort())
      // pack-index.json (all pack indexes in one object) no longer names the deleted packs.
      expect(Object.keys(JSON.parse((await getObject(`${prefix}/pack-index.json`)).toString()).packs).sort()).toEqual([...fixturePacks].sort())
      expect(await listKeys(`${prefix}/packs/`)).toHaveLength(2 * fixturePacks.size)
      expect(await listKeys(`${prefix}/locks/`)).toEqual([])
      const shown = (await source.ok(['storage', 'show', 'gctank', '--json'], {env})).json
      expect(shown.snapshots).toEqual(['dev@fixture'])
      expect(shown.usedBytes).toBeLessThan(usedBefore)
      const url = s3Url(prefix)
      expect((await source.ok(['snapshot', 'list', '--storage', url, '--json'], {env})).json.map((item: {name: string}) => item.name)).toEqual(['dev@fixture'])

      const target = await pullAndCheck(6400, url, 'dev@fixture')
      await target.destroy()

      // The last snapshot, named by URL: every pack goes.
      const last = await source.ok(['snapshot', 'destroy', 'dev@fixture', '--storage', url, '--json'], {env})
      expect(last.json).toMatchObject({collected: true, packsDeleted: fixturePacks.size})
      expect(await listKeys(`${prefix}/packs/`)).toEqual([])
      expect(await listKeys(`${prefix}/manifests/`)).toEqual([])
      expect((await source.ok(['storage', 'show', 'gctank', '--json'], {env})).json.snapshots).toEqual([])
    })

    test('a running push keeps a destroy from collecting, and a push waits for a collection to end', async () => {
      const prefix = 'locked'
      const url = s3Url(prefix)
      await source.ok(['snapshot', 'push', 'dev@fixture', '--to', url], {env})
      await source.ok(['snapshot', 'push', 'dev@changed', '--to', url], {env})
      const packs = await listKeys(`${prefix}/packs/`)
      const lock = (kind: string, refreshedAt: Date) => JSON.stringify({kind, host: 'elsewhere', pid: 1, startedAt: refreshedAt.toISOString(), refreshedAt: refreshedAt.toISOString()})

      // Another machine's push is running: the manifest goes, its packs stay for a later destroy.
      await s3.client().send(new PutObjectCommand({Bucket: BUCKET, Key: `${prefix}/locks/push-other.json`, Body: lock('push', new Date())}))
      const kept = await source.ok(['snapshot', 'destroy', 'dev@changed', '--storage', url, '--json'], {env})
      expect(kept.json).toMatchObject({collected: false, packsDeleted: 0})
      expect(kept.json.notCollected).toContain('a push is running (elsewhere, pid 1')
      expect(await listKeys(`${prefix}/packs/`)).toEqual(packs)
      expect(await listKeys(`${prefix}/manifests/`)).toEqual([`${prefix}/manifests/dev@fixture.json`])

      // A push lock not refreshed for 30 minutes is a killed push's: ignored. The next destroy collects.
      await s3.client().send(new PutObjectCommand({Bucket: BUCKET, Key: `${prefix}/locks/push-other.json`, Body: lock('push', new Date(Date.now() - 31 * 60_000))}))
      await source.ok(['snapshot', 'create', 'dev@third'])
      await source.ok(['snapshot', 'push', 'dev@third', '--to', url], {env})
      const collected = await source.ok(['snapshot', 'destroy', 'dev@third', '--storage', url, '--json'], {env})
      expect(collected.json.collected).toBe(true)
      expect(collected.json.packsDeleted).toBeGreaterThan(0)

      // A collection is running elsewhere: a push waits for it, then completes.
      await s3.client().send(new PutObjectCommand({Bucket: BUCKET, Key: `${prefix}/locks/gc-other.json`, Body: lock('gc', new Date())}))
      const push = execa('node', [BIN, 'snapshot', 'push', 'dev@changed', '--to', url, '--json'], {env: source.env(env), reject: false})
      await new Promise((resolve) => setTimeout(resolve, 2500))
      expect(push.exitCode).toBeNull()
      expect(await listKeys(`${prefix}/manifests/`)).toEqual([`${prefix}/manifests/dev@fixture.json`])
      await s3.client().send(new DeleteObjectCommand({Bucket: BUCKET, Key: `${prefix}/locks/gc-other.json`}))
      const pushed = await push
      expect(pushed.exitCode).toBe(0)
      expect(await listKeys(`${prefix}/manifests/`)).toEqual([`${prefix}/manifests/dev@changed.json`, `${prefix}/manifests/dev@fixture.json`])
      expect(await listKeys(`${prefix}/locks/`)).toEqual([`${prefix}/locks/push-other.json`])
      // --storage naming a local storage destroys the local snapshot.
      expect((await source.ok(['snapshot', 'destroy', 'dev@third', '--storage', 'local', '--json'])).json).toEqual({remote: false, storage: 'local', name: 'dev@third'})
      expect((await source.run(['snapshot', 'show', 'dev@third', '--json'])).exitCode).toBe(3)
    })
  })

  describe('dir', () => {
    test('attach, push, pull into a second home: same table checksum', async () => {
      const folder = await mkdtemp(path.join(os.tmpdir(), 'zenith-share-'))
      try {
        await source.ok(['storage', 'attach', '-t', 'dir', '-n', 'share', '-c', `path=${folder}/zenith`])
        const push = await source.ok(['snapshot', 'push', 'dev@fixture', '--to', 'share', '--json'])
        expect(push.json.chunksSent).toBeGreaterThan(0)
        // locks/ is left empty by the push's lock.
        expect((await readdir(path.join(folder, 'zenith'))).sort()).toEqual(['.staging', 'index.json', 'locks', 'manifests', 'pack-index.json', 'packs'])
        // The push's staging folder (.staging/<host>-p<pid>) holds no file once it is done.
        for (const staging of await readdir(path.join(folder, 'zenith', '.staging'))) expect(await readdir(path.join(folder, 'zenith', '.staging', staging))).toEqual([])
        expect(await readdir(path.join(folder, 'zenith', 'locks'))).toEqual([])
        const leftovers = (await readdir(path.join(folder, 'zenith', 'packs'))).filter((name) => !/^[0-9a-f]{64}(\.idx)?$/.test(name))
        expect(leftovers).toEqual([])
        const target = await pullAndCheck(6230, `file://${folder}/zenith`, 'dev@fixture')
        await target.destroy()

        // A remote written before packs (one chunks/<sha256> object per chunk, times in
        // milliseconds, no `packs` in the manifest) is still pulled, with the right file times.
        const manifest = JSON.parse(await readFile(path.join(folder, 'zenith', 'manifests', 'dev@fixture.json'), 'utf8'))
        await mkdir(path.join(folder, 'old', 'chunks'), {recursive: true})
        await mkdir(path.join(folder, 'old', 'manifests'))
        for (const [pack, entries] of Object.entries(manifest.packs as Record<string, Array<[string, number, number]>>)) {
          const body = await readFile(path.join(folder, 'zenith', 'packs', pack))
          for (const [hash, offset, length] of entries) await writeFile(path.join(folder, 'old', 'chunks', hash), body.subarray(offset, offset + length))
        }

        const old = {...manifest}
        delete old.packs
        delete old.layout
        old.files = old.files.map((file: {mtime: number}) => ({...file, mtime: file.mtime * 1000 + 123}))
        await writeFile(path.join(folder, 'old', 'manifests', 'dev@fixture.json'), JSON.stringify(old))
        const fromOld = await pullAndCheck(6230, `file://${folder}/old`, 'dev@fixture')
        const base = path.join(fromOld.home, 'storages', 'local', 'snapshots')
        const pulled = path.join(base, (await readdir(base))[0], 'PG_VERSION')
        const expected = manifest.files.find((file: {path: string}) => file.path === 'PG_VERSION').mtime
        expect(Math.floor((await stat(pulled)).mtimeMs / 1000)).toBe(expected)
        await fromOld.destroy()
        // Destroying it there deletes its chunk objects.
        const chunkObjects = (await readdir(path.join(folder, 'old', 'chunks'))).length
        const destroyed = await source.ok(['snapshot', 'destroy', 'dev@fixture', '--storage', `file://${folder}/old`, '--json'])
        expect(destroyed.json).toMatchObject({collected: true, packsDeleted: 0, chunksDeleted: chunkObjects})
        expect(await readdir(path.join(folder, 'old', 'chunks'))).toEqual([])

        // A damaged pack removed with its index: pushing the same snapshot again (no --force)
        // stores its chunks anew and rewrites the manifest; the pull works again.
        const [pack] = Object.keys(manifest.packs)
        await rm(path.join(folder, 'zenith', 'packs', pack))
        await rm(path.join(folder, 'zenith', 'packs', `${pack}.idx`))
        const repaired = await source.ok(['snapshot', 'push', 'dev@fixture', '--to', 'share', '--json'])
        expect(repaired.json.upToDate).toBe(false)
        expect(repaired.json.chunksSent).toBe(manifest.packs[pack].length)
        const again = await pullAndCheck(6230, `file://${folder}/zenith`, 'dev@fixture')
        await again.destroy()

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

        await expectSourceAccounts(target, 'dev@fixture')
      } finally {
        await target.destroy()
      }
    })
  })

  test('pulled snapshot folders are byte-identical to the source (sha256 of every file)', async () => {
    const target = await TestHome.create(6250)
    try {
      await target.ok(['snapshot', 'pull', '--from', s3Url('snaps'), 'dev@changed'], {env})
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

/** path, type, mode, link target, mtime (whole seconds, as a manifest keeps it) and sha256 of every entry of a folder. */
async function treeDigest(root: string): Promise<string[]> {
  const {stdout} = await execa('find', ['.', '-mindepth', '1', '-printf', '%p %y %m %l %T@\\n'], {cwd: root})
  const lines: string[] = []
  for (const line of stdout.split('\n').sort()) {
    const [entry, type, mode, target, mtime] = line.split(' ')
    const digest = type === 'f' ? createHash('sha256').update(await readFile(path.join(root, entry))).digest('hex') : ''
    lines.push(`${entry} ${type} ${mode} ${target} ${type === 'l' ? '' : Math.floor(Number(mtime))} ${digest}`)
  }

  return lines
}

/**
 * A remote storage that cannot be read is listed with the reason, its size and snapshots unknown
 * (not `0B`, `snapshots: -`, which read as an empty bucket). Its own s3rver and home: no fixture.
 */
describe('remote storages that cannot be read', () => {
  let s3: S3Server
  let home: TestHome
  // No credentials anywhere the SDK looks: environment, shared files, profile, instance metadata.
  const noCredentials = {
    AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_SESSION_TOKEN: '', AWS_PROFILE: '',
    AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/credentials', AWS_CONFIG_FILE: '/nonexistent/config', AWS_EC2_METADATA_DISABLED: 'true',
  }

  beforeAll(async () => {
    s3 = await S3Server.start()
    await s3.createBucket(BUCKET)
    home = await TestHome.create(7200)
    await home.ok(['storage', 'attach', '-t', 's3', '-n', 'tank', '-c', `bucket=${BUCKET}`, '-c', `endpoint=${s3.endpoint}`], {env: S3_CREDENTIALS})
  })

  afterAll(async () => {
    await home?.destroy()
    await s3?.stop()
  })

  test('an s3 storage without credentials: unreachable with the reason in storage list and show, size unknown', async () => {
    const listed = await home.ok(['storage', 'list', '--json'], {env: noCredentials})
    const tank = listed.json.find((item: {name: string}) => item.name === 'tank')
    expect(tank.errorCode).toBe('AUTH_FAILED')
    expect(tank.error).toContain('No S3 credentials')
    expect(tank.usedBytes).toBeUndefined()

    const table = await home.ok(['storage', 'list'], {env: noCredentials})
    const row = table.stdout.split('\n').find((line) => line.startsWith('tank '))
    expect(row).toMatch(/^tank\s+\?\s+s3\s/)
    expect(table.stdout).toContain('tank: unreachable: No S3 credentials')

    const shown = await home.ok(['storage', 'show', 'tank'], {env: noCredentials})
    expect(shown.stdout).toContain('  unreachable: No S3 credentials')
    expect(shown.stdout).toContain('  used: ?')
    expect(shown.stdout).toContain('  snapshots: ?')
    expect(shown.stdout).not.toContain('0B')

    // With the credentials, the same storage reads as it is: empty.
    const readable = await home.ok(['storage', 'show', 'tank'], {env: S3_CREDENTIALS})
    expect(readable.stdout).toContain('  used: 0B')
    expect(readable.stdout).toContain('  snapshots: -')
    expect(readable.stdout).not.toContain('unreachable')
  })

  test('a stopped server: the same unreachable line', async () => {
    const stopped = await S3Server.start()
    await stopped.createBucket(BUCKET)
    await home.ok(['storage', 'attach', '-t', 's3', '-n', 'gone', '-c', `bucket=${BUCKET}`, '-c', `endpoint=${stopped.endpoint}`], {env: S3_CREDENTIALS})
    await stopped.stop()
    const table = await home.ok(['storage', 'list'], {env: S3_CREDENTIALS})
    expect(table.stdout).toMatch(/^gone\s+\?\s+s3\s/m)
    expect(table.stdout).toMatch(/^gone: unreachable: Cannot reach the S3 server/m)
  })
})

describe('snapshot recv --json', () => {
  let sender: TestHome
  let receiver: TestHome

  beforeAll(async () => {
    sender = await TestHome.create(7220)
    receiver = await TestHome.create(7230)
    await sender.ok(['pg', 'create', 'small'])
    await sender.ok(['snapshot', 'create', 'small@one'])
  })

  afterAll(async () => {
    await sender?.destroy()
    await receiver?.destroy()
  })

  test('stdout is exactly one JSON document, which names the URL; the URL itself is on stderr while it waits', async () => {
    const child = execa('node', [BIN, 'snapshot', 'recv', '--json'], {env: receiver.env(), reject: false, buffer: true})
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr!.on('data', (data: Buffer) => {
        const match = /^zenith:\/\/\S+$/m.exec(data.toString())
        if (match) resolve(match[0])
      })
      child.on('exit', () => reject(new Error('recv exited before printing its URL')))
    })
    await sender.ok(['snapshot', 'push', 'small@one', '--to', url])
    const done = await child
    expect(done.exitCode).toBe(0)
    const document = JSON.parse(String(done.stdout))
    expect(document).toMatchObject({url, snapshot: {name: 'small@one'}})
  })

  test('storage list OPTIONS says whether clones share blocks (cow=...), not copy=copy', async () => {
    const table = await receiver.ok(['storage', 'list'])
    expect(table.stdout).toMatch(/^local\s+\S+\s+local\s+cow=(no|reflink|btrfs)\s/m)
    expect(table.stdout).not.toContain('copy=')
  })
})

/** What a new user hits around push, storage attach and destroy (issue 9, item 14). */
describe('push targets, storage types and destroy --json', () => {
  let home: TestHome
  const folders: string[] = []
  const newFolder = async (): Promise<string> => {
    const folder = await mkdtemp(path.join(os.tmpdir(), 'zenith-remote-'))
    folders.push(folder)
    return folder
  }

  beforeAll(async () => {
    home = await TestHome.create(7240)
    await home.ok(['pg', 'create', 'small'])
    await home.ok(['snapshot', 'create', 'small@one'])
  })

  afterAll(async () => {
    await home?.destroy()
    for (const folder of folders) await rm(folder, {recursive: true, force: true})
  })

  test('an unknown push target and a local storage as target: the hint names what push accepts, not storage attach -t local', async () => {
    for (const to of ['nosuch', 'local']) {
      const refused = await home.run(['snapshot', 'push', 'small@one', '--to', to, '--json'])
      expect(refused.json.error.code).toBe(to === 'local' ? 'STORAGE_UNSUPPORTED' : 'STORAGE_NOT_FOUND')
      const {hint} = refused.json.error
      expect(hint).not.toContain('-t local')
      for (const form of ['-t s3', '-t dir', 's3://', 'file://', 'ssh://[user@]host[:port][/zenith/home]', 'zenith://']) expect(hint).toContain(form)
    }
  })

  test('storage attach -t native names the working types, zfs among them', async () => {
    const native = await home.run(['storage', 'attach', '-t', 'native', '-n', 'x', '-c', 'path=/tmp/x', '--json'])
    expect(native.json.error.code).toBe('INVALID_ARGUMENT')
    expect(native.json.error.hint).toContain('-t local, -t btrfs, -t zfs, -t s3, -t dir')
    // zfs is a type now: its own options are checked (a path is not one of them).
    const zfs = await home.run(['storage', 'attach', '-t', 'zfs', '-n', 'x', '-c', 'path=/tmp/x', '--json'])
    expect(zfs.json.error.code).toBe('INVALID_ARGUMENT')
    expect(zfs.json.error.message).toContain('Unknown option for a zfs storage: path')
    const help = await home.ok(['storage', 'attach', '--help'])
    expect(help.stdout).toContain('storage type: local, btrfs, zfs, s3, dir')
    expect(help.stdout).toContain('storage attach -t zfs -n tank -c dataset=tank/zenith')
  })

  test('snapshot push --help and pull --help show the ssh forms with a port, a ZENITH_HOME and ?zenith=', async () => {
    // Wide enough that no URL is wrapped.
    const wide = {env: {OCLIF_COLUMNS: '400'}}
    for (const command of ['push', 'pull']) {
      const help = (await home.ok(['snapshot', command, '--help'], wide)).stdout
      expect(help).toContain('ssh://[user@]host[:port][/zenith/home][?zenith=COMMAND')
      expect(help).toMatch(/ssh:\/\/deploy@db2\.internal:2222\/var\/lib\/zenith/)
      expect(help).toContain('?zenith=/opt/zenith/bin/run.js')
    }

    expect((await home.ok(['snapshot', 'push', '--help'], wide)).stdout).toContain('&storage=fast')
  })

  test('a first push to an empty remote counts chunks repeated within the snapshot as such, none as already at the remote', async () => {
    const folder = await newFolder()
    /** Every chunk of a pushed snapshot, and the distinct ones, from its manifest at the remote. */
    const chunksOf = async (remote: string, snapshot: string) => {
      const manifest = JSON.parse(await readFile(path.join(remote, 'manifests', `${snapshot}.json`), 'utf8')) as {files: Array<{chunks: string[]}>}
      const all = manifest.files.flatMap((file) => file.chunks)
      return {all: all.length, distinct: new Set(all).size}
    }

    const first = await home.ok(['snapshot', 'push', 'small@one', '--to', `file://${folder}/a`, '--json'])
    const one = await chunksOf(`${folder}/a`, 'small@one')
    // A fresh data directory repeats chunks (zeroed WAL segments, ...): what made "497 already there".
    expect(one.all).toBeGreaterThan(one.distinct)
    expect(first.json).toMatchObject({chunksSent: one.distinct, chunksAtRemote: 0, chunksRepeated: one.all - one.distinct, chunksSkipped: one.all - one.distinct})

    const human = await home.ok(['snapshot', 'push', 'small@one', '--to', `file://${folder}/b`])
    expect(human.stdout).toContain(`; ${one.distinct} chunks uploaded, 0 already at the remote, ${one.all - one.distinct} repeated within the snapshot.`)
    expect(human.stdout).not.toContain('already there')

    // A second snapshot of the same pg: most of its chunks are now at the remote.
    await home.ok(['snapshot', 'create', 'small@two'])
    const second = await home.ok(['snapshot', 'push', 'small@two', '--to', `file://${folder}/a`, '--json'])
    const two = await chunksOf(`${folder}/a`, 'small@two')
    expect(second.json.chunksAtRemote).toBeGreaterThan(0)
    expect(second.json.chunksSent + second.json.chunksAtRemote).toBe(two.distinct)
    expect(second.json.chunksRepeated).toBe(two.all - two.distinct)

    // Pushed again as it is: nothing sent, the same split.
    const again = await home.ok(['snapshot', 'push', 'small@two', '--to', `file://${folder}/a`, '--json'])
    expect(again.json).toMatchObject({upToDate: true, chunksSent: 0, chunksAtRemote: two.distinct, chunksRepeated: two.all - two.distinct})
  })

  test('snapshot destroy --json prints exactly one JSON document on stdout: local, -s local, --force, and at a dir remote (name and URL)', async () => {
    /** The whole of stdout is one JSON document (JSON.parse refuses two, or none, or a line of text around it). */
    const oneDocument = (result: {stdout: string}): any => {
      expect(result.stdout.trim()).toMatch(/^\{[\s\S]*\}$/)
      return JSON.parse(result.stdout)
    }

    for (const tag of ['d1', 'd2', 'd3', 'd4', 'd5']) await home.ok(['snapshot', 'create', `small@${tag}`])
    expect(oneDocument(await home.ok(['snapshot', 'destroy', 'small@d1', '--json']))).toEqual({name: 'small@d1'})
    expect(oneDocument(await home.ok(['snapshot', 'destroy', 'small@d2', '--force', '--json']))).toEqual({name: 'small@d2'})
    expect(oneDocument(await home.ok(['snapshot', 'destroy', 'small@d3', '-s', 'local', '--json']))).toEqual({remote: false, storage: 'local', name: 'small@d3'})

    const folder = await newFolder()
    await home.ok(['storage', 'attach', '-t', 'dir', '-n', 'shelf', '-c', `path=${folder}/shelf`])
    try {
      await home.ok(['snapshot', 'push', 'small@d4', '--to', 'shelf'])
      await home.ok(['snapshot', 'push', 'small@d5', '--to', 'shelf'])
      const byName = oneDocument(await home.ok(['snapshot', 'destroy', 'small@d4', '--storage', 'shelf', '--json']))
      expect(byName).toMatchObject({remote: true, name: 'small@d4', storage: 'shelf', collected: true})
      const byUrl = oneDocument(await home.ok(['snapshot', 'destroy', 'small@d5', '--storage', `file://${folder}/shelf`, '--force', '--json']))
      expect(byUrl).toMatchObject({remote: true, name: 'small@d5', collected: true})
      // A failure is one document too: the error.
      const missing = await home.run(['snapshot', 'destroy', 'small@d5', '--storage', 'shelf', '--json'])
      expect(missing.exitCode).not.toBe(0)
      expect(Object.keys(oneDocument(missing))).toEqual(['error'])
    } finally {
      await home.run(['storage', 'detach', 'shelf'])
    }

    // Without --json the human line, never mixed into the JSON.
    expect((await home.ok(['snapshot', 'destroy', 'small@d4'])).stdout.trim()).toBe('Ok')
  })
})

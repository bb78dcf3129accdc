import {execa} from 'execa'

import {compressChunk, hashChunk, newManifest} from '../../src/archive/chunker.js'
import {type Frame, readFrames, writeFrame, writeJsonFrame} from '../../src/protocol/frames.js'
import {SshServer, sshdUnavailable} from '../helpers/sshd.js'
import {ACCOUNTS_CHECKSUM, BIN, TestHome, pgbenchFixture} from '../helpers/zenith.js'


// Decided at module top level, before the run (describe.skip, not an early return inside each
// test), so that the closing line counts these tests as skipped rather than passed.
const unavailable = sshdUnavailable()
const describeWithSshd = unavailable ? describe.skip : describe

/**
 * Pushes and pulls between homes through a real OpenSSH server on 127.0.0.1 (the proposal's
 * `zenith snapshot push --to ssh://user@host`), and the stream protocol that carries them,
 * spoken to `zenith snapshot recv --stdio` directly.
 */
describeWithSshd(`ssh remotes${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  let sshd: SshServer
  let source: TestHome
  let sourceSum: string

  beforeAll(async () => {
    sshd = await SshServer.start()
    source = await TestHome.create(6500)
    sourceSum = await pgbenchFixture(source)
  }, 300_000)

  afterAll(async () => {
    await source?.destroy()
    await sshd?.stop()
  })

  /** ssh://root@127.0.0.1:PORT/<home>?zenith=<this checkout's bin/run.js> */
  const urlOf = (home: TestHome, zenith = BIN) => `ssh://root@127.0.0.1:${sshd.port}${home.home}?zenith=${encodeURIComponent(zenith)}`

  test('push to ssh://, then pull back over ssh into a third home: same table checksum', async () => {
    const target = await TestHome.create(6510)
    const third = await TestHome.create(6520)
    try {
      const pushed = await source.ok(['snapshot', 'push', 'dev@fixture', '--to', urlOf(target), '--json'], {env: sshd.env()})
      expect(pushed.json).toMatchObject({snapshot: 'dev@fixture', upToDate: false})
      expect(pushed.json.sentBytes).toBeLessThan(pushed.json.logicalBytes)
      expect((await target.ok(['snapshot', 'list', '--json'])).json.map((item: {name: string}) => item.name)).toEqual(['dev@fixture'])
      await target.ok(['pg', 'create', 'copy', '--snapshot', 'dev@fixture'])
      expect((await target.query<{sum: string; n: number}>('copy', ACCOUNTS_CHECKSUM))[0]).toEqual({sum: sourceSum, n: 100_000})

      // The same name again: refused there, nothing changed.
      const again = await source.run(['snapshot', 'push', 'dev@fixture', '--to', urlOf(target), '--json'], {env: sshd.env()})
      expect(again.exitCode).toBe(4)
      expect(again.json.error.code).toBe('NAME_TAKEN')

      // What the other host holds, listed there.
      const listed = await third.ok(['snapshot', 'list', '--storage', urlOf(target), '--json'], {env: sshd.env()})
      expect(listed.json.filter((item: {implicit: boolean}) => !item.implicit).map((item: {name: string; storage: string}) => [item.name, item.storage]))
        .toEqual([['dev@fixture', `ssh://root@127.0.0.1:${sshd.port}${target.home}`]])

      const pulled = await third.ok(['snapshot', 'pull', '--from', urlOf(target), 'dev@fixture', '--as', 'fixture', '--json'], {env: sshd.env()})
      expect(pulled.json).toMatchObject({remoteName: 'dev@fixture', chunksCached: 0})
      expect(pulled.json.snapshot.name).toBe('fixture')
      await third.ok(['pg', 'create', 'copy', '--snapshot', 'fixture'])
      expect((await third.query<{sum: string; n: number}>('copy', ACCOUNTS_CHECKSUM))[0]).toEqual({sum: sourceSum, n: 100_000})

      const missing = await third.run(['snapshot', 'pull', '--from', urlOf(target), 'dev@nope', '--json'], {env: sshd.env()})
      expect(missing.exitCode).toBe(3)
      expect(missing.json.error.code).toBe('SNAPSHOT_NOT_FOUND')
      expect(missing.json.error.message).toContain('dev@nope')
    } finally {
      await target.destroy()
      await third.destroy()
    }
  })

  test('a key the server does not know, or no zenith there: a clear error, nothing written', async () => {
    const target = await TestHome.create(6530)
    try {
      const denied = await source.run(['snapshot', 'push', 'dev@fixture', '--to', urlOf(target), '--json'], {env: sshd.env(sshd.otherKey)})
      expect(denied.exitCode).toBe(6)
      expect(denied.json.error.code).toBe('AUTH_FAILED')
      expect(denied.json.error.message).toContain('Permission denied')

      const noZenith = await source.run(['snapshot', 'push', 'dev@fixture', '--to', urlOf(target, '/nonexistent/zenith'), '--json'], {env: sshd.env()})
      expect(noZenith.exitCode).toBe(6)
      expect(noZenith.json.error.code).toBe('SOURCE_UNREACHABLE')
      expect(noZenith.json.error.hint).toContain('?zenith=')

      const refused = await source.run(['snapshot', 'push', 'dev@fixture', '--to', `ssh://root@127.0.0.1:9${target.home}`, '--json'], {env: sshd.env()})
      expect(refused.exitCode).toBe(6)
      expect(refused.json.error.code).toBe('SOURCE_UNREACHABLE')

      expect((await target.ok(['snapshot', 'list', '--json'])).json).toEqual([])
    } finally {
      await target.destroy()
    }
  })

  test('the stream protocol: chunks are verified as they arrive, an interrupted transfer is taken over by the next one', async () => {
    const target = await TestHome.create(6540)
    try {
      const files = await Promise.all(['one', 'two', 'three'].map(async (word) => {
        const content = Buffer.alloc(4096, word)
        return {path: word, content, hash: hashChunk(content), stored: await compressChunk(content)}
      }))
      const manifest = newManifest('dev@streamed', 15, [
        ...files.map((file) => ({path: file.path, type: 'file' as const, mode: 0o600, size: file.content.length, mtime: 1_700_000_000, chunks: [file.hash]})),
        {path: 'PG_VERSION', type: 'file' as const, mode: 0o600, size: 0, mtime: 1_700_000_000, chunks: []},
      ])
      const recv = () => {
        const child = execa('node', [BIN, 'snapshot', 'recv', '--stdio'], {env: target.env(), reject: false, buffer: false})
        return {child, frames: readFrames(child.stdout!)}
      }

      // Two chunks, then the sender goes away: nothing is created, the verified chunks are kept.
      const first = recv()
      await writeJsonFrame(first.child.stdin!, 'B', {snapshot: 'dev@streamed', protocol: 2, manifest})
      expect(await json(first.frames)).toEqual({type: 'E', value: {existing: [], protocol: 2}})
      for (const file of files.slice(0, 2)) await writeFrame(first.child.stdin!, 'C', Buffer.from(file.hash, 'hex'), file.stored)
      first.child.stdin!.end()
      expect(await json(first.frames)).toMatchObject({type: 'F', value: {error: {code: 'INTERRUPTED'}}})
      expect(await drain(first.frames)).toBe(0)
      expect((await first.child).exitCode).toBe(130)
      expect((await target.ok(['snapshot', 'list', '--json'])).json).toEqual([])

      // The next transfer is told what is already there; a damaged chunk is refused by name.
      const second = recv()
      await writeJsonFrame(second.child.stdin!, 'B', {snapshot: 'dev@streamed', protocol: 2, manifest})
      const {value} = await json(second.frames) as {value: {existing: string[]}}
      expect(value.existing.sort()).toEqual(files.slice(0, 2).map((file) => file.hash).sort())
      const damaged = Buffer.from(files[2].stored)
      damaged[damaged.length - 6] ^= 0xff
      await writeFrame(second.child.stdin!, 'C', Buffer.from(files[2].hash, 'hex'), damaged)
      expect(await json(second.frames)).toMatchObject({type: 'F', value: {error: {code: 'CHECKSUM_MISMATCH', message: expect.stringContaining(files[2].hash)}}})
      second.child.stdin!.end()
      expect(await drain(second.frames)).toBe(0)
      expect((await second.child).exitCode).toBe(7)
      expect((await target.ok(['snapshot', 'list', '--json'])).json).toEqual([])

      // The last chunk, then done: the snapshot is there, with the content sent.
      const third = recv()
      await writeJsonFrame(third.child.stdin!, 'B', {snapshot: 'dev@streamed', protocol: 2, manifest})
      expect(((await json(third.frames)).value as {existing: string[]}).existing).toHaveLength(2)
      await writeFrame(third.child.stdin!, 'C', Buffer.from(files[2].hash, 'hex'), files[2].stored)
      await writeJsonFrame(third.child.stdin!, 'D', {})
      expect(await json(third.frames)).toMatchObject({type: 'R', value: {snapshot: 'dev@streamed', logicalBytes: 3 * 4096}})
      third.child.stdin!.end()
      await drain(third.frames)
      expect((await third.child).exitCode).toBe(0)
      const shown = await target.ok(['snapshot', 'show', 'dev@streamed', '--json'])
      expect(shown.json.name).toBe('dev@streamed')
    } finally {
      await target.destroy()
    }
  })
})

async function json(frames: AsyncGenerator<Frame>): Promise<{type: string; value: unknown}> {
  const next = await frames.next()
  if (next.done) throw new Error('the stream ended')
  return {type: next.value.type, value: JSON.parse(next.value.payload.toString('utf8'))}
}

/** Reads the stream to its end (so that the process's output is consumed); the frames left. */
async function drain(frames: AsyncGenerator<Frame>): Promise<number> {
  let left = 0
  for (let next = await frames.next(); !next.done; next = await frames.next()) left++
  return left
}

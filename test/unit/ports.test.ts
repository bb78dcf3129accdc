import net from 'node:net'

import {isZenithError} from '../../src/errors.js'
import {allocatePort, checkPortFree, isPortFree} from '../../src/pg/ports.js'

// 6000-6099 belong to this suite's tests (other suites run at the same time on 6100+).
const BASE = 6040

function listen(port: number, host = '127.0.0.1'): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen({port, host}, () => resolve(server))
  })
}

function close(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()))
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught)
  if (!isZenithError(error)) throw new Error(`expected ${code}, got ${String(error)}`)
  expect(error.code).toBe(code)
}

describe('allocatePort', () => {
  it('returns the first port when nothing holds it', async () => {
    expect(await allocatePort([], BASE)).toBe(BASE)
  })

  it('skips ports that other pgs hold, even when nothing listens there', async () => {
    expect(await allocatePort([BASE, BASE + 1, BASE + 3], BASE)).toBe(BASE + 2)
  })

  it('skips a port a real process listens on', async () => {
    const server = await listen(BASE)
    try {
      expect(await isPortFree(BASE)).toBe(false)
      expect(await allocatePort([], BASE)).toBe(BASE + 1)
      expect(await allocatePort([BASE + 1], BASE)).toBe(BASE + 2)
    } finally {
      await close(server)
    }

    expect(await allocatePort([], BASE)).toBe(BASE)
  })

  it('skips a port held on the IPv6 loopback only', async () => {
    const server = await listen(BASE + 5, '::1').catch(() => undefined)
    if (!server) return // no IPv6 loopback here: nothing can listen there either
    try {
      expect(await allocatePort([], BASE + 5)).toBe(BASE + 6)
    } finally {
      await close(server)
    }
  })
})

describe('checkPortFree', () => {
  it('passes for a free port', async () => {
    await expect(checkPortFree(BASE + 10)).resolves.toBeUndefined()
  })

  it('gives PORT_IN_USE with a hint for a port in use', async () => {
    const server = await listen(BASE + 11)
    try {
      const error = await checkPortFree(BASE + 11).then(() => undefined, (caught: unknown) => caught)
      if (!isZenithError(error)) throw new Error(`expected PORT_IN_USE, got ${String(error)}`)
      expect(error.code).toBe('PORT_IN_USE')
      expect(error.message).toContain(String(BASE + 11))
      expect(error.hint).toContain('--port')
      expect(error.exitCode).toBe(4)
    } finally {
      await close(server)
    }
  })

  it.each([0, -1, 65_536, 1.5, Number.NaN])('rejects %p as INVALID_ARGUMENT', async (port) => {
    await expectCode(checkPortFree(port), 'INVALID_ARGUMENT')
  })
})

import {readFile} from 'node:fs/promises'
import net from 'node:net'

import {ZenithError} from '../errors.js'

/** ZENITH_FIRST_PORT moves the search (e.g. to keep parallel test runs apart). */
export const FIRST_PORT = Number(process.env.ZENITH_FIRST_PORT) || 5432
const LAST_PORT = 65_000

/** True when nothing listens on `port` on the loopback addresses postgres binds to. */
export async function isPortFree(port: number): Promise<boolean> {
  for (const host of ['127.0.0.1', '::1']) {
    const result = await tryBind(port, host)
    if (result === 'in-use') return false
  }

  return true
}

function tryBind(port: number, host: string): Promise<'free' | 'in-use' | 'no-address'> {
  return new Promise((resolve) => {
    const server = net.createServer()
    server.once('error', (error: NodeJS.ErrnoException) => {
      // A machine without IPv6 loopback cannot have a listener there either.
      resolve(error.code === 'EADDRNOTAVAIL' || error.code === 'EAFNOSUPPORT' ? 'no-address' : 'in-use')
    })
    server.listen({port, host, exclusive: true}, () => server.close(() => resolve('free')))
  })
}

/** The first port from `start` up that no other pg holds and nothing on the machine listens on. */
export async function allocatePort(taken: Iterable<number>, start = FIRST_PORT): Promise<number> {
  const held = new Set(taken)
  for (let port = start; port <= LAST_PORT; port++) {
    if (held.has(port)) continue
    if (await isPortFree(port)) return port
  }

  throw new ZenithError('NO_FREE_PORT', `No free TCP port from ${start} to ${LAST_PORT}.`, 'Stop or destroy pgs you no longer need, or pass --port.')
}

/**
 * A port postgres can listen on: a TCP port at or above the first unprivileged one (postgres
 * never runs as root, so it cannot bind below it). Checked before anything is saved.
 */
export async function validatePort(port: number): Promise<void> {
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new ZenithError('INVALID_ARGUMENT', `Port ${port} is not a TCP port.`, 'Use a number from 1024 to 65535.')
  }

  const firstUnprivileged = await firstUnprivilegedPort()
  if (port < firstUnprivileged) {
    throw new ZenithError('INVALID_ARGUMENT', `Port ${port} is a privileged port; postgres runs as an unprivileged user and cannot listen on it.`,
      `Use a port from ${firstUnprivileged} to 65535.`)
  }
}

export async function checkPortFree(port: number, owner?: string): Promise<void> {
  await validatePort(port)
  if (!(await isPortFree(port))) {
    throw new ZenithError('PORT_IN_USE', `Port ${port} is already in use by another process${owner ? ` (wanted by ${owner})` : ''}.`,
      `Find it with \`ss -ltnp 'sport = :${port}'\`, stop it, or choose another port with --port.`)
  }
}

async function firstUnprivilegedPort(): Promise<number> {
  if (process.platform !== 'linux') return 1024
  const text = await readFile('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8').catch(() => '1024')
  const value = Number(text.trim())
  return Number.isInteger(value) && value >= 0 ? value : 1024
}

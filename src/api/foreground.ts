import type {Zenith} from '../context.js'
import {recordRunningServer, forgetRunningServer} from './runtime.js'
import type {ServeOptions} from './server.js'

/**
 * `zenith serve` and `zenith console` in the foreground: listen, record the server for this
 * home, wait for SIGINT or SIGTERM, then stop cleanly (requests and clone work in flight finish).
 */
export async function serveUntilSignal(zenith: Zenith, options: ServeOptions & {onListening: (url: string) => Promise<void> | void; onStopping: (signal: string) => void}): Promise<{url: string; stoppedBy: string}> {
  // fastify is loaded here only, not at CLI start-up.
  const {serveApi} = await import('./server.js')
  const server = await serveApi(zenith, options)
  await recordRunningServer(zenith, server.url)
  try {
    const signal = new Promise<string>((resolve) => {
      process.once('SIGINT', () => resolve('SIGINT'))
      process.once('SIGTERM', () => resolve('SIGTERM'))
    })
    await options.onListening(server.url)
    const stoppedBy = await signal
    options.onStopping(stoppedBy)
    await server.close()
    return {url: server.url, stoppedBy}
  } finally {
    await forgetRunningServer(zenith)
  }
}

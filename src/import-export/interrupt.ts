import {ZenithError} from '../errors.js'

/**
 * Runs long work that Ctrl-C or SIGTERM should stop cleanly: the signal aborts `work` (child
 * processes are killed, streams destroyed) and the work's own error handling removes what it
 * made, instead of the process dying half-way. The caller's `signal` aborts it the same way.
 */
export async function interruptible<T>(work: (signal: AbortSignal) => Promise<T>, outer?: AbortSignal): Promise<T> {
  const controller = new AbortController()
  const onSignal = () => controller.abort()
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  const onOuter = () => controller.abort()
  outer?.addEventListener('abort', onOuter)
  try {
    return await work(controller.signal)
  } catch (error) {
    if (controller.signal.aborted) throw new ZenithError('INTERRUPTED', 'Interrupted; nothing was kept.', 'Run the command again.')
    throw error
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    outer?.removeEventListener('abort', onOuter)
  }
}

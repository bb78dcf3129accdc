import {performance} from 'node:perf_hooks'

/**
 * `DEBUG=zenith:timing` (or `zenith:*`, `*`) prints one line per step of a command on stderr:
 * `step  ms  (at ms)`, the step's own duration and the time since the process started. The fixed
 * cost of a command (start-up, store, external programs) is then visible in any run, so that a
 * regression shows without a profiler. Off, it costs one regular expression at load.
 */
const enabled = /(^|[\s,])(zenith:timing|zenith:\*|\*)($|[\s,])/.test(process.env.DEBUG ?? '')

export function timingEnabled(): boolean {
  return enabled
}

/** Reports a step that took `ms`, ending now. */
export function reportStep(step: string, ms: number): void {
  if (!enabled) return
  process.stderr.write(`${step}  ${ms.toFixed(1)}  (at ${performance.now().toFixed(1)})\n`)
}

/** Reports the time since the process started (node, oclif and the command module loading). */
export function reportSinceStart(step: string): void {
  if (enabled) reportStep(step, performance.now())
}

/** Runs `work` and reports how long it took under `step`. */
export async function timed<T>(step: string, work: () => Promise<T>): Promise<T> {
  if (!enabled) return work()
  const start = performance.now()
  try {
    return await work()
  } finally {
    reportStep(step, performance.now() - start)
  }
}

/** Chunks compressed (or, to a recv, uploaded) at once, and chunk requests of a pull in flight: bounded memory (N x chunk size). */
export const TRANSFER_CONCURRENCY = 16

/**
 * Runs at most `limit` tasks at once. `run` waits for a free slot, so a producer that reads a
 * file chunk by chunk never holds more than `limit` chunks in memory; the first failure stops
 * the producer at its next `run` and is thrown by `drain`.
 */
export class TaskPool {
  private readonly running = new Set<Promise<void>>()
  private failure: {error: unknown} | undefined

  constructor(private readonly limit: number) {}

  async run(task: () => Promise<void>): Promise<void> {
    while (this.running.size >= this.limit) await Promise.race(this.running)
    this.throwIfFailed()
    const promise: Promise<void> = task().catch((error: unknown) => {
      this.failure ??= {error}
    }).finally(() => {
      this.running.delete(promise)
    })
    this.running.add(promise)
  }

  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.race(this.running)
    this.throwIfFailed()
  }

  /** Waits for the tasks still running, whatever they do: before removing what they write into. */
  async settle(): Promise<void> {
    while (this.running.size > 0) await Promise.race(this.running)
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.error
  }
}

/** Chunks compressed (or, to a recv, uploaded) at once, and chunk requests of a pull in flight: bounded memory (N x chunk size). */
export const TRANSFER_CONCURRENCY = 16

/**
 * The one concurrency limiter of zenith (chunks of a push, requests of a pull, pack uploads,
 * pack index reads, deletes of a collection). Runs at most `limit` tasks at once. `run` waits
 * for a free slot, so a producer that reads a file chunk by chunk never holds more than `limit`
 * chunks in memory; the first failure stops the producer at its next `run` and is thrown by
 * `drain`.
 *
 * Not p-limit: its `limit(task)` returns at once and queues without bound, so a producer reading
 * a 100 GB data directory would queue every chunk in memory; back-pressure and "stop at the
 * first failure" would need this same wrapper around it. p-queue has `onSizeLessThan` for that,
 * but is a dependency for 40 lines.
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

  /** Runs `task` for each item, `limit` at once, and waits for all: the first failure is thrown. */
  async forEach<T>(items: Iterable<T>, task: (item: T) => Promise<void>): Promise<void> {
    for (const item of items) await this.run(() => task(item))
    await this.drain()
  }

  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.race(this.running)
    this.throwIfFailed()
  }

  /** Waits for the tasks still running, whatever they do: before removing what they write into. */
  async settle(): Promise<void> {
    while (this.running.size > 0) await Promise.race(this.running)
  }

  /** Throws the first failure of a task, if one failed. */
  throwIfFailed(): void {
    if (this.failure) throw this.failure.error
  }
}

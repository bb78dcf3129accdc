import type {OnProgress, ProgressEvent} from '../progress.js'
import {formatBytes, formatRate} from './format.js'

/**
 * Renders domain progress on stderr: steps as lines; bytes as a bar with percent and MB/s on a
 * TTY, and as a plain line every few seconds otherwise. Silent under --json.
 */
export function progressRenderer(options: {json: boolean; stream?: NodeJS.WriteStream}): OnProgress {
  const stream = options.stream ?? process.stderr
  if (options.json) return () => {}
  const tty = Boolean(stream.isTTY)
  const started = new Map<string, {at: number; lastPrint: number}>()
  let bar: {update(done: number, payload?: object): void; setTotal(total: number): void; stop(): void} | undefined
  let barLabel: string | undefined

  return (event: ProgressEvent) => {
    if (event.type === 'step') {
      stream.write(`${event.message}.\n`)
      return
    }

    const now = Date.now()
    const state = started.get(event.label) ?? {at: now, lastPrint: 0}
    started.set(event.label, state)
    const seconds = (now - state.at) / 1000
    if (event.type === 'bytes-end') {
      bar?.stop()
      bar = undefined
      stream.write(`${event.label}: ${formatBytes(event.done)} in ${seconds.toFixed(1)}s (${formatRate(event.done, seconds)}).\n`)
      started.delete(event.label)
      return
    }

    if (tty) {
      if (!bar || barLabel !== event.label) {
        bar?.stop()
        bar = textBar(stream, event.label)
        barLabel = event.label
      }

      if (event.total) bar.setTotal(event.total)
      bar.update(event.done, {rate: formatRate(event.done, seconds)})
      return
    }

    if (now - state.lastPrint >= 2000) {
      state.lastPrint = now
      const percent = event.total ? ` ${Math.min(100, Math.floor((event.done / event.total) * 100))}%` : ''
      stream.write(`${event.label}:${percent} ${formatBytes(event.done)}${event.total ? ` of ${formatBytes(event.total)}` : ''} (${formatRate(event.done, seconds)})\n`)
    }
  }
}

/** A one-line bar redrawn in place: `label [=====-----] 60% | 120M/200M | 20M/s`. */
function textBar(stream: NodeJS.WriteStream, label: string) {
  let total = 0
  let lastDraw = 0
  const draw = (done: number, rate: string, force = false) => {
    const now = Date.now()
    if (!force && now - lastDraw < 100) return
    lastDraw = now
    const fraction = total > 0 ? Math.min(1, done / total) : 0
    const width = 32
    const filled = Math.round(fraction * width)
    const percent = total > 0 ? `${Math.floor(fraction * 100)}%` : '?%'
    stream.write(`\r${label} [${'='.repeat(filled)}${'-'.repeat(width - filled)}] ${percent} | ${formatBytes(done)}${total ? `/${formatBytes(total)}` : ''} | ${rate}\u001B[K`)
  }

  let last = {done: 0, rate: ''}
  return {
    setTotal(value: number) {
      total = value
    },
    update(done: number, payload?: object) {
      last = {done, rate: (payload as {rate?: string} | undefined)?.rate ?? ''}
      draw(done, last.rate)
    },
    stop() {
      draw(last.done, last.rate, true)
      stream.write('\n')
    },
  }
}

import type {OnProgress, ProgressEvent} from '../progress.js'
import {maskPasswords} from '../secrets.js'
import {formatBytes, formatRate} from './format.js'

/**
 * Renders domain progress on stderr: steps as lines; bytes as a bar with percent and MB/s on a
 * TTY, and as a plain line every few seconds otherwise. Silent under --json.
 */
export function progressRenderer(options: {json: boolean; stream?: NodeJS.WriteStream}): OnProgress {
  const stream = options.stream ?? process.stderr
  if (options.json) return () => {}
  const tty = Boolean(stream.isTTY)
  // Loaded only where a bar can be drawn; until it is, bytes are reported as plain lines.
  let cliProgress: CliProgress | undefined
  if (tty) void import('cli-progress').then((module) => {
    cliProgress = (module.default ?? module) as CliProgress
  })
  const started = new Map<string, {at: number; lastPrint: number}>()
  let bar: {update(done: number, payload?: object): void; setTotal(total: number): void; stop(): void} | undefined
  let barLabel: string | undefined

  return (event: ProgressEvent) => {
    if (event.type === 'step') {
      stream.write(`${maskPasswords(event.message)}.\n`)
      return
    }

    const now = Date.now()
    const state = started.get(event.label) ?? {at: now, lastPrint: now}
    started.set(event.label, state)
    const seconds = (now - state.at) / 1000
    if (event.type === 'bytes-end') {
      bar?.stop()
      bar = undefined
      stream.write(`${event.label}: ${formatBytes(event.done)} in ${seconds.toFixed(1)}s (${formatRate(event.done, seconds)}).\n`)
      started.delete(event.label)
      return
    }

    if (tty && cliProgress) {
      if (!bar || barLabel !== event.label) {
        bar?.stop()
        bar = textBar(stream, event.label, cliProgress)
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

type CliProgress = typeof import('cli-progress')

/** `label [=====-----] 60% | 120M/200M | 20M/s`, drawn by cli-progress on the TTY. */
function textBar(stream: NodeJS.WriteStream, label: string, cliProgress: CliProgress) {
  const bar = new cliProgress.SingleBar({
    stream,
    format: `${label} [{bar}] {percentage}% | {doneText}/{totalText} | {rate}`,
    barsize: 32,
    hideCursor: true,
    etaBuffer: 20,
    fps: 10,
  }, cliProgress.Presets.legacy)
  let total = 0
  let started = false
  return {
    setTotal(value: number) {
      total = value
      if (started) bar.setTotal(value)
    },
    update(done: number, payload?: object) {
      const tokens = {...payload, doneText: formatBytes(done), totalText: total ? formatBytes(total) : '?'}
      if (!started) {
        bar.start(total || Math.max(done, 1), done, tokens)
        started = true
      } else {
        if (!total && done > bar.getTotal()) bar.setTotal(done)
        bar.update(done, tokens)
      }
    },
    stop() {
      if (started) bar.stop()
    },
  }
}

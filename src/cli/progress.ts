import type {OnProgress, ProgressEvent} from '../progress.js'
import {maskPasswords} from '../secrets.js'
import {formatBytes, formatRate} from './format.js'

/** A command's progress on stderr, and the end of it (the last step done, or failed). */
export interface ProgressView {
  onProgress: OnProgress
  finish(failed?: boolean): Promise<void>
}

/** A rate over less than this is noise (a 4 KB file "at 400 MB/s"): none is shown. */
const RATE_AFTER_SECONDS = 1

/**
 * Renders domain progress on stderr, silent under --json. On a terminal each step is a live
 * listr2 task (a spinner, then a tick and its duration when the next step starts) and a byte
 * stream is a cli-progress bar; elsewhere (a pipe, a log, CI) the same steps are plain lines and
 * bytes a line every few seconds, so that logs read the same as before.
 */
export function progressRenderer(options: {json: boolean; stream?: NodeJS.WriteStream}): ProgressView {
  const stream = options.stream ?? process.stderr
  if (options.json) return {onProgress: () => {}, finish: async () => {}}
  const tty = Boolean(stream.isTTY)
  const bytes = byteRenderer(stream, tty)
  if (!tty) {
    return {
      onProgress: (event) => (event.type === 'step' ? stream.write(`${maskPasswords(event.message)}.\n`) : bytes(event)),
      finish: async () => {},
    }
  }

  const steps = liveSteps(stream)
  // Events arrive synchronously and a step's rendering ends asynchronously: one chain keeps
  // a step, the bar after it and the next step from drawing over each other.
  let chain = Promise.resolve()
  const then = (work: () => Promise<void> | void) => {
    chain = chain.then(work).catch(() => undefined)
  }

  return {
    onProgress(event) {
      if (event.type === 'step') then(() => steps.start(maskPasswords(event.message)))
      else then(async () => {
        // A bar draws below finished steps, never under a spinner that redraws the screen.
        await steps.end()
        bytes(event)
      })
    },
    async finish(failed = false) {
      then(() => steps.end(failed))
      await chain
    },
  }
}

/** One listr2 list per step: the step runs until the next event, then shows its duration. */
function liveSteps(stream: NodeJS.WriteStream): {start(title: string): Promise<void>; end(failed?: boolean): Promise<void>} {
  let current: {settle(failed: boolean): void; rendered: Promise<unknown>} | undefined
  const end = async (failed = false) => {
    if (!current) return
    const step = current
    current = undefined
    step.settle(failed)
    await step.rendered.catch(() => undefined)
  }

  return {
    end,
    async start(title) {
      await end()
      const {Listr, ListrLogger, PRESET_TIMER, ProcessOutput} = await import('listr2')
      let settle: (failed: boolean) => void = () => {}
      const running = new Promise<void>((resolve, reject) => {
        settle = (failed) => (failed ? reject(new Error(title)) : resolve())
      })
      // A step that fails before listr2 has started its task is still handled (by listr2 later).
      running.catch(() => undefined)
      const list = new Listr([{title, task: () => running}], {
        renderer: 'default',
        rendererOptions: {timer: PRESET_TIMER, collapseErrors: true, showErrorMessage: false, logger: new ListrLogger({processOutput: new ProcessOutput(stream, stream === process.stdout ? process.stderr : process.stdout)})},
        // zenith's own SIGINT handling (repair on the next command) stays in charge.
        registerSignalListeners: false,
        fallbackRendererCondition: false,
        exitOnError: true,
      })
      current = {settle, rendered: list.run()}
    },
  }
}

/** Bytes as a bar on a terminal (cli-progress), else as a line every few seconds; a summary at the end. */
function byteRenderer(stream: NodeJS.WriteStream, tty: boolean): (event: Exclude<ProgressEvent, {type: 'step'}>) => void {
  // Loaded only where a bar can be drawn; until it is, bytes are reported as plain lines.
  let cliProgress: CliProgress | undefined
  if (tty) void import('cli-progress').then((module) => {
    cliProgress = (module.default ?? module) as CliProgress
  })
  const started = new Map<string, {at: number; lastPrint: number}>()
  let bar: ReturnType<typeof textBar> | undefined
  let barLabel: string | undefined
  return (event) => {
    const now = Date.now()
    const state = started.get(event.label) ?? {at: now, lastPrint: now}
    started.set(event.label, state)
    const seconds = (now - state.at) / 1000
    const rate = seconds >= RATE_AFTER_SECONDS ? formatRate(event.done, seconds) : undefined
    if (event.type === 'bytes-end') {
      bar?.stop()
      bar = undefined
      stream.write(`${event.label}: ${formatBytes(event.done)} in ${seconds.toFixed(1)}s${rate ? ` (${rate})` : ''}.\n`)
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
      bar.update(event.done, {rate: rate ?? '-'})
      return
    }

    if (now - state.lastPrint >= 2000) {
      state.lastPrint = now
      const percent = event.total ? ` ${Math.min(100, Math.floor((event.done / event.total) * 100))}%` : ''
      stream.write(`${event.label}:${percent} ${formatBytes(event.done)}${event.total ? ` of ${formatBytes(event.total)}` : ''}${rate ? ` (${rate})` : ''}\n`)
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

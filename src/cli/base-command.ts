import {Command} from '@oclif/core/command'

import type {Zenith} from '../context.js'
import {openZenith} from '../home.js'
import {ZenithError, explainSystemError} from '../errors.js'
import type {OnProgress} from '../progress.js'
import {recoverInterrupted} from '../recovery.js'
import {maskPasswords} from '../secrets.js'
import {reportSinceStart, timed} from '../timing.js'
import {type ProgressView, progressRenderer} from './progress.js'
import {type Writer, writer} from './writer.js'

/**
 * Owns what every command shares: --json, ZENITH_HOME and the store, repair of work a killed
 * command left behind, progress on stderr, and turning errors into exit codes and
 * `{"error": {code, message, hint}}`.
 */
export abstract class BaseCommand extends Command {
  static override enableJsonFlag = true
  private zenithPromise?: Promise<Zenith>
  private resultWriter?: Writer
  private progressView?: ProgressView

  override async init(): Promise<void> {
    reportSinceStart('start-up (node, oclif, command module)')
    await super.init()
  }


  /** The opened ZENITH_HOME; opening it also repairs what an interrupted command left. */
  protected openZenith(): Promise<Zenith> {
    this.zenithPromise ??= timed('open home and store', () => openZenith()).then(async (zenith) => {
      for (const repair of await timed('repair check', () => recoverInterrupted(zenith))) {
        process.stderr.write(`${repair.failed ? 'Could not repair' : 'Repaired'} ${repair.item}: ${repair.action.replace(/\.$/, '')}.\n`)
      }

      return zenith
    })
    return this.zenithPromise
  }

  /**
   * Prints the result for a person (table, layout, sentence) and gives the data back: `run()`
   * returns it, and under --json oclif prints that value as the one JSON document on stdout.
   */
  protected get writer(): Writer {
    this.resultWriter ??= writer({json: this.jsonEnabled()})
    return this.resultWriter
  }

  /** One renderer per command run: its live steps end (done or failed) before the command does. */
  protected get progress(): OnProgress {
    this.progressView ??= progressRenderer({json: this.jsonEnabled()})
    return this.progressView.onProgress
  }

  protected override async finally(error: Error | undefined): Promise<void> {
    await this.progressView?.finish(error !== undefined)
    await super.finally(error)
    reportSinceStart('total')
  }

  protected override async catch(error: Error & {exitCode?: number; oclif?: {exit?: number}; code?: string}): Promise<void> {
    // this.exit() and --help/--version signal through errors oclif must see.
    if (error.code === 'EEXIT' || error.oclif?.exit === 0) throw error
    // The step that failed shows it before the error is printed below it.
    await this.progressView?.finish(true)
    // Every message may quote a URL the user typed (ours, a library's, a tool's): the last
    // place a password can be caught before it is printed.
    const described = describeFailure(error)
    const failure = {...described, message: maskPasswords(described.message), hint: described.hint === undefined ? undefined : maskPasswords(described.hint)}
    process.exitCode = failure.exitCode
    if (this.jsonEnabled()) {
      // A result that comes with the error (doctor's report) is in the same document: {...result, error}.
      this.logJson({...failure.result, error: {code: failure.code, message: failure.message, hint: failure.hint}})
      return
    }

    // chalk's stderr instance colours only when stderr is a terminal that supports it.
    const {chalkStderr: paint} = await import('chalk')
    process.stderr.write(`${paint.red.bold('Error:')} ${failure.message}\n`)
    if (failure.hint) process.stderr.write(`${paint.yellow('Hint:')} ${failure.hint}\n`)
    if (failure.code === 'BUG' && process.env.DEBUG) process.stderr.write(`${error.stack}\n`)
  }
}

function describeFailure(raw: Error & {oclif?: {exit?: number}}): {code: string; message: string; hint?: string; exitCode: number; result?: Record<string, unknown>} {
  const error = explainSystemError(raw) ?? raw
  if (error instanceof ZenithError) return {code: error.code, message: error.message, hint: error.hint, exitCode: error.exitCode, result: error.result}
  if (error.oclif?.exit !== undefined) {
    // A parse error from oclif (unknown flag, missing argument): the user's input.
    return {code: 'INVALID_ARGUMENT', message: error.message.split('\n')[0], hint: error.message.split('\n').slice(1).join(' ').trim() || 'See --help.', exitCode: 2}
  }

  return {
    code: 'BUG',
    message: `zenith hit an unexpected error: ${error.message}`,
    hint: 'This is a bug in zenith; run again with DEBUG=1 for the stack trace and report it.',
    exitCode: 1,
  }
}

import {Command} from '@oclif/core/command'

import {type CommandShape, completeNames} from '../cli/completion.js'
import {resolveHome} from '../context.js'
import {Store} from '../state/store.js'

/**
 * `zenith complete -- WORDS...`: what the shell completion scripts ask for the names that may
 * complete the last word (see cli/completion.ts). Hidden, and quiet on any failure: a completion
 * never prints an error into the user's command line. It reads the store only (no repair, no lock).
 */
export default class Complete extends Command {
  static override hidden = true
  static override strict = false
  static override description = 'Print the names that complete the last word (used by the shell completion scripts)'

  async run() {
    const {argv} = await this.parse(Complete)
    try {
      const data = await new Store(resolveHome()).read()
      const commands: Record<string, CommandShape> = {}
      for (const command of this.config.commands) {
        const optionFlags = new Set<string>()
        for (const [name, flag] of Object.entries(command.flags)) {
          if (flag.type !== 'option') continue
          optionFlags.add(`--${name}`)
          if (flag.char) optionFlags.add(`-${flag.char}`)
        }

        commands[command.id] = {optionFlags}
      }

      const names = completeNames(argv as string[], commands, data)
      if (names.length > 0) process.stdout.write(`${names.join('\n')}\n`)
    } catch {
      // Nothing to offer: the shell falls back to its own completion.
    }
  }
}

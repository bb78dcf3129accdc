import type {Hook} from '@oclif/core/hooks'
import {toConfiguredId} from '@oclif/core/util/ids'

import {PLANNED_COMMANDS, plannedCommand} from '../cli/planned-commands.js'
import {ZenithError} from '../errors.js'

/**
 * `zenith pg creat` names the command the user most likely meant and exits 2 (a usage error),
 * also when stdin is not a terminal: @oclif/plugin-not-found only suggests interactively, and
 * scripts and CI logs need the hint too. Nothing is run on the user's behalf. A command of the
 * product that this version lacks (`pitr create`) says so instead (NOT_AVAILABLE_YET).
 */
const hook: Hook<'command_not_found'> = async function (options) {
  const visible = options.config.commands.filter((command) => !command.hidden)
  const ids = [...visible.map((command) => command.id), ...visible.flatMap((command) => command.aliases)]
  const error = explainUnknownCommand(options.id, ids, (id) => toConfiguredId(id, options.config), options.config.bin)
  if (options.argv?.includes('--json')) {
    process.stdout.write(JSON.stringify({error: {code: error.code, message: error.message, hint: error.hint}}, null, 2) + '\n')
  } else {
    process.stderr.write(`Error: ${error.message}\nHint: ${error.hint}\n`)
  }

  this.exit(error.exitCode)
}

export default hook

/**
 * oclif hands over everything typed before the first flag, arguments included
 * (`pg:craete:foo`): the command is the longest leading part that is a planned command or near
 * a real one; what follows it are its arguments, kept in the suggestion.
 */
export function explainUnknownCommand(id: string, ids: string[], show: (id: string) => string, bin: string, planned: readonly string[] = PLANNED_COMMANDS): ZenithError {
  const parts = id.split(':')
  const prefixes = parts.map((_, i) => parts.slice(0, parts.length - i).join(':'))
  // Planned first: `pg promote a` is a command to come, not a typo of `pg create`.
  for (const typed of prefixes) {
    const found = plannedCommand(typed, ids, planned)
    if (found) {
      return new ZenithError('NOT_AVAILABLE_YET', `"${show(found)}" is not available yet in this version of ${bin}.`,
        `It is planned; run \`${bin} --help\` for the commands this version has.`)
    }
  }

  // Then the nearest typo over every split into command and arguments (the longer on a tie).
  let best: {typed: string; suggestion: string; distance: number} | undefined
  for (const typed of prefixes) {
    const suggestion = closestCommand(typed, ids)
    const distance = suggestion === undefined ? Number.POSITIVE_INFINITY : editDistance(typed, suggestion)
    if (suggestion !== undefined && (!best || distance < best.distance)) best = {typed, suggestion, distance}
  }

  if (best) {
    const rest = parts.slice(best.typed.split(':').length).join(' ')
    return new ZenithError('INVALID_ARGUMENT', `"${show(best.typed)}" is not a ${bin} command.`, `Did you mean "${show(best.suggestion)}${rest ? ` ${rest}` : ''}"?`)
  }

  return new ZenithError('INVALID_ARGUMENT', `"${show(parts[0])}" is not a ${bin} command.`, `Run \`${bin} --help\` for the list of commands.`)
}

/** The id nearest to `id` by edit distance, if it is near enough to be a typo rather than a guess. */
export function closestCommand(id: string, ids: string[]): string | undefined {
  let best: {id: string; distance: number} | undefined
  for (const candidate of ids) {
    const distance = editDistance(id, candidate)
    if (!best || distance < best.distance) best = {id: candidate, distance}
  }

  return best && best.distance <= Math.max(2, Math.floor(id.length / 3)) ? best.id : undefined
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({length: b.length + 1}, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
    }

    previous = current
  }

  return previous[b.length]
}

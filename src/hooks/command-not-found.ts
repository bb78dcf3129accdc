import {type Hook, toConfiguredId} from '@oclif/core'

/**
 * `zenith pg creat` names the command the user most likely meant and exits 2 (a usage error),
 * also when stdin is not a terminal: @oclif/plugin-not-found only suggests interactively, and
 * scripts and CI logs need the hint too. Nothing is run on the user's behalf.
 */
const hook: Hook<'command_not_found'> = async function (options) {
  const visible = options.config.commands.filter((command) => !command.hidden)
  const ids = [...visible.map((command) => command.id), ...visible.flatMap((command) => command.aliases)]
  const typed = toConfiguredId(options.id, options.config)
  const suggestion = closestCommand(options.id, ids)
  const hint = suggestion === undefined ? `Run \`${options.config.bin} --help\` for the list of commands.` : `Did you mean "${toConfiguredId(suggestion, options.config)}"?`
  const message = `"${typed}" is not a ${options.config.bin} command.`
  if (options.argv?.includes('--json')) {
    process.stdout.write(JSON.stringify({error: {code: 'INVALID_ARGUMENT', message, hint}}, null, 2) + '\n')
  } else {
    process.stderr.write(`Error: ${message}\n${hint}\n`)
  }

  this.exit(2)
}

export default hook

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

import {ZenithError} from './errors.js'

/**
 * `key=value`, split at the first `=` (a value may hold more of them): the -c options of a
 * storage and the --set settings of a pg. Undefined without `=` or with nothing before it.
 * (Options in a URL's query are URLSearchParams' job, see urls.ts.)
 */
export function splitKeyValue(pair: string): [key: string, value: string] | undefined {
  const eq = pair.indexOf('=')
  return eq > 0 ? [pair.slice(0, eq), pair.slice(eq + 1)] : undefined
}

/** Repeated `-c key=value` options as one object (a later key wins). */
export function parseOptions(pairs: string[]): Record<string, string> {
  const options: Record<string, string> = {}
  for (const pair of pairs) {
    const split = splitKeyValue(pair)
    if (!split) throw new ZenithError('INVALID_ARGUMENT', `"${pair}" is not key=value.`, 'Write -c key=value, e.g. -c path=/mnt/data.')
    options[split[0]] = split[1]
  }

  return options
}

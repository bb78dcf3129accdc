import {isZenithError} from '../errors.js'

export type CheckStatus = 'ok' | 'warn' | 'fail'

/** One line of `zenith doctor`: what was checked, how it went, and for a miss the command that fixes it. */
export interface Check {
  name: string
  status: CheckStatus
  detail: string
  fix?: string
}

/** A check that has not answered by then fails on its own, and the others still report. */
const CHECK_TIMEOUT_MS = 20_000

/**
 * The check(s) `work` gives, or one failing check named `name` when it throws (what it threw is
 * the detail, its hint the fix) or does not answer within `timeoutMs`.
 */
export async function settle(name: string, work: Promise<Check | Check[]>, timeoutMs = CHECK_TIMEOUT_MS): Promise<Check[]> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<Check>((resolve) => {
    timer = setTimeout(() => resolve({name, status: 'fail', detail: `no answer within ${timeoutMs / 1000} s`, fix: 'Find what hangs (a dead network mount, a tool that does not answer) and run zenith doctor again'}), timeoutMs)
    // A hung check must not keep zenith alive once the report is printed.
    timer.unref()
  })
  try {
    const result = await Promise.race([work, deadline])
    return Array.isArray(result) ? result : [result]
  } catch (error) {
    if (isZenithError(error)) return [{name, status: 'fail', detail: error.message.replace(/\.$/, ''), fix: error.hint?.replace(/\.$/, '')}]
    return [{name, status: 'fail', detail: `the check itself failed: ${error instanceof Error ? error.message : String(error)}`, fix: 'Run zenith doctor again with DEBUG=1 and report it as a bug'}]
  } finally {
    clearTimeout(timer)
  }
}

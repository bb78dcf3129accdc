import {EXIT_CODES, ZenithError, explainSystemError} from '../errors.js'
import {maskPasswords} from '../secrets.js'

/** The error model of the API (reference/002): a stable code, a readable name, what happened and what to do. */
export interface ApiErrorBody {
  code: string
  name: string
  message: string
  hint?: string
}

/**
 * HTTP status by the class of a code, the same classes as the CLI's exit codes: bad input 400,
 * a wrong token 401, unknown things 404, conflicts 409, what the machine or the store cannot do
 * now 503, broken data, failed tools and bugs 500.
 */
export function httpStatusOf(error: ZenithError): number {
  if (error.code === 'AUTH_FAILED') return 401
  switch (error.exitCode) {
    case EXIT_CODES.USAGE: return 400
    case EXIT_CODES.NOT_FOUND: return 404
    case EXIT_CODES.CONFLICT: return 409
    case EXIT_CODES.STATE:
    case EXIT_CODES.ENVIRONMENT:
    case EXIT_CODES.INTERRUPTED: return 503
    default: return 500
  }
}

/** `PG_NOT_FOUND` reads "Pg not found". */
export function errorName(code: string): string {
  const words = code.toLowerCase().replaceAll('_', ' ')
  return words.charAt(0).toUpperCase() + words.slice(1)
}

/** Any failure as its HTTP status and body; passwords in messages (URLs) are masked. */
export function describeApiError(raw: unknown): {status: number; body: ApiErrorBody} {
  const error = explainSystemError(raw) ?? raw
  if (error instanceof ZenithError) {
    return {
      status: httpStatusOf(error),
      body: {code: error.code, name: errorName(error.code), message: maskPasswords(error.message), hint: error.hint === undefined ? undefined : maskPasswords(error.hint)},
    }
  }

  const message = error instanceof Error ? error.message : String(error)
  return {
    status: 500,
    body: {code: 'BUG', name: 'Bug', message: maskPasswords(`zenith hit an unexpected error: ${message}`), hint: 'This is a bug in zenith; the server\'s stderr has the details. Please report it.'},
  }
}

/** A failure as the one-line message a clone's FATAL status carries. */
export function failureText(error: unknown): string {
  const {body} = describeApiError(error)
  return `${body.code}: ${body.message}${body.hint ? ` (${body.hint})` : ''}`
}

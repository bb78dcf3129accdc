/**
 * Passwords that reach zenith in URLs (`basebackup://user:pw@host`, `https://user:pw@host/x`)
 * must never come back out in a message, a hint or a progress line. Every place that prints a
 * URL the user gave, or a message that may quote one (ours, or a library's, or a tool's), goes
 * through `maskPasswords`.
 */

/** `scheme://user:password@` anywhere in a text; the password stops at the last `@` before the host. */
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/?#@'"`]*):[^\s/?#'"`]*@/gi

/** The text with every URL's password replaced by `***` (the user name stays: it helps). */
export function maskPasswords(text: string): string {
  return text.replaceAll(URL_PASSWORD, '$1:***@')
}

/** A URL as it may be shown: without its password (and without the `:***` either). */
export function displayUrl(url: URL | string): string {
  let parsed: URL
  try {
    parsed = new URL(String(url))
  } catch {
    return maskPasswords(String(url))
  }

  parsed.password = ''
  return parsed.href
}

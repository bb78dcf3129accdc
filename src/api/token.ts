import {createHash, randomBytes, timingSafeEqual} from 'node:crypto'
import {open, readFile} from 'node:fs/promises'
import path from 'node:path'

import type {Zenith} from '../context.js'
import {ZenithError} from '../errors.js'

/** The file in ZENITH_HOME that keeps the generated API token (mode 0600). */
export function tokenFile(zenith: Zenith): string {
  return path.join(zenith.home, 'api-token')
}

/**
 * The token every API request must carry: ZENITH_API_TOKEN when set, else one generated on the
 * first use and kept in a 0600 file of the home, so that clients keep working over restarts.
 */
export async function apiToken(zenith: Zenith, env: NodeJS.ProcessEnv = process.env): Promise<{token: string; source: 'env' | 'file'; file?: string}> {
  if (env.ZENITH_API_TOKEN) return {token: env.ZENITH_API_TOKEN, source: 'env'}
  const file = tokenFile(zenith)
  const existing = await readToken(file)
  if (existing) return {token: existing, source: 'file', file}
  const token = randomBytes(24).toString('base64url')
  try {
    // `wx`: two servers starting at once keep one token, the first written.
    const handle = await open(file, 'wx', 0o600)
    try {
      await handle.writeFile(`${token}\n`)
      await handle.sync()
    } finally {
      await handle.close()
    }

    return {token, source: 'file', file}
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    const written = await readToken(file)
    if (!written) throw new ZenithError('STORE_CORRUPT', `The API token file ${file} is empty.`, `Remove it (rm ${file}) and start zenith serve again: a new token is generated.`)
    return {token: written, source: 'file', file}
  }
}

async function readToken(file: string): Promise<string | undefined> {
  try {
    return (await readFile(file, 'utf8')).trim() || undefined
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
}

/** Compares in constant time (digests of equal length), so the token cannot be guessed byte by byte. */
export function tokenMatches(given: string | undefined, token: string): boolean {
  if (!given) return false
  const digest = (text: string) => createHash('sha256').update(text).digest()
  return timingSafeEqual(digest(given), digest(token))
}

import {readFile} from 'node:fs/promises'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import type {FastifyInstance} from 'fastify'

import {embeddedAsset} from '../single-executable.js'

/**
 * The web console (`zenith console`): three static files shipped in the package's `console/`
 * folder (no CDN, no build step), served by the API server at `/` and `/console/*`. The single
 * executable carries them as its assets `console/<file>`.
 */
const ASSETS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'console')
const TYPES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
}

export function isConsoleAsset(url: string): boolean {
  const pathname = url.split('?')[0]
  return pathname === '/' || (pathname.startsWith('/console/') && Object.hasOwn(TYPES, pathname.slice('/console/'.length)))
}

export function registerConsole(app: FastifyInstance): void {
  const send = async (file: string, reply: {type(value: string): unknown; header(key: string, value: string): unknown}) => {
    reply.type(TYPES[file])
    // The page must never be framed by another site, and loads nothing from elsewhere.
    reply.header('Content-Security-Policy', "default-src 'self'; frame-ancestors 'none'")
    reply.header('Cache-Control', 'no-cache')
    return embeddedAsset(`console/${file}`) ?? readFile(path.join(ASSETS, file))
  }

  app.get('/', async (_request, reply) => send('index.html', reply))
  app.get<{Params: {file: string}}>('/console/:file', async (request, reply) => {
    if (!Object.hasOwn(TYPES, request.params.file)) {
      reply.code(404)
      return {code: 'ROUTE_NOT_FOUND', name: 'ROUTE_NOT_FOUND', message: `There is no console file ${request.params.file}.`}
    }

    return send(request.params.file, reply)
  })
}

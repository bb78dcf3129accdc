import Fastify, {type FastifyError, type FastifyInstance} from 'fastify'

import type {Zenith} from '../context.js'
import {ZenithError} from '../errors.js'
import {createPg, destroyPg, listPgs, pgUrl, showPg, startPg, stopPg} from '../pg/lifecycle.js'
import {validatePort} from '../pg/ports.js'
import {createPitr, destroyPitr, destroyPitrOfPg, listPitr} from '../pitr/areas.js'
import {type SnapshotInfo, createSnapshot, destroySnapshot, listSnapshots} from '../snapshot/snapshots.js'
import {attachStorage, detachStorage, listStorages} from '../storages.js'
import {openRecord} from '../storage/registry.js'
import {hasVolumes} from '../storage/storage.js'
import {isDiffSnapshot} from '../diff/temporary.js'
import {createPgFromSnapshot} from '../import-export/create-pg.js'
import {Clones} from './clones.js'
import {isConsoleAsset, registerConsole} from './console.js'
import {describeApiError} from './errors.js'
import {MetricsSampler} from './metrics.js'
import {type JsonSchema, type RouteDefinition, openApiDocument} from './openapi.js'
import {tokenMatches} from './token.js'

export interface ServeOptions {
  port: number
  /** Seconds between two samples of every running pg for the console's graphs (default 5). */
  metricsSeconds?: number
  listen: string
  token: string
  /** Seconds between two rounds of auto-delete. */
  reaperSeconds: number
  /** The version the OpenAPI document states. */
  version: string
  /** What the server did on its own (a clone ready, an auto-delete, a refused request): for its log. */
  onEvent?: (text: string) => void
}

export interface RunningServer {
  url: string
  /** Stops taking requests, lets the ones in flight and the background work finish, stops auto-delete. */
  close(): Promise<void>
}

const NAME: JsonSchema = {type: 'string', minLength: 1, maxLength: 200}
const ID_PARAMS: JsonSchema = {type: 'object', required: ['id'], properties: {id: NAME}}
const TIME: JsonSchema = {type: 'string', format: 'date-time'}
const MINUTES: JsonSchema = {type: 'number', exclusiveMinimum: 0, description: 'minutes without client connections before the clone is deleted; may be fractional'}

/** `zenith serve`: the REST API over the domain functions, listening until closed. */
export async function serveApi(zenith: Zenith, options: ServeOptions): Promise<RunningServer> {
  await validatePort(options.port)
  const onEvent = options.onEvent ?? (() => {})
  const clones = new Clones(zenith, onEvent)
  await clones.load()
  const metrics = new MetricsSampler(zenith, {intervalSeconds: options.metricsSeconds ?? 5, keepSeconds: 3600})
  const routes = apiRoutes(zenith, clones, metrics, options.version)
  const app = Fastify({
    // Unknown fields are refused, not silently dropped.
    ajv: {customOptions: {removeAdditional: false, coerceTypes: false}},
  })
  registerErrorModel(app, onEvent)
  // A reset or delete without a body (or with an empty one) means "no options".
  app.addContentTypeParser('application/json', {parseAs: 'string'}, (_request, body, done) => {
    const text = String(body)
    if (text.trim() === '') {
      done(null, undefined)
      return
    }

    try {
      done(null, JSON.parse(text))
    } catch (error) {
      done(new ZenithError('INVALID_ARGUMENT', `The request body is not valid JSON: ${(error as Error).message}.`, 'Send a JSON object with Content-Type: application/json.'), undefined)
    }
  })
  registerConsole(app)
  app.addHook('onRequest', async (request) => {
    // The console's page and scripts hold no data: a browser loads them without a header, and the
    // page then sends the token (from its address) with every API call.
    if (isConsoleAsset(request.url)) return
    const given = request.headers['verification-token']
    if (!tokenMatches(Array.isArray(given) ? given[0] : given, options.token)) {
      onEvent(`Refused ${request.method} ${request.url} from ${request.ip}: ${given ? 'wrong' : 'no'} Verification-Token.`)
      throw new ZenithError('AUTH_FAILED', given ? 'The Verification-Token header is wrong.' : 'The request has no Verification-Token header.',
        'Send the token of this server in the Verification-Token header; `zenith serve --print-token` prints it.')
    }
  })
  for (const route of routes) {
    app.route({
      method: route.method,
      url: route.url,
      schema: route.schema,
      // Runs before validation: a missing body is validated as `{}`.
      preValidation: route.optionalBody
        ? async (request) => {
          request.body ??= {}
        }
        : undefined,
      handler: async (request, reply) => {
        const result = await route.handler({params: request.params, body: request.body, query: request.query})
        reply.code(route.successStatus ?? 200)
        return result
      },
    })
  }

  try {
    await app.listen({port: options.port, host: options.listen})
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new ZenithError('PORT_IN_USE', `Port ${options.port} on ${options.listen} is in use.`, 'Choose another with --port.')
    }

    throw error
  }

  const reaper = startReaper(clones, options.reaperSeconds, onEvent)
  metrics.start()
  const host = options.listen.includes(':') ? `[${options.listen}]` : options.listen
  return {
    url: `http://${host}:${options.port}`,
    async close() {
      await metrics.stop()
      await reaper.stop()
      await app.close()
      await clones.drain()
    },
  }
}

/** Every route: method, path, JSON schemas (validation and the OpenAPI document) and the domain call. */
function apiRoutes(zenith: Zenith, clones: Clones, metrics: MetricsSampler, version: string): RouteDefinition[] {
  const routes: RouteDefinition[] = [
    {
      method: 'GET', url: '/status', summary: 'Instance status: disk per storage, expected cloning time, clones and snapshots', schema: {}, returns: 'Status',
      handler: async () => instanceStatus(zenith, clones),
    },
    {
      method: 'GET', url: '/snapshots', summary: 'Snapshots (as zenith snapshot list), each with its id', schema: {}, returns: 'Snapshots',
      handler: async () => snapshotViews(zenith),
    },
    {
      method: 'POST', url: '/snapshot', summary: 'Create snapshot PG@TAG of a pg', returns: 'Snapshot', successStatus: 201,
      schema: {body: {type: 'object', required: ['pg', 'tag'], additionalProperties: false, properties: {pg: NAME, tag: NAME}}},
      handler: async ({body}) => snapshotView(await createSnapshot(zenith, `${body.pg}@${body.tag}`)),
    },
    {
      method: 'POST', url: '/clone', summary: 'Create a clone of a snapshot; answers at once with status CREATING', returns: 'Clone', successStatus: 202,
      schema: {body: {
        type: 'object', required: ['snapshot'], additionalProperties: false,
        properties: {
          id: {...NAME, description: 'the clone\'s id and pg name (default clone-<random>)'},
          snapshot: {type: 'object', required: ['id'], additionalProperties: false, properties: {id: NAME}},
          protected: {type: 'boolean', default: false},
          deleteAt: TIME,
          maxIdleMinutes: MINUTES,
          db: {
            type: 'object', required: ['username', 'password'], additionalProperties: false,
            description: 'a login role (superuser) made in the clone for the client; only its SCRAM verifier is kept',
            properties: {username: {type: 'string', minLength: 1, maxLength: 63}, password: {type: 'string', minLength: 1, maxLength: 1000}},
          },
        },
      }},
      handler: async ({body}) => clones.create(body),
    },
    {
      method: 'GET', url: '/clone/:id', summary: 'A clone: status, size, cloning time, snapshot, connection', schema: {params: ID_PARAMS}, returns: 'Clone',
      handler: async ({params}) => clones.get(params.id),
    },
    {
      method: 'PATCH', url: '/clone/:id', summary: 'Change protected, deleteAt (null: none) or maxIdleMinutes (null: none)', returns: 'Clone',
      schema: {params: ID_PARAMS, body: {
        type: 'object', additionalProperties: false, minProperties: 1,
        properties: {protected: {type: 'boolean'}, deleteAt: {anyOf: [TIME, {type: 'null'}]}, maxIdleMinutes: {anyOf: [MINUTES, {type: 'null'}]}},
      }},
      handler: async ({params, body}) => clones.update(params.id, body),
    },
    {
      method: 'POST', url: '/clone/:id/reset', summary: 'Reset a clone to its snapshot or to snapshotID; status RESETTING, then OK', returns: 'Clone', successStatus: 202, optionalBody: true,
      schema: {params: ID_PARAMS, body: {type: 'object', additionalProperties: false, properties: {snapshotID: NAME}}},
      handler: async ({params, body}) => clones.reset(params.id, body.snapshotID),
    },
    {
      method: 'DELETE', url: '/clone/:id', summary: 'Delete a clone (refused for a protected one); status DELETING, then gone', returns: 'Clone', successStatus: 202,
      schema: {params: ID_PARAMS},
      handler: async ({params}) => clones.delete(params.id),
    },
    {
      method: 'GET', url: '/pgs', summary: 'Every pg (as zenith pg list --json)', schema: {}, returns: 'Pgs',
      handler: async () => listPgs(zenith),
    },
    {
      method: 'GET', url: '/pg/:name', summary: 'One pg (as zenith pg show NAME --json); a replica\'s name is URL-encoded: dev%2Freplica-1',
      schema: {params: {type: 'object', required: ['name'], properties: {name: NAME}}}, returns: 'Pg',
      handler: async ({params}) => showPg(zenith, params.name),
    },
    {
      method: 'GET', url: '/pg/:name/url', summary: 'A connection URI of a pg (as zenith pg url NAME), with its password',
      schema: {params: {type: 'object', required: ['name'], properties: {name: NAME}}}, returns: 'PgUrl',
      handler: async ({params}) => ({url: await pgUrl(zenith, params.name)}),
    },
    {
      method: 'GET', url: '/pg/:name/metrics', summary: 'The last hour of samples of a pg: CPU, memory, disk, connections, TPS, cache hit ratio, database sizes, replication lag, WAL archiving',
      schema: {params: {type: 'object', required: ['name'], properties: {name: NAME}}}, returns: 'PgMetrics',
      handler: async ({params}) => {
        const pg = await showPg(zenith, params.name)
        return {pg: pg.name, intervalSeconds: metrics.intervalSeconds, samples: metrics.samples(pg.name)}
      },
    },
    {
      method: 'GET', url: '/diff', summary: 'What changed between two snapshots (as zenith snapshot diff FROM TO [--schema|--data] --json); PG@CURRENT is the live data',
      schema: {querystring: {
        type: 'object', required: ['from', 'to'], additionalProperties: false,
        // Query values are strings (no type coercion): limit is digits.
        properties: {from: NAME, to: NAME, mode: {type: 'string', enum: ['size', 'schema', 'data'], default: 'size'}, limit: {type: 'string', pattern: '^[0-9]{1,4}$', description: 'rows shown per table (data mode, default 20)'}},
      }}, returns: 'Diff',
      handler: async ({query}) => {
        const {diffSnapshots} = await import('../diff/diff.js')
        return diffSnapshots(zenith, query.from, query.to, {mode: query.mode, limit: query.limit === undefined ? undefined : Number(query.limit)})
      },
    },
    {
      method: 'DELETE', url: '/snapshot/:id', summary: 'Destroy a snapshot (as zenith snapshot destroy; refused while clones depend on it)', returns: 'Destroyed',
      schema: {params: ID_PARAMS},
      handler: async ({params}) => destroySnapshot(zenith, params.id),
    },
    {
      method: 'POST', url: '/pg', summary: 'Create a pg (as zenith pg create): initdb, or a copy / thin clone (cow) / read-only standby of a snapshot; started', returns: 'Pg', successStatus: 201,
      schema: {body: {
        type: 'object', additionalProperties: false,
        properties: {
          name: NAME, storage: NAME, port: {type: 'integer', minimum: 1, maximum: 65_535},
          snapshot: {...NAME, description: 'a snapshot name, or a URL (basebackup://, s3://, file://, ...)'}, cow: {type: 'boolean'}, readOnly: {type: 'boolean'},
          settings: {type: 'array', items: {type: 'string', maxLength: 1000}, description: 'key=value postgres settings (as --set)'},
        },
      }},
      handler: async ({body}) => {
        const options = {name: body.name, storage: body.storage, port: body.port, settings: body.settings, readOnly: body.readOnly}
        if (body.snapshot === undefined) {
          if (body.cow || body.readOnly) throw new ZenithError('INVALID_ARGUMENT', 'cow and readOnly need a snapshot.', 'Add "snapshot": "PG@TAG".')
          return createPg(zenith, options)
        }

        return createPgFromSnapshot(zenith, {...options, snapshot: body.snapshot, cow: body.cow})
      },
    },
    {
      method: 'POST', url: '/pg/:name/start', summary: 'Start a pg (as zenith pg start)', returns: 'Pg',
      schema: {params: {type: 'object', required: ['name'], properties: {name: NAME}}}, handler: async ({params}) => startPg(zenith, params.name),
    },
    {
      method: 'POST', url: '/pg/:name/stop', summary: 'Stop a pg (as zenith pg stop; its replicas first)', returns: 'Pg',
      schema: {params: {type: 'object', required: ['name'], properties: {name: NAME}}}, handler: async ({params}) => stopPg(zenith, params.name),
    },
    {
      method: 'DELETE', url: '/pg/:name', summary: 'Destroy a pg (as zenith pg destroy; refused while it has snapshots or PITR areas unless force=true)', returns: 'Destroyed',
      schema: {params: {type: 'object', required: ['name'], properties: {name: NAME}}, querystring: {type: 'object', additionalProperties: false, properties: {force: {type: 'string', enum: ['true', 'false']}}}},
      handler: async ({params, query}) => {
        if (query.force === 'true') await destroyPitrOfPg(zenith, params.name)
        return destroyPg(zenith, params.name, {force: query.force === 'true'})
      },
    },
    {
      method: 'POST', url: '/storage', summary: 'Attach a storage (as zenith storage attach -t TYPE -n NAME -c key=value ...)', returns: 'Storage', successStatus: 201,
      schema: {body: {
        type: 'object', required: ['type', 'name'], additionalProperties: false,
        properties: {type: {type: 'string', maxLength: 20}, name: NAME, options: {type: 'object', additionalProperties: {type: 'string', maxLength: 2000}}},
      }},
      handler: async ({body}) => attachStorage(zenith, {type: body.type, name: body.name, options: body.options ?? {}}),
    },
    {
      method: 'DELETE', url: '/storage/:name', summary: 'Detach a storage (as zenith storage detach; refused while it holds pgs or snapshots)', returns: 'Destroyed',
      schema: {params: {type: 'object', required: ['name'], properties: {name: NAME}}}, handler: async ({params}) => detachStorage(zenith, params.name),
    },
    {
      method: 'POST', url: '/pitr', summary: 'Create a PITR area of a pg (as zenith pitr create)', returns: 'PitrArea', successStatus: 201,
      schema: {body: {
        type: 'object', required: ['name', 'pg'], additionalProperties: false,
        properties: {name: NAME, pg: NAME, storage: NAME, ttl: {type: 'string', maxLength: 20, description: '30d, 12h, 90m or inf'}, sizeLimit: {type: 'string', maxLength: 20, description: '500M, 10G or inf'}},
      }},
      handler: async ({body}) => createPitr(zenith, {name: body.name, pg: body.pg, storage: body.storage, ttl: body.ttl ?? 'inf', sizeLimit: body.sizeLimit ?? 'inf'}),
    },
    {
      method: 'DELETE', url: '/pitr/:name', summary: 'Destroy a PITR area (as zenith pitr destroy: archiving stops with the last one)', returns: 'Destroyed',
      schema: {params: {type: 'object', required: ['name'], properties: {name: NAME}}}, handler: async ({params}) => destroyPitr(zenith, params.name),
    },
    {
      method: 'GET', url: '/storages', summary: 'Storages (as zenith storage list --json)', schema: {}, returns: 'Storages',
      handler: async () => listStorages(zenith),
    },
    {
      method: 'GET', url: '/pitr', summary: 'PITR areas and their windows (as zenith pitr list --json)', schema: {}, returns: 'PitrAreas',
      handler: async () => listPitr(zenith),
    },
  ]
  const document = openApiDocument(routes, version)
  routes.push({method: 'GET', url: '/openapi.json', summary: 'This document', schema: {}, returns: 'OpenApi', handler: async () => document})
  // The document lists itself too.
  Object.assign(document.paths as object, (openApiDocument(routes.slice(-1), version).paths as object))
  return routes
}

/** The snapshots a clone can be made of: not the implicit CURRENT of each pg that `snapshot list` adds. */
async function snapshotViews(zenith: Zenith): Promise<Array<SnapshotInfo & {id: string}>> {
  // Nor the temporary snapshot a running diff of a live pg takes (it goes when the diff ends).
  return (await listSnapshots(zenith)).filter((snapshot) => !snapshot.implicit && !isDiffSnapshot(snapshot)).map((snapshot) => snapshotView(snapshot))
}

function snapshotView(snapshot: SnapshotInfo): SnapshotInfo & {id: string} {
  return {id: snapshot.name, ...snapshot}
}

async function instanceStatus(zenith: Zenith, clones: Clones) {
  const data = await zenith.store.read()
  const disk: Array<{name: string; type: string; size: number; free: number; used: number}> = []
  for (const record of Object.values(data.storages).sort((a, b) => a.name.localeCompare(b.name))) {
    const storage = openRecord(record)
    if (!hasVolumes(storage)) continue
    const usage = await storage.usage()
    disk.push({name: record.name, type: record.type, size: usage.totalBytes, free: usage.freeBytes, used: usage.usedBytes})
  }

  const [cloneList, snapshots] = await Promise.all([clones.list(), snapshotViews(zenith)])
  const short = disk.filter((item) => item.size > 0 && item.free / item.size < 0.05)
  return {
    status: short.length > 0
      ? {code: 'WARNING', message: `Less than 5% free on storage ${short.map((item) => item.name).join(', ')}.`}
      : {code: 'OK', message: 'zenith is ready.'},
    disk,
    expectedCloningTime: clones.expectedCloningTime(),
    numClones: cloneList.length,
    clones: cloneList,
    snapshots,
  }
}

/** Every failure as `{code, name, message, hint}` with the HTTP status of its class. */
function registerErrorModel(app: FastifyInstance, onEvent: (text: string) => void): void {
  app.setErrorHandler((raw: FastifyError, request, reply) => {
    let error: unknown = raw
    if (raw.validation) {
      const issue = raw.validation[0] as {instancePath?: string; message?: string; params?: {additionalProperty?: string}} | undefined
      const where = `${raw.validationContext ?? 'request'}${issue?.instancePath ?? ''}`
      const what = issue?.params?.additionalProperty ? `has an unknown field "${issue.params.additionalProperty}"` : issue?.message ?? 'is not valid'
      error = new ZenithError('INVALID_ARGUMENT', `${where} ${what}.`, 'See /openapi.json for the request\'s schema.')
    } else if (!(raw instanceof ZenithError) && typeof raw.statusCode === 'number' && raw.statusCode >= 400 && raw.statusCode < 500) {
      // fastify's own refusals: an unsupported content type, a body too large, an empty JSON body.
      error = new ZenithError('INVALID_ARGUMENT', raw.message, 'Send a JSON object with Content-Type: application/json.')
    }

    const {status, body} = describeApiError(error)
    if (status === 500) onEvent(`${request.method} ${request.url}: ${raw.stack ?? raw.message}`)
    reply.code(status).send(body)
  })
  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send(describeApiError(new ZenithError('ROUTE_NOT_FOUND', `There is no route ${request.method} ${request.url.split('?')[0]}.`, 'See /openapi.json for the routes.')).body)
  })
}

function startReaper(clones: Clones, seconds: number, onEvent: (text: string) => void): {stop(): Promise<void>} {
  let timer: NodeJS.Timeout | undefined
  let round: Promise<void> = Promise.resolve()
  let stopped = false
  const schedule = () => {
    timer = setTimeout(() => {
      round = clones.reap().catch((error: unknown) => onEvent(`Auto-delete round failed: ${describeApiError(error).body.message}`)).finally(() => {
        if (!stopped) schedule()
      })
    }, seconds * 1000)
  }

  schedule()
  return {
    async stop() {
      stopped = true
      clearTimeout(timer)
      await round
    },
  }
}

/**
 * The OpenAPI 3.1 document of the API, made from the same route definitions (and JSON schemas)
 * that fastify validates requests with: the two cannot disagree.
 */
export type JsonSchema = Record<string, unknown>

export interface RouteSchema {
  params?: JsonSchema
  querystring?: JsonSchema
  body?: JsonSchema
}

export interface RouteDefinition {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE'
  /** fastify's form: `/clone/:id`. */
  url: string
  summary: string
  schema: RouteSchema
  /** The status of a success (200 unless said otherwise). */
  successStatus?: number
  /** What a success returns, a component schema of the document. */
  returns: string
  /** Whether the body may be left out (it then counts as `{}`). */
  optionalBody?: boolean
  handler: (request: {params: any; body: any; query: any}) => Promise<unknown>
}

export const ERROR_SCHEMA: JsonSchema = {
  type: 'object',
  required: ['code', 'name', 'message'],
  properties: {
    code: {type: 'string', description: 'stable code, the same as the CLI\'s (PG_NOT_FOUND, CLONE_PROTECTED, ...)'},
    name: {type: 'string'},
    message: {type: 'string'},
    hint: {type: 'string'},
  },
}

const STATUS_SCHEMA: JsonSchema = {
  type: 'object',
  properties: {code: {type: 'string', enum: ['OK', 'CREATING', 'RESETTING', 'DELETING', 'FATAL']}, message: {type: 'string'}},
}

export const CLONE_SCHEMA: JsonSchema = {
  type: 'object',
  properties: {
    id: {type: 'string'},
    status: STATUS_SCHEMA,
    snapshot: {type: 'object', properties: {id: {type: 'string'}}},
    protected: {type: 'boolean'},
    deleteAt: {type: ['string', 'null'], format: 'date-time'},
    maxIdleMinutes: {type: ['number', 'null']},
    cloneSize: {type: ['number', 'null'], description: 'bytes'},
    cloningTime: {type: ['number', 'null'], description: 'seconds'},
    createdAt: {type: 'string', format: 'date-time'},
    db: {type: ['object', 'null'], properties: {username: {type: 'string'}, host: {type: 'string'}, port: {type: 'number'}, connStr: {type: 'string'}}},
  },
}

const COMPONENTS: Record<string, JsonSchema> = {
  Error: ERROR_SCHEMA,
  Clone: CLONE_SCHEMA,
  Status: {type: 'object', properties: {
    status: {type: 'object', properties: {code: {type: 'string', enum: ['OK', 'WARNING']}, message: {type: 'string'}}},
    disk: {type: 'array', items: {type: 'object', properties: {name: {type: 'string'}, type: {type: 'string'}, size: {type: 'number'}, free: {type: 'number'}, used: {type: 'number'}}}},
    expectedCloningTime: {type: ['number', 'null']},
    numClones: {type: 'number'},
    clones: {type: 'array', items: {$ref: '#/components/schemas/Clone'}},
    snapshots: {type: 'array', items: {$ref: '#/components/schemas/Snapshot'}},
  }},
  Snapshot: {type: 'object', properties: {id: {type: 'string'}, pg: {type: 'string'}, storage: {type: 'string'}, createdAt: {type: 'string'}, sizeBytes: {type: 'number'}, parent: {type: 'string'}}},
  Snapshots: {type: 'array', items: {$ref: '#/components/schemas/Snapshot'}},
  Pg: {type: 'object', description: 'as `zenith pg show NAME --json` prints it'},
  Pgs: {type: 'array', items: {$ref: '#/components/schemas/Pg'}},
  Storages: {type: 'array', items: {type: 'object', description: 'as `zenith storage list --json` prints it'}},
  PitrAreas: {type: 'array', items: {type: 'object', description: 'as `zenith pitr list --json` prints it'}},
  OpenApi: {type: 'object'},
  PgUrl: {type: 'object', properties: {url: {type: 'string', description: 'postgresql://postgres:PASSWORD@localhost:PORT/postgres'}}},
  PgMetrics: {type: 'object', properties: {
    pg: {type: 'string'},
    intervalSeconds: {type: 'number'},
    samples: {type: 'array', items: {type: 'object', description: 'one reading; a value postgres could not give is absent', properties: {
      t: {type: 'number', description: 'milliseconds since the epoch'}, cpuPercent: {type: 'number'}, rssBytes: {type: 'number'}, diskBytes: {type: 'number'},
      connections: {type: 'number'}, tps: {type: 'number'}, cacheHitRatio: {type: 'number'}, databaseBytes: {type: 'number'}, lagBytes: {type: 'number'},
      archived: {type: 'number'}, archiveFailed: {type: 'number'}, lastArchivedAt: {type: 'string', format: 'date-time'},
    }}},
  }},
  Destroyed: {type: 'object', properties: {name: {type: 'string'}}},
  Storage: {type: 'object', description: 'as `zenith storage attach --json` prints it'},
  PitrArea: {type: 'object', description: 'as `zenith pitr create --json` prints it'},
  Diff: {type: 'object', description: 'as `zenith snapshot diff --json` prints it: size (relations, bytesChanged), schema (objects) or data (tables with added/removed/changed and rows)'},
}

export function openApiDocument(routes: RouteDefinition[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {}
  for (const route of routes) {
    const path = route.url.replaceAll(/:([A-Za-z]+)/g, '{$1}')
    const parameters = Object.entries((route.schema.params?.properties ?? {}) as Record<string, JsonSchema>)
      .map(([name, schema]) => ({name, in: 'path', required: true, schema} as Record<string, unknown>))
    const required = (route.schema.querystring?.required ?? []) as string[]
    parameters.push(...Object.entries((route.schema.querystring?.properties ?? {}) as Record<string, JsonSchema>)
      .map(([name, schema]) => ({name, in: 'query', required: required.includes(name), schema})))
    paths[path] ??= {}
    paths[path][route.method.toLowerCase()] = {
      summary: route.summary,
      ...(parameters.length > 0 ? {parameters} : {}),
      ...(route.schema.body ? {requestBody: {required: !route.optionalBody, content: {'application/json': {schema: route.schema.body}}}} : {}),
      responses: {
        [String(route.successStatus ?? 200)]: {description: 'success', content: {'application/json': {schema: {$ref: `#/components/schemas/${route.returns}`}}}},
        default: {description: 'an error (400 bad input, 401 wrong token, 404 unknown, 409 conflict, 500 internal, 503 unavailable)', content: {'application/json': {schema: {$ref: '#/components/schemas/Error'}}}},
      },
    }
  }

  return {
    openapi: '3.1.0',
    info: {title: 'zenith REST API', version, description: 'Snapshots and thin clones of PostgreSQL (zenith serve). Every request needs the Verification-Token header.'},
    security: [{verificationToken: []}],
    paths,
    components: {
      schemas: COMPONENTS,
      securitySchemes: {verificationToken: {type: 'apiKey', in: 'header', name: 'Verification-Token'}},
    },
  }
}

import type {PgInfo} from '../pg/lifecycle.js'
import {formatBytes, renderTable} from './format.js'

export function pgTable(pgs: PgInfo[]): string {
  return renderTable(['ROLE', 'PGDATA', 'USED', 'STORAGE', 'ENDPOINT', 'STATUS'], pgs.map((pg) => [
    pg.role, pg.name, formatBytes(pg.usedBytes), pg.storage, pg.status === 'running' ? pg.endpoint : '-', pg.status,
  ]))
}

import {newClient} from '../pg/client.js'
import type {TempInstance} from '../pg/temp-instance.js'

export type RelationKind = 'table' | 'index' | 'toast' | 'other'

export interface RelationName {
  name: string
  kind: RelationKind
}

/** A cluster's relation files by path under the data directory (`base/16384/16390`), named. */
export interface Catalog {
  /** `base/<database oid>/<filenode>` or `global/<filenode>` -> the relation. */
  files: Map<string, RelationName>
  /** Databases that take connections, by name. */
  databases: string[]
}

/** The database a bare relation name belongs to; others are written `db:schema.name`. */
export const DEFAULT_DATABASE = 'postgres'

/**
 * Names every relation file of a running cluster from its catalogs: pg_relation_filenode gives
 * the file of mapped catalogs too (pg_class itself), and a TOAST table and its index are named
 * after the table that owns them.
 */
export async function readCatalog(instance: Pick<TempInstance, 'connection'>): Promise<Catalog> {
  const files = new Map<string, RelationName>()
  const admin = await newClient(clientConfig(instance, DEFAULT_DATABASE))
  await admin.connect()
  let databases: Array<{oid: string; datname: string}>
  try {
    ;({rows: databases} = await admin.query<{oid: string; datname: string}>('select oid::text, datname from pg_database where datallowconn order by datname'))
  } finally {
    await admin.end().catch(() => undefined)
  }

  await Promise.all(databases.map(async ({oid, datname}) => {
    const client = await newClient(clientConfig(instance, datname))
    await client.connect()
    try {
      const {rows} = await client.query<{filenode: string; shared: boolean; kind: RelationKind; name: string}>(RELATIONS)
      for (const row of rows) {
        // Shared catalogs are the same in every database: named once, from the default one.
        if (row.shared && datname !== DEFAULT_DATABASE) continue
        const name = row.shared || datname === DEFAULT_DATABASE ? row.name : `${datname}:${row.name}`
        files.set(row.shared ? `global/${row.filenode}` : `base/${oid}/${row.filenode}`, {name, kind: row.kind})
      }
    } finally {
      await client.end().catch(() => undefined)
    }
  }))
  return {files, databases: databases.map((database) => database.datname).filter((name) => !['template0', 'template1'].includes(name))}
}

const RELATIONS = `
select pg_relation_filenode(c.oid)::text as filenode, c.relisshared as shared,
  case when n.nspname = 'pg_toast' then 'toast'
       when c.relkind in ('r', 'p', 'm') then 'table'
       when c.relkind in ('i', 'I') then 'index'
       else 'other' end as kind,
  coalesce(owner.name, n.nspname || '.' || c.relname) as name
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
left join lateral (
  select o_n.nspname || '.' || o.relname as name
  from pg_class o join pg_namespace o_n on o_n.oid = o.relnamespace
  where n.nspname = 'pg_toast'
    and o.reltoastrelid = case when c.relkind = 't' then c.oid else (select i.indrelid from pg_index i where i.indexrelid = c.oid) end
) owner on true
where pg_relation_filenode(c.oid) is not null`

/** `pg` client settings for one database of a temporary instance (over its unix socket). */
function clientConfig(instance: Pick<TempInstance, 'connection'>, database: string): {host: string; port: number; user: string; database: string} {
  const {host, port, user} = instance.connection
  return {host, port: Number(port), user, database}
}

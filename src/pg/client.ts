import type {Client, ClientConfig} from 'pg'

/**
 * A pg client, not yet connected, that never takes the process down. pg emits 'error' on a client
 * whose server goes away while it is idle (a pg stopped with `--mode immediate` or destroyed under
 * the API server's sampler); with no listener Node throws that event and the whole process dies,
 * a command midway or `zenith serve` with every clone it is working on. The error still reaches
 * the query in flight, and the next query fails ("not queryable"), so nothing is hidden. pg itself
 * is loaded here, lazily, not at CLI start-up.
 */
export async function newClient(config: ClientConfig): Promise<Client> {
  const {default: pg} = await import('pg')
  const client = new pg.Client(config)
  client.on('error', () => undefined)
  return client
}

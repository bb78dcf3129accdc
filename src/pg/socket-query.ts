import net from 'node:net'
import path from 'node:path'

/** Where a zenith pg's unix socket is: `<socketDir>/.s.PGSQL.<port>`. */
export interface PgSocket {
  socketDir: string
  port: number
}

/** The server asked for a password (its pg_hba.conf does not trust the socket): use the pg client instead. */
export class SocketNotTrustedError extends Error {}

/** An error the server sent (ErrorResponse), with its SQLSTATE. */
export class ServerError extends Error {
  constructor(message: string, readonly code: string) {
    super(message)
  }
}

/**
 * Runs one statement (simple query protocol) as `postgres` over the pg's unix socket, which
 * zenith's pg_hba.conf trusts, and returns its rows as text. For the one-statement questions of
 * the fast paths (how much WAL since the last checkpoint, before a snapshot): loading the pg
 * module and a SCRAM handshake over TCP cost ~0.1-0.2 s, this ~2 ms. Anything but trust
 * (SocketNotTrustedError) or a connection failure is for the caller to retry with the pg client.
 */
export function querySocket(socket: PgSocket, sql: string, timeoutMs = 30_000): Promise<(string | null)[][]> {
  return new Promise((resolve, reject) => {
    const connection = net.connect(path.join(socket.socketDir, `.s.PGSQL.${socket.port}`))
    const rows: (string | null)[][] = []
    let buffered: Buffer = Buffer.alloc(0)
    let failure: Error | undefined
    let sent = false
    let settled = false
    const finish = (error?: Error) => {
      if (settled) return
      settled = true
      connection.destroy()
      if (error) reject(error)
      else resolve(rows)
    }

    connection.setTimeout(timeoutMs, () => finish(new Error(`no answer from postgres on ${socket.socketDir} port ${socket.port} in ${timeoutMs} ms`)))
    connection.once('error', (error) => finish(error))
    connection.once('close', () => finish(failure ?? new Error('postgres closed the connection')))
    connection.once('connect', () => connection.write(startupMessage({user: 'postgres', database: 'postgres'})))
    connection.on('data', (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk])
      while (buffered.length >= 5) {
        const length = buffered.readInt32BE(1)
        if (buffered.length < 1 + length) return
        const type = String.fromCodePoint(buffered[0])
        const body = buffered.subarray(5, 1 + length)
        buffered = buffered.subarray(1 + length)
        if (type === 'R' && body.readInt32BE(0) !== 0) return finish(new SocketNotTrustedError('postgres asks for a password on its socket'))
        if (type === 'E') failure = serverError(body)
        else if (type === 'D') rows.push(dataRow(body))
        else if (type === 'Z') {
          if (failure) return finish(failure)
          if (sent) {
            connection.end(Buffer.from([0x58, 0, 0, 0, 4]))
            return finish()
          }

          sent = true
          connection.write(message('Q', Buffer.from(`${sql}\0`)))
        }
      }
    })
  })
}

function startupMessage(parameters: Record<string, string>): Buffer {
  const pairs = Buffer.from(Object.entries(parameters).map(([key, value]) => `${key}\0${value}\0`).join('') + '\0')
  const header = Buffer.alloc(8)
  header.writeInt32BE(8 + pairs.length, 0)
  header.writeInt32BE(196_608, 4)
  return Buffer.concat([header, pairs])
}

function message(type: string, body: Buffer): Buffer {
  const header = Buffer.alloc(5)
  header.write(type, 0)
  header.writeInt32BE(4 + body.length, 1)
  return Buffer.concat([header, body])
}

function dataRow(body: Buffer): (string | null)[] {
  const values: (string | null)[] = []
  let offset = 2
  for (let i = 0; i < body.readInt16BE(0); i++) {
    const length = body.readInt32BE(offset)
    offset += 4
    if (length < 0) {
      values.push(null)
      continue
    }

    values.push(body.toString('utf8', offset, offset + length))
    offset += length
  }

  return values
}

function serverError(body: Buffer): ServerError {
  const fields = new Map<string, string>()
  let offset = 0
  while (offset < body.length && body[offset] !== 0) {
    const end = body.indexOf(0, offset + 1)
    fields.set(String.fromCodePoint(body[offset]), body.toString('utf8', offset + 1, end))
    offset = end + 1
  }

  return new ServerError(fields.get('M') ?? 'postgres reported an error', fields.get('C') ?? '')
}

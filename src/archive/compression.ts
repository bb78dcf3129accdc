import {PassThrough, Readable, type Transform} from 'node:stream'
import zlib from 'node:zlib'

import {ZenithError} from '../errors.js'

/**
 * Codecs of a `.zenith` archive, all from node:zlib so nothing needs a native build (Node 20 has
 * no zstd). `gzip-fast` (level 1) is the fastest that still compresses Postgres pages well; `gzip`
 * (level 6) is the default, readable by every `tar xzf`; `brotli` is smaller and much slower.
 */
export const COMPRESSIONS = ['gzip', 'gzip-fast', 'brotli', 'none'] as const
export type Compression = (typeof COMPRESSIONS)[number]
export const DEFAULT_COMPRESSION: Compression = 'gzip'

export function parseCompression(value: string): Compression {
  if ((COMPRESSIONS as readonly string[]).includes(value)) return value as Compression
  throw new ZenithError('INVALID_ARGUMENT', `"${value}" is not a compression.`, `Use one of: ${COMPRESSIONS.join(', ')}.`)
}

export function compressor(compression: Compression): Transform {
  switch (compression) {
    case 'gzip': {
      return zlib.createGzip({level: 6})
    }

    case 'gzip-fast': {
      return zlib.createGzip({level: 1})
    }

    case 'brotli': {
      // Quality 4: the usual speed/size trade-off for data that is written once and read once.
      return zlib.createBrotliCompress({params: {[zlib.constants.BROTLI_PARAM_QUALITY]: 4}})
    }

    case 'none': {
      return new PassThrough()
    }
  }
}

export type DetectedCodec = 'gzip' | 'brotli' | 'none'

/**
 * What the first bytes of a stream say: gzip by its magic number, a plain tar by `ustar` at
 * offset 257, otherwise brotli (which has no magic; a stream that is not brotli either fails in
 * the decoder and is reported as not an archive).
 */
export function detectCodec(head: Buffer): DetectedCodec {
  if (head.length >= 2 && head[0] === 0x1F && head[1] === 0x8B) return 'gzip'
  if (head.length >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar') return 'none'
  return 'brotli'
}

export function decompressor(codec: DetectedCodec): Transform {
  if (codec === 'gzip') return zlib.createGunzip()
  if (codec === 'brotli') return zlib.createBrotliDecompress()
  return new PassThrough()
}

/**
 * Reads the first `size` bytes of a stream without losing them: the stream returned yields the
 * whole content from its start (`unshift` is unreliable once the source has reached its end).
 */
export async function peek(stream: Readable, size = 512): Promise<{head: Buffer; stream: Readable}> {
  const chunks: Buffer[] = []
  let length = 0
  const ended = await new Promise<boolean>((resolve, reject) => {
    const cleanup = () => {
      stream.off('readable', onReadable)
      stream.off('end', onEnd)
      stream.off('error', onError)
    }

    const onReadable = () => {
      let chunk: Buffer | null
      while (length < size && (chunk = stream.read() as Buffer | null) !== null) {
        chunks.push(chunk)
        length += chunk.length
      }

      if (length >= size) {
        cleanup()
        resolve(false)
      }
    }

    const onEnd = () => {
      cleanup()
      resolve(true)
    }

    const onError = (error: Error) => {
      cleanup()
      reject(error)
    }

    stream.on('readable', onReadable)
    stream.once('end', onEnd)
    stream.once('error', onError)
  })
  const head = Buffer.concat(chunks)
  if (ended) return {head, stream: Readable.from(head.length > 0 ? [head] : [], {objectMode: false})}
  async function * whole(): AsyncGenerator<Buffer> {
    yield head
    for await (const chunk of stream) yield chunk as Buffer
  }

  return {head: head.subarray(0, size), stream: Readable.from(whole(), {objectMode: false})}
}

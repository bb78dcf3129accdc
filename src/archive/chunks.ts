import {createHash, type Hash} from 'node:crypto'

/** 4 MiB: big enough that a 1 GB relation segment has 256 chunks, small enough to dedupe changes. */
export const DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024

/**
 * sha256 of each `chunkSize` piece of a byte stream fed in arbitrary slices: the per-chunk
 * checksums of an archive manifest (and of a remote storage's content-addressed chunks).
 */
export class ChunkHasher {
  readonly chunks: string[] = []
  private hash: Hash = createHash('sha256')
  private filled = 0

  constructor(readonly chunkSize = DEFAULT_CHUNK_SIZE) {}

  update(data: Buffer): void {
    let offset = 0
    while (offset < data.length) {
      const take = Math.min(this.chunkSize - this.filled, data.length - offset)
      this.hash.update(data.subarray(offset, offset + take))
      this.filled += take
      offset += take
      if (this.filled === this.chunkSize) this.closeChunk()
    }
  }

  /** The checksums of every chunk, the last one possibly short; an empty file has none. */
  finish(): string[] {
    if (this.filled > 0) this.closeChunk()
    return this.chunks
  }

  private closeChunk(): void {
    this.chunks.push(this.hash.digest('hex'))
    this.hash = createHash('sha256')
    this.filled = 0
  }
}

/**
 * Checks content against expected chunk checksums as it streams in, so a corrupt chunk is found
 * at the chunk, not at the end of a long download. Returns the index of the first bad chunk.
 */
export class ChunkVerifier {
  private readonly hasher: ChunkHasher
  private checked = 0

  constructor(private readonly expected: readonly string[], chunkSize: number) {
    this.hasher = new ChunkHasher(chunkSize)
  }

  /** The index of a chunk that does not match, or undefined while everything matches. */
  update(data: Buffer): number | undefined {
    this.hasher.update(data)
    return this.compare()
  }

  finish(): number | undefined {
    this.hasher.finish()
    const bad = this.compare()
    if (bad !== undefined) return bad
    return this.hasher.chunks.length === this.expected.length ? undefined : this.hasher.chunks.length
  }

  private compare(): number | undefined {
    const chunks = this.hasher.chunks
    for (; this.checked < chunks.length; this.checked++) {
      if (chunks[this.checked] !== this.expected[this.checked]) return this.checked
    }

    return undefined
  }
}

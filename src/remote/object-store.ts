import type {Readable} from 'node:stream'

/**
 * A flat key/value store of immutable objects: what a remote storage (an S3 bucket, a plain
 * folder) offers. Keys are relative to the storage's prefix and use `/` separators.
 */
export interface ObjectStore {
  /** Where the objects live, for messages: `s3://bucket/prefix` or a folder path. */
  readonly location: string
  /** Writes an object atomically (readers see the old object or the whole new one) and checks what landed. */
  put(key: string, body: Buffer): Promise<void>
  /** Reads a whole (small) object; undefined when it does not exist. */
  get(key: string): Promise<Buffer | undefined>
  /**
   * Bytes `start` to `end` (inclusive) of an object; undefined when it does not exist. Fewer
   * bytes come back when the object is shorter than asked.
   */
  getRange(key: string, start: number, end: number): Promise<Buffer | undefined>
  /** Streams an object; undefined when it does not exist. */
  getStream(key: string): Promise<Readable | undefined>
  head(key: string): Promise<{size: number} | undefined>
  /** Every object whose key starts with `prefix`, in pages, without loading all of them at once. */
  list(prefix: string): AsyncIterable<{key: string; size: number}>
  /** Removes an object; removing a missing one is not an error. */
  delete(key: string): Promise<void>
  /** Removes objects, as many at once as the medium allows; missing ones are not an error. */
  deleteMany(keys: string[]): Promise<void>
}

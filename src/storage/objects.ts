import {randomBytes} from 'node:crypto'

import {ZenithError} from '../errors.js'
import type {ObjectStore} from './storage.js'

/** Write, read back and delete a small object: proves the credentials, the bucket and the network. */
export async function probeObjectStore(store: ObjectStore): Promise<void> {
  const key = `.zenith-probe-${randomBytes(6).toString('hex')}`
  const content = Buffer.from(`zenith probe ${new Date().toISOString()}`)
  await store.put(key, content)
  try {
    const back = await store.get(key)
    if (!back?.equals(content)) {
      throw new ZenithError('CHECKSUM_MISMATCH', `${store.location} returned different content for a probe object than was written.`,
        'The server corrupts objects: for an S3-compatible server attach with -c checksums=when-required.')
    }
  } finally {
    await store.delete(key)
  }
}

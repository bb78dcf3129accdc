import {randomBytes} from 'node:crypto'
import {link, mkdir, open, readFile, rename, rm} from 'node:fs/promises'
import path from 'node:path'

/**
 * Stores a WAL file in a folder durably and never over different content: written to a
 * temporary file and fsynced, then hard-linked to its name (unlike a rename, a link never
 * replaces a file, so two writers racing on one name cannot overwrite each other), then the
 * folder is fsynced so that the name survives a power loss. Shared by zenith's FolderWalArea and
 * the archive command, so both write segments the same way.
 */
export async function storeSegmentFile(dir: string, name: string, body: Buffer): Promise<'stored' | 'identical' | 'conflict'> {
  const target = path.join(dir, name)
  const existing = await readIfExists(target)
  if (existing) return existing.equals(body) ? 'identical' : 'conflict'
  await mkdir(dir, {recursive: true, mode: 0o700})
  const temporary = path.join(dir, `.${name}.p${process.pid}.${randomBytes(4).toString('hex')}.tmp`)
  try {
    const handle = await open(temporary, 'wx', 0o600)
    try {
      await handle.writeFile(body)
      await handle.sync()
    } finally {
      await handle.close()
    }

    try {
      await link(temporary, target)
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (code === 'EEXIST') return (await readFile(target)).equals(body) ? 'identical' : 'conflict'
      // Some shares (FAT, some SMB mounts) have no hard links: check, then rename.
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw error
      const raced = await readIfExists(target)
      if (raced) return raced.equals(body) ? 'identical' : 'conflict'
      await rename(temporary, target)
    }
  } finally {
    await rm(temporary, {force: true})
  }

  await syncFolder(dir)
  return 'stored'
}

export async function readIfExists(file: string): Promise<Buffer | undefined> {
  try {
    return await readFile(file)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
}

export async function syncFolder(dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

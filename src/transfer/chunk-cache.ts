import {randomBytes} from 'node:crypto'
import {mkdir, readFile, readdir, rename, rm, writeFile} from 'node:fs/promises'
import path from 'node:path'

/**
 * Verified chunks (compressed, as stored remotely) kept on disk while a snapshot is being
 * received, so that an interrupted pull or recv fetches only what is still missing when it is
 * run again. Only chunks whose sha256 matched are ever renamed into place.
 */
export class ChunkCache {
  private known?: Set<string>

  constructor(readonly dir: string) {}

  async open(): Promise<Set<string>> {
    await mkdir(this.dir, {recursive: true, mode: 0o700})
    const names = await readdir(this.dir)
    this.known = new Set(names.filter((name) => /^[0-9a-f]{64}$/.test(name)))
    return new Set(this.known)
  }

  has(hash: string): boolean {
    return this.known?.has(hash) ?? false
  }

  async put(hash: string, stored: Buffer): Promise<void> {
    const temporary = path.join(this.dir, `.${hash}.${randomBytes(4).toString('hex')}`)
    await writeFile(temporary, stored, {mode: 0o600})
    await rename(temporary, path.join(this.dir, hash))
    this.known?.add(hash)
  }

  read(hash: string): Promise<Buffer> {
    return readFile(path.join(this.dir, hash))
  }

  async remove(): Promise<void> {
    await rm(this.dir, {recursive: true, force: true})
  }
}

import {chmod, mkdir, mkdtemp, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {execa} from 'execa'

export type LoopFilesystem = 'btrfs' | 'xfs' | 'ext4'

export interface LoopMount {
  dir: string
  unmount(): Promise<void>
}

/**
 * A filesystem in an image file, loop-mounted in a temporary folder (needs root). Unmount in
 * afterAll even when a test failed: loop devices are few.
 */
export async function mountLoop(type: LoopFilesystem, sizeMb: number): Promise<LoopMount> {
  const base = await mkdtemp(path.join(os.tmpdir(), `zenith-${type}-`))
  // The postgres OS user must be able to reach data directories inside.
  await chmod(base, 0o755)
  const image = path.join(base, 'fs.img')
  const dir = path.join(base, 'mnt')
  await mkdir(dir)
  await execa('truncate', ['-s', `${sizeMb}M`, image])
  const mkfs: Record<LoopFilesystem, [string, string[]]> = {
    btrfs: ['mkfs.btrfs', ['-q', image]],
    xfs: ['mkfs.xfs', ['-q', '-m', 'reflink=1', image]],
    ext4: ['mkfs.ext4', ['-q', '-F', image]],
  }
  await execa(...mkfs[type])
  await execa('mount', ['-o', 'loop', image, dir])
  await execa('chmod', ['0755', dir])
  return {
    dir,
    async unmount() {
      let result = await execa('umount', [dir], {reject: false})
      // A postgres that is still shutting down keeps the mount busy for a moment.
      for (let i = 0; i < 20 && result.exitCode !== 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 250))
        result = await execa('umount', [dir], {reject: false})
      }

      if (result.exitCode !== 0) await execa('umount', ['-l', dir], {reject: false})
      await rm(base, {recursive: true, force: true})
    },
  }
}

export const canMount = process.getuid?.() === 0

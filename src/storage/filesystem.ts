import {stat, statfs} from 'node:fs/promises'
import path from 'node:path'

import {ZenithError} from '../errors.js'

/** Kernel pseudo filesystems (statfs f_type, linux/magic.h): they hold no data. */
const PSEUDO_FILESYSTEMS = new Map<number, string>([
  [0x9f_a0, 'proc'], [0x62_65_65_72, 'sysfs'], [0x1c_d1, 'devpts'], [0x27_e0_eb, 'cgroup'], [0x63_67_72_70, 'cgroup2'],
  [0x64_62_67_20, 'debugfs'], [0x74_72_61_63, 'tracefs'], [0x73_63_66_73, 'securityfs'], [0xca_fe_4a_11, 'bpf'],
])

/**
 * Refuses a storage folder on a pseudo filesystem before anything is created there: node's
 * recursive mkdir under /proc never returns (it hangs `storage attach` for good), and nothing
 * written to /sys or /proc would be kept anyway.
 */
export async function assertDataFilesystem(folder: string): Promise<void> {
  if (process.platform !== 'linux') return
  let existing = path.resolve(folder)
  while (!(await stat(existing).then(() => true, () => false)) && existing !== path.dirname(existing)) existing = path.dirname(existing)
  const type = await statfs(existing).then((info) => Number(info.type), () => undefined)
  const name = type === undefined ? undefined : PSEUDO_FILESYSTEMS.get(type)
  if (name) {
    throw new ZenithError('INVALID_ARGUMENT', `${folder} is on the kernel's ${name} filesystem, which cannot hold data.`,
      'Pass a folder on a real disk or share, e.g. -c path=/mnt/data.')
  }
}

import {Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {ZenithError} from '../../errors.js'
import {attachStorage} from '../../storages.js'

export default class StorageAttach extends BaseCommand {
  static override description = 'Attach a storage: a local folder, a btrfs filesystem, an S3 bucket or a plain directory'
  static override examples = [
    '<%= config.bin %> storage attach -t btrfs -n fast -c path=/mnt/btrfs/zenith',
    '<%= config.bin %> storage attach -t local -n big -c path=/data/zenith',
    '<%= config.bin %> storage attach -t s3 -n s3tank -c bucket=team -c prefix=snaps',
    '<%= config.bin %> storage attach -t dir -n share -c path=/mnt/share/zenith',
  ]

  static override flags = {
    type: Flags.string({char: 't', description: 'storage type', options: ['local', 'btrfs', 'zfs', 's3', 'dir'], required: true}),
    name: Flags.string({char: 'n', description: 'name of the storage', required: true}),
    config: Flags.string({char: 'c', description: 'option key=value (repeatable): path=...; s3: bucket=, prefix=, region=, endpoint=, force-path-style=, checksums=', multiple: true}),
  }

  async run() {
    const {flags} = await this.parse(StorageAttach)
    const options = parseOptions(flags.config ?? [])
    const zenith = await this.openZenith()
    // The storage registry knows the types; a remote one (s3, dir) is probed with a write/read/delete before being saved.
    const storage = await attachStorage(zenith, {name: flags.name, type: flags.type, options})
    this.log(`Attached ${storage.type} storage ${storage.name}${storage.copyMethod ? ` (copies by ${storage.copyMethod})` : ''}`)
    return storage
  }
}

function parseOptions(pairs: string[]): Record<string, string> {
  const options: Record<string, string> = {}
  for (const pair of pairs) {
    const eq = pair.indexOf('=')
    if (eq <= 0) throw new ZenithError('INVALID_ARGUMENT', `"${pair}" is not key=value.`, 'Write -c key=value, e.g. -c path=/mnt/data.')
    options[pair.slice(0, eq)] = pair.slice(eq + 1)
  }

  return options
}

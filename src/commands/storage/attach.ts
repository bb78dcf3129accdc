import * as Flags from '@oclif/core/flags'

import {BaseCommand} from '../../cli/base-command.js'
import {parseOptions} from '../../key-value.js'
import {ATTACHABLE_TYPES, attachStorage, attachableType} from '../../storages.js'

export default class StorageAttach extends BaseCommand {
  static override description = 'Attach a storage: a local folder, a btrfs filesystem, a ZFS dataset, an S3 bucket or a plain directory'
  static override examples = [
    '<%= config.bin %> storage attach -t btrfs -n fast -c path=/mnt/btrfs/zenith',
    '<%= config.bin %> storage attach -t local -n big -c path=/data/zenith',
    '<%= config.bin %> storage attach -t zfs -n tank -c dataset=tank/zenith [-c mountpoint=/tank/zenith]',
    '<%= config.bin %> storage attach -t s3 -n s3tank -c bucket=team -c prefix=snaps',
    '<%= config.bin %> storage attach -t dir -n share -c path=/mnt/share/zenith',
  ]

  static override flags = {
    type: Flags.string({char: 't', description: `storage type: ${ATTACHABLE_TYPES.join(', ')}`, required: true}),
    name: Flags.string({char: 'n', description: 'name of the storage', required: true}),
    config: Flags.string({char: 'c', description: 'option key=value (repeatable): path=...; zfs: dataset=POOL/PATH, mountpoint=; s3: bucket=, prefix=, region=, endpoint=, force-path-style=, checksums=', multiple: true}),
  }

  async run() {
    const {flags} = await this.parse(StorageAttach)
    const type = attachableType(flags.type)
    const options = parseOptions(flags.config ?? [])
    const zenith = await this.openZenith()
    // The storage registry knows the types; a remote one (s3, dir) is probed with a write/read/delete before being saved.
    const storage = await attachStorage(zenith, {name: flags.name, type, options})
    return this.writer.message(storage, (item) => `Attached ${item.type} storage ${item.name}${item.copyMethod ? ` (copies by ${item.copyMethod})` : ''}`)
  }
}

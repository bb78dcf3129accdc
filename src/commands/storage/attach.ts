import {Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {ZenithError} from '../../errors.js'
import {parseOptions} from '../../key-value.js'
import {attachRemoteStorage} from '../../remote/attach.js'
import {ATTACHABLE_TYPES, attachLocalStorage, attachableType} from '../../storage/manage.js'

export default class StorageAttach extends BaseCommand {
  static override description = 'Attach a storage: a local folder, a btrfs filesystem, an S3 bucket or a plain directory'
  static override examples = [
    '<%= config.bin %> storage attach -t btrfs -n fast -c path=/mnt/btrfs/zenith',
    '<%= config.bin %> storage attach -t local -n big -c path=/data/zenith',
    '<%= config.bin %> storage attach -t s3 -n s3tank -c bucket=team -c prefix=snaps',
    '<%= config.bin %> storage attach -t dir -n share -c path=/mnt/share/zenith',
  ]

  static override flags = {
    type: Flags.string({char: 't', description: `storage type: ${ATTACHABLE_TYPES.join(', ')}`, required: true}),
    name: Flags.string({char: 'n', description: 'name of the storage', required: true}),
    config: Flags.string({char: 'c', description: 'option key=value (repeatable): path=...; s3: bucket=, prefix=, region=, endpoint=, force-path-style=, checksums=', multiple: true}),
  }

  async run() {
    const {flags} = await this.parse(StorageAttach)
    const type = attachableType(flags.type)
    const options = parseOptions(flags.config ?? [])
    const zenith = await this.openZenith()
    if (type === 's3' || type === 'dir') {
      // Remote storages (snapshots only): probed with a write/read/delete before being saved.
      const record = await attachRemoteStorage(zenith, {type, name: flags.name, options})
      this.log(`Attached ${record.type} storage ${record.name}`)
      return record
    }

    const storage = await attachLocalStorage(zenith, {name: flags.name, type, options})
    this.log(`Attached ${storage.type} storage ${storage.name}${storage.copyMethod ? ` (copies by ${storage.copyMethod})` : ''}`)
    return storage
  }
}

import {Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {ZenithError} from '../../errors.js'
import {attachRemoteStorage} from '../../remote/attach.js'
import {attachLocalStorage} from '../../storage/manage.js'

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
    if (flags.type === 's3' || flags.type === 'dir') {
      // Remote storages (snapshots only): probed with a write/read/delete before being saved.
      const record = await attachRemoteStorage(zenith, {type: flags.type, name: flags.name, options})
      return this.writer.message(record, ({type, name}) => `Attached ${type} storage ${name}`)
    }

    if (flags.type !== 'local' && flags.type !== 'btrfs') {
      throw new ZenithError('STORAGE_UNSUPPORTED', `Storage type ${flags.type} is not supported yet.`, 'Use -t local (reflink or copy), -t btrfs, -t s3 or -t dir.')
    }

    const storage = await attachLocalStorage(zenith, {name: flags.name, type: flags.type, options})
    return this.writer.message(storage, ({type, name, copyMethod}) => `Attached ${type} storage ${name}${copyMethod ? ` (copies by ${copyMethod})` : ''}`)
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

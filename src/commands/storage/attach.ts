import {Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {ZenithError} from '../../errors.js'
import {attachRemoteStorage} from '../../remote/attach.js'

export default class StorageAttach extends BaseCommand {
  static override description = 'Attach a storage: an S3 bucket/prefix or a plain folder for snapshots (probed before it is saved)'
  static override examples = [
    '<%= config.bin %> storage attach -t s3 -n s3tank -c bucket=team -c prefix=snaps',
    '<%= config.bin %> storage attach -t s3 -n minio -c bucket=dev -c endpoint=http://127.0.0.1:9000',
    '<%= config.bin %> storage attach -t dir -n share -c path=/mnt/share/zenith',
  ]

  static override flags = {
    type: Flags.string({char: 't', description: 'storage type', options: ['s3', 'dir'], required: true}),
    name: Flags.string({char: 'n', description: 'name of the storage', required: true}),
    config: Flags.string({char: 'c', description: 'option key=value (repeatable): s3: bucket, prefix, region, endpoint, force-path-style, checksums; dir: path', multiple: true}),
  }

  async run() {
    const {flags} = await this.parse(StorageAttach)
    const record = await attachRemoteStorage(await this.openZenith(), {type: flags.type as 's3' | 'dir', name: flags.name, options: parseOptions(flags.config ?? [])})
    this.log(`Attached ${record.type} storage ${record.name}`)
    return record
  }
}

function parseOptions(pairs: string[]): Record<string, string> {
  const options: Record<string, string> = {}
  for (const pair of pairs) {
    const equals = pair.indexOf('=')
    if (equals <= 0) throw new ZenithError('INVALID_ARGUMENT', `"${pair}" is not key=value.`, 'Pass options as -c key=value, e.g. -c bucket=team.')
    options[pair.slice(0, equals)] = pair.slice(equals + 1)
  }

  return options
}

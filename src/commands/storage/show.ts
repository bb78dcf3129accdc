import {Args} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {formatBytes} from '../../cli/format.js'
import {unreachableLine} from '../../cli/render.js'
import {showStorage} from '../../storages.js'

export default class StorageShow extends BaseCommand {
  static override description = 'Show a storage: type, capabilities, space, pgs and snapshots in it'
  static override examples = ['<%= config.bin %> storage show local']
  static override args = {name: Args.string({description: 'storage', required: true})}

  async run() {
    const {args} = await this.parse(StorageShow)
    const storage = await showStorage(await this.openZenith(), args.name)
    this.log([
      `${storage.name}:`,
      `  type: ${storage.type}`,
      ...(storage.path ? [`  path: ${storage.path}`] : []),
      ...(storage.copyMethod ? [`  copies by: ${storage.copyMethod}`] : []),
      ...Object.entries(storage.options).filter(([key]) => key !== 'path').map(([key, value]) => `  ${key}: ${value}`),
      ...(storage.error ? [`  ${unreachableLine(storage.error)}`] : []),
      `  used: ${storage.usedBytes === undefined ? '?' : formatBytes(storage.usedBytes)}${storage.freeBytes === undefined ? '' : ` (${formatBytes(storage.freeBytes)} free)`}`,
      `  pgs: ${storage.pgs.join(', ') || '-'}`,
      // Unknown, not none, when the storage could not be read.
      `  snapshots: ${storage.error ? '?' : storage.snapshots.join(', ') || '-'}`,
    ].join('\n'))
    return storage
  }
}

import * as Args from '@oclif/core/args'

import {BaseCommand} from '../../cli/base-command.js'
import {formatBytes} from '../../cli/format.js'
import {unreachableLine} from '../../cli/render.js'
import {maskPasswords} from '../../secrets.js'
import {showStorage} from '../../storages.js'

export default class StorageShow extends BaseCommand {
  static override description = 'Show a storage: type, capabilities, space, pgs and snapshots in it'
  static override examples = ['<%= config.bin %> storage show local']
  static override args = {name: Args.string({description: 'storage', required: true})}

  async run() {
    const {args} = await this.parse(StorageShow)
    const storage = await showStorage(await this.openZenith(), args.name)
    return this.writer.layout(storage, {title: ({name}) => name, fields: [
      'type',
      {key: 'path', format: (path) => path},
      {key: 'copyMethod', label: 'copies by', format: (method) => method},
      // Options given with -c, one line each (the path has its own); secrets masked as in storage list.
      {key: 'options', entries: (options) => Object.entries(options).filter(([key]) => key !== 'path').map(([key, value]) => [key, maskPasswords(value)])},
      {key: 'error', label: '', format: (error) => error && unreachableLine(error)},
      {key: 'usedBytes', label: 'used', format: (bytes, {freeBytes}) => `${bytes === undefined ? '?' : formatBytes(bytes)}${freeBytes === undefined ? '' : ` (${formatBytes(freeBytes)} free)`}`},
      'pgs',
      // Unknown, not none, when the storage could not be read.
      {key: 'snapshots', format: (snapshots, {error}) => (error ? '?' : snapshots.join(', ') || '-')},
    ]})
  }
}

import {BaseCommand} from '../../cli/base-command.js'
import {formatBytes} from '../../cli/format.js'
import {storageOptions, unreachableLine} from '../../cli/render.js'
import {listStorages} from '../../storages.js'

export default class StorageList extends BaseCommand {
  static override description = 'List attached storages and what their filesystems can do'
  static override examples = ['<%= config.bin %> storage list', '<%= config.bin %> storage list --json']

  async run() {
    await this.parse(StorageList)
    const storages = await listStorages(await this.openZenith())
    return this.writer.table(storages, {
      fields: [
        'name',
        // Unknown, not 0, when a remote storage could not be read.
        {key: 'usedBytes', label: 'USED', format: (bytes) => (bytes === undefined ? '?' : formatBytes(bytes))},
        'type',
        {key: 'options', format: (_options, storage) => storageOptions(storage)},
        'path',
      ],
      notes: (rows) => rows.flatMap((storage) => (storage.error ? [`${storage.name}: ${unreachableLine(storage.error)}`] : [])),
    })
  }
}

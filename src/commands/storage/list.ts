import {BaseCommand} from '../../cli/base-command.js'
import {formatBytes, renderTable} from '../../cli/format.js'
import {storageOptions, unreachableLine} from '../../cli/render.js'
import {listStorages} from '../../storages.js'

export default class StorageList extends BaseCommand {
  static override description = 'List attached storages and what their filesystems can do'
  static override examples = ['<%= config.bin %> storage list', '<%= config.bin %> storage list --json']

  async run() {
    await this.parse(StorageList)
    const storages = await listStorages(await this.openZenith())
    this.log(renderTable(['NAME', 'USED', 'TYPE', 'OPTIONS', 'PATH'], storages.map((storage) => [
      storage.name,
      storage.usedBytes === undefined ? '?' : formatBytes(storage.usedBytes),
      storage.type,
      storageOptions(storage) || '-',
      storage.path ?? '-',
    ])))
    for (const storage of storages) if (storage.error) this.log(`${storage.name}: ${unreachableLine(storage.error)}`)
    return storages
  }
}

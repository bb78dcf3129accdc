import {BaseCommand} from '../../cli/base-command.js'
import {formatBytes, renderTable} from '../../cli/format.js'
import {listStorages} from '../../storage/manage.js'

export default class StorageList extends BaseCommand {
  static override description = 'List attached storages and what their filesystems can do'
  static override examples = ['<%= config.bin %> storage list', '<%= config.bin %> storage list --json']

  async run() {
    await this.parse(StorageList)
    const storages = await listStorages(await this.openZenith())
    this.log(renderTable(['NAME', 'USED', 'TYPE', 'OPTIONS', 'PATH'], storages.map((storage) => [
      storage.name,
      formatBytes(storage.usedBytes),
      storage.type,
      [...(storage.copyMethod ? [`copy=${storage.copyMethod}`] : []), ...Object.entries(storage.options).filter(([key]) => key !== 'path').map(([key, value]) => `${key}=${value}`)].join(',') || '-',
      storage.path ?? '-',
    ])))
    return storages
  }
}

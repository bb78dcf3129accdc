import {BaseCommand} from '../../cli/base-command.js'
import {resolveHome} from '../../context.js'
import {listSettings} from '../../settings.js'

export default class ConfigList extends BaseCommand {
  static override description = 'List the user settings: value, where it comes from (env, set, default) and what it does'
  static override examples = ['<%= config.bin %> config list', '<%= config.bin %> config list --json']

  async run() {
    await this.parse(ConfigList)
    return this.writer.table(await listSettings(resolveHome()), {fields: ['key', 'value', 'source', 'description']})
  }
}

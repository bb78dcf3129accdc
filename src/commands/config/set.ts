import * as Args from '@oclif/core/args'

import {BaseCommand} from '../../cli/base-command.js'
import {resolveHome} from '../../context.js'
import {setSetting} from '../../settings.js'

export default class ConfigSet extends BaseCommand {
  static override description = 'Set a user setting, kept in ZENITH_HOME/settings.json'
  static override examples = ['<%= config.bin %> config set default-storage fast', '<%= config.bin %> config set pg-user zenithpg']
  static override args = {
    key: Args.string({description: 'setting (see `zenith config list`)', required: true}),
    value: Args.string({description: 'its new value', required: true}),
  }

  async run() {
    const {args} = await this.parse(ConfigSet)
    const setting = await setSetting(resolveHome(), args.key, args.value)
    return this.writer.message(setting, ({key, value, source}) => (source === 'env'
      ? `Set ${key} to ${args.value}; the environment overrides it for now (${value})`
      : `Set ${key} to ${value}`))
  }
}

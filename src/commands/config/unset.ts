import * as Args from '@oclif/core/args'

import {BaseCommand} from '../../cli/base-command.js'
import {resolveHome} from '../../context.js'
import {unsetSetting} from '../../settings.js'

export default class ConfigUnset extends BaseCommand {
  static override description = 'Remove a user setting: zenith uses its default again'
  static override examples = ['<%= config.bin %> config unset default-storage']
  static override args = {key: Args.string({description: 'setting (see `zenith config list`)', required: true})}

  async run() {
    const {args} = await this.parse(ConfigUnset)
    const setting = await unsetSetting(resolveHome(), args.key)
    return this.writer.message(setting, ({key, value, source}) => `Unset ${key}; it is ${value} (${source === 'env' ? 'from the environment' : 'the default'})`)
  }
}

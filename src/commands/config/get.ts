import * as Args from '@oclif/core/args'

import {BaseCommand} from '../../cli/base-command.js'
import {resolveHome} from '../../context.js'
import {getSetting} from '../../settings.js'

export default class ConfigGet extends BaseCommand {
  static override description = 'Print the value of a setting (the one in use: the environment, else what was set, else the default)'
  static override examples = ['<%= config.bin %> config get default-storage', '<%= config.bin %> config get pg-user --json']
  static override args = {key: Args.string({description: 'setting (see `zenith config list`)', required: true})}

  async run() {
    const {args} = await this.parse(ConfigGet)
    const setting = await getSetting(resolveHome(), args.key)
    return this.writer.message(setting, ({value}) => value)
  }
}

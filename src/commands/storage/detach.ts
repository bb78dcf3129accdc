import * as Args from '@oclif/core/args'

import {BaseCommand} from '../../cli/base-command.js'
import {detachStorage} from '../../storages.js'

export default class StorageDetach extends BaseCommand {
  static override description = 'Forget a storage (its files stay); refuses while pgs or snapshots live in it'
  static override examples = ['<%= config.bin %> storage detach big']
  static override args = {name: Args.string({description: 'storage', required: true})}

  async run() {
    const {args} = await this.parse(StorageDetach)
    const result = await detachStorage(await this.openZenith(), args.name)
    return this.writer.message(result, ({name, path}) => `Detached ${name}${path ? ` (files left in ${path})` : ''}`)
  }
}

import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {destroySnapshot} from '../../snapshot/snapshots.js'

export default class SnapshotDestroy extends BaseCommand {
  static override description = 'Destroy a snapshot (refuses while pgs were created from it, unless --force)'
  static override examples = ['<%= config.bin %> snapshot destroy oldpg', '<%= config.bin %> snapshot destroy dev@HEAD{0}']
  static override args = {ref: Args.string({description: 'snapshot', required: true})}
  static override flags = {force: Flags.boolean({char: 'f', description: 'destroy even if pgs were created from it'})}

  async run() {
    const {args, flags} = await this.parse(SnapshotDestroy)
    const result = await destroySnapshot(await this.openZenith(), args.ref, {force: flags.force})
    this.log('Ok')
    return result
  }
}

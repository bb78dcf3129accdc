import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {BaseCommand} from '../../cli/base-command.js'
import {restartPg} from '../../pg/lifecycle.js'

export default class PgRestart extends BaseCommand {
  static override description = 'Stop (if running) and start postgres on a pg'
  static override examples = ['<%= config.bin %> pg restart dev']
  static override args = {name: Args.string({description: 'pg to restart', required: true})}
  static override flags = {
    mode: Flags.string({char: 'm', description: 'how to stop', options: ['fast', 'immediate'], default: 'fast'}),
  }

  async run() {
    const {args, flags} = await this.parse(PgRestart)
    const pg = await restartPg(await this.openZenith(), args.name, {mode: flags.mode as 'fast' | 'immediate', onProgress: this.progress})
    return this.writer.message(pg, ({endpoint}) => `Started postgres on ${endpoint}`)
  }
}

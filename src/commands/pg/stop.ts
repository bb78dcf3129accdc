import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {BaseCommand} from '../../cli/base-command.js'
import {stopPg} from '../../pg/lifecycle.js'

export default class PgStop extends BaseCommand {
  static override description = 'Stop postgres on a pg'
  static override examples = ['<%= config.bin %> pg stop dev', '<%= config.bin %> pg stop dev --mode immediate']
  static override args = {name: Args.string({description: 'pg to stop', required: true})}
  static override flags = {
    mode: Flags.string({char: 'm', description: 'fast: roll back open transactions; immediate: no checkpoint, recovery on next start', options: ['fast', 'immediate'], default: 'fast'}),
  }

  async run() {
    const {args, flags} = await this.parse(PgStop)
    const pg = await stopPg(await this.openZenith(), args.name, {mode: flags.mode as 'fast' | 'immediate'})
    return this.writer.message(pg, ({name}) => `Stopped postgres on ${name}`)
  }
}

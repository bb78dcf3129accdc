import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {BaseCommand} from '../../cli/base-command.js'
import {pgUrl} from '../../pg/lifecycle.js'

export default class PgUrl extends BaseCommand {
  static override description = 'Print a connection URI for a pg'
  static override examples = ['<%= config.bin %> pg url dev', 'psql "$(<%= config.bin %> pg url dev)"']
  static override args = {name: Args.string({description: 'pg', required: true})}
  static override flags = {database: Flags.string({char: 'd', description: 'database name', default: 'postgres'})}

  async run() {
    const {args, flags} = await this.parse(PgUrl)
    const url = await pgUrl(await this.openZenith(), args.name, flags.database)
    return this.writer.message({url}, (result) => result.url)
  }
}

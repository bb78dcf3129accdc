import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {startPg} from '../../pg/lifecycle.js'

export default class PgStart extends BaseCommand {
  static override description = 'Start postgres on a pg (recovers a crashed one)'
  static override examples = ['<%= config.bin %> pg start dev', '<%= config.bin %> pg start dev --port 5440']
  static override args = {name: Args.string({description: 'pg to start', required: true})}
  static override flags = {port: Flags.integer({description: 'start on this port from now on'})}

  async run() {
    const {args, flags} = await this.parse(PgStart)
    const pg = await startPg(await this.openZenith(), args.name, {port: flags.port})
    return this.writer.message(pg, ({endpoint}) => `Started postgres on ${endpoint}`)
  }
}

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
    const zenith = await this.openZenith()
    const pg = await startPg(zenith, args.name, {port: flags.port})
    // A checkout of an archiving pg moved it to a new WAL timeline: its PITR areas need a base on it.
    if (Object.values((await zenith.store.read()).pitr).some((area) => area.pg === args.name)) {
      const {refreshBasesAfterFork} = await import('../../pitr/areas.js')
      await refreshBasesAfterFork(zenith, args.name, this.progress)
    }

    return this.writer.message(pg, ({endpoint}) => `Started postgres on ${endpoint}`)
  }
}

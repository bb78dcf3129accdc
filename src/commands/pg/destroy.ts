import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {BaseCommand} from '../../cli/base-command.js'
import {destroyPg} from '../../pg/lifecycle.js'
import {destroyPitrOfPg} from '../../pitr/areas.js'

export default class PgDestroy extends BaseCommand {
  static override description = 'Stop a pg and remove its data directory'
  static override examples = ['<%= config.bin %> pg destroy dev', '<%= config.bin %> pg destroy dev --force   # also destroys its snapshots (its replicas go in any case)']
  static override args = {name: Args.string({description: 'pg to destroy', required: true})}
  static override flags = {force: Flags.boolean({char: 'f', description: 'also destroy the snapshots and PITR areas of this pg'})}

  async run() {
    const {args, flags} = await this.parse(PgDestroy)
    const zenith = await this.openZenith()
    // PITR areas first (they hold the pg's archive settings); without --force destroyPg refuses while it has any.
    if (flags.force) await destroyPitrOfPg(zenith, args.name, {onProgress: this.progress})
    const result = await destroyPg(zenith, args.name, {force: flags.force, onProgress: this.progress})
    return this.writer.message(result, ({name, snapshotsDestroyed, replicasDestroyed}) => {
      const also = [
        ...replicasDestroyed.length > 0 ? [`its replicas ${replicasDestroyed.join(', ')}`] : [],
        ...snapshotsDestroyed.length > 0 ? [`its snapshots ${snapshotsDestroyed.join(', ')}`] : [],
      ]
      return `Destroyed ${name}${also.length > 0 ? ` and ${also.join(' and ')}` : ''}`
    })
  }
}

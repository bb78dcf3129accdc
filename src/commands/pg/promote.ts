import * as Args from '@oclif/core/args'

import {BaseCommand} from '../../cli/base-command.js'
import {promoteReplica} from '../../replica/replicas.js'

export default class PgPromote extends BaseCommand {
  static override description = 'Turn a replica into an independent primary (it stops following its primary)'
  static override examples = ['<%= config.bin %> pg promote dev/replica-1            # becomes the pg dev-replica-1', '<%= config.bin %> pg promote dev/replica-1 dev2']
  static override args = {
    replica: Args.string({description: 'the replica (PRIMARY/replica-N)', required: true}),
    name: Args.string({description: 'name of the new primary (default PRIMARY-replica-N)'}),
  }

  async run() {
    const {args} = await this.parse(PgPromote)
    const pg = await promoteReplica(await this.openZenith(), args.replica, {newName: args.name, onProgress: this.progress})
    return this.writer.message(pg, ({name, endpoint}) => `Promoted ${args.replica}: it is now the primary ${name} on ${endpoint}`)
  }
}

import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {BaseCommand} from '../../cli/base-command.js'
import {createPitr} from '../../pitr/areas.js'

export default class PitrCreate extends BaseCommand {
  static override description = 'Start archiving a pg\'s WAL into a PITR area (with a first base), to extract snapshots at any LSN or time later'
  static override examples = [
    '<%= config.bin %> pitr create dev_week --pg dev --ttl 7d',
    '<%= config.bin %> pitr create pitr_last_month --pg dev --storage s3tank --ttl 30d --size-limit 50G',
  ]

  static override args = {name: Args.string({description: 'name of the new PITR area', required: true})}
  static override flags = {
    pg: Flags.string({description: 'pg whose WAL is archived', required: true}),
    storage: Flags.string({char: 's', description: 'storage of the area: the pg\'s own (default), or a dir or s3 storage'}),
    ttl: Flags.string({description: 'how far back the window reaches: 30d, 12h, 90m or inf', default: 'inf'}),
    'size-limit': Flags.string({description: 'most the area may hold (bases + WAL): 500M, 10G or inf', default: 'inf'}),
  }

  async run() {
    const {args, flags} = await this.parse(PitrCreate)
    const area = await createPitr(await this.openZenith(), {
      name: args.name, pg: flags.pg, storage: flags.storage, ttl: flags.ttl, sizeLimit: flags['size-limit'], onProgress: this.progress,
    })
    return this.writer.message(area, ({name, pg, storage, restarted, from}) =>
      `Created PITR area ${name}: WAL of ${pg} goes to storage ${storage}${restarted ? ` (${pg} was restarted once to turn archiving on)` : ''}; ` +
      (from ? `the window starts at ${from.time} (${from.lsn})` : 'the window opens once the archiver has stored the first base\'s WAL'))
  }
}

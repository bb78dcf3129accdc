import * as Args from '@oclif/core/args'

import {BaseCommand} from '../../cli/base-command.js'
import {createSnapshot} from '../../snapshot/snapshots.js'

export default class SnapshotCreate extends BaseCommand {
  static override description = 'Snapshot a pg (running or stopped) as PG@TAG; no data is copied where the storage shares blocks'
  static override examples = ['<%= config.bin %> snapshot create dev@before-migration']
  static override args = {ref: Args.string({description: 'PG@TAG', required: true})}

  async run() {
    const {args} = await this.parse(SnapshotCreate)
    const snapshot = await createSnapshot(await this.openZenith(), args.ref, {onProgress: this.progress})
    return this.writer.message(snapshot, ({name}) => `Created snapshot ${name}`)
  }
}

import {Args} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {formatBytes, formatParent} from '../../cli/format.js'
import {showSnapshot} from '../../snapshot/snapshots.js'

export default class SnapshotShow extends BaseCommand {
  static override description = 'Show a snapshot: size, parent, how it was taken, what depends on it'
  static override examples = ['<%= config.bin %> snapshot show dev@before-migration', '<%= config.bin %> snapshot show dev@HEAD{0} --json']
  static override args = {ref: Args.string({description: 'snapshot (PG@TAG, PG@HEAD{n}, PG@CURRENT or a name)', required: true})}

  async run() {
    const {args} = await this.parse(SnapshotShow)
    const snapshot = await showSnapshot(await this.openZenith(), args.ref)
    this.log([
      `${snapshot.name}:`,
      `  storage: ${snapshot.storage}`,
      `  size: ${formatBytes(snapshot.sizeBytes)}${snapshot.sizeExact ? ' (retained by this snapshot)' : ' (logical)'}`,
      `  parent: ${formatParent(snapshot)}`,
      `  taken by: ${snapshot.method}`,
      `  postgres: ${snapshot.pgVersion || '-'}`,
      ...(snapshot.createdAt ? [`  created: ${snapshot.createdAt}`] : []),
      `  dependents: ${snapshot.dependents.join(', ') || '-'}`,
    ].join('\n'))
    return snapshot
  }
}

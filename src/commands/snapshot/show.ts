import * as Args from '@oclif/core/args'

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
    return this.writer.layout(snapshot, {title: ({name}) => name, fields: [
      'storage',
      {key: 'sizeBytes', label: 'size', format: (bytes, {sizeExact}) => `${formatBytes(bytes)}${sizeExact ? ' (retained by this snapshot)' : ' (logical)'}`},
      {key: 'parent', format: (_parent, item) => formatParent(item)},
      {key: 'method', label: 'taken by'},
      // 0: an implicit snapshot whose version is not read.
      {key: 'pgVersion', label: 'postgres', format: (version) => (version ? String(version) : '-')},
      {key: 'createdAt', label: 'created', format: (createdAt) => createdAt},
      'dependents',
    ]})
  }
}

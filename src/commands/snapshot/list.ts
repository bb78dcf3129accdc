import * as Flags from '@oclif/core/flags'

import {BaseCommand} from '../../cli/base-command.js'
import {formatBytes, formatParent} from '../../cli/format.js'
import {listSnapshotsInStorage} from '../../snapshot/inventory.js'
import {listSnapshots} from '../../snapshot/snapshots.js'

export default class SnapshotList extends BaseCommand {
  static override description = 'List snapshots, with the implicit PG@CURRENT and PG@HEAD{n} of every pg'
  static override examples = ['<%= config.bin %> snapshot list', '<%= config.bin %> snapshot list --pg dev --json', '<%= config.bin %> snapshot list --storage s3tank']
  static override flags = {
    pg: Flags.string({description: 'only snapshots of this pg'}),
    storage: Flags.string({char: 's', description: 'only snapshots in this storage (local or remote)'}),
  }

  async run() {
    const {flags} = await this.parse(SnapshotList)
    const zenith = await this.openZenith()
    const snapshots = flags.storage
      ? await listSnapshotsInStorage(zenith, flags.storage, {pg: flags.pg})
      : await listSnapshots(zenith, {pg: flags.pg})
    return this.writer.table(snapshots, {
      fields: [
        {key: 'name', label: 'ID'},
        {key: 'sizeBytes', label: 'SIZE', format: (bytes, snapshot) => `${formatBytes(bytes)}${snapshot.sizeExact ? '' : '*'}`},
        {key: 'parent', label: 'PARENT', format: (_parent, snapshot) => formatParent(snapshot)},
        {key: 'createdAt', label: 'CREATED', format: (createdAt) => createdAt?.slice(0, 19).replace('T', ' ')},
        'storage',
      ],
      notes: (rows) => (rows.some((snapshot) => !snapshot.sizeExact) ? ['* logical size: this storage cannot tell how much of it is shared with other snapshots'] : []),
    })
  }
}

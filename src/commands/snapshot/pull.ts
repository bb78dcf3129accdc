import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {formatBytes} from '../../cli/format.js'
import {pullSnapshot} from '../../transfer/pull.js'

export default class SnapshotPull extends BaseCommand {
  static override description = 'Fetch a snapshot from an s3/dir storage, a URL, or another host over ssh; every chunk is verified before the snapshot appears'
  static override examples = [
    '<%= config.bin %> snapshot pull --from s3tank dev@fixture',
    '<%= config.bin %> snapshot pull --from s3://team-bucket/snaps dev@fixture --as fixture',
    '<%= config.bin %> snapshot pull --from file:///mnt/share/zenith',
    '<%= config.bin %> snapshot pull --from ssh://deploy@db2.internal dev@fixture',
  ]

  static override args = {snapshot: Args.string({description: 'remote snapshot (optional when the remote holds only one)'})}
  static override flags = {
    from: Flags.string({description: 'storage name or URL (s3://bucket/prefix, file:///path, ssh://[user@]host[/zenith/home])', required: true}),
    as: Flags.string({description: 'local name (default: the remote name)'}),
    storage: Flags.string({char: 's', description: 'local storage to keep it in', default: 'local'}),
  }

  async run() {
    const {args, flags} = await this.parse(SnapshotPull)
    const result = await pullSnapshot(await this.openZenith(), {from: flags.from, snapshot: args.snapshot, as: flags.as, storage: flags.storage, onProgress: this.progress})
    return this.writer.message(result, ({remoteName, from, snapshot, receivedBytes, logicalBytes, chunksCached}) =>
      `Pulled ${remoteName} from ${from} as ${snapshot.name}: received ${formatBytes(receivedBytes)} for ${formatBytes(logicalBytes)}` +
      `${chunksCached > 0 ? ` (${chunksCached} chunks were already fetched by an earlier attempt)` : ''}.`)
  }
}

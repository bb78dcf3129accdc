import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {BaseCommand} from '../../cli/base-command.js'
import {formatBytes} from '../../cli/format.js'
import {pullSnapshot} from '../../receive/pull.js'

export default class SnapshotPull extends BaseCommand {
  static override description = 'Fetch a snapshot from an s3/dir storage, a URL, or another host over ssh; every chunk is verified before the snapshot appears'
  static override examples = [
    '<%= config.bin %> snapshot pull --from s3tank dev@fixture',
    '<%= config.bin %> snapshot pull --from s3://team-bucket/snaps dev@fixture --as fixture',
    '<%= config.bin %> snapshot pull --from file:///mnt/share/zenith',
    '<%= config.bin %> snapshot pull --from ssh://deploy@db2.internal dev@fixture',
    {description: 'ssh on port 2222, from that host\'s ZENITH_HOME, zenith run as /opt/zenith/bin/run.js there:', command: '<%= config.bin %> snapshot pull --from \'ssh://deploy@db2.internal:2222/var/lib/zenith?zenith=/opt/zenith/bin/run.js\' dev@fixture'},
  ]

  static override args = {snapshot: Args.string({description: 'remote snapshot (optional when the remote holds only one)'})}
  static override flags = {
    from: Flags.string({description: 'an s3/dir storage name, or a URL: s3://bucket/prefix[?endpoint=URL], file:///path, ssh://[user@]host[:port][/zenith/home][?zenith=COMMAND] (zenith=: the command that runs zenith there, default zenith)', required: true}),
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

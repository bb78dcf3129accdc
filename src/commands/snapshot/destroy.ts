import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {formatBytes} from '../../cli/format.js'
import {destroySnapshot} from '../../snapshot/snapshots.js'

export default class SnapshotDestroy extends BaseCommand {
  static override description = 'Destroy a snapshot (refuses while pgs were created from it, unless --force); with --storage, one pushed to a remote storage'
  static override examples = [
    '<%= config.bin %> snapshot destroy oldpg',
    '<%= config.bin %> snapshot destroy dev@HEAD{0}',
    '<%= config.bin %> snapshot destroy dev@fixture --storage s3tank',
  ]

  static override args = {ref: Args.string({description: 'snapshot', required: true})}
  static override flags = {
    force: Flags.boolean({char: 'f', description: 'destroy even if pgs were created from it'}),
    storage: Flags.string({char: 's', description: 'a remote storage (s3, dir) or URL (s3://, file://) to destroy the snapshot in; unused packs are deleted'}),
  }

  async run() {
    const {args, flags} = await this.parse(SnapshotDestroy)
    const zenith = await this.openZenith()
    if (!flags.storage) {
      const result = await destroySnapshot(zenith, args.ref, {force: flags.force})
      this.log('Ok')
      return result
    }

    // Loaded only here: a local destroy has no use for the remote modules.
    const {destroyRemoteSnapshot} = await import('../../remote/collect.js')
    const result = await destroyRemoteSnapshot(zenith, {storage: flags.storage, snapshot: args.ref})
    this.log(`Destroyed ${result.name} in ${result.storage}: ` + (result.collected
      ? `deleted ${result.packsDeleted} unused pack${result.packsDeleted === 1 ? '' : 's'}${result.chunksDeleted > 0 ? ` and ${result.chunksDeleted} chunk objects` : ''} (${formatBytes(result.freedBytes)}); ${formatBytes(result.storedBytes)} stored.`
      : `${result.notCollected}.`))
    return result
  }
}

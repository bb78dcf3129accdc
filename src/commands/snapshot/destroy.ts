import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {BaseCommand} from '../../cli/base-command.js'
import {formatBytes} from '../../cli/format.js'
import {type StorageDestroyResult, destroySnapshotInStorage} from '../../snapshot/inventory.js'
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
    storage: Flags.string({char: 's', description: 'the storage holding it; a remote one (s3, dir, or an s3:// or file:// URL) also loses the packs no other snapshot uses'}),
  }

  async run() {
    const {args, flags} = await this.parse(SnapshotDestroy)
    const zenith = await this.openZenith()
    if (!flags.storage) {
      return this.writer.message(await destroySnapshot(zenith, args.ref, {force: flags.force}), () => 'Ok')
    }

    return this.writer.message(await destroySnapshotInStorage(zenith, flags.storage, args.ref, {force: flags.force}), destroyedText)
  }
}

function destroyedText(result: StorageDestroyResult): string {
  // The proposal's session answers a local destroy with "Ok".
  if (!result.remote) return 'Ok'
  return `Destroyed ${result.name} in ${result.storage}: ` + (result.collected
    ? `deleted ${result.packsDeleted} unused pack${result.packsDeleted === 1 ? '' : 's'}${result.chunksDeleted > 0 ? ` and ${result.chunksDeleted} chunk objects` : ''} (${formatBytes(result.freedBytes)}); ${formatBytes(result.storedBytes)} stored.`
    : `${result.notCollected}.`)
}

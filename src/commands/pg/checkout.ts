import * as Args from '@oclif/core/args'

import {BaseCommand} from '../../cli/base-command.js'
import {checkout} from '../../snapshot/checkout.js'

export default class PgCheckout extends BaseCommand {
  static override description = 'Roll a pg back to one of its snapshots; the old CURRENT is kept as PG@HEAD{n}'
  static override examples = ['<%= config.bin %> pg checkout dev@before-migration', '<%= config.bin %> pg checkout dev@HEAD{0}   # undo the last checkout']
  static override args = {ref: Args.string({description: 'PG@TAG or PG@HEAD{n}', required: true})}

  async run() {
    const {args} = await this.parse(PgCheckout)
    const zenith = await this.openZenith()
    const result = await checkout(zenith, args.ref, {onProgress: this.progress})
    // A checkout of an archiving pg moved it to a new WAL timeline: its PITR areas need a base on it.
    if (Object.values((await zenith.store.read()).pitr).some((area) => area.pg === result.name)) {
      const {refreshBasesAfterFork} = await import('../../pitr/areas.js')
      await refreshBasesAfterFork(zenith, result.name, this.progress)
    }

    return this.writer.message(result, ({target, head}) => `Checked out ${target}; the previous state is ${head}`)
  }
}

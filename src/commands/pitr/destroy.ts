import * as Args from '@oclif/core/args'

import {BaseCommand} from '../../cli/base-command.js'
import {destroyPitr} from '../../pitr/areas.js'

export default class PitrDestroy extends BaseCommand {
  static override description = 'Stop archiving into a PITR area and delete its bases and WAL'
  static override examples = ['<%= config.bin %> pitr destroy dev_week']
  static override args = {name: Args.string({description: 'PITR area', required: true})}

  async run() {
    const {args} = await this.parse(PitrDestroy)
    const result = await destroyPitr(await this.openZenith(), args.name, {onProgress: this.progress})
    return this.writer.message(result, ({name, archivingStopped}) => `Destroyed PITR area ${name}${archivingStopped
      ? '; its pg archives no more (archive_mode stays on until its next restart, and WAL is not kept meanwhile)' : ''}`)
  }
}

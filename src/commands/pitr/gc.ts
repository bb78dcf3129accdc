import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {BaseCommand} from '../../cli/base-command.js'
import {formatBytes} from '../../cli/format.js'
import {ZenithError} from '../../errors.js'
import {type GcResult, gcPitr, listPitr} from '../../pitr/areas.js'

export default class PitrGc extends BaseCommand {
  static override description = 'Drop the bases and WAL a PITR area\'s TTL and size limit no longer keep, send what waits in its spool, take a new base when one is due'
  static override examples = ['<%= config.bin %> pitr gc dev_week', '<%= config.bin %> pitr gc --all   # from cron, e.g. hourly', '<%= config.bin %> pitr gc dev_week --new-base']
  static override args = {name: Args.string({description: 'PITR area'})}
  static override flags = {
    all: Flags.boolean({description: 'every PITR area'}),
    'new-base': Flags.boolean({description: 'take a new base first (fewer WAL to replay for targets after it), then collect'}),
  }

  async run() {
    const {args, flags} = await this.parse(PitrGc)
    if (!args.name === !flags.all) throw new ZenithError('INVALID_ARGUMENT', 'Name one PITR area, or pass --all.', 'zenith pitr gc NAME, or zenith pitr gc --all')
    const zenith = await this.openZenith()
    const names = flags.all ? (await listPitr(zenith)).map((area) => area.name) : [args.name!]
    const results: GcResult[] = []
    for (const name of names) results.push(await gcPitr(zenith, name, {newBase: flags['new-base'], onProgress: this.progress}))
    return this.writer.table(results, {fields: [
      'name',
      {key: 'basesDropped', label: 'BASES DROPPED', format: (ids) => (ids.length === 0 ? '0' : ids.map((id) => `base${id}`).join(', '))},
      {key: 'segmentsDropped', label: 'SEGMENTS DROPPED', format: String},
      {key: 'bytesFreed', label: 'FREED', format: formatBytes},
      {key: 'spoolSent', label: 'SPOOL SENT', format: (sent, row) => (row.spoolError ? `${sent} (the rest waits: ${row.spoolError})` : String(sent))},
      {key: 'baseTaken', label: 'NEW BASE', format: (id) => (id === undefined ? '-' : `base${id}`)},
      {key: 'overLimit', label: 'OVER LIMIT', format: (over) => (over ? 'yes: the newest base alone is over the limit' : 'no')},
    ]})
  }
}

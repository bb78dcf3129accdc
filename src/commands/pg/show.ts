import {Args} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {formatBytes} from '../../cli/format.js'
import {showPg} from '../../pg/lifecycle.js'

export default class PgShow extends BaseCommand {
  static override description = 'Show a pg: storage, status, endpoint, space used and snapshots'
  static override examples = ['<%= config.bin %> pg show dev', '<%= config.bin %> pg show dev --json']
  static override args = {name: Args.string({description: 'pg', required: true})}

  async run() {
    const {args} = await this.parse(PgShow)
    const pg = await showPg(await this.openZenith(), args.name)
    this.log([
      `${pg.name}:`,
      `  role: ${pg.role}`,
      `  status: ${pg.status}`,
      `  endpoint: ${pg.endpoint}`,
      `  storage: ${pg.storage}`,
      `  space used on ${pg.storage}: ${formatBytes(pg.usedBytes)}`,
      `  postgres: ${pg.pgVersion}`,
      `  data directory: ${pg.dataDir}`,
      `  log: ${pg.logFile}`,
      ...(pg.origin ? [`  created from: ${pg.origin.snapshot}${pg.origin.cow ? ' (copy-on-write clone)' : ''}`] : []),
      ...(Object.keys(pg.settings).length > 0 ? ['  settings:', ...Object.entries(pg.settings).map(([key, value]) => `    ${key} = ${value}`)] : []),
    ].join('\n'))
    return pg
  }
}

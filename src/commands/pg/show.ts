import {Args} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {formatBytes} from '../../cli/format.js'
import {unreachableLine} from '../../cli/render.js'
import {inspectPg} from '../../snapshot/inventory.js'

export default class PgShow extends BaseCommand {
  static override description = 'Show a pg: storage, status, endpoint, space used and snapshots'
  static override examples = ['<%= config.bin %> pg show dev', '<%= config.bin %> pg show dev --json']
  static override args = {name: Args.string({description: 'pg', required: true})}

  async run() {
    const {args} = await this.parse(PgShow)
    const pg = await inspectPg(await this.openZenith(), args.name)
    this.log([
      `${pg.name}:`,
      `  role: ${pg.role}`,
      `  status: ${pg.status}`,
      `  endpoint: ${pg.endpoint}`,
      `  storage: ${pg.storage}`,
      `  space used on ${pg.storage}: ${formatBytes(pg.usedBytes)}`,
      `  space used on all storages: ${formatBytes(pg.usedOnAllBytes)}`,
      `  postgres: ${pg.pgVersion}`,
      `  data directory: ${pg.dataDir}`,
      `  log: ${pg.logFile}`,
      ...(pg.origin ? [`  created from: ${pg.origin.snapshot}${pg.origin.cow ? ' (copy-on-write clone)' : ''}`] : []),
      '  snapshots:',
      ...(pg.snapshots.length === 0 ? ['    -'] : pg.snapshots.flatMap((group) => [
        `    on ${group.storage}:${group.error ? ` (${unreachableLine(group.error)})` : ''}`,
        ...group.items.map((item) => `      ${item.name}: ${formatBytes(item.sizeBytes)}${item.sizeExact ? '' : '*'}`),
      ])),
      ...(Object.keys(pg.settings).length > 0 ? ['  settings:', ...Object.entries(pg.settings).map(([key, value]) => `    ${key} = ${value}`)] : []),
    ].join('\n'))
    return pg
  }
}

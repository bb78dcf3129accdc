import {BaseCommand} from '../../cli/base-command.js'
import {formatBytes} from '../../cli/format.js'
import {listPgs} from '../../pg/lifecycle.js'

export default class PgList extends BaseCommand {
  static override description = 'List pgs with their storage, endpoint and real process status'
  static override examples = ['<%= config.bin %> pg list', '<%= config.bin %> pg list --json']

  async run() {
    await this.parse(PgList)
    const pgs = await listPgs(await this.openZenith())
    return this.writer.table(pgs, {fields: [
      'role',
      {key: 'name', label: 'PGDATA'},
      {key: 'usedBytes', label: 'USED', format: formatBytes},
      'storage',
      // A stopped pg has no endpoint to connect to.
      {key: 'endpoint', format: (endpoint, pg) => (pg.status === 'running' ? endpoint : '-')},
      'status',
    ]})
  }
}

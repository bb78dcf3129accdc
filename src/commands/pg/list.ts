import {BaseCommand} from '../../cli/base-command.js'
import {formatBytes, formatPgStatus} from '../../cli/format.js'
import {listPgs} from '../../pg/lifecycle.js'

export default class PgList extends BaseCommand {
  static override description = 'List pgs with their storage, endpoint and real process status; replicas under their primary'
  static override examples = ['<%= config.bin %> pg list', '<%= config.bin %> pg list --json']

  async run() {
    await this.parse(PgList)
    const pgs = await listPgs(await this.openZenith())
    // A replica's line under its primary has only what differs: its role, endpoint and status.
    const own = (text: string) => (_: unknown, pg: {primary?: string}) => (pg.primary ? '' : text)
    return this.writer.table(pgs, {fields: [
      'role',
      {key: 'name', label: 'PGDATA', format: (name, pg) => own(name)(name, pg)},
      {key: 'usedBytes', label: 'USED', format: (bytes, pg) => own(formatBytes(bytes))(bytes, pg)},
      {key: 'storage', format: (storage, pg) => own(storage)(storage, pg)},
      // A stopped pg has no endpoint to connect to.
      {key: 'endpoint', format: (endpoint, pg) => (pg.status === 'running' ? endpoint : '-')},
      {key: 'status', format: (_, pg) => formatPgStatus(pg)},
    ]})
  }
}

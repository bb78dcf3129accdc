import {BaseCommand} from '../../cli/base-command.js'
import {formatBytes} from '../../cli/format.js'
import {listPitr} from '../../pitr/areas.js'

export default class PitrList extends BaseCommand {
  static override description = 'List PITR areas with their windows (times and LSNs), size, retention and archiving status'
  static override examples = ['<%= config.bin %> pitr list', '<%= config.bin %> pitr list --json']

  async run() {
    const areas = await listPitr(await this.openZenith())
    return this.writer.table(areas, {
      fields: [
        'name',
        'pg',
        'storage',
        {key: 'from', format: (from) => (from ? `${shortTime(from.time)} ${from.lsn}` : '-')},
        {key: 'to', format: (to) => (to ? `${to.time ? shortTime(to.time) : '?'} ${to.lsn}` : '-')},
        {key: 'sizeBytes', label: 'SIZE', format: formatBytes},
        'ttl',
        {key: 'sizeLimit', label: 'LIMIT'},
        {key: 'status', format: (status, area) => (status === 'failing' ? `failing: ${area.lastError ?? '?'}` : status)},
      ],
    })
  }
}

export function shortTime(iso: string): string {
  return iso.slice(0, 19).replace('T', ' ')
}

import * as Args from '@oclif/core/args'

import {BaseCommand} from '../../cli/base-command.js'
import {formatBytes} from '../../cli/format.js'
import {showPitr} from '../../pitr/areas.js'

export default class PitrShow extends BaseCommand {
  static override description = 'Show a PITR area: window, bases, segments, last archived segment, last error, bytes'
  static override examples = ['<%= config.bin %> pitr show dev_week', '<%= config.bin %> pitr show dev_week --json']
  static override args = {name: Args.string({description: 'PITR area', required: true})}

  async run() {
    const {args} = await this.parse(PitrShow)
    const area = await showPitr(await this.openZenith(), args.name)
    return this.writer.layout(area, {title: ({name}) => name, fields: [
      'pg',
      'storage',
      'status',
      {key: 'from', label: 'window from', format: (from) => (from ? `${from.time} (${from.lsn})` : 'none yet')},
      {key: 'to', label: 'window to', format: (to, item) => (to ? `${to.time ?? 'time unknown'} (${to.lsn}, timeline ${item.timeline})` : undefined)},
      {key: 'gaps', format: (gaps) => (gaps.length === 0 ? undefined : gaps.map((gap) => `missing ${gap}: the window ends before it`))},
      {key: 'ttl'},
      {key: 'sizeLimit', label: 'size limit'},
      {key: 'lastArchived', label: 'last archived', format: (name, item) => (name ? `${name} (${item.lastArchivedAgeSeconds}s ago)` : 'nothing yet')},
      {key: 'lastError', label: 'last error', format: (error, item) => (error ? `${error} (at ${item.lastErrorAt})` : undefined)},
      {key: 'backlog', format: (count) => (count > 0 ? `${count} segments wait in the spool for this area` : undefined)},
      {key: 'bases', format: (bases) => (bases.length === 0 ? ['-'] : bases.map((base) =>
        `base${base.id}: ${base.time} ${base.stopLsn} timeline ${base.timeline} ${formatBytes(base.bytes)}${base.usable ? '' : ' (its WAL is not archived yet)'}`))},
      {key: 'segments', label: 'WAL segments', format: (count, item) => `${count} (${formatBytes(item.walBytes)})`},
      {key: 'bytesByStorage', label: 'bytes', format: (groups) => groups.map((group) => `on ${group.storage}: ${formatBytes(group.bytes)}`)},
      {key: 'notes', format: (notes) => (notes.length === 0 ? undefined : notes)},
    ]})
  }
}

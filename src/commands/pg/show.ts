import * as Args from '@oclif/core/args'

import {BaseCommand} from '../../cli/base-command.js'
import {formatBytes, formatReplication} from '../../cli/format.js'
import {unreachableLine} from '../../cli/render.js'
import {inspectPg} from '../../snapshot/inventory.js'

export default class PgShow extends BaseCommand {
  static override description = 'Show a pg: storage, status, endpoint, space used and snapshots'
  static override examples = ['<%= config.bin %> pg show dev', '<%= config.bin %> pg show dev --json']
  static override args = {name: Args.string({description: 'pg', required: true})}

  async run() {
    const {args} = await this.parse(PgShow)
    const pg = await inspectPg(await this.openZenith(), args.name)
    return this.writer.layout(pg, {title: ({name}) => name, fields: [
      'role',
      'status',
      'endpoint',
      'storage',
      {key: 'usedBytes', label: ({storage}) => `space used on ${storage}`, format: formatBytes},
      {key: 'usedOnAllBytes', label: 'space used on all storages', format: formatBytes},
      {key: 'pgVersion', label: 'postgres'},
      {key: 'dataDir', label: 'data directory'},
      {key: 'logFile', label: 'log'},
      {key: 'origin', label: 'created from', format: (origin) => origin && `${origin.snapshot}${origin.cow ? ' (copy-on-write clone)' : ''}`},
      {key: 'snapshots', format: (groups) => (groups.length === 0 ? ['-'] : groups.flatMap((group) => [
        `on ${group.storage}:${group.error ? ` (${unreachableLine(group.error)})` : ''}`,
        ...group.items.map((item) => `  ${item.name}: ${formatBytes(item.sizeBytes)}${item.sizeExact ? '' : '*'}`),
      ]))},
      {key: 'primary', label: 'replica of', format: (primary, pg) => primary && `${primary} (${formatReplication(pg.replication)})`},
      {key: 'replicas', format: (replicas) => (replicas.length === 0 ? undefined : replicas.map((replica) => `${replica.role} ${replica.endpoint} (${replica.status === 'running' ? formatReplication(replica.replication) : replica.status})`).join(', '))},
      {key: 'pitr', format: (groups) => (groups.length === 0 ? undefined : groups.flatMap((group) => [
        `on ${group.storage}:${group.error ? ` (${unreachableLine(group.error)})` : ''}`,
        ...group.items.map((item) => `  ${item.name}: ${formatBytes(item.sizeBytes)}`),
      ]))},
      {key: 'settings', format: (settings) => {
        const entries = Object.entries(settings)
        return entries.length === 0 ? undefined : entries.map(([key, value]) => `${key} = ${value}`)
      }},
    ]})
  }
}

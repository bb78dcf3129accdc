import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {BaseCommand} from '../../cli/base-command.js'
import {formatBytes} from '../../cli/format.js'
import {type SnapshotDiff, diffSnapshots, diffSnapshotsAsSql} from '../../diff/diff.js'
import {ZenithError} from '../../errors.js'

export default class SnapshotDiffCommand extends BaseCommand {
  static override description = 'Show what changed between two snapshots: bytes per relation, the schema, or the rows'
  static override examples = [
    '<%= config.bin %> snapshot diff dev@before-migration dev@CURRENT',
    '<%= config.bin %> snapshot diff prod@monday prod@tuesday --json',
    '<%= config.bin %> snapshot diff dev@before-migration dev@after-migration --schema',
    '<%= config.bin %> snapshot diff fixture dev@CURRENT --data --table public.accounts --limit 5',
    '<%= config.bin %> snapshot diff fixture dev@CURRENT --data --format sql > changes.sql',
  ]

  static override args = {
    snap1: Args.string({description: 'the snapshot before (PG@TAG, PG@HEAD{n}, PG@CURRENT or a name)', required: true}),
    snap2: Args.string({description: 'the snapshot after', required: true}),
  }

  static override flags = {
    schema: Flags.boolean({description: 'the DDL difference, per object (tables, columns, indexes, views, functions, ...)', exclusive: ['data']}),
    data: Flags.boolean({description: 'the row difference per table, by primary key', exclusive: ['schema']}),
    table: Flags.string({description: 'with --data: only this table (schema.name, name for public, db:schema.name); repeatable', multiple: true}),
    limit: Flags.integer({description: 'with --data: rows shown per table', default: 20, min: 0}),
    format: Flags.string({description: 'with --data: text (Dolt-style rows) or sql (statements that turn SNAP1 into SNAP2)', options: ['text', 'sql'], default: 'text'}),
  }

  async run() {
    const {args, flags} = await this.parse(SnapshotDiffCommand)
    const data = flags.data || flags.format === 'sql'
    if ((flags.table || flags.format === 'sql') && !data) {
      throw new ZenithError('INVALID_ARGUMENT', '--table and --format sql apply to a data diff.', 'Add --data.')
    }

    if (flags.schema && flags.format === 'sql') throw new ZenithError('INVALID_ARGUMENT', '--format sql prints row changes, not DDL.', 'Drop --schema, or --format sql.')
    const zenith = await this.openZenith()
    if (flags.format === 'sql') {
      if (this.jsonEnabled()) throw new ZenithError('INVALID_ARGUMENT', '--format sql prints SQL, not a JSON document.', 'Drop --json.')
      const {statements} = await diffSnapshotsAsSql(zenith, args.snap1, args.snap2, {tables: flags.table, onProgress: this.progress}, (statement) => {
        this.writer.append(`${statement}\n`)
      })
      this.writer.note(`${statements} statement${statements === 1 ? '' : 's'}`)
      return
    }

    const diff = await diffSnapshots(zenith, args.snap1, args.snap2, {
      mode: flags.schema ? 'schema' : data ? 'data' : 'size', tables: flags.table, limit: flags.limit, onProgress: this.progress,
    })
    return this.render(diff)
  }

  private async render(diff: SnapshotDiff): Promise<SnapshotDiff> {
    if (diff.mode === 'size') {
      this.writer.table(diff.relations, {
        fields: [
          {key: 'name', label: 'RELATION'},
          'kind',
          {key: 'size1', format: (bytes) => formatBytes(bytes)},
          {key: 'size2', format: (bytes) => formatBytes(bytes)},
          {key: 'bytesChanged', label: 'CHANGED', format: (bytes) => formatBytes(bytes)},
        ],
        notes: () => [
          `${formatBytes(diff.bytesChanged)} changed (${formatBytes(diff.size1)} -> ${formatBytes(diff.size2)})${diff.bytesShared > 0 ? `, ${formatBytes(diff.bytesShared)} shared on disk and not read` : ''}, in ${diff.seconds.toFixed(2)}s`,
        ],
      })
      return diff
    }

    if (diff.mode === 'schema') {
      return this.writer.message(diff, ({objects, before, after}) => (objects.length === 0
        ? `No schema changes between ${before} and ${after}.`
        : [...objects.map((object) => object.diff), `${objects.length} object${objects.length === 1 ? '' : 's'} changed: ${summary(objects.map((object) => object.change))}`].join('\n')))
    }

    const {renderRowDiff} = await import('../../diff/rows.js')
    return this.writer.message(diff, (result) => {
      const lines = result.tables.length === 0 ? [`No row changes between ${result.before} and ${result.after} (${result.rowsCompared} rows compared).`] : [renderRowDiff(result)]
      if (result.databases.added.length > 0) lines.push(`Databases only in ${result.after}: ${result.databases.added.join(', ')}`)
      if (result.databases.removed.length > 0) lines.push(`Databases only in ${result.before}: ${result.databases.removed.join(', ')}`)
      return lines.join('\n')
    })
  }
}

function summary(changes: string[]): string {
  const counts = new Map<string, number>()
  for (const change of changes) counts.set(change, (counts.get(change) ?? 0) + 1)
  return [...counts].map(([change, count]) => `${count} ${change}`).join(', ')
}

import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {COMPRESSIONS, type Compression} from '../../archive/compression.js'
import {BaseCommand} from '../../cli/base-command.js'
import {formatBytes} from '../../cli/format.js'
import {EXPORT_FORMATS, exportSnapshot} from '../../import-export/export.js'

export default class SnapshotExport extends BaseCommand {
  static override description = 'Export a snapshot as a .zenith archive, a basebackup tar, pg_dump files or SQL'
  static override examples = [
    '<%= config.bin %> snapshot export prod -o prod.zenith',
    '<%= config.bin %> snapshot export dev@before-migration --format tar -o base.tar',
    '<%= config.bin %> snapshot export prod --format dump -o prod.dump.tar',
    '<%= config.bin %> snapshot export prod --format sql -o - | gzip > prod.sql.gz',
    '<%= config.bin %> snapshot export prod -o - | ssh host zenith snapshot import --from - prod',
  ]

  static override args = {snapshot: Args.string({description: 'snapshot (PG@TAG or an imported name)', required: true})}
  static override flags = {
    output: Flags.string({char: 'o', description: 'file to write, or - for stdout (default: SNAPSHOT.zenith, .tar, .dump.tar or .sql)'}),
    format: Flags.string({description: 'what to write', options: [...EXPORT_FORMATS], default: 'zenith'}),
    compression: Flags.string({char: 'c', description: 'compression of zenith/tar output (zenith default gzip; tar default none, gzip for *.gz)', options: [...COMPRESSIONS]}),
    force: Flags.boolean({description: 'replace an existing output file'}),
  }

  async run() {
    const {args, flags} = await this.parse(SnapshotExport)
    const toStdout = flags.output === '-'
    const result = await exportSnapshot(await this.openZenith(), {
      snapshot: args.snapshot, output: toStdout ? process.stdout : flags.output, format: flags.format as (typeof EXPORT_FORMATS)[number],
      compression: flags.compression as Compression | undefined, force: flags.force, onProgress: this.progress,
    })
    const summary = `Exported ${result.snapshot} as ${result.format} to ${result.output === '-' ? 'stdout' : result.output} (${formatBytes(result.bytes)}) in ${result.seconds.toFixed(1)}s`
    if (!toStdout) return this.writer.message(result, () => summary)
    // With -o - stdout carries the data: the summary goes to stderr, and there is no JSON document.
    this.writer.note(summary)
  }
}

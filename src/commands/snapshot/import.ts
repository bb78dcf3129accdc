import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {BaseCommand} from '../../cli/base-command.js'
import {formatBytes} from '../../cli/format.js'
import {importSnapshot} from '../../import-export/import.js'

export default class SnapshotImport extends BaseCommand {
  static override description = 'Import a snapshot: a running server (basebackup://), a data directory, a basebackup, a .zenith archive, a URL or stdin'
  static override examples = [
    '<%= config.bin %> snapshot import --from basebackup://replication@db.example.com:5432/ prod',
    'PGPASSWORD=secret <%= config.bin %> snapshot import --from "basebackup://app@10.0.0.5:5432/?sslmode=require"',
    '<%= config.bin %> snapshot import --from /var/lib/postgresql/15/main oldpg',
    '<%= config.bin %> snapshot import --from ./backup/base.tar.gz',
    '<%= config.bin %> snapshot import --from prod.zenith',
    '<%= config.bin %> snapshot import --from https://example.org/movies.zenith movies',
    'ssh host zenith snapshot export prod -o - | <%= config.bin %> snapshot import --from - prod',
  ]

  static override args = {name: Args.string({description: 'name of the new snapshot (default: derived from the source)'})}
  static override flags = {
    from: Flags.string({char: 'f', description: 'basebackup://USER@HOST[:PORT]/ (password in PGPASSWORD or ~/.pgpass, not the URL: ps shows it), a path, file://, http(s):// or - (stdin)', required: true}),
    storage: Flags.string({char: 's', description: 'storage to keep it in', default: 'local'}),
  }

  async run() {
    const {args, flags} = await this.parse(SnapshotImport)
    const result = await importSnapshot(await this.openZenith(), {from: flags.from, name: args.name, storage: flags.storage, onProgress: this.progress})
    return this.writer.message(result, ({snapshot, bytes, pgVersion, source, seconds}) => `Imported snapshot ${snapshot} (${formatBytes(bytes)}, PostgreSQL ${pgVersion}) from ${source} in ${seconds.toFixed(1)}s`)
  }
}

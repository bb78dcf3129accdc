import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {BaseCommand} from '../../cli/base-command.js'
import {extractSnapshot} from '../../pitr/extract.js'
import {targetFromFlags} from '../../pitr/targets.js'

export default class PitrExtractSnapshot extends BaseCommand {
  static override description = 'Make a snapshot of the state at an LSN, a time or a transaction inside a PITR area\'s window'
  static override examples = [
    "<%= config.bin %> pitr extract-snapshot pitr_last_month --time '10 minutes ago' before_drop",
    '<%= config.bin %> pitr extract-snapshot dev_week --time 2026-12-03T10:15:00Z dev@before-deploy',
    '<%= config.bin %> pitr extract-snapshot dev_week --lsn 0/3000060',
  ]

  static override args = {
    area: Args.string({description: 'PITR area', required: true}),
    snapshot: Args.string({description: 'name of the new snapshot (NAME or PG@TAG; default AREA-<target>)'}),
  }

  static override flags = {
    lsn: Flags.string({description: 'stop before the first WAL record at this LSN (the state pg_current_wal_lsn() = LSN saw)'}),
    time: Flags.string({description: "the state at this time: ISO 8601, a postgres timestamp, or '10 minutes ago'"}),
    xid: Flags.string({description: 'the state right after this transaction committed'}),
    storage: Flags.string({char: 's', description: 'local storage of the snapshot, for an area on a dir or s3 storage (default: the pg\'s)'}),
    wait: Flags.integer({description: 'seconds to wait for the archiver when the target is past the archived WAL', default: 60}),
  }

  async run() {
    const {args, flags} = await this.parse(PitrExtractSnapshot)
    const target = targetFromFlags({lsn: flags.lsn, time: flags.time, xid: flags.xid})
    const result = await extractSnapshot(await this.openZenith(), {
      area: args.area, target, snapshot: args.snapshot, storage: flags.storage, waitSeconds: flags.wait, onProgress: this.progress,
    })
    return this.writer.message(result, ({snapshot, target: point, base, seconds}) =>
      `Created snapshot ${snapshot.name} at ${point} (from base ${base}, in ${seconds.toFixed(1)}s)`)
  }
}

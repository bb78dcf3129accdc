import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {BaseCommand} from '../../cli/base-command.js'
import {ZenithError} from '../../errors.js'
import {createPg} from '../../pg/lifecycle.js'
import {createPgFromSnapshot} from '../../import-export/create-pg.js'

export default class PgCreate extends BaseCommand {
  static override description = 'Create a data directory in a storage and start postgres on it'
  static override examples = [
    '<%= config.bin %> pg create',
    '<%= config.bin %> pg create -n dev',
    '<%= config.bin %> pg create dev --port 5440 --set shared_buffers=256MB',
    '<%= config.bin %> pg create scratch -s fastdisk --no-start',
    '<%= config.bin %> pg create test --snapshot dev@before --cow',
    '<%= config.bin %> pg create look --snapshot dev@before --read-only --cow',
  ]

  static override args = {name: Args.string({description: 'name of the new pg (default pgdata<N>)'})}
  static override flags = {
    name: Flags.string({char: 'n', description: 'name of the new pg (the same as the argument, as the proposal writes it: pg create -n dev)'}),
    storage: Flags.string({char: 's', description: "storage to create it in (default: the snapshot's storage with --snapshot, else the default-storage setting, local unless set)"}),
    start: Flags.boolean({description: 'start postgres after creating it', default: true, allowNo: true}),
    port: Flags.integer({description: 'TCP port (default: the first free one from 5432)'}),
    set: Flags.string({description: 'postgres setting key=value (repeatable)', multiple: true}),
    snapshot: Flags.string({description: 'start from this snapshot (name, PG@TAG or URL) instead of an empty cluster'}),
    cow: Flags.boolean({description: 'thin clone sharing blocks with the snapshot (btrfs or reflink storage)', dependsOn: ['snapshot']}),
    'read-only': Flags.boolean({description: 'a hot standby over the snapshot, never promoted: reads only, the data stays the snapshot\'s', dependsOn: ['snapshot']}),
  }

  async run() {
    const {args, flags} = await this.parse(PgCreate)
    if (args.name && flags.name && args.name !== flags.name) {
      throw new ZenithError('INVALID_ARGUMENT', `Two names for one pg: "${args.name}" and -n "${flags.name}".`, 'Give the name once: zenith pg create NAME, or zenith pg create -n NAME.')
    }

    const zenith = await this.openZenith()
    const options = {name: args.name ?? flags.name, storage: flags.storage, port: flags.port, settings: flags.set, start: flags.start, readOnly: flags['read-only'], onProgress: this.progress}
    const pg = flags.snapshot
      ? await createPgFromSnapshot(zenith, {...options, snapshot: flags.snapshot, cow: flags.cow})
      : await createPg(zenith, options)
    return this.writer.message(pg, ({status, endpoint, name}) => (status === 'running' ? `Started postgres on ${endpoint}` : `Created ${name} (not started)`))
  }
}

import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {BaseCommand} from '../../cli/base-command.js'
import type {Zenith} from '../../context.js'
import {formatReplication} from '../../cli/format.js'
import {clusterStatus} from '../../pg/cluster.js'
import {dataDirOf, pgRecord, startPg} from '../../pg/lifecycle.js'
import {replicasOf} from '../../pg/replication.js'

export default class PgStart extends BaseCommand {
  static override description = 'Start postgres on a pg (recovers a crashed one), or add streaming replicas to it'
  static override examples = [
    '<%= config.bin %> pg start dev',
    '<%= config.bin %> pg start dev --port 5440',
    '<%= config.bin %> pg start dev --replica            # one more replica: dev/replica-1, dev/replica-2, ...',
    '<%= config.bin %> pg start dev --replica --count 2',
    '<%= config.bin %> pg start dev --with-replicas      # dev and the replicas it has',
    '<%= config.bin %> pg start dev/replica-1',
  ]

  static override args = {name: Args.string({description: 'pg to start (a replica is PRIMARY/replica-N)', required: true})}
  static override flags = {
    port: Flags.integer({description: 'start on this port from now on', exclusive: ['replica']}),
    replica: Flags.boolean({description: 'add a streaming replica of this pg (started first if stopped), on the next free port'}),
    count: Flags.integer({description: 'with --replica: how many replicas to add (default 1)', dependsOn: ['replica']}),
    'with-replicas': Flags.boolean({description: 'start this pg if stopped and each of its replicas that is stopped', exclusive: ['replica', 'port']}),
  }

  async run() {
    const {args, flags} = await this.parse(PgStart)
    const zenith = await this.openZenith()
    if (flags.replica) {
      const data = await zenith.store.read()
      if ((await clusterStatus(dataDirOf(data, pgRecord(data, args.name)))).status !== 'running') await this.start(zenith, args.name, {})
      const {createReplicas} = await import('../../replica/replicas.js')
      const replicas = await createReplicas(zenith, args.name, {count: flags.count, onProgress: this.progress})
      return this.writer.message(replicas, (items) => items.map((replica) => `Started replica ${replica.name} of ${replica.primary} on ${replica.endpoint} (${formatReplication(replica.replication)})`).join('\n'))
    }

    if (!flags['with-replicas']) {
      const pg = await this.start(zenith, args.name, {port: flags.port})
      return this.writer.message(pg, ({endpoint}) => `Started postgres on ${endpoint}`)
    }

    // The primary if it is stopped, then each of its replicas that is stopped.
    const started = []
    const data = await zenith.store.read()
    if ((await clusterStatus(dataDirOf(data, pgRecord(data, args.name)))).status !== 'running') started.push(await this.start(zenith, args.name, {}))
    for (const replica of replicasOf(data, args.name)) {
      if ((await clusterStatus(dataDirOf(data, replica))).status !== 'running') started.push(await startPg(zenith, replica.name, {onProgress: this.progress}))
    }

    return this.writer.message(started, (items) => (items.length === 0 ? `${args.name} and its replicas are running already` : items.map(({name, endpoint}) => `Started postgres ${name} on ${endpoint}`).join('\n')))
  }

  private async start(zenith: Zenith, name: string, options: {port?: number}) {
    const pg = await startPg(zenith, name, {port: options.port, onProgress: this.progress})
    // A checkout of an archiving pg moved it to a new WAL timeline: its PITR areas need a base on it.
    if (Object.values((await zenith.store.read()).pitr).some((area) => area.pg === name)) {
      const {refreshBasesAfterFork} = await import('../../pitr/areas.js')
      await refreshBasesAfterFork(zenith, name, this.progress)
    }

    return pg
  }
}

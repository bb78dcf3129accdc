import * as Args from '@oclif/core/args'

import {BaseCommand} from '../../cli/base-command.js'
import {runPsql} from '../../pg/psql.js'

export default class PgPsql extends BaseCommand {
  static override description = 'Run psql connected to a pg (arguments after -- go to psql)'
  static override examples = ['<%= config.bin %> pg psql dev', '<%= config.bin %> pg psql dev -- -c "select version()"']
  static override args = {name: Args.string({description: 'pg', required: true})}
  static override strict = false
  static override enableJsonFlag = false

  async run() {
    const {args, argv} = await this.parse(PgPsql)
    const extra = (argv as string[]).slice(1)
    process.exitCode = await runPsql(await this.openZenith(), args.name, extra)
  }
}

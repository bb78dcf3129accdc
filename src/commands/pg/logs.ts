import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {BaseCommand} from '../../cli/base-command.js'
import {followLog, readLog} from '../../pg/logs.js'

export default class PgLogs extends BaseCommand {
  static override description = 'Show the postgres log of a pg'
  static override examples = ['<%= config.bin %> pg logs dev', '<%= config.bin %> pg logs dev -f']
  static override args = {name: Args.string({description: 'pg', required: true})}
  static override flags = {
    follow: Flags.boolean({char: 'f', description: 'keep printing new lines until interrupted'}),
    lines: Flags.integer({char: 'n', description: 'number of last lines to show', default: 100}),
  }

  async run() {
    const {args, flags} = await this.parse(PgLogs)
    const zenith = await this.openZenith()
    const log = await readLog(zenith, args.name, flags.lines)
    this.writer.message(log, ({text}) => text)
    if (flags.follow && !this.jsonEnabled()) {
      const controller = new AbortController()
      process.once('SIGINT', () => controller.abort())
      await followLog(log.file, log.size, (chunk) => this.writer.append(chunk), controller.signal)
    }

    return log
  }
}

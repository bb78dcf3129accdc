import {BaseCommand} from '../../cli/base-command.js'
import {pgTable} from '../../cli/render.js'
import {listPgs} from '../../pg/lifecycle.js'

export default class PgList extends BaseCommand {
  static override description = 'List pgs with their storage, endpoint and real process status'
  static override examples = ['<%= config.bin %> pg list', '<%= config.bin %> pg list --json']

  async run() {
    await this.parse(PgList)
    const pgs = await listPgs(await this.openZenith())
    this.log(pgTable(pgs))
    return pgs
  }
}

import {BaseCommand} from '../cli/base-command.js'

export default class Version extends BaseCommand {
  static override description = 'Print zenith\'s version (the same as --version and -v)'
  static override examples = ['<%= config.bin %> version', '<%= config.bin %> -v', '<%= config.bin %> version --json']

  async run() {
    await this.parse(Version)
    const {arch, platform, userAgent, version} = this.config
    return this.writer.message({version, platform, arch, node: process.version, userAgent}, (info) => info.userAgent)
  }
}

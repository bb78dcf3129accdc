import * as Flags from '@oclif/core/flags'

import {serveUntilSignal} from '../api/foreground.js'
import {runningServer} from '../api/runtime.js'
import {apiToken} from '../api/token.js'
import {BaseCommand} from '../cli/base-command.js'
import {openInBrowser} from '../cli/browser.js'

export default class Console extends BaseCommand {
  static override description = 'Open the web console in a browser: pgs, snapshots, clones and monitoring (starts the API server if none runs for this home)'
  static override examples = ['<%= config.bin %> console', '<%= config.bin %> console --no-open   # print the address instead', '<%= config.bin %> console --port 2346']
  static override flags = {
    port: Flags.integer({description: 'port of the server it starts (when none runs for this home)', default: 2345}),
    open: Flags.boolean({description: 'open a browser (xdg-open / open); --no-open prints the address', default: true, allowNo: true}),
  }

  async run() {
    const {flags} = await this.parse(Console)
    const zenith = await this.openZenith()
    const {token} = await apiToken(zenith)
    const address = (url: string) => `${url}/?token=${encodeURIComponent(token)}`
    const show = async (url: string) => {
      this.writer.announce(`zenith console: ${address(url)}`)
      if (flags.open) {
        const opened = await openInBrowser(address(url))
        if (!opened) this.writer.note('Could not open a browser here: open the address above yourself.')
      }
    }

    // One server per home: a running one is reused, and this command returns at once.
    const running = await runningServer(zenith)
    if (running) {
      await show(running.url)
      return this.writer.message({url: address(running.url), started: false}, () => '')
    }

    const result = await serveUntilSignal(zenith, {
      port: flags.port,
      listen: '127.0.0.1',
      token,
      reaperSeconds: Number(process.env.ZENITH_API_REAPER_SECONDS) || 10,
      metricsSeconds: Number(process.env.ZENITH_METRICS_SECONDS) || 5,
      version: this.config.version,
      onEvent: (text) => this.writer.note(text),
      onListening: show,
      onStopping: (signal) => this.writer.note(`${signal}: stopping the console's server.`),
    })
    return this.writer.message({url: address(result.url), started: true, stoppedBy: result.stoppedBy}, () => 'Stopped.')
  }
}

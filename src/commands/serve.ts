import * as Flags from '@oclif/core/flags'

import {isLoopback} from '../api/address.js'
import {serveUntilSignal} from '../api/foreground.js'
import {apiToken} from '../api/token.js'
import {BaseCommand} from '../cli/base-command.js'

export default class Serve extends BaseCommand {
  static override description = 'Serve the REST API (clones, snapshots, pgs, storages, PITR) in the foreground until SIGTERM or SIGINT'
  static override examples = [
    '<%= config.bin %> serve',
    '<%= config.bin %> serve --port 2345 --listen 0.0.0.0',
    'curl -H "Verification-Token: $(<%= config.bin %> serve --print-token)" http://127.0.0.1:2345/status',
  ]

  static override flags = {
    port: Flags.integer({description: 'TCP port', default: 2345}),
    listen: Flags.string({description: 'address to listen on (anything but loopback is reachable from other machines)', default: '127.0.0.1'}),
    'print-token': Flags.boolean({description: 'print the token requests must send in the Verification-Token header, and exit'}),
  }

  async run() {
    const {flags} = await this.parse(Serve)
    const zenith = await this.openZenith()
    const {token, source, file} = await apiToken(zenith)
    if (flags['print-token']) return this.writer.message({token, source, file}, (result) => result.token)
    if (!isLoopback(flags.listen)) {
      this.writer.note(`Warning: listening on ${flags.listen}, not loopback: other machines can reach the API (the token is all that guards it, over plain HTTP).`)
    }

    const result = await serveUntilSignal(zenith, {
      port: flags.port,
      listen: flags.listen,
      token,
      reaperSeconds: Number(process.env.ZENITH_API_REAPER_SECONDS) || 10,
      metricsSeconds: Number(process.env.ZENITH_METRICS_SECONDS) || 5,
      version: this.config.version,
      onEvent: (text) => this.writer.note(text),
      onListening: (url) => this.writer.announce(`zenith API on ${url} (token: ${source === 'env' ? 'ZENITH_API_TOKEN' : file})`),
      onStopping: (signal) => this.writer.note(`${signal}: stopping (finishing requests and clone work in progress).`),
    })
    return this.writer.message(result, () => 'Stopped.')
  }
}

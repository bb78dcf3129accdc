import * as Flags from '@oclif/core/flags'

import {BaseCommand} from '../../cli/base-command.js'
import {formatBytes} from '../../cli/format.js'
import {silent} from '../../progress.js'
import {receiveSnapshot} from '../../receive/recv.js'

export default class SnapshotRecv extends BaseCommand {
  static override description = 'Wait for one snapshot pushed to the printed zenith://host:port/TOKEN URL, verify it, keep it, and exit'
  static override examples = [
    '<%= config.bin %> snapshot recv',
    '<%= config.bin %> snapshot recv --listen 0.0.0.0 --port 7000',
  ]

  static override flags = {
    port: Flags.integer({description: 'TCP port (default: a free one)'}),
    listen: Flags.string({description: 'address to listen on', default: '127.0.0.1'}),
    storage: Flags.string({char: 's', description: 'local storage to keep the snapshot in', default: 'local'}),
    stdio: Flags.boolean({description: 'speak the stream protocol on stdin/stdout instead of listening (what a push to ssh://host runs on that host)', exclusive: ['port']}),
  }

  async run() {
    const {flags} = await this.parse(SnapshotRecv)
    if (flags.stdio) {
      // stdout carries the protocol's frames only; failures are also reported through it.
      const {receiveOverStream} = await import('../../receive/recv-stream.js')
      await receiveOverStream(await this.openZenith(), {input: process.stdin, output: process.stdout, storage: flags.storage, onProgress: silent})
      return
    }

    const abort = new AbortController()
    const stop = () => abort.abort()
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
    let url = ''
    const {writer} = this
    try {
      const result = await receiveSnapshot(await this.openZenith(), {
        port: flags.port,
        listen: flags.listen,
        storage: flags.storage,
        signal: abort.signal,
        onProgress: this.progress,
        // Printed at once, so that the pushing side can be told where to go; under --json alone
        // on its stderr line, and named again in the result.
        onUrl(printed) {
          url = printed
          writer.announce(printed)
        },
        onRefused: (from) => writer.note(`Refused a request with a wrong token from ${from}; nothing was written.`),
      })
      return this.writer.message({url, ...result}, ({snapshot, receivedBytes, logicalBytes}) => `Received ${snapshot.name}: ${formatBytes(receivedBytes)} for ${formatBytes(logicalBytes)}.`)
    } finally {
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
    }
  }
}

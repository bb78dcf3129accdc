import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {BaseCommand} from '../../cli/base-command.js'
import {formatBytes} from '../../cli/format.js'
import {type PushResult, pushSnapshot, pushToStdio} from '../../send/push.js'

export default class SnapshotPush extends BaseCommand {
  static override description = 'Send a snapshot to an s3/dir storage, a URL, a `zenith snapshot recv`, or zenith on another host over ssh; only chunks the remote lacks are uploaded'
  static override examples = [
    '<%= config.bin %> snapshot push dev@fixture --to s3tank',
    '<%= config.bin %> snapshot push dev@fixture --to s3://team-bucket/snaps',
    '<%= config.bin %> snapshot push dev@fixture --to file:///mnt/share/zenith',
    {description: 'To a `zenith snapshot recv` (it prints the URL):', command: '<%= config.bin %> snapshot push dev@fixture --to zenith://10.0.0.5:7000/TOKEN'},
    {description: 'Into zenith on another host over ssh (its default ZENITH_HOME):', command: '<%= config.bin %> snapshot push dev@fixture --to ssh://deploy@db2.internal'},
    {description: 'ssh on port 2222, into that host\'s ZENITH_HOME /var/lib/zenith:', command: '<%= config.bin %> snapshot push dev@fixture --to ssh://deploy@db2.internal:2222/var/lib/zenith'},
    {
      description: 'zenith is not on that host\'s PATH (?zenith=COMMAND), keep it in its storage "fast" (?storage=S):',
      command: '<%= config.bin %> snapshot push dev@fixture --to \'ssh://db2/var/lib/zenith?zenith=/opt/zenith/bin/run.js&storage=fast\'',
    },
  ]

  static override args = {snapshot: Args.string({description: 'snapshot to push (PG@TAG or a name)', required: true})}
  static override flags = {
    to: Flags.string({
      description: 'an s3/dir storage name, or a URL: s3://bucket/prefix[?endpoint=URL], file:///path, zenith://host:port/TOKEN, ' +
        'ssh://[user@]host[:port][/zenith/home][?zenith=COMMAND&storage=S] (zenith=: the command that runs zenith there, default zenith; storage=: its storage to keep the snapshot in); ' +
        '- speaks the stream protocol on stdin/stdout',
      required: true,
    }),
    force: Flags.boolean({description: 'replace a snapshot of the same name with different content at the remote', default: false}),
  }

  async run() {
    const {args, flags} = await this.parse(SnapshotPush)
    if (flags.to === '-') {
      // What a pull over ssh runs here: stdout carries frames only, failures included.
      await pushToStdio(await this.openZenith(), args.snapshot)
      return
    }

    const result = await pushSnapshot(await this.openZenith(), {snapshot: args.snapshot, to: flags.to, force: flags.force, onProgress: this.progress})
    return this.writer.message(result, pushedText)
  }
}

function pushedText(result: PushResult): string {
  if (result.upToDate) return `${result.to} already has ${result.snapshot}; nothing sent.`
  const percent = result.logicalBytes > 0 ? ((result.sentBytes / result.logicalBytes) * 100).toFixed(1) : '0.0'
  return `Pushed ${result.snapshot} to ${result.to}: sent ${formatBytes(result.sentBytes)} for ${formatBytes(result.logicalBytes)} (${percent}%); ` +
    `${result.chunksSent} chunks uploaded, ${result.chunksAtRemote} already at the remote, ${result.chunksRepeated} repeated within the snapshot.`
}

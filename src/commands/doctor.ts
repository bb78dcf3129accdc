import {BaseCommand} from '../cli/base-command.js'
import {type Check, doctorFailure, runDoctor} from '../doctor/doctor.js'

/** `ok`, `warn`, `FAIL`: a failure stands out in a column of oks. */
const LABEL: Record<Check['status'], string> = {ok: 'ok', warn: 'warn', fail: 'FAIL'}

export default class Doctor extends BaseCommand {
  static override description = 'Check what zenith needs (postgres binaries, OS user, storages, ports, sockets, the home) and say how to fix each miss'
  static override examples = ['<%= config.bin %> doctor', '<%= config.bin %> doctor --json']

  async run() {
    await this.parse(Doctor)
    // Not this.openZenith(): doctor repairs nothing and does not create the home it examines.
    const report = await runDoctor()
    this.writer.message(report, ({checks}) => checks.flatMap((check) => [
      `${LABEL[check.status].padEnd(4)}  ${check.name}: ${check.detail}`,
      ...(check.fix && check.status !== 'ok' ? [`      fix: ${check.fix}`] : []),
    ]).join('\n'))
    // A failure still prints every check: above for a person, with the error under --json.
    const failure = doctorFailure(report)
    if (failure) throw failure
    return report
  }
}

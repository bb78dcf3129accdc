/**
 * postgres' archive_command for zenith's PITR areas, run as the postgres OS user (main.js is its
 * script for node; the single executable runs it when given WAL_AGENT_ARGUMENT first):
 * `archive CONFIG %p %f`. Exit 0 once the file is durable in every area (or kept in the spool of
 * an area that is down while another took it); anything else makes postgres keep the file and
 * retry. Messages go to stderr, which postgres writes to its log.
 */
import {readArchiveConfig} from './config.js'
import {archiveWalFile, drainArea} from './archive.js'

export async function runAgent(argv: string[]): Promise<number> {
  const [command, configFile, walPath, name] = argv
  if (command === 'drain' && configFile && walPath) {
    // `drain CONFIG AREA`: pitr gc sends an area's spool as this user; a JSON report on stdout.
    const area = (await readArchiveConfig(configFile)).areas.find((item) => item.name === walPath)
    if (!area) {
      process.stderr.write(`zenith: no PITR area ${walPath} in ${configFile}\n`)
      return 1
    }

    process.stdout.write(JSON.stringify(await drainArea(area)) + '\n')
    return 0
  }

  if (command !== 'archive' || !configFile || !walPath || !name) {
    process.stderr.write('usage: main.js archive CONFIG WAL_PATH WAL_NAME | main.js drain CONFIG AREA\n')
    return 2
  }

  const config = await readArchiveConfig(configFile)
  const outcomes = await archiveWalFile(config, walPath, name, (line) => process.stderr.write(`${line}\n`))
  return outcomes.every((outcome) => outcome !== 'failed') ? 0 : 1
}

import path from 'node:path'

import {embeddedAsset, isSingleExecutable} from '../../src/single-executable.js'
import {WAL_AGENT_ARGUMENT, agentCommand, archiveSettings} from '../../src/wal-agent/install.js'

/** Under node (the npm install, a clone, these tests) zenith reads its files from disk; the single executable is tested by test/integration/install.test.ts and scripts/binary-smoke.sh. */
describe('run by node, not as the single executable', () => {
  test('there are no embedded assets', () => {
    expect(isSingleExecutable()).toBe(false)
    expect(embeddedAsset('console/index.html')).toBeUndefined()
  })

  test('the archive command is node and the agent copied into the home', () => {
    expect(agentCommand('/var/lib/zenith')).toEqual([process.execPath, path.join('/var/lib/zenith', 'pitr', 'agent', 'main.js')])
    expect(archiveSettings('/var/lib/zenith', 'dev').archive_command)
      .toBe(`'${process.execPath}' '/var/lib/zenith/pitr/agent/main.js' 'archive' '/var/lib/zenith/pitr/dev/archive.json' "%p" "%f"`)
    expect(archiveSettings('/var/lib/zenith', 'dev').archive_command).not.toContain(WAL_AGENT_ARGUMENT)
  })
})

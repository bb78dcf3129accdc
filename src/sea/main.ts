/**
 * The entry of the single executable (`npm run package`: build/zenith-linux-x64, node with this
 * bundle injected; scripts/package.mjs). It is also the PITR archive command of its pgs
 * (agentCommand in wal-agent/install.ts): given WAL_AGENT_ARGUMENT first, it runs the agent it
 * carries and nothing of the CLI is loaded, since postgres starts it once per WAL segment.
 */
import {WAL_AGENT_ARGUMENT} from '../wal-agent/install.js'

const args = process.argv.slice(2)
if (args[0] === WAL_AGENT_ARGUMENT) {
  import('../wal-agent/agent.js').then(({runAgent}) => runAgent(args.slice(1))).then((code) => {
    process.exitCode = code
  }, (error: unknown) => {
    process.stderr.write(`zenith: archiving failed: ${(error as Error).message}\n`)
    process.exitCode = 1
  })
} else {
  // As bin/run.js: the SDK's warning about this node version is not the user's business.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
  // oclif checks node's version against its own package.json, which it require()s from disk: in
  // the executable that require fails with a warning of node's, and the node is the one inside.
  process.env.OCLIF_DISABLE_ENGINE_WARNING ??= 'true'
  void import('./cli.js').then(({runCli}) => runCli(args))
}

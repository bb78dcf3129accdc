/**
 * The CLI's bundle in the single executable (`npm run package`: build/zenith-linux-x64;
 * scripts/package.mjs). src/sea/boot.ts, the executable's main script, runs it for every command
 * but `--version` and the PITR archive agent, which it answers or runs itself.
 */
// As bin/run.js: the SDK's warning about this node version is not the user's business.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
// oclif checks node's version against its own package.json, which it require()s from disk: in
// the executable that require fails with a warning of node's, and the node is the one inside.
process.env.OCLIF_DISABLE_ENGINE_WARNING ??= 'true'
void import('./cli.js').then(({runCli}) => runCli(process.argv.slice(2)))

/**
 * The main script of the single executable: small, so that what must start fast pays node's own
 * start-up and little more. `--version` answers here; the PITR archive agent (which postgres
 * starts once per WAL segment) runs its own small bundle; everything else runs the CLI's bundle
 * (src/sea/main.ts). Both bundles are assets of the executable with V8's code cache made at build
 * time by the same node (scripts/package.mjs): compiled from it they start as fast as a main
 * script with node's useCodeCache, but only the one that is needed. Node builtins only.
 */
import Module from 'node:module'
import vm from 'node:vm'

import {embeddedAsset} from '../single-executable.js'
import {WAL_AGENT_ARGUMENT} from '../wal-agent/install.js'

declare const require: NodeJS.Require
declare const module: NodeJS.Module

/** Runs the CommonJS bundle `name` (an asset, with its code cache `name`.cache) and returns its exports. */
function runBundle(name: string): Record<string, unknown> {
  const source = embeddedAsset(name)!.toString('utf8')
  const cachedData = embeddedAsset(`${name}.cache`)!
  const script = new vm.Script(Module.wrap(source), {filename: process.execPath, cachedData})
  // A cache this node cannot use (another node built it) is rejected and the bundle compiled anew.
  if (process.env.DEBUG?.includes('zenith:timing')) process.stderr.write(`code cache of ${name}: ${script.cachedDataRejected ? 'rejected' : 'used'}\n`)
  const run = script.runInThisContext() as (exports: object, require: NodeJS.Require, module: object, filename: string, dirname: string) => void
  const bundle = {exports: {} as Record<string, unknown>}
  run.call(bundle.exports, bundle.exports, require, bundle, process.execPath, module.path ?? '')
  return bundle.exports
}

const args = process.argv.slice(2)
const versionOnly = args[0] === '--version' || args[0] === '-v' || (args[0] === 'version' && args.length === 1)
const os = process.getBuiltinModule('node:os') as typeof import('node:os')
if (versionOnly && !(process.platform === 'linux' && os.release().toLowerCase().includes('microsoft'))) {
  // oclif's config.userAgent, as bin/run.js prints it.
  const {name, version} = JSON.parse(embeddedAsset('package.json')!.toString('utf8')) as {name: string; version: string}
  const arch = process.arch === 'ia32' ? 'x86' : process.arch
  process.stdout.write(`${name}/${version} ${process.platform}-${arch} node-${process.version}\n`)
} else if (args[0] === WAL_AGENT_ARGUMENT) {
  const {runAgent} = runBundle('agent.cjs') as {runAgent: (argv: string[]) => Promise<number>}
  runAgent(args.slice(1)).then((code) => {
    process.exitCode = code
  }, (error: unknown) => {
    process.stderr.write(`zenith: archiving failed: ${(error as Error).message}\n`)
    process.exitCode = 1
  })
} else {
  runBundle('zenith.cjs')
}

import path from 'node:path'

import {flush, handle, run, settings} from '@oclif/core'

import {embeddedAsset} from '../single-executable.js'

/**
 * zenith's commands in the single executable: oclif with the package.json that the executable
 * carries (scripts/package.mjs writes it: the explicit command strategy, the hooks, no plugins to
 * look for on disk). oclif's module loader is replaced in the bundle by one that hands out the
 * bundled commands and hooks (scripts/sea/oclif-module-loader.cjs).
 */
export async function runCli(argv: string[]): Promise<void> {
  const pjson = JSON.parse(embeddedAsset('package.json')!.toString('utf8'))
  // There are no sources to transpile, and oclif would look for a tsconfig.json in the root.
  settings.enableAutoTranspile = false
  // A folder that does not exist: oclif reads the root's oclif.manifest.json if there is one.
  const root = path.join(path.dirname(process.execPath), '.zenith-embedded')
  await run(argv, {root, pjson}).then(() => flush(), async (error) => handle(error))
}

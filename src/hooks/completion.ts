import type {Hook} from '@oclif/core'

import {extendCompletionScripts} from '../cli/completion.js'

/**
 * After @oclif/plugin-autocomplete (re)writes its scripts (`zenith autocomplete`, `--refresh-cache`),
 * add zenith's completion of names to them.
 */
const hook: Hook<'postrun'> = async function (options) {
  const id = options.Command?.id ?? ''
  if (id !== 'autocomplete' && id !== 'autocomplete:create') return
  await extendCompletionScripts(options.config.cacheDir, options.config.bin)
}

export default hook

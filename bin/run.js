#!/usr/bin/env node
/* global process, URL */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'

// `zenith --version` (and -v, and `zenith version` alone) answers without loading oclif (~0.1-0.2 s
// of modules): the same line oclif prints (its config.userAgent). WSL, which oclif names as its
// own platform, goes the full way; so does `version --json`.
const [first, ...rest] = process.argv.slice(2)
const versionOnly = first === '--version' || first === '-v' || (first === 'version' && rest.length === 0)
if (versionOnly && !(process.platform === 'linux' && (await import('node:os')).release().toLowerCase().includes('microsoft'))) {
  const {readFileSync} = await import('node:fs')
  const {name, version} = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
  const arch = process.arch === 'ia32' ? 'x86' : process.arch
  process.stdout.write(`${name}/${version} ${process.platform}-${arch} node-${process.version}\n`)
} else {
  const {execute} = await import('@oclif/core/execute')
  await execute({dir: import.meta.url})
}

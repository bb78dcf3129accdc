// `npm install` in a clone runs this after installing the dependencies: it builds dist/ and the
// oclif manifest, which bin/run.js needs. `npm pack` and `npm publish` run it too, but there the
// prepack script builds, so this does nothing.
//
// `npm install -g .` in a fresh clone also runs it, but npm links the folder without installing
// its dependencies there, so the build would die on "tsc: not found". This installs them into
// the clone first (npm ci, dev dependencies included: they build dist/), and the prepare of
// that install builds. The global install stays a link to the clone.
import {existsSync} from 'node:fs'
import {spawnSync} from 'node:child_process'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
if (['pack', 'publish'].includes(process.env.npm_command ?? '')) process.exit(0)

const missing = ['typescript', 'oclif', '@oclif/core'].filter((name) => !existsSync(path.join(root, 'node_modules', name, 'package.json')))
if (missing.length > 0) {
  if (process.env.npm_config_global === 'true' && !process.env.ZENITH_PREPARE_INSTALLING) {
    process.stderr.write(`zenith: npm install -g . links to ${root}; installing its dependencies there first (npm ci).\n`)
    // The settings of the global install must not reach the install in the clone.
    const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_config_(global|prefix|location|omit|include|production|only)$/i.test(key)))
    const install = spawnSync('npm', ['ci', '--no-audit', '--no-fund', '--include=dev'], {cwd: root, stdio: 'inherit', env: {...env, ZENITH_PREPARE_INSTALLING: '1'}})
    process.exit(install.status ?? 1)
  }

  process.stderr.write([
    `zenith: cannot build in ${root}: ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} not installed there.`,
    `Install them first: cd ${root} && npm install`,
    '',
  ].join('\n'))
  process.exit(1)
}

const build = spawnSync('npm', ['run', 'build'], {cwd: root, stdio: 'inherit'})
process.exit(build.status ?? 1)

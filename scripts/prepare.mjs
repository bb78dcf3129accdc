// `npm install` in a clone runs this after installing the dependencies: it builds dist/ and the
// oclif manifest, which bin/run.js needs. `npm install -g .` in a fresh clone also runs it, but
// npm links the folder without installing its dependencies there (nor, for a global install
// from git, making them available: npm/cli#8440), so without this check the build dies on
// "tsc: not found" and the user is left guessing.
import {existsSync} from 'node:fs'
import {spawnSync} from 'node:child_process'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const missing = ['typescript', 'oclif', '@oclif/core'].filter((name) => !existsSync(path.join(root, 'node_modules', name, 'package.json')))
if (missing.length > 0) {
  process.stderr.write([
    `zenith: cannot build in ${root}: ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} not installed there.`,
    'A global install of a folder links to that folder, so its dependencies must be installed in it first:',
    `  cd ${root} && npm install && npm install -g .`,
    '',
  ].join('\n'))
  process.exit(1)
}

const build = spawnSync('npm', ['run', 'build'], {cwd: root, stdio: 'inherit'})
process.exit(build.status ?? 1)

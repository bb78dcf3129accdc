// `npm run package`: the single executable build/zenith-<platform>-<arch>, one file that runs
// without node and without node_modules. Steps:
//   1. esbuild bundles src/sea/main.ts, the CLI (CommonJS: node 20 runs nothing else as the main script of
//      a single executable application) with oclif's explicit command strategy: the commands and
//      hooks of src/ are listed in a generated module, and oclif's module loader is replaced by one
//      that hands them out (scripts/sea/); the chunk writer thread gets a bundle of its own;
//   2. the package.json the executable carries: this one's, with the explicit strategy and no plugins;
//   3. node --experimental-sea-config sea-config.json makes the blob: a small main script
//      (src/sea/boot.ts: --version, and which bundle to run) and assets: the CLI's bundle and the
//      archive agent's, each with a V8 code cache made here, that package.json, the thread's
//      bundle, the console's static files;
//   4. a copy of this node binary (stripped on Linux) gets the blob injected (postject).
// Only for the platform it runs on: the blob goes into the running node binary, and its code
// cache is made by and for that node.
import {spawnSync} from 'node:child_process'
import Module from 'node:module'
import vm from 'node:vm'
import {chmodSync, copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {build} from 'esbuild'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const out = path.join(root, 'build')
const work = path.join(out, 'sea')
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'))
const executable = path.join(out, `zenith-${process.platform}-${process.arch}`)

function listCommands(folder, prefix = []) {
  return readdirSync(folder).sort().flatMap((name) => {
    const file = path.join(folder, name)
    if (statSync(file).isDirectory()) return listCommands(file, [...prefix, name])
    if (!name.endsWith('.ts') || name.endsWith('.d.ts')) return []
    const base = name.slice(0, -'.ts'.length)
    return [{id: [...prefix, ...(base === 'index' ? [] : [base])].join(':'), file}]
  })
}

const AUTOCOMPLETE = [['autocomplete', 'index.js'], ['autocomplete:create', 'create.js'], ['autocomplete:script', 'script.js']]

/** The module behind 'zenith-sea:modules': every target of the embedded package.json, by its path. */
function modulesSource() {
  const commands = listCommands(path.join(root, 'src', 'commands'))
  const hooks = Object.entries(pkg.oclif.hooks ?? {}).map(([event, target]) => ({event, target: hookTarget(target)}))
  const lines = [
    ...commands.map((command, index) => `import c${index} from ${JSON.stringify(command.file)}`),
    ...hooks.map((hook, index) => `import * as h${index} from ${JSON.stringify(path.join(root, 'src', `${hook.target}.ts`))}`),
    `import {commands as helpCommands} from '@oclif/plugin-help'`,
    // @oclif/plugin-autocomplete exports no command list: its three commands by their files.
    ...AUTOCOMPLETE.map(([, file], index) => `import a${index} from ${JSON.stringify(path.join(root, 'node_modules', '@oclif', 'plugin-autocomplete', 'lib', 'commands', 'autocomplete', file))}`),
    'export const MODULES = {',
    `  commands: {COMMANDS: {...helpCommands, ${AUTOCOMPLETE.map(([id], index) => `${JSON.stringify(id)}: a${index}, `).join('')}${commands.map((command, index) => `${JSON.stringify(command.id)}: c${index}`).join(', ')}}},`,
    ...hooks.map((hook, index) => `  ${JSON.stringify(hook.target)}: h${index},`),
    '}',
  ]
  return lines.join('\n')
}

/** './dist/hooks/command-not-found.js' -> 'hooks/command-not-found' */
function hookTarget(target) {
  return path.posix.normalize(target).replace(/^dist\//, '').replace(/\.js$/, '')
}

function embeddedPackageJson() {
  const {name, version, description, license, engines} = pkg
  const hooks = Object.fromEntries(Object.entries(pkg.oclif.hooks ?? {}).map(([event, target]) => [event, `./${hookTarget(target)}.js`]))
  // The plugins (help, autocomplete) are not loaded as plugins (they would be looked for on disk): their commands are in COMMANDS.
  const oclif = {...pkg.oclif, commands: {strategy: 'explicit', target: './commands.js', identifier: 'COMMANDS'}, hooks, plugins: []}
  return {name, version, description, license, engines, oclif}
}

const seaPlugin = {
  name: 'zenith-sea',
  setup(context) {
    context.onResolve({filter: /^zenith-sea:modules$/}, () => ({path: 'modules', namespace: 'zenith-sea'}))
    context.onLoad({filter: /.*/, namespace: 'zenith-sea'}, () => ({contents: modulesSource(), loader: 'js', resolveDir: root}))
    context.onResolve({filter: /module-loader$/}, (args) => {
      if (!args.importer.includes(`${path.sep}@oclif${path.sep}core${path.sep}`)) return undefined
      return {path: path.join(root, 'scripts', 'sea', 'oclif-module-loader.cjs')}
    })
    context.onResolve({filter: /\/s3-sdk\.js$/}, (args) => {
      if (!args.importer.startsWith(path.join(root, 'src', 'storage', 'drivers'))) return undefined
      return {path: path.join(root, 'scripts', 'sea', 's3-sdk.cjs')}
    })
  },
}

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  logLevel: 'warning',
  // import.meta does not exist in CommonJS; in the executable __filename is the executable itself.
  banner: {js: 'const __importMetaUrl = require("node:url").pathToFileURL(__filename).href;'},
  define: {'import.meta.url': '__importMetaUrl'},
  // pg's optional native binding: required only when pg.native is used, which zenith never does.
  // typescript (10 MB): oclif requires it only to map compiled paths back to sources, which the
  // executable turns off (src/sea/cli.ts); its require fails there and oclif carries on.
  external: ['pg-native', 'typescript'],
  // Class and function names stay: oclif and error messages show some of them.
  keepNames: true,
  minify: true,
  legalComments: 'none',
}

rmSync(work, {recursive: true, force: true})
mkdirSync(work, {recursive: true})
const {metafile} = await build({...common, entryPoints: [path.join(root, 'src', 'sea', 'main.ts')], outfile: path.join(work, 'zenith.cjs'), plugins: [seaPlugin], metafile: true})
// What went into the bundle, for esbuild's analyzer (https://esbuild.github.io/analyze/).
writeFileSync(path.join(work, 'meta.json'), JSON.stringify(metafile))
// The executable's main script is a small boot (src/sea/boot.ts): `--version` answers from it,
// anything else runs zenith.cjs, an asset compiled from the code cache made here by this node.
await build({...common, entryPoints: [path.join(root, 'src', 'sea', 'boot.ts')], outfile: path.join(work, 'boot.cjs')})
// The archive agent alone, for postgres' archive_command (boot.ts runs it without the CLI).
await build({...common, entryPoints: [path.join(root, 'src', 'wal-agent', 'agent.ts')], outfile: path.join(work, 'agent.cjs')})
for (const bundle of ['zenith.cjs', 'agent.cjs']) {
  const source = readFileSync(path.join(work, bundle), 'utf8')
  const script = new vm.Script(Module.wrap(source), {filename: bundle})
  writeFileSync(path.join(work, `${bundle}.cache`), script.createCachedData())
}
// A worker thread of the executable runs its script given as a string (eval): no banner needed beyond the same one.
await build({...common, entryPoints: [path.join(root, 'src', 'receive', 'chunk-writer.ts')], outfile: path.join(work, 'chunk-writer.cjs')})
writeFileSync(path.join(work, 'package.json'), JSON.stringify(embeddedPackageJson(), null, 2) + '\n')

function runStep(command, args) {
  const result = spawnSync(command, args, {cwd: root, encoding: 'utf8'})
  if (result.status !== 0) {
    process.stderr.write(`${result.stdout ?? ''}${result.stderr ?? ''}`)
    throw new Error(`${command} ${args.join(' ')} exited ${result.status ?? result.signal}`)
  }
}

runStep(process.execPath, ['--experimental-sea-config', 'sea-config.json'])
rmSync(executable, {force: true})
copyFileSync(process.execPath, executable)
chmodSync(executable, 0o755)
// node's symbols and debug info are 12 MiB of Debian's 94 MiB node; the executable does not need them.
if (process.platform === 'linux' && spawnSync('strip', ['--version']).status === 0) runStep('strip', [executable])
runStep(process.execPath, [path.join(root, 'node_modules', 'postject', 'dist', 'cli.js'), executable, 'NODE_SEA_BLOB', path.join(work, 'zenith.blob'),
  '--sentinel-fuse', 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'])
const size = statSync(executable).size
process.stdout.write(`wrote ${path.relative(root, executable)} (${(size / 1024 / 1024).toFixed(1)} MiB, node ${process.version})\n`)

/**
 * The single executable (`npm run package`: build/zenith-linux-x64, entry src/sea/main.ts) is
 * node with zenith's bundle injected: no dist/ and no console/ folder beside it. What zenith
 * otherwise reads from files next to its code (the console's static files, the script of the
 * chunk writer threads) it carries as assets of the executable (node:sea, scripts/package.mjs).
 *
 * Node builtins only: this is asked from the bottom of every layer.
 */
interface SeaModule {
  isSea(): boolean
  getAsset(key: string): ArrayBuffer
}

/** node:sea, when this process is the single executable (node 20.16+ has getBuiltinModule). */
function seaModule(): SeaModule | undefined {
  const sea = process.getBuiltinModule?.('node:sea') as SeaModule | undefined
  return sea?.isSea() ? sea : undefined
}

export function isSingleExecutable(): boolean {
  return seaModule() !== undefined
}

/** An asset of the single executable (`console/app.js`, `chunk-writer.cjs`); undefined when node runs zenith from dist/. */
export function embeddedAsset(key: string): Buffer | undefined {
  const sea = seaModule()
  return sea ? Buffer.from(sea.getAsset(key)) : undefined
}

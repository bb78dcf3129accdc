/** Tests are TypeScript, transpiled (not type-checked: `npm run typecheck` does that) by ts-jest as ESM. */
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: {'^(\\.{1,2}/.*)\\.js$': '$1'},
  transform: {'^.+\\.ts$': ['ts-jest', {useESM: true, diagnostics: false}]},
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  // npm run package's output: its package.json (the executable's) would clash with ours in jest's module map.
  modulePathIgnorePatterns: ['<rootDir>/build/'],
  setupFiles: ['<rootDir>/test/helpers/setup-console.ts'],
  testTimeout: 300_000,
  reporters: ['default', '<rootDir>/test/helpers/summary-reporter.cjs'],
}

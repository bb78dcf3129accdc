import {readFile, readdir} from 'node:fs/promises'
import path from 'node:path'

import {ROOT} from '../helpers/zenith.js'

/**
 * A test that returns early when its tool is missing is reported as passed: "207 passed, 0
 * skipped" was printed while the ssh suite did nothing. Skips must be decided before the run
 * (describe.skip / test.skip), so the closing line tells the truth. This pins that rule.
 */
const TEST_ROOT = path.join(ROOT, 'test')

/** `test('...', async () => {` (or it / test.each) whose first statement is `if (cond) return`. */
const EARLY_RETURN = /^\s*(?:test|it)\b[^\n]*=>\s*\{\n\s*if \([^\n]*\)\s*(?:return\b|\{\s*\n[^\n]*skip)/m
/** A beforeAll that bails out with a "skipping" warning (its tests then run and "pass"). */
const SKIPPING_HOOK = /beforeAll\([^\n]*\{\n\s*if \([^\n]*\)\s*\{\s*\n\s*console\.warn\([^\n]*skip/m

async function testFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, {withFileTypes: true})
  const nested = await Promise.all(entries.map(async (entry) => {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) return testFiles(full)
    return entry.name.endsWith('.test.ts') ? [full] : []
  }))
  return nested.flat()
}

test('no test skips itself by returning early', async () => {
  const offenders: string[] = []
  for (const file of await testFiles(TEST_ROOT)) {
    const text = await readFile(file, 'utf8')
    for (const pattern of [EARLY_RETURN, SKIPPING_HOOK]) {
      const match = pattern.exec(text)
      // Only the first one per file and pattern: enough to point at the rule.
      if (match) offenders.push(`${path.relative(TEST_ROOT, file)}:${text.slice(0, match.index).split('\n').length + 1}: ${match[0].trim().split('\n').pop()}`)
    }
  }

  expect(offenders).toEqual([])
})

import {type CommandShape, completeNames} from '../../src/cli/completion.js'
import {type StoreData, emptyStore} from '../../src/state/schema.js'

const shape = (...optionFlags: string[]): CommandShape => ({optionFlags: new Set(optionFlags)})
const COMMANDS: Record<string, CommandShape> = {
  'pg:start': shape('--port'), 'pg:stop': shape('--mode'), 'pg:create': shape('--snapshot', '--storage', '-s', '--port', '--set', '--name', '-n'),
  'pg:checkout': shape(), 'pg:promote': shape(), 'snapshot:diff': shape('--table', '--limit', '--format'), 'pitr:show': shape(), 'storage:show': shape(),
}

function store(): StoreData {
  const data = emptyStore()
  const pg = (name: string, replica?: {primary: string; slot: string}) => ({name, replica}) as unknown as StoreData['pgs'][string]
  data.pgs = {dev: pg('dev'), devel: pg('devel'), 'dev/replica-1': pg('dev/replica-1', {primary: 'dev', slot: 'zenith_replica_1'})}
  data.snapshots = {'dev@fixture': {} as never, 'dev@HEAD{0}': {} as never}
  data.storages = {local: {} as never, fast: {} as never}
  data.pitr = {month: {} as never}
  return data
}

describe('completeNames', () => {
  test.each([
    [['pg', 'start', 'de'], ['dev', 'devel']],
    [['pg', 'stop', 'dev/'], ['dev/replica-1']],
    [['pg', 'promote', ''], ['dev/replica-1']],
    [['pg', 'checkout', ''], ['dev@HEAD{0}', 'dev@fixture']],
    [['pg', 'create', 'x', '--snapshot', 'dev@f'], ['dev@fixture']],
    [['pg', 'create', 'x', '-s', 'f'], ['fast']],
    [['snapshot', 'diff', 'dev@fixture', 'dev@C'], ['dev@CURRENT']],
    [['snapshot', 'diff', '--limit', '5', 'dev@f'], ['dev@fixture']],
    [['pitr', 'show', ''], ['month']],
    [['storage', 'show', 'l'], ['local']],
  ])('%j -> %j', (words, names) => {
    expect(completeNames(words, COMMANDS, store())).toEqual(names)
  })

  test.each([
    [['pg', 'st']],                          // not a command yet: the plugin completes it
    [['pg', 'start', '--p']],                // a flag
    [['pg', 'start', 'dev', '--port', '']],  // a flag's value that is no name
    [['pg', 'create', '']],                  // a new name
    [['pg', 'start', 'dev', '']],            // no second argument
    [['nosuch', 'x', '']],
  ])('%j -> nothing', (words) => {
    expect(completeNames(words, COMMANDS, store())).toEqual([])
  })
})

import {explainUnknownCommand} from '../../src/hooks/command-not-found.js'

const IDS = ['pg:create', 'pg:list', 'pg:show', 'snapshot:create', 'snapshot:list', 'snapshot:push', 'storage:attach', 'storage:list']
// Every command of the product's surface has shipped: a made-up plan stands in for the next ones.
const PLANNED = ['mirror', 'rebase']
const explain = (id: string) => {
  const error = explainUnknownCommand(id, IDS, (text) => text.replaceAll(':', ' '), 'zenith', PLANNED)
  return {code: error.code, message: error.message, hint: error.hint, exitCode: error.exitCode}
}

describe('an unknown command', () => {
  test('a typo followed by arguments: the command is named without them, the suggestion keeps them', () => {
    expect(explain('pg:craete:foo')).toEqual({
      code: 'INVALID_ARGUMENT', exitCode: 2, message: '"pg craete" is not a zenith command.', hint: 'Did you mean "pg create foo"?',
    })
    expect(explain('snapshot:lsit').hint).toBe('Did you mean "snapshot list"?')
  })

  test.each([
    ['mirror:list', '"mirror"'], ['rebase', '"rebase"'],
  ])('%s of the planned surface: not available yet, not a typo', (id, named) => {
    expect(explain(id)).toMatchObject({code: 'NOT_AVAILABLE_YET', exitCode: 2, message: `${named} is not available yet in this version of zenith.`})
  })

  test('a shipped topic is not "planned" because one of its commands is', () => {
    expect(explain('pg:crate').code).toBe('INVALID_ARGUMENT')
  })

  test('nothing near: the list of commands', () => {
    expect(explain('blah:x')).toMatchObject({message: '"blah" is not a zenith command.', hint: 'Run `zenith --help` for the list of commands.'})
  })
})

import {isZenithError} from '../../src/errors.js'
import {isReservedTag, parseNewSnapshotRef, parseSnapshotRef, validateName} from '../../src/state/names.js'

/** The ZenithError code a call throws, or 'no error'. */
function codeOf(call: () => unknown): string {
  try {
    call()
  } catch (error) {
    if (isZenithError(error)) return error.code
    throw error
  }

  return 'no error'
}

describe('validateName', () => {
  it.each([
    ['empty', ''],
    ['undefined', undefined],
    ['with @', 'a@b'],
    ['with /', 'a/b'],
    ['with backslash', 'a\\b'],
    ['dot dot', '..'],
    ['dot dot inside', 'a..b'],
    ['reserved CURRENT', 'CURRENT'],
    ['reserved HEAD', 'HEAD'],
    ['reserved HEAD{0}', 'HEAD{0}'],
    ['reserved HEAD{12}', 'HEAD{12}'],
    ['64 characters', 'a'.repeat(64)],
    ['leading dash (looks like a flag)', '-x'],
    ['leading dot (hidden folder)', '.x'],
    ['space', 'a b'],
    ['non-ASCII', 'données'],
  ])('rejects a pg name that is %s', (_label, name) => {
    expect(codeOf(() => validateName('pg', name))).toBe('INVALID_NAME')
  })

  it.each(['pgdata1', 'dev', 'a', 'A-b_c.d', '1st', 'a'.repeat(63), 'current', 'head'])('accepts %s', (name) => {
    expect(validateName('pg', name)).toBe(name)
  })

  it('says what is wrong and how to fix it', () => {
    try {
      validateName('pg', 'a@b')
      throw new Error('validateName accepted a@b')
    } catch (error) {
      if (!isZenithError(error)) throw error
      expect(error.message).toContain('"a@b"')
      expect(error.hint).toMatch(/pg@tag/)
      expect(error.exitCode).toBe(2)
    }
  })

  it('knows the reserved tags', () => {
    expect(isReservedTag('CURRENT')).toBe(true)
    expect(isReservedTag('HEAD{3}')).toBe(true)
    expect(isReservedTag('HEAD{x}')).toBe(false)
    expect(isReservedTag('before-migration')).toBe(false)
  })
})

describe('parseSnapshotRef', () => {
  it('parses pg@tag', () => {
    expect(parseSnapshotRef('dev@before-migration')).toEqual({kind: 'tag', name: 'dev@before-migration', pg: 'dev', tag: 'before-migration'})
  })

  it('parses pg@CURRENT and pg@HEAD{n}', () => {
    expect(parseSnapshotRef('dev@CURRENT')).toEqual({kind: 'current', name: 'dev@CURRENT', pg: 'dev'})
    expect(parseSnapshotRef('dev@HEAD{0}')).toEqual({kind: 'head', name: 'dev@HEAD{0}', pg: 'dev', n: 0})
    expect(parseSnapshotRef('dev@HEAD{17}')).toEqual({kind: 'head', name: 'dev@HEAD{17}', pg: 'dev', n: 17})
  })

  it('parses a bare imported name', () => {
    expect(parseSnapshotRef('oldpg')).toEqual({kind: 'named', name: 'oldpg'})
  })

  it.each([
    ['@tag', 'INVALID_REF'],
    ['dev@', 'INVALID_REF'],
    ['a@b@c', 'INVALID_REF'],
    ['dev@HEAD', 'INVALID_REF'],
    ['a/b@tag', 'INVALID_NAME'],
    ['../x@tag', 'INVALID_NAME'],
    ['dev@a/b', 'INVALID_NAME'],
    ['dev@HEAD{x}', 'INVALID_NAME'],
    ['CURRENT@tag', 'INVALID_NAME'],
    ['', 'INVALID_NAME'],
    ['..', 'INVALID_NAME'],
  ])('rejects %s with %s', (ref, code) => {
    expect(codeOf(() => parseSnapshotRef(ref))).toBe(code)
  })
})

describe('parseNewSnapshotRef', () => {
  it('accepts pg@tag', () => {
    expect(parseNewSnapshotRef('dev@v1')).toEqual({kind: 'tag', name: 'dev@v1', pg: 'dev', tag: 'v1'})
  })

  it.each([
    ['dev@CURRENT', 'INVALID_NAME'],
    ['dev@HEAD{0}', 'INVALID_NAME'],
    ['dev', 'INVALID_REF'],
    ['dev@', 'INVALID_REF'],
  ])('rejects %s with %s', (ref, code) => {
    expect(codeOf(() => parseNewSnapshotRef(ref))).toBe(code)
  })
})

import {displayUrl, maskPasswords} from '../../src/secrets.js'
import {parsePgpass, pgpassPassword} from '../../src/pg/pgpass.js'

describe('maskPasswords', () => {
  test.each([
    ['https://alice:hunter2@example.org/x.zenith', 'https://alice:***@example.org/x.zenith'],
    ['basebackup://repl:s%40cret@db:5432/', 'basebackup://repl:***@db:5432/'],
    // A raw @ in the password: everything up to the last @ before the host is the password.
    ['basebackup://repl:p@ss@db:5432/', 'basebackup://repl:***@db:5432/'],
    ['Cannot download https://a:b@h/x: Request cannot be constructed from a URL that includes credentials: https://a:b@h/x.',
      'Cannot download https://a:***@h/x: Request cannot be constructed from a URL that includes credentials: https://a:***@h/x.'],
    ['"s3://key:secret@bucket/p" is not a storage', '"s3://key:***@bucket/p" is not a storage'],
    ['postgresql://postgres:pw@localhost:5432/postgres and ssh://root@host:22/home', 'postgresql://postgres:***@localhost:5432/postgres and ssh://root@host:22/home'],
  ])('%s', (text, masked) => {
    expect(maskPasswords(text)).toBe(masked)
  })

  test('leaves what has no password alone: users, ports, times, plain text', () => {
    for (const text of ['ssh://root@127.0.0.1:2222/home?zenith=/x', 'zenith://127.0.0.1:7000/TOKEN', 'at 12:30 on host:5432', 'basebackup://repl@db:5432/', 'user:pw@host without scheme']) {
      expect(maskPasswords(text)).toBe(text)
    }
  })

  test('displayUrl drops the password', () => {
    expect(displayUrl('https://alice:hunter2@example.org/x.zenith')).toBe('https://alice@example.org/x.zenith')
    expect(displayUrl('not a url://a:b@c')).not.toContain(':b@')
  })
})

describe('~/.pgpass', () => {
  const file = [
    '# comment',
    'db.example.com:5432:replication:repl:first',
    '*:*:*:repl:wild\\:card',
    'other:*:*:*:esc\\\\aped',
    '',
  ].join('\n')

  test('parses fields with \\: and \\\\ escapes, skips comments', () => {
    expect(parsePgpass(file)).toEqual([
      {host: 'db.example.com', port: '5432', database: 'replication', user: 'repl', password: 'first'},
      {host: '*', port: '*', database: '*', user: 'repl', password: 'wild:card'},
      {host: 'other', port: '*', database: '*', user: '*', password: 'esc\\aped'},
    ])
  })

  test('the first matching line wins, as in libpq; a replication connection matches database "replication"', () => {
    const entries = parsePgpass(file)
    expect(pgpassPassword(entries, {host: 'db.example.com', port: '5432', database: 'replication', user: 'repl'})).toBe('first')
    expect(pgpassPassword(entries, {host: 'db.example.com', port: '6432', database: 'replication', user: 'repl'})).toBe('wild:card')
    expect(pgpassPassword(entries, {host: 'other', port: '1', database: 'replication', user: 'anyone'})).toBe('esc\\aped')
    expect(pgpassPassword(entries, {host: 'nowhere', port: '1', database: 'replication', user: 'anyone'})).toBeUndefined()
  })
})

import {parseOptions, splitKeyValue} from '../../src/key-value.js'
import {validateSetting} from '../../src/pg/cluster.js'
import {isUrl, parseUrl, urlKind} from '../../src/urls.js'

describe('URL forms', () => {
  test('the kind comes from the scheme, in any case', () => {
    expect(urlKind('S3://bucket/x')).toBe('s3')
    expect(urlKind('zenith://h:1/t')).toBe('recv')
    expect(urlKind('https://example.org/a.zenith')).toBe('http')
    expect(urlKind('http://example.org/a.zenith')).toBe('http')
    expect(urlKind('basebackup://u@h/')).toBe('basebackup')
    expect(urlKind('ftp://x/y')).toBeUndefined()
    expect(urlKind('/var/lib/data')).toBeUndefined()
    expect(isUrl('ftp://x/y')).toBe(true)
    expect(isUrl('team-bucket')).toBe(false)
    expect(isUrl('./relative/file.zenith')).toBe(false)
  })

  test('s3: bucket, decoded prefix and the query as options', () => {
    expect(parseUrl('s3://team/snaps/my%20dev?endpoint=http://127.0.0.1:9000&region=eu-west-1')).toEqual({
      kind: 's3', bucket: 'team', prefix: '/snaps/my dev', options: {endpoint: 'http://127.0.0.1:9000', region: 'eu-west-1'},
    })
    expect(parseUrl('s3://team')).toEqual({kind: 's3', bucket: 'team', prefix: '', options: {}})
    expect(parseUrl('s3:///no-bucket')).toBeUndefined()
  })

  test('file: an absolute path, decoded; a host is refused', () => {
    expect(parseUrl('file:///mnt/share%20two/zenith')).toEqual({kind: 'file', path: '/mnt/share two/zenith'})
    expect(parseUrl('file://localhost/mnt/share')).toEqual({kind: 'file', path: '/mnt/share'})
    expect(parseUrl('file://otherhost/mnt/share')).toBeUndefined()
  })

  test('zenith: host, port and a token of 16 or more characters', () => {
    expect(parseUrl('zenith://10.0.0.5:7000/abcdefghijklmnopqrstuvwx')).toEqual({
      kind: 'recv', host: '10.0.0.5', port: 7000, token: 'abcdefghijklmnopqrstuvwx', label: 'zenith://10.0.0.5:7000/',
    })
    expect(parseUrl('zenith://[::1]:7000/abcdefghijklmnopqrstuvwx')).toMatchObject({host: '::1', port: 7000})
    expect(parseUrl('zenith://host:7000/short')).toBeUndefined()
    expect(parseUrl('zenith://host/abcdefghijklmnopqrstuvwx')).toBeUndefined()
  })

  test('ssh: user, host, port, remote home and the zenith command', () => {
    expect(parseUrl('ssh://deploy@db2.internal:2222/var/lib/zenith?zenith=/opt/zenith/bin/run.js&storage=fast')).toEqual({
      kind: 'ssh', user: 'deploy', host: 'db2.internal', port: 2222, home: '/var/lib/zenith', zenith: ['/opt/zenith/bin/run.js'], storage: 'fast',
      label: 'ssh://deploy@db2.internal:2222/var/lib/zenith',
    })
    expect(parseUrl('ssh://db2')).toEqual({kind: 'ssh', user: undefined, host: 'db2', port: undefined, home: undefined, zenith: ['zenith'], storage: undefined, label: 'ssh://db2'})
    expect(parseUrl('ssh://h?zenith=node%20/x/run.js')).toMatchObject({zenith: ['node', '/x/run.js']})
    // ssh would read a leading "-" as an option; passwords do not go in URLs.
    expect(() => parseUrl('ssh://-oProxyCommand=x@host')).toThrow(/not a valid ssh URL/)
    expect(() => parseUrl('ssh://-host')).toThrow(/not a valid ssh URL/)
    expect(() => parseUrl('ssh://root:secret@host')).toThrow(/"ssh:\/\/root:\*\*\*@host" is not a valid ssh URL/)
  })

  test('http(s): kept as written', () => {
    expect(parseUrl('https://example.org/movies.zenith')).toEqual({kind: 'http', url: 'https://example.org/movies.zenith'})
  })

  test('basebackup: libpq settings from the host, the user and the query; the password apart', () => {
    expect(parseUrl('basebackup://repl:s%40cret@db.example.com:5433/?sslmode=require')).toEqual({
      kind: 'basebackup', host: 'db.example.com', password: 's@cret', display: 'basebackup://repl@db.example.com:5433/',
      connection: {host: 'db.example.com', port: '5433', connect_timeout: '10', user: 'repl', sslmode: 'require'},
    })
    expect(parseUrl('basebackup://[::1]/')).toMatchObject({host: '::1', connection: {host: '::1', port: '5432'}})
    expect(() => parseUrl('basebackup://u@h/?password=x')).toThrow(/"password" is not a connection setting/)
    expect(() => parseUrl('basebackup://u@h/?dbname=x')).toThrow(/not a connection setting/)
    expect(() => parseUrl('basebackup:///')).toThrow(/names no host/)
    expect(() => parseUrl('basebackup://u:pw@h:notaport/')).toThrow(/"basebackup:\/\/u:\*\*\*@h:notaport\/" is not a basebackup:\/\/ URL/)
  })

  test('a scheme zenith does not know, or a URL that is not one', () => {
    expect(parseUrl('ftp://x/y')).toBeUndefined()
    expect(parseUrl('team-bucket')).toBeUndefined()
    expect(parseUrl('s3://bad host/x')).toBeUndefined()
  })
})

describe('key=value', () => {
  test('split at the first =', () => {
    expect(splitKeyValue('endpoint=http://h:9000/?a=b')).toEqual(['endpoint', 'http://h:9000/?a=b'])
    expect(splitKeyValue('path=')).toEqual(['path', ''])
    expect(splitKeyValue('=value')).toBeUndefined()
    expect(splitKeyValue('novalue')).toBeUndefined()
  })

  test('-c options: a later key wins, a pair without = is refused', () => {
    expect(parseOptions(['bucket=team', 'prefix=a=b', 'bucket=other'])).toEqual({bucket: 'other', prefix: 'a=b'})
    expect(parseOptions([])).toEqual({})
    expect(() => parseOptions(['bucket'])).toThrow(/"bucket" is not key=value/)
  })

  test('--set settings: a postgres name, one line, not managed by zenith', () => {
    expect(validateSetting('shared_buffers=256MB')).toEqual(['shared_buffers', '256MB'])
    expect(validateSetting(' work_mem =4MB')).toEqual(['work_mem', '4MB'])
    expect(validateSetting("search_path='a,b'")).toEqual(['search_path', "'a,b'"])
    expect(() => validateSetting('shared_buffers')).toThrow(/is not a setting/)
    expect(() => validateSetting('=x')).toThrow(/is not a setting/)
    expect(() => validateSetting('bad-key=1')).toThrow(/is not a setting/)
    expect(() => validateSetting('port=5432')).toThrow(/managed by zenith/)
    expect(() => validateSetting('a=1\nb=2')).toThrow(/line break/)
  })
})

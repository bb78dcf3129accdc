import {settle} from '../../src/doctor/check.js'
import {doctorFailure} from '../../src/doctor/doctor.js'
import {ZenithError} from '../../src/errors.js'

describe('doctorFailure', () => {
  test('none for a report without failures: warnings are allowed', () => {
    expect(doctorFailure({ok: true, checks: [{name: 'home', status: 'ok', detail: 'fine'}, {name: 'ssh', status: 'warn', detail: 'missing', fix: 'install it'}]})).toBeUndefined()
  })

  test('DOCTOR_FAILED, exit 6: the number and names of the failed checks, the first fix as hint, the report carried along', () => {
    const report = {ok: false, checks: [
      {name: 'home', status: 'ok' as const, detail: 'fine'},
      {name: 'postgres', status: 'fail' as const, detail: 'none found', fix: 'apt-get install postgresql-15'},
      {name: 'storage share', status: 'fail' as const, detail: 'missing', fix: 'mount it'},
    ]}
    const error = doctorFailure(report)!
    expect(error).toBeInstanceOf(ZenithError)
    expect({code: error.code, exitCode: error.exitCode, message: error.message, hint: error.hint}).toEqual({
      code: 'DOCTOR_FAILED', exitCode: 6, message: '2 of 3 checks failed: postgres, storage share.', hint: 'First fix (postgres): apt-get install postgresql-15.',
    })
    expect(error.result).toEqual(report)
  })
})

describe('settle', () => {
  test('a check that throws a ZenithError fails with its message and hint as the fix', async () => {
    expect(await settle('user', Promise.reject(new ZenithError('PERMISSION_DENIED', 'No such user.', 'Create it.')))).toEqual([
      {name: 'user', status: 'fail', detail: 'No such user', fix: 'Create it'},
    ])
  })

  test('a check that does not answer in time fails alone', async () => {
    const [check] = await settle('storage slow', new Promise(() => {}), 50)
    expect(check).toMatchObject({name: 'storage slow', status: 'fail', detail: 'no answer within 0.05 s'})
  })
})

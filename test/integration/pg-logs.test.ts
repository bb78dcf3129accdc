import {execa} from 'execa'

import {BIN, TestHome} from '../helpers/zenith.js'

describe('pg logs -f', () => {
  let home: TestHome

  afterAll(async () => home?.destroy())

  test('prints lines postgres writes after it started, until interrupted', async () => {
    home = await TestHome.create(6450)
    await home.ok(['pg', 'create', 'chatty'])
    const follow = execa('node', [BIN, 'pg', 'logs', 'chatty', '-f', '-n', '1'], {env: home.env(), reject: false, stdin: 'ignore'})
    let output = ''
    follow.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString()
    })
    await new Promise((resolve) => setTimeout(resolve, 1000))
    await home.query('chatty', "do $$ begin raise log 'marker-%', 4242; end $$")
    for (let i = 0; i < 40 && !output.includes('marker-4242'); i++) await new Promise((resolve) => setTimeout(resolve, 100))
    follow.kill('SIGINT')
    const result = await follow
    expect(output).toContain('marker-4242')
    expect(result.exitCode).toBe(0)
  })
})

#!/usr/bin/env node
/* global process, console */
// Push and pull over ssh (a real sshd on 127.0.0.1, started here; needs root and openssh-server)
// against the raw way to move the same data directory over the same ssh: `tar -cf - DIR | ssh
// HOST 'cat > FILE'` and `ssh HOST cat FILE > FILE`.
//   node bench/run.mjs ssh -- [--scale 10] [--runs 3]
import {spawn} from 'node:child_process'
import {mkdir, readFile, readdir, rm, writeFile} from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'
import {execa} from 'execa'

import {bin, median, option, timed, workFolder, zenithIn} from './lib.mjs'

const scale = Number(option('--scale', '10'))
const runs = Number(option('--runs', '3'))
if (process.getuid?.() !== 0) {
  console.log('skipped: starting an sshd needs root')
  process.exit(0)
}

const base = await workFolder('ssh')
const keys = path.join(base, 'keys')
await mkdir(keys)
for (const key of ['host', 'client']) await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(keys, key)])
await writeFile(path.join(keys, 'authorized_keys'), await readFile(path.join(keys, 'client.pub')))
await mkdir('/run/sshd', {recursive: true})
const port = await new Promise((resolve) => {
  const server = net.createServer().listen(0, '127.0.0.1', () => {
    const {port: free} = server.address()
    server.close(() => resolve(free))
  })
})
await writeFile(path.join(keys, 'sshd_config'), [`Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${keys}/host`, `AuthorizedKeysFile ${keys}/authorized_keys`,
  'PasswordAuthentication no', 'UsePAM no', 'PermitRootLogin prohibit-password', 'StrictModes no', `PidFile ${keys}/sshd.pid`, 'LogLevel ERROR', ''].join('\n'))
const sshd = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', path.join(keys, 'sshd_config')], {stdio: 'ignore'})
await new Promise((resolve) => setTimeout(resolve, 500))

const sshCommand = `ssh -i ${keys}/client -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes`
const env = {ZENITH_HOME: path.join(base, 'a'), ZENITH_FIRST_PORT: '7300', ZENITH_SSH_COMMAND: sshCommand}
const zenith = zenithIn(env)
const url = (home) => `ssh://root@127.0.0.1:${port}${home}?zenith=${encodeURIComponent(bin)}`

try {
  await zenith('pg', 'create', 'src')
  await execa('/usr/lib/postgresql/15/bin/pgbench', ['-i', '-q', '-s', String(scale), (await zenith('pg', 'url', 'src')).stdout.trim()])
  await zenith('snapshot', 'create', 'src@one')
  await zenith('pg', 'stop', 'src')
  const snapshots = path.join(env.ZENITH_HOME, 'storages', 'local', 'snapshots')
  const folder = path.join(snapshots, (await readdir(snapshots))[0])
  const times = {rawPush: [], push: [], rawPull: [], pull: []}
  for (let run = 0; run < runs; run++) {
    const remote = path.join(base, `remote${run}`)
    const local = path.join(base, `local${run}`)
    await execa('sync')
    times.rawPush.push(await timed(() => execa('sh', ['-c', `tar -cf - -C ${folder} . | ${sshCommand} -p ${port} root@127.0.0.1 'cat > ${base}/raw.tar'`])))
    await execa('sync')
    times.push.push(await timed(() => zenith('snapshot', 'push', 'src@one', '--to', url(remote))))
    await execa('sync')
    times.rawPull.push(await timed(() => execa('sh', ['-c', `${sshCommand} -p ${port} root@127.0.0.1 'cat ${base}/raw.tar' > ${base}/back.tar`])))
    await execa('sync')
    times.pull.push(await timed(() => zenithIn({...env, ZENITH_HOME: local})('snapshot', 'pull', '--from', url(remote), 'src@one')))
    await Promise.all([remote, local, path.join(base, 'raw.tar'), path.join(base, 'back.tar')].map((item) => rm(item, {recursive: true, force: true})))
  }

  const line = (what, ours, raw, baseline) => `  ${what}: ${median(ours).toFixed(2)} s vs ${baseline} ${median(raw).toFixed(2)} s: ${(median(raw) / median(ours)).toFixed(2)}x (per run ${ours.map((s, i) => (raw[i] / s).toFixed(2)).join(', ')})`
  console.log(`over ssh to 127.0.0.1, pgbench scale ${scale} snapshot, medians of ${runs}:`)
  console.log(line('push', times.push, times.rawPush, 'tar | ssh cat >'))
  console.log(line('pull', times.pull, times.rawPull, 'ssh cat <'))
} finally {
  await zenith('pg', 'destroy', 'src', '--force').catch(() => undefined)
  sshd.kill()
  await rm(base, {recursive: true, force: true})
}

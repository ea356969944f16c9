import {spawn, type ChildProcess} from 'node:child_process'
import {existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {createServer, type Server} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa} from 'execa'

import {closedPort} from './system.js'

/**
 * A department network of the test's own: a "blade" sshd inside a network namespace, which
 * nothing outside can reach, a gateway (gw2) whose sshd runs inside that namespace but answers
 * on a loopback port outside it (one `sshd -i` per connection), and an outer gateway (gw1), a
 * plain sshd on loopback. Each has its own host key and config; all log in as root with the
 * key in `clientKey` (and the same key encrypted in `lockedKey`). Never the local blade.
 */
export interface JumpLab {
  dir: string
  /** The blade's port, inside the namespace (nothing listens on it outside). */
  bladePort: number
  gw1Port: number
  gw2Port: number
  /** `SHA256:...` of each host key. */
  fingerprints: {blade: string; gw1: string; gw2: string}
  /** known_hosts lines for all three. */
  knownHosts: string
  clientKey: string
  /** The same key, protected by PASSPHRASE. */
  lockedKey: string
  gw1Log: string
  stop(): Promise<void>
}

export const PASSPHRASE = 'correct horse battery'

/** What ie-virsh "answers" on the lab blade: proof a CLI command got there, without running anything. */
const FORCED = `#!/bin/sh
case "$SSH_ORIGINAL_COMMAND" in
  *ie-virsh*) echo '{"error":{"code":"LAB_BLADE","message":"reached the lab blade","exitCode":5,"suggestions":[]}}'; exit 5;;
  *) exec /bin/sh -c "$SSH_ORIGINAL_COMMAND";;
esac
`

function sshdConfig(dir: string, name: string, port?: number): string {
  return [
    ...(port === undefined ? [] : [`Port ${port}`, 'ListenAddress 127.0.0.1']),
    `HostKey ${join(dir, `${name}_host`)}`,
    `PidFile ${join(dir, `${name}.pid`)}`,
    'UsePAM no',
    'StrictModes no',
    'PermitRootLogin prohibit-password',
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'AllowTcpForwarding yes',
    'Subsystem sftp internal-sftp',
    `SetEnv SHIEN_LAB=${name}`,
    ...(name === 'blade' ? [`ForceCommand ${join(dir, 'forced.sh')}`] : []),
    'LogLevel VERBOSE',
    '',
  ].join('\n')
}

async function keygen(file: string, passphrase = ''): Promise<string> {
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-C', file, '-f', file])
  const {stdout} = await execa('ssh-keygen', ['-l', '-f', `${file}.pub`])
  return stdout.split(/\s+/)[1]
}

async function waitForLog(file: string, pattern: RegExp, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (existsSync(file) && pattern.test(readFileSync(file, 'utf8'))) return
    if (child.exitCode !== null) break
    await new Promise((f) => setTimeout(f, 100))
  }
  throw new Error(`sshd did not start: ${existsSync(file) ? readFileSync(file, 'utf8') : 'no log'}`)
}

export async function startJumpLab(): Promise<JumpLab> {
  const dir = mkdtempSync(join(tmpdir(), 'jump-lab-'))
  const children: ChildProcess[] = []
  let bridge: Server | undefined
  const stop = async () => {
    bridge?.close()
    for (const child of children.toReversed()) if (child.exitCode === null) child.kill('SIGTERM')
    rmSync(dir, {recursive: true, force: true})
  }
  try {
    const fingerprints = {blade: await keygen(join(dir, 'blade_host')), gw1: await keygen(join(dir, 'gw1_host')), gw2: await keygen(join(dir, 'gw2_host'))}
    const clientKey = join(dir, 'client')
    await keygen(clientKey)
    const lockedKey = join(dir, 'locked')
    await execa('cp', [clientKey, lockedKey])
    await execa('cp', [`${clientKey}.pub`, `${lockedKey}.pub`])
    await execa('ssh-keygen', ['-q', '-p', '-N', PASSPHRASE, '-P', '', '-f', lockedKey])
    writeFileSync(join(dir, 'authorized_keys'), readFileSync(`${clientKey}.pub`))
    writeFileSync(join(dir, 'forced.sh'), FORCED, {mode: 0o755})

    // The namespace is held by a sleeping process; its loopback is the lab's network.
    const holder = spawn('unshare', ['-n', 'sleep', '3600'], {stdio: 'ignore'})
    children.push(holder)
    await new Promise((f) => setTimeout(f, 200))
    const inLab = (command: string[]) => ['-t', String(holder.pid), '-n', ...command]
    await execa('nsenter', inLab(['ip', 'link', 'set', 'lo', 'up']))

    const bladePort = await closedPort()
    writeFileSync(join(dir, 'blade.conf'), sshdConfig(dir, 'blade', bladePort))
    const blade = spawn('nsenter', inLab(['/usr/sbin/sshd', '-D', '-f', join(dir, 'blade.conf'), '-E', join(dir, 'blade.log')]), {stdio: 'ignore'})
    children.push(blade)
    await waitForLog(join(dir, 'blade.log'), /Server listening/, blade)

    const gw1Port = await closedPort()
    writeFileSync(join(dir, 'gw1.conf'), sshdConfig(dir, 'gw1', gw1Port))
    const gw1 = spawn('/usr/sbin/sshd', ['-D', '-f', join(dir, 'gw1.conf'), '-E', join(dir, 'gw1.log')], {stdio: 'ignore'})
    children.push(gw1)
    await waitForLog(join(dir, 'gw1.log'), /Server listening/, gw1)

    writeFileSync(join(dir, 'gw2.conf'), sshdConfig(dir, 'gw2'))
    bridge = createServer({pauseOnConnect: true}, (socket) => {
      const session = spawn('nsenter', inLab(['/usr/sbin/sshd', '-i', '-f', join(dir, 'gw2.conf'), '-E', join(dir, 'gw2.log')]), {stdio: [socket, socket, 'ignore']})
      children.push(session)
      session.on('exit', () => socket.destroy())
    })
    await new Promise<void>((resolve) => bridge!.listen(0, '127.0.0.1', resolve))
    const gw2Port = (bridge.address() as {port: number}).port

    const hostLine = (port: number, name: string) => `[127.0.0.1]:${port} ${readFileSync(join(dir, `${name}_host.pub`), 'utf8').split(' ').slice(0, 2).join(' ')}`
    return {
      dir,
      bladePort,
      gw1Port,
      gw2Port,
      fingerprints,
      knownHosts: [hostLine(bladePort, 'blade'), hostLine(gw1Port, 'gw1'), hostLine(gw2Port, 'gw2'), ''].join('\n'),
      clientKey,
      lockedKey,
      gw1Log: join(dir, 'gw1.log'),
      stop,
    }
  } catch (error) {
    await stop()
    throw error
  }
}

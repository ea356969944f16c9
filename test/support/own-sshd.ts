import {spawn, type ChildProcess} from 'node:child_process'
import {existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa} from 'execa'
import ssh2, {type Client} from 'ssh2'

import {closedPort} from './system.js'

/**
 * A plain OpenSSH sshd of the test's own on a free loopback port (its own host key, config and
 * log; root logs in with `clientKey`), for tests of what happens to a command when its SSH
 * session goes. Never the local blade.
 */
export interface OwnSshd {
  dir: string
  port: number
  clientKey: string
  /** Kills the per-connection sshd processes (SIGKILL), as when a student's session is killed. */
  killSessions(): Promise<void>
  login(): Promise<Client>
  stop(): Promise<void>
}

/** `extraConfig`: more sshd_config lines (a ForceCommand, say), after the test's own. */
export async function startOwnSshd(o: {extraConfig?: string[]} = {}): Promise<OwnSshd> {
  const dir = mkdtempSync(join(tmpdir(), 'own-sshd-'))
  let sshd: ChildProcess | undefined
  const stop = async () => {
    if (sshd && sshd.exitCode === null) sshd.kill('SIGTERM')
    rmSync(dir, {recursive: true, force: true})
  }
  try {
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host')])
    const clientKey = join(dir, 'client')
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', clientKey])
    writeFileSync(join(dir, 'authorized_keys'), readFileSync(`${clientKey}.pub`))
    const port = await closedPort()
    writeFileSync(join(dir, 'sshd.conf'), [
      `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${join(dir, 'host')}`, `PidFile ${join(dir, 'sshd.pid')}`,
      'UsePAM no', 'StrictModes no', 'PermitRootLogin prohibit-password', `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'LogLevel VERBOSE', ...(o.extraConfig ?? []), '',
    ].join('\n'))
    const log = join(dir, 'sshd.log')
    sshd = spawn('/usr/sbin/sshd', ['-D', '-f', join(dir, 'sshd.conf'), '-E', log], {stdio: 'ignore'})
    for (let i = 0; !(existsSync(log) && /Server listening/.test(readFileSync(log, 'utf8'))); i++) {
      if (i > 100 || sshd.exitCode !== null) throw new Error(`sshd did not start: ${existsSync(log) ? readFileSync(log, 'utf8') : 'no log'}`)
      await new Promise((f) => setTimeout(f, 100))
    }
    const listener = sshd.pid!
    return {
      dir,
      port,
      clientKey,
      killSessions: async () => {
        await execa('pkill', ['-KILL', '-P', String(listener)], {reject: false})
      },
      login: () => new Promise((resolve, reject) => {
        const client = new ssh2.Client()
        client.once('ready', () => {
          // Errors after the login are the test's to see through its channels.
          client.on('error', () => undefined)
          resolve(client)
        })
        client.once('error', reject)
        client.connect({host: '127.0.0.1', port, username: 'root', privateKey: readFileSync(clientKey)})
      }),
      stop,
    }
  } catch (error) {
    await stop()
    throw error
  }
}

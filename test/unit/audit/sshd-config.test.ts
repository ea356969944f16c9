import {describe, expect, it} from 'vitest'

import {parseLine, passwordLoginPossible, readSshdConfig, type ConfigSource} from '../../../src/audit/sshd-config.js'

/** An in-memory guest: `*` in the last path component globs, results sorted like glob(3). */
function guest(files: Record<string, string>): ConfigSource {
  return {
    read: async (path) => files[path],
    glob: async (pattern) => {
      const re = new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*')}$`)
      return Object.keys(files).filter((f) => re.test(f)).sort()
    },
  }
}

describe('readSshdConfig', () => {
  it('keeps the first value, reading drop-ins where their Include sits, in glob order', async () => {
    const s = await readSshdConfig(guest({
      '/etc/ssh/sshd_config': 'Include /etc/ssh/sshd_config.d/*.conf\nPasswordAuthentication no\nPermitRootLogin no\n',
      '/etc/ssh/sshd_config.d/50-b.conf': 'PasswordAuthentication yes\n',
      '/etc/ssh/sshd_config.d/10-a.conf': 'permitrootlogin=YES\n',
      '/etc/ssh/sshd_config.d/99-z.txt': 'PasswordAuthentication no\n',
    }))
    expect(s.settings.passwordauthentication).toEqual({value: 'yes', file: '/etc/ssh/sshd_config.d/50-b.conf', line: 1})
    expect(s.settings.permitrootlogin).toEqual({value: 'yes', file: '/etc/ssh/sshd_config.d/10-a.conf', line: 1})
    expect(s.files).toEqual(['/etc/ssh/sshd_config', '/etc/ssh/sshd_config.d/10-a.conf', '/etc/ssh/sshd_config.d/50-b.conf'])
  })

  it('lets the main file win when its value comes before the Include, and resolves relative Includes in /etc/ssh', async () => {
    const s = await readSshdConfig(guest({
      '/etc/ssh/sshd_config': '# PasswordAuthentication yes\nPasswordAuthentication no\nInclude conf.d/*.conf other.conf\n',
      '/etc/ssh/conf.d/a.conf': 'PasswordAuthentication yes\nUsePAM yes\n',
      '/etc/ssh/other.conf': 'KbdInteractiveAuthentication no\n',
    }))
    expect(s.settings.passwordauthentication.value).toBe('no')
    expect(s.settings.usepam).toEqual({value: 'yes', file: '/etc/ssh/conf.d/a.conf', line: 2})
    expect(s.settings.kbdinteractiveauthentication.value).toBe('no')
  })

  it('uses sshd defaults when nothing is set, and says when there is no sshd_config at all', async () => {
    const s = await readSshdConfig(guest({'/etc/ssh/sshd_config': '\n'}))
    expect(s.settings.passwordauthentication).toEqual({value: 'yes'})
    expect(s.settings.permitrootlogin).toEqual({value: 'prohibit-password'})
    expect(s.hostKeys).toEqual(['/etc/ssh/ssh_host_rsa_key', '/etc/ssh/ssh_host_ecdsa_key', '/etc/ssh/ssh_host_ed25519_key'])
    expect((await readSshdConfig(guest({}))).present).toBe(false)
    expect(passwordLoginPossible(await readSshdConfig(guest({})), 'vagrant')).toBe(false)
  })

  it('keeps Match blocks apart as conditional, until the next Match all or the end of the included file', async () => {
    const s = await readSshdConfig(guest({
      '/etc/ssh/sshd_config': 'Include /etc/ssh/m.conf\nPasswordAuthentication no\nMatch User eve\n  PasswordAuthentication yes\nMatch all\nPermitRootLogin no\n',
      '/etc/ssh/m.conf': 'Match Address 10.0.0.0/8\nPermitRootLogin yes\n',
    }))
    expect(s.settings.passwordauthentication.value).toBe('no')
    expect(s.settings.permitrootlogin).toEqual({value: 'no', file: '/etc/ssh/sshd_config', line: 6})
    expect(s.conditional).toEqual([
      {keyword: 'permitrootlogin', value: 'yes', match: 'Address 10.0.0.0/8', file: '/etc/ssh/m.conf', line: 2},
      {keyword: 'passwordauthentication', value: 'yes', match: 'User eve', file: '/etc/ssh/sshd_config', line: 4},
    ])
    expect(passwordLoginPossible(s, 'vagrant')).toBe(true)
  })

  it('collects every HostKey and the AuthorizedKeysFile as written', async () => {
    const s = await readSshdConfig(guest({'/etc/ssh/sshd_config': 'HostKey /etc/ssh/k1\nHostKey keys/k2\nAuthorizedKeysFile "/etc/ssh/keys/%u" .ssh/ak\n'}))
    expect(s.hostKeys).toEqual(['/etc/ssh/k1', '/etc/ssh/keys/k2'])
    expect(s.settings.authorizedkeysfile.value).toBe('/etc/ssh/keys/%u .ssh/ak')
  })

  it('stops at an Include loop instead of hanging', async () => {
    const s = await readSshdConfig(guest({'/etc/ssh/sshd_config': 'Include /etc/ssh/sshd_config\n'}))
    expect(s.files.length).toBe(17)
  })
})

describe('passwordLoginPossible', () => {
  it('counts keyboard-interactive through PAM, and needs PermitRootLogin yes for root', async () => {
    const pam = await readSshdConfig(guest({'/etc/ssh/sshd_config': 'PasswordAuthentication no\nUsePAM yes\n'}))
    expect([passwordLoginPossible(pam, 'vagrant'), passwordLoginPossible(pam, 'root')]).toEqual([true, false])
    const off = await readSshdConfig(guest({'/etc/ssh/sshd_config': 'PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM yes\nPermitRootLogin yes\n'}))
    expect([passwordLoginPossible(off, 'vagrant'), passwordLoginPossible(off, 'root')]).toEqual([false, false])
    const root = await readSshdConfig(guest({'/etc/ssh/sshd_config': 'ChallengeResponseAuthentication no\nPermitRootLogin yes\n'}))
    expect(passwordLoginPossible(root, 'root')).toBe(true)
  })
})

describe('parseLine', () => {
  it('reads Keyword=value, quotes and trailing comments the way sshd does', () => {
    expect(parseLine('  PasswordAuthentication = yes # cloud')).toEqual({keyword: 'passwordauthentication', args: ['yes']})
    expect(parseLine('AuthorizedKeysFile "a b" \'c\'')).toEqual({keyword: 'authorizedkeysfile', args: ['a b', 'c']})
    expect(parseLine('#PermitRootLogin yes')).toBeUndefined()
    expect(parseLine('')).toBeUndefined()
  })
})

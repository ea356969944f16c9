import {describe, expect, it} from 'vitest'
import {
  addAuthorizedKey, fingerprint, hasInsecureKey, lockPasswords, parsePasswd, parsePublicKey,
  removeInsecureKeys, splitLines, SSHD_SETTINGS, withSshdBlock,
} from '../../../src/harden/edits.js'
import {VAGRANT_INSECURE_KEYS} from '../../../src/harden/insecure-keys.js'

const [RSA, ED] = VAGRANT_INSECURE_KEYS
const MINE = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICdUZsQXPBaGSqXE2kE0m2xb8QNcF8HoimKhXkjSDRdT me@laptop'
const OTHER = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKE9Gehl7M0HqGB8Sl2HBTd5H5pXdQyVkRHXCM+rhW09 ci'

describe('removeInsecureKeys', () => {
  it('removes both keys whatever their options, comments and line ends, and keeps the rest byte for byte', () => {
    const input = [
      '# managed by hand\n',
      '\n',
      `no-pty,from="10.0.0.1,192.168.0.0/16" ${RSA.type} ${RSA.blob} vagrant insecure public key\n`,
      `  ${ED.type} ${ED.blob}\r\n`,
      `command="echo hi there",no-port-forwarding ${OTHER}\r\n`,
      `cert-authority ${RSA.type} ${RSA.blob}\n`,
      `${ED.type} ${ED.blob} no newline at end`,
    ].join('')
    const result = removeInsecureKeys(input)
    expect(result.removed).toBe(4)
    expect(result.content).toBe(`# managed by hand\n\ncommand="echo hi there",no-port-forwarding ${OTHER}\r\n`)
  })

  it('matches by key bytes, not by text: the RSA blob without its base64 padding is still caught', () => {
    expect(hasInsecureKey(`ssh-rsa ${RSA.blob.replace(/=+$/, '')}`)).toBe(true)
    expect(hasInsecureKey(`ssh-rsa ${RSA.blob.slice(0, -8)}AAAAAA==`)).toBe(false)
    expect(hasInsecureKey(`# ${RSA.blob.slice(0, 60)}`)).toBe(false)
  })

  it('leaves a file without insecure keys unchanged', () => {
    const input = `${OTHER}\n\n# comment\n`
    expect(removeInsecureKeys(input)).toEqual({content: input, removed: 0})
    expect(removeInsecureKeys('')).toEqual({content: '', removed: 0})
  })
})

describe('parsePublicKey', () => {
  it('accepts one line, with options, and checks the type named inside the blob', () => {
    const key = parsePublicKey(`  restrict ${MINE}\n`)
    expect(key.line).toBe(`restrict ${MINE}`)
    expect(key.type).toBe('ssh-ed25519')
    expect(key.blob.subarray(4, 15).toString()).toBe('ssh-ed25519')
  })

  it.each([
    ['empty', ''],
    ['two lines', `${MINE}\n${OTHER}`],
    ['a private key', '-----BEGIN OPENSSH PRIVATE KEY-----'],
    ['a type that does not match the blob', MINE.replace('ssh-ed25519', 'ssh-rsa')],
    ['the insecure RSA key', `${RSA.type} ${RSA.blob} my key`],
    ['the insecure ed25519 key', `${ED.type} ${ED.blob}`],
  ])('refuses %s with HARDEN_BAD_PUBLIC_KEY (exit 3)', (_what, line) => {
    expect(() => parsePublicKey(line)).toThrow(expect.objectContaining({code: 'HARDEN_BAD_PUBLIC_KEY', exitCode: 3}))
  })
})

describe('addAuthorizedKey', () => {
  const key = parsePublicKey(MINE)

  it('appends the key, adding the missing newline of the last line', () => {
    expect(addAuthorizedKey(`${OTHER}`, key)).toEqual({content: `${OTHER}\n${MINE}\n`, added: true})
    expect(addAuthorizedKey('', key)).toEqual({content: `${MINE}\n`, added: true})
  })

  it('does not add a key already present, even with other options or comment', () => {
    const input = `${OTHER}\r\nno-pty ${MINE.replace('me@laptop', 'old comment')}\r\n`
    expect(addAuthorizedKey(input, key)).toEqual({content: input, added: false})
  })
})

describe('lockPasswords', () => {
  const shadow = [
    'root:$6$abc$hash1:19700:0:99999:7:::',
    'daemon:*:19700:0:99999:7:::',
    'vagrant:$6$def$hash2:19700:0:99999:7:::',
    'vagrant2:$6$x$y:19700:0:99999:7:::',
    '',
  ].join('\n')

  it('sets only the password field of the named accounts to * and keeps every other byte', () => {
    const result = lockPasswords(shadow, ['vagrant', 'root'])
    expect(result.content).toBe(shadow.replace('root:$6$abc$hash1:', 'root:*:').replace('vagrant:$6$def$hash2:', 'vagrant:*:'))
    expect(result.locked.sort()).toEqual(['root', 'vagrant'])
    expect(result.missing).toEqual([])
  })

  it('never writes a !-prefixed field: sshd without PAM would refuse key logins for it', () => {
    const result = lockPasswords('vagrant:!$6$def$hash2:1::::::\n', ['vagrant'])
    expect(result.content).toBe('vagrant:*:1::::::\n')
  })

  it('locks duplicate entries too and reports accounts it did not find', () => {
    const result = lockPasswords('vagrant:a:1\nvagrant:b:1\r\n', ['vagrant', 'root'])
    expect(result.content).toBe('vagrant:*:1\nvagrant:*:1\r\n')
    expect(result.missing).toEqual(['root'])
  })
})

describe('parsePasswd', () => {
  it('reads name, uid, gid and home, skipping comments and malformed lines', () => {
    const entries = parsePasswd('root:x:0:0:root:/root:/bin/bash\n# x:x:1:1::/x:/bin/sh\n+nis::::::\nbad\nvagrant:x:1000:1000:V,,,:/home/vagrant:/bin/bash\r\n')
    expect(entries).toEqual([
      {name: 'root', uid: 0, gid: 0, home: '/root'},
      {name: 'vagrant', uid: 1000, gid: 1000, home: '/home/vagrant'},
    ])
  })
})

describe('withSshdBlock', () => {
  const config = 'Include /etc/ssh/sshd_config.d/*.conf\n\nPasswordAuthentication yes\nUsePAM yes\n'

  it('puts the settings before everything else, the Include included', () => {
    const {content, changed} = withSshdBlock(config)
    expect(changed).toBe(true)
    const lines = splitLines(content).map((l) => l.trimEnd())
    expect(lines.slice(1, 1 + SSHD_SETTINGS.length)).toEqual([...SSHD_SETTINGS])
    expect(lines.indexOf('PasswordAuthentication no')).toBeLessThan(lines.indexOf('Include /etc/ssh/sshd_config.d/*.conf'))
    expect(content.endsWith(config)).toBe(true)
  })

  it('is idempotent, and moves a block found lower down back to the top', () => {
    const once = withSshdBlock(config).content
    expect(withSshdBlock(once)).toEqual({content: once, changed: false})
    const [blockStart, blockEnd] = [0, SSHD_SETTINGS.length + 2]
    const lines = splitLines(once)
    const moved = [...lines.slice(blockEnd), ...lines.slice(blockStart, blockEnd)].join('')
    expect(withSshdBlock(moved)).toEqual({content: once, changed: true})
  })

  it('leaves an unpaired marker and the lines after it alone', () => {
    const broken = `# BEGIN shien harden\n${config}`
    const {content} = withSshdBlock(broken)
    expect(content.endsWith(broken)).toBe(true)
  })
})

describe('fingerprint', () => {
  it('computes the OpenSSH SHA256 fingerprint of a public key line', () => {
    // What `ssh-keygen -l` prints for Vagrant's insecure ed25519 key (test/fixtures/vagrant-insecure).
    expect(fingerprint(`${ED.type} ${ED.blob} vagrant`)).toEqual({
      type: 'ssh-ed25519',
      fingerprint: 'SHA256:WkvqjnyPAeC0cbPErYiGP9vqHdgL1MqqvPdIe3lvHgI',
    })
    expect(fingerprint(`ssh-rsa ${ED.blob}`)).toBeUndefined()
  })
})

import {readFile, rm} from 'node:fs/promises'
import {join} from 'node:path'
import {execa} from 'execa'
import {afterAll, describe, expect, it} from 'vitest'

import {looksLikePrivateKey, publicBlobOfPrivateKey} from '../../../src/audit/private-keys.js'
import {VAGRANT_INSECURE_PRIVATE_KEYS} from '../../../src/audit/live/insecure-private-keys.js'
import {VAGRANT_INSECURE_KEYS} from '../../../src/harden/insecure-keys.js'
import {REPO_ROOT} from '../../support/cli.js'
import {makeKeyPair} from '../../support/guest-image.js'

const dirs: string[] = []
afterAll(async () => {
  for (const d of dirs) await rm(d, {recursive: true, force: true})
})

/** A key pair made by ssh-keygen, optionally rewritten in another private key format. */
async function pair(type: 'ed25519' | 'ecdsa' | 'rsa', format?: 'PEM' | 'PKCS8', passphrase = '') {
  const k = await makeKeyPair(type, 'test')
  dirs.push(k.dir)
  if (format || passphrase) await execa('ssh-keygen', ['-q', '-p', '-P', '', '-N', passphrase, ...(format ? ['-m', format] : []), '-f', k.privatePath])
  return {text: await readFile(k.privatePath, 'utf8'), blob: Buffer.from(k.publicLine.split(' ')[1], 'base64')}
}

describe('publicBlobOfPrivateKey', () => {
  it.each([
    ['ed25519', undefined], ['ecdsa', undefined], ['rsa', undefined], ['rsa', 'PEM'], ['ecdsa', 'PEM'], ['rsa', 'PKCS8'],
  ] as const)('gives the public blob of a %s key (%s)', async (type, format) => {
    const k = await pair(type, format)
    expect(publicBlobOfPrivateKey(k.text)?.toString('base64')).toBe(k.blob.toString('base64'))
  })

  it('reads the public half of a passphrase-protected OpenSSH key, and gives up on encrypted PEM', async () => {
    const openssh = await pair('ed25519', undefined, 'hunter2')
    expect(openssh.text).toContain('OPENSSH PRIVATE KEY')
    expect(publicBlobOfPrivateKey(openssh.text)?.equals(openssh.blob)).toBe(true)
    const pem = await pair('rsa', 'PEM', 'hunter2')
    expect(publicBlobOfPrivateKey(pem.text)).toBeUndefined()
    expect(looksLikePrivateKey(pem.text)).toBe(true)
    expect(publicBlobOfPrivateKey('-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----')).toBeUndefined()
  })

  it('knows the embedded insecure private keys as the published insecure public keys', async () => {
    for (const [i, key] of VAGRANT_INSECURE_PRIVATE_KEYS.entries()) {
      expect(publicBlobOfPrivateKey(key.pem)?.toString('base64')).toBe(VAGRANT_INSECURE_KEYS[i].blob)
      const fixture = await readFile(join(REPO_ROOT, 'test/fixtures/vagrant-insecure', i === 0 ? 'vagrant.key.rsa' : 'vagrant.key.ed25519'), 'utf8')
      expect(key.pem).toBe(fixture)
    }
  })
})

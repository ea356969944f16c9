import {execFileSync} from 'node:child_process'
import {createHmac} from 'node:crypto'
import {mkdtempSync, readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import ssh2 from 'ssh2'
import {describe, expect, it} from 'vitest'

import {addKnownHost, checkHostKey, checkHostKeyFiles, fingerprint, keyType, knownHostsName} from '../../../src/transport/known-hosts.js'

function hostKeyBlob(): Buffer {
  const {private: privateKey} = ssh2.utils.generateKeyPairSync('ed25519')
  const parsed = ssh2.utils.parseKey(privateKey)
  if (parsed instanceof Error) throw parsed
  return (Array.isArray(parsed) ? parsed[0] : parsed).getPublicSSH()
}

const key = hostKeyBlob()
const other = hostKeyBlob()
const line = (host: string, blob: Buffer) => `${host} ssh-ed25519 ${blob.toString('base64')}`

describe('known_hosts', () => {
  it('names non-22 ports like OpenSSH', () => {
    expect(knownHostsName('blade1', 22)).toBe('blade1')
    expect(knownHostsName('127.0.0.1', 2222)).toBe('[127.0.0.1]:2222')
  })

  it('finds a known key, by plain and by hashed name', () => {
    expect(checkHostKey(`# comment\n${line('blade1,10.0.0.5', key)}\n`, 'blade1', key)).toEqual({status: 'known', line: 2})
    const salt = Buffer.from('0123456789abcdef0123')
    const hash = createHmac('sha1', salt).update('[127.0.0.1]:2222').digest('base64')
    expect(checkHostKey(line(`|1|${salt.toString('base64')}|${hash}`, key), '[127.0.0.1]:2222', key).status).toBe('known')
  })

  it('reports a changed key with the line that holds the old one', () => {
    const text = `${line('elsewhere', key)}\n${line('blade1', other)}\n`
    expect(checkHostKey(text, 'blade1', key)).toEqual({status: 'changed', line: 2, knownType: 'ssh-ed25519'})
  })

  it('treats an unlisted host as unknown, and honours wildcards and negation', () => {
    expect(checkHostKey(line('blade1', key), 'blade2', key).status).toBe('unknown')
    expect(checkHostKey(line('blade*', key), 'blade7', key).status).toBe('known')
    expect(checkHostKey(line('blade*,!blade7', key), 'blade7', key).status).toBe('unknown')
  })

  it('refuses a key marked @revoked even when also listed', () => {
    const text = `@revoked * ssh-ed25519 ${key.toString('base64')}\n${line('blade1', key)}\n`
    expect(checkHostKey(text, 'blade1', key)).toEqual({status: 'revoked', line: 1})
  })

  it('appends an accepted key so that the next check knows it', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'kh-')), 'ssh', 'known_hosts')
    await addKnownHost(path, '[127.0.0.1]:2222', key)
    const text = readFileSync(path, 'utf8')
    expect(checkHostKey(text, '[127.0.0.1]:2222', key).status).toBe('known')
    expect(keyType(key)).toBe('ssh-ed25519')
    expect(fingerprint(key)).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/)
  })

  it('writes a hashed name under HashKnownHosts that OpenSSH itself finds', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'kh-')), 'known_hosts')
    await addKnownHost(path, '[10.0.0.5]:2222', key, true)
    const text = readFileSync(path, 'utf8')
    expect(text).toMatch(/^\|1\|[A-Za-z0-9+/=]+\|[A-Za-z0-9+/=]+ ssh-ed25519 /)
    expect(text).not.toContain('10.0.0.5')
    expect(execFileSync('ssh-keygen', ['-F', '[10.0.0.5]:2222', '-f', path], {encoding: 'utf8'})).toContain(key.toString('base64'))
    expect(checkHostKey(text, '[10.0.0.5]:2222', key).status).toBe('known')
  })

  it('reads every file: known in any is known, a revoked or changed entry in any is named with its file', () => {
    const user = {path: '/u', text: line('gw', other) + '\n'}
    const global = {path: '/etc/ssh/ssh_known_hosts', text: line('gw', key) + '\n'}
    expect(checkHostKeyFiles([user, global], 'gw', key)).toMatchObject({status: 'known', path: '/etc/ssh/ssh_known_hosts'})
    expect(checkHostKeyFiles([user], 'gw', key)).toMatchObject({status: 'changed', path: '/u', line: 1})
    const revoked = {path: '/etc/ssh/ssh_known_hosts', text: `@revoked gw ssh-ed25519 ${key.toString('base64')}\n`}
    expect(checkHostKeyFiles([global, revoked], 'gw', key)).toMatchObject({status: 'revoked', path: '/etc/ssh/ssh_known_hosts'})
    expect(checkHostKeyFiles([], 'gw', key)).toEqual({status: 'unknown'})
  })

  it('does not let a @cert-authority line vouch for a plain host key', () => {
    const text = `@cert-authority *.example.ac.jp ssh-ed25519 ${key.toString('base64')}\n`
    expect(checkHostKey(text, 'blade1.example.ac.jp', key)).toEqual({status: 'unknown'})
  })
})

import {chmod, lstat, mkdtemp, readFile, readdir, rm, symlink, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import ssh2 from 'ssh2'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {hostKeyVerifier} from '../../../src/transport/host-key-verifier.js'
import {checkHostKey, hasHostEntry, hashedName, readKnownHostsFiles} from '../../../src/transport/known-hosts.js'
import {parseHostPublicKey, recordHostKeys, replaceHostEntries} from '../../../src/transport/known-hosts-writer.js'
import type {SshTarget} from '../../../src/transport/ssh-target.js'

function hostKey(type: 'ed25519' | 'ecdsa' = 'ed25519'): {line: string; blob: Buffer} {
  const {public: pub} = type === 'ed25519' ? ssh2.utils.generateKeyPairSync('ed25519') : ssh2.utils.generateKeyPairSync('ecdsa', {bits: 256})
  const [t, b] = pub.split(' ')
  return {line: `${t} ${b}`, blob: Buffer.from(b, 'base64')}
}

const ALIAS = 'shien-e195701-01.blade1'
const oldEd = hostKey()
const oldEc = hostKey('ecdsa')
const newEd = hostKey()
const newEc = hostKey('ecdsa')
const other = hostKey()

describe('known_hosts: replacing the keys of one alias', () => {
  let dir: string
  let file: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shien-kh-'))
    file = join(dir, 'known_hosts')
  })
  afterEach(() => rm(dir, {recursive: true, force: true}))

  const before = () => [
    '# my hosts',
    `blade1 ${other.line}`,
    `${ALIAS} ${oldEd.line}`,
    `[127.0.0.1]:22001 ${other.line}`,
    `${ALIAS} ${oldEc.line}`,
    `@revoked ${ALIAS} ${other.line}`,
    `${ALIAS},10.0.0.9 ${other.line}`,
    `shien-e195701-02.blade1 ${other.line}`,
    `*.blade1 ${other.line}`,
  ].join('\n') + '\n'

  it('replaces the plain lines of the alias alone, in place, and touches no other line', async () => {
    await writeFile(file, before(), {mode: 0o640})
    await chmod(file, 0o640)
    const done = await recordHostKeys(file, ALIAS, [newEd.line, `${newEc.line} root@old-box`], {hash: false})
    expect(done).toEqual({path: file, removed: 2, added: 2})
    const lines = (await readFile(file, 'utf8')).split('\n')
    expect(lines).toEqual([
      '# my hosts',
      `blade1 ${other.line}`,
      `${ALIAS} ${newEd.line}`,
      `${ALIAS} ${newEc.line}`,
      `[127.0.0.1]:22001 ${other.line}`,
      `@revoked ${ALIAS} ${other.line}`,
      `${ALIAS},10.0.0.9 ${other.line}`,
      `shien-e195701-02.blade1 ${other.line}`,
      `*.blade1 ${other.line}`,
      '',
    ])
    // The file keeps its mode; nothing is left beside it.
    expect((await lstat(file)).mode & 0o777).toBe(0o640)
    expect(await readdir(dir)).toEqual(['known_hosts'])
  })

  it('replaces hashed lines of the alias and writes hashed ones under HashKnownHosts', async () => {
    const text = `${hashedName(ALIAS)} ${oldEd.line}\n${hashedName('blade1')} ${other.line}\n${hashedName(ALIAS)} ${oldEc.line}\n`
    await writeFile(file, text, {mode: 0o600})
    expect(await recordHostKeys(file, ALIAS, [newEd.line, newEc.line], {hash: true})).toMatchObject({removed: 2, added: 2})
    const after = await readFile(file, 'utf8')
    const lines = after.trimEnd().split('\n')
    expect(lines).toHaveLength(3)
    expect(lines[2]).toBe(text.split('\n')[1])
    expect(after).not.toContain(ALIAS)
    expect(lines.every((l) => l.startsWith('|1|'))).toBe(true)
    expect(checkHostKey(after, ALIAS, newEd.blob)).toMatchObject({status: 'known'})
    expect(checkHostKey(after, ALIAS, newEc.blob)).toMatchObject({status: 'known'})
    expect(checkHostKey(after, ALIAS, oldEd.blob)).toMatchObject({status: 'changed'})
    expect(checkHostKey(after, 'blade1', other.blob)).toMatchObject({status: 'known'})
  })

  it('creates a missing file 0600 (and its folder 0700), and appends to a file without a last newline', async () => {
    const nested = join(dir, 'ssh', 'known_hosts')
    await recordHostKeys(nested, ALIAS, [newEd.line], {hash: false})
    expect(await readFile(nested, 'utf8')).toBe(`${ALIAS} ${newEd.line}\n`)
    expect((await lstat(nested)).mode & 0o777).toBe(0o600)
    expect((await lstat(join(dir, 'ssh'))).mode & 0o777).toBe(0o700)
    await writeFile(file, `blade1 ${other.line}`)
    await recordHostKeys(file, ALIAS, [newEd.line], {hash: false})
    expect(await readFile(file, 'utf8')).toBe(`blade1 ${other.line}\n${ALIAS} ${newEd.line}\n`)
  })

  it('writes through a symlinked known_hosts, keeping the link', async () => {
    const real = join(dir, 'dotfiles-known_hosts')
    await writeFile(real, `blade1 ${other.line}\n`, {mode: 0o644})
    await symlink(real, file)
    expect((await recordHostKeys(file, ALIAS, [newEd.line], {hash: false})).path).toBe(real)
    expect((await lstat(file)).isSymbolicLink()).toBe(true)
    expect(await readFile(file, 'utf8')).toBe(`blade1 ${other.line}\n${ALIAS} ${newEd.line}\n`)
    expect((await lstat(real)).mode & 0o777).toBe(0o644)
  })

  it.each([
    ['a certificate', `ssh-ed25519-cert-v01@openssh.com ${newEd.line.split(' ')[1]}`],
    ['a type the blob does not have', `ssh-rsa ${newEd.line.split(' ')[1]}`],
    ['not base64', 'ssh-ed25519 AAAA$$$'],
    ['a second host in the line', `${newEd.line}\nevil.example ${other.line}`],
    ['an empty line', ''],
  ])('refuses %s from the blade and leaves the file as it was', async (_what, line) => {
    await writeFile(file, before())
    await expect(recordHostKeys(file, ALIAS, [newEd.line, line], {hash: false})).rejects.toMatchObject({code: 'HOST_KEYS_INVALID'})
    expect(await readFile(file, 'utf8')).toBe(before())
  })

  it('keeps the text as it was when the alias has no entries, adding the keys at the end', () => {
    const text = `a ${other.line}\n`
    expect(replaceHostEntries(text, ALIAS, [parseHostPublicKey(newEd.line)], false)).toEqual({text: `${text}${ALIAS} ${newEd.line}\n`, removed: 0})
  })

  it('refuses a tampered entry for the alias: the verifier reports HOST_KEY_CHANGED', async () => {
    await recordHostKeys(file, ALIAS, [newEd.line], {hash: false})
    // Someone swaps the recorded key for theirs.
    const attacker = hostKey()
    await writeFile(file, (await readFile(file, 'utf8')).replace(newEd.line, attacker.line))
    const target = {strictHostKeyChecking: 'yes', hashKnownHosts: false} as SshTarget
    const check = hostKeyVerifier({target, name: ALIAS, known: await readKnownHostsFiles([file]), confirm: async () => true})
    const verdict = await new Promise<boolean>((resolve) => check.verify(newEd.blob, resolve))
    expect(verdict).toBe(false)
    expect(check.problem()).toMatchObject({code: 'HOST_KEY_CHANGED'})
    // The attacker's key, presented by the VM, is what is known now: the record alone decides.
    const known = [{path: file, text: await readFile(file, 'utf8')}]
    const accepted = await new Promise<boolean>((resolve) => hostKeyVerifier({target, name: ALIAS, known, confirm: async () => false}).verify(attacker.blob, resolve))
    expect(accepted).toBe(true)
  })
})

describe('known_hosts: whether a name has entries of its own', () => {
  it('counts plain and hashed entries naming it, not wildcards or marker lines', () => {
    expect(hasHostEntry(`${ALIAS} ${newEd.line}\n`, ALIAS)).toBe(true)
    expect(hasHostEntry(`10.0.0.9,${ALIAS.toUpperCase()} ${newEd.line}\n`, ALIAS)).toBe(true)
    expect(hasHostEntry(`${hashedName(ALIAS)} ${newEd.line}\n`, ALIAS)).toBe(true)
    expect(hasHostEntry(`*.blade1 ${newEd.line}\nshien-* ${newEd.line}\n@revoked ${ALIAS} ${newEd.line}\n# ${ALIAS} ${newEd.line}\n`, ALIAS)).toBe(false)
    expect(hasHostEntry(`${hashedName('blade1')} ${newEd.line}\n${ALIAS}\n`, ALIAS)).toBe(false)
  })
})

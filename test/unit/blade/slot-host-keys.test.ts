import {mkdir, mkdtemp, rm, symlink, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import type {BladeContext} from '../../../src/blade/caller.js'
import {slotHostKeys} from '../../../src/blade/slot-host-keys.js'
import {userPaths} from '../../../src/config/storage-layout.js'
import {generateHostKeys} from '../../../src/harden/host-keys.js'
import {parseHostPublicKey} from '../../../src/transport/known-hosts-writer.js'
import {fingerprint} from '../../../src/transport/known-hosts.js'

describe("the host keys harden makes, and the blade's answer from a slot's record", () => {
  let root: string
  let ctx: BladeContext
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'shien-slot-keys-'))
    ctx = {paths: userPaths(root, 'e195701')} as BladeContext
    await mkdir(ctx.paths.images, {recursive: true})
  })
  afterEach(() => rm(root, {recursive: true, force: true}))

  it('keeps the public half of each new key, which the laptop accepts and whose fingerprint is the one reported', async () => {
    const made = await generateHostKeys()
    try {
      expect(made.keys.map((k) => k.info.type)).toEqual(['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ssh-rsa'])
      for (const {info} of made.keys) {
        const key = parseHostPublicKey(info.publicKey!)
        expect(info.publicKey).toBe(`${key.type} ${key.blob}`)
        expect(fingerprint(Buffer.from(key.blob, 'base64'))).toBe(info.fingerprint)
      }
    } finally {
      await rm(made.dir, {recursive: true, force: true})
    }
  })

  it("returns the new keys of the slot's record, and none for a record without them, a broken one or none at all", async () => {
    const record = (hostKeys: unknown) => writeFile(ctx.paths.record('01'), JSON.stringify({slot: '01', harden: {hostKeys}}))
    await record({old: [{file: 'x', type: 't', fingerprint: 'f'}], new: [{file: '/etc/ssh/ssh_host_ed25519_key.pub', type: 'ssh-ed25519', fingerprint: 'f', publicKey: 'ssh-ed25519 AAAA'}]})
    expect(await slotHostKeys(ctx, '1')).toEqual({slot: '01', hostKeys: ['ssh-ed25519 AAAA']})
    await record({old: [], new: [{file: 'x', type: 't', fingerprint: 'f'}]})
    expect(await slotHostKeys(ctx, '01')).toEqual({slot: '01', hostKeys: []})
    await writeFile(ctx.paths.record('01'), '{not json')
    expect(await slotHostKeys(ctx, '01')).toEqual({slot: '01', hostKeys: []})
    expect(await slotHostKeys(ctx, '02')).toEqual({slot: '02', hostKeys: []})
  })

  it('does not follow a record that is a symlink, and refuses a malformed slot', async () => {
    const elsewhere = join(root, 'elsewhere.json')
    await writeFile(elsewhere, JSON.stringify({harden: {hostKeys: {new: [{publicKey: 'ssh-ed25519 AAAA'}]}}}))
    await symlink(elsewhere, ctx.paths.record('01'))
    expect(await slotHostKeys(ctx, '01')).toEqual({slot: '01', hostKeys: []})
    await expect(slotHostKeys(ctx, '../x')).rejects.toMatchObject({code: 'BAD_SLOT'})
  })
})

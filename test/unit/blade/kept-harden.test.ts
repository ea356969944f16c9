import {mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {keptHardened, publicKeySha256} from '../../../src/blade/kept-harden.js'
import {DEFAULT_BLADE_CONFIG} from '../../../src/config/blade-config.js'
import {userPaths} from '../../../src/config/storage-layout.js'

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl student@mbp'
const SHA = 'a'.repeat(64)
let root: string
let ctx: {account: string; config: typeof DEFAULT_BLADE_CONFIG; paths: ReturnType<typeof userPaths>}
let image: string
let record: string

/** What harden leaves when it finished: the hardened image, then its record. */
async function stageHardened(fields: Record<string, unknown> = {}): Promise<void> {
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', image, '32M'])
  const past = new Date(Date.now() - 60_000)
  utimesSync(image, past, past)
  writeFileSync(record, JSON.stringify({slot: '01', hardenedAt: new Date().toISOString(), box: 'web', boxSha256: SHA, publicKeySha256: publicKeySha256(KEY), harden: {user: 'vagrant'}, ...fields}))
}

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'shien-kept-harden-'))
  ctx = {account: 'e195701', config: {...DEFAULT_BLADE_CONFIG, storageRoot: root}, paths: userPaths(root, 'e195701')}
  mkdirSync(ctx.paths.images, {recursive: true})
  image = join(ctx.paths.images, '.01.new.qcow2')
  record = join(ctx.paths.images, '.01.new.json')
})

afterEach(() => rmSync(root, {recursive: true, force: true}))

describe('a harden the blade finished while the laptop was gone', () => {
  it('is given back for the same upload and key, with the image\'s size and the record', async () => {
    await stageHardened()
    expect(await keptHardened(ctx, '01', {sha256: SHA, publicKey: `  ${KEY}\n`})).toEqual({
      image, disk: '', virtualSize: 32 * 2 ** 20, ignoredDisks: [], hardened: {record, report: {user: 'vagrant'}, hostKeys: []},
    })
  })

  it("gives back the host keys that harden made, from the record, for the laptop's known_hosts", async () => {
    const hostKeys = {old: [], new: [{file: '/etc/ssh/ssh_host_ed25519_key.pub', type: 'ssh-ed25519', fingerprint: 'SHA256:x', publicKey: 'ssh-ed25519 AAAA'}]}
    await stageHardened({harden: {user: 'vagrant', hostKeys}})
    expect((await keptHardened(ctx, '01', {sha256: SHA, publicKey: KEY}))?.hardened?.hostKeys).toEqual(['ssh-ed25519 AAAA'])
  })

  it('is not taken for another upload, another key, another slot, or without both', async () => {
    await stageHardened()
    expect(await keptHardened(ctx, '01', {sha256: 'b'.repeat(64), publicKey: KEY})).toBeUndefined()
    expect(await keptHardened(ctx, '01', {sha256: SHA, publicKey: KEY.replace('student@mbp', 'other')})).toBeUndefined()
    expect(await keptHardened(ctx, '01', {sha256: SHA})).toBeUndefined()
    expect(await keptHardened(ctx, '01', {publicKey: KEY})).toBeUndefined()
    writeFileSync(record, JSON.stringify({slot: '02', boxSha256: SHA, publicKeySha256: publicKeySha256(KEY), harden: {}}))
    expect(await keptHardened(ctx, '01', {sha256: SHA, publicKey: KEY})).toBeUndefined()
  })

  it('is not taken when harden did not finish (a convert\'s or apply-delta\'s record only) or the image changed after it', async () => {
    await stageHardened({harden: undefined})
    expect(await keptHardened(ctx, '01', {sha256: SHA, publicKey: KEY})).toBeUndefined()
    await stageHardened()
    const later = new Date(Date.now() + 60_000)
    utimesSync(image, later, later)
    expect(await keptHardened(ctx, '01', {sha256: SHA, publicKey: KEY})).toBeUndefined()
  })

  it('is not taken through a symlink, or when the image is not a qcow2', async () => {
    await stageHardened()
    const elsewhere = join(root, 'elsewhere.qcow2')
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', elsewhere, '32M'])
    rmSync(image)
    symlinkSync(elsewhere, image)
    expect(await keptHardened(ctx, '01', {sha256: SHA, publicKey: KEY})).toBeUndefined()
    rmSync(image)
    writeFileSync(image, 'not an image')
    utimesSync(image, new Date(0), new Date(0))
    expect(await keptHardened(ctx, '01', {sha256: SHA, publicKey: KEY})).toBeUndefined()
  })
})

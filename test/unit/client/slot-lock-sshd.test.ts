/**
 * The laptop's hold on a slot over a real sshd of the test's own: the blade side is the same
 * hold as `shien blade lock` (test/support/slot-lock-holder.ts, behind a script that reads the
 * step's flags), the laptop side the real BladeClient. A second hold is refused with SLOT_BUSY
 * naming the first; the first's session killed frees the slot for the next at once.
 */
import {chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {BladeClient} from '../../../src/client/blade-client.js'
import type {Connection} from '../../../src/transport/connect.js'
import {startOwnSshd, type OwnSshd} from '../../support/own-sshd.js'

const REPO_ROOT = join(import.meta.dirname, '../../..')
let dir: string
let command: string
let sshd: OwnSshd

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'shien-slot-lock-sshd-'))
  const holder = join(dir, 'slot-lock-holder.mjs')
  await execa(join(REPO_ROOT, 'node_modules/.bin/rolldown'), ['test/support/slot-lock-holder.ts', '--platform', 'node', '--format', 'esm', '--inlineDynamicImports', '--file', holder], {cwd: REPO_ROOT})
  // `shien blade lock --json --protocol N --slot S --host H`, as the laptop calls it.
  command = join(dir, 'shien')
  writeFileSync(command, `#!/bin/sh\nshift 5\nexec node ${holder} ${join(dir, 'storage')} e195701 "$2" "$4"\n`)
  chmodSync(command, 0o755)
  mkdirSync(join(dir, 'storage', 'users', 'e195701'), {recursive: true})
  sshd = await startOwnSshd()
}, 120_000)

afterAll(async () => {
  await sshd?.stop()
  if (dir) rmSync(dir, {recursive: true, force: true})
})

async function bladeClient(): Promise<{blade: BladeClient; end: () => void}> {
  const client = await sshd.login()
  const connection = {client, target: {}, publicKey: '', hostKeyFingerprint: '', close: () => client.end()} as unknown as Connection
  return {blade: new BladeClient(connection, command), end: () => client.end()}
}

describe('a slot\'s push lock held over SSH', () => {
  it('refuses a second push with SLOT_BUSY, and a push whose session was killed leaves the slot free', async () => {
    const first = await bladeClient()
    const lock = await first.blade.lockSlot('01', 'mbp-of-alice')
    expect(lock.holder).toMatchObject({slot: '01', host: 'mbp-of-alice'})

    const second = await bladeClient()
    const refused = await second.blade.lockSlot('01', 'other').catch((e: unknown) => e)
    expect(refused).toMatchObject({code: 'SLOT_BUSY', exitCode: 6, message: expect.stringContaining('from the laptop "mbp-of-alice" (192.0.2.7) is still running. (on the blade, shien blade lock)')})

    // The first push's session goes (its sshd processes killed): its lock step ends with it.
    await sshd.killSessions()
    await lock.release()
    first.end()
    second.end()
    const third = await bladeClient()
    let taken
    for (let i = 0; i < 20 && !taken; i++) {
      taken = await third.blade.lockSlot('01', 'new-laptop').catch(() => undefined)
      if (!taken) await new Promise((f) => setTimeout(f, 250))
    }
    expect(taken?.holder.host).toBe('new-laptop')
    await taken?.release()
    third.end()
  }, 120_000)
})

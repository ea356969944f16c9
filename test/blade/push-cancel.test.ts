import {readdirSync} from 'node:fs'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {runShien, startShien} from '../support/cli.js'
import {ensureLocalBlade, type LocalBlade} from '../support/local-blade.js'
import {testBoxPath} from '../support/test-box.js'
import {clearSlot, definedDomains} from '../support/virsh.js'
import {processesOf} from '../support/waiting.js'

let blade: LocalBlade
let box: string

const studentProcesses = (pattern: string) => processesOf(blade.account, pattern)

beforeAll(async () => {
  blade = await ensureLocalBlade()
  box = await testBoxPath()
  await clearSlot(blade.account, '02')
}, 900_000)

afterAll(async () => {
  if (blade) await clearSlot(blade.account, '02')
})

describe('Ctrl-C during a blade step', () => {
  it('stops the work on the blade and leaves the slot as it was; the re-run sends nothing again', async () => {
    const child = startShien(['push', box, '--host', 'blade', '--slot', '02', '--name', 'cancel'], {home: blade.laptopHome})
    let sent = false
    child.stderr?.on('data', (chunk: Buffer) => {
      if (!sent && chunk.toString().includes('Harden...')) {
        sent = true
        // Give the blade a moment to start libguestfs, so the interruption lands inside it.
        setTimeout(() => child.kill('SIGINT'), 3000)
      }
    })
    const result = await child
    expect(sent, String(result.stderr)).toBe(true)
    expect(result.exitCode).toBe(130)
    expect(String(result.stderr)).toMatch(/Interrupted|cancelled/i)
    const images = readdirSync(join(blade.storageRoot, 'users', blade.account, 'images'))
    expect(images.filter((f) => f.includes('02'))).toEqual([])
    expect(await definedDomains()).not.toContain(`${blade.account}-02`)
    await new Promise((f) => setTimeout(f, 3000))
    expect(await studentProcesses('guestfish|qemu-system|qemu-img')).toBe('')

    // The same command again sends nothing: the whole box is on the blade from the first try.
    const again = await runShien(['push', box, '--host', 'blade', '--slot', '02', '--name', 'cancel', '--no-start', '--json'], {home: blade.laptopHome})
    expect(again.exitCode, again.stderr).toBe(0)
    expect(again.json.box).toMatchObject({sent: 0, resumedFrom: again.json.box.size})
    expect(await definedDomains()).toContain(`${blade.account}-02`)
    // A push that succeeded leaves nothing of its upload in incoming/.
    expect(readdirSync(join(blade.storageRoot, 'users', blade.account, 'incoming')).filter((f) => f.startsWith('cancel.'))).toEqual([])
  }, 600_000)
})

// The arm64 Debian test box (boxes/debian-12-arm64), as an instructor builds it with shien box
// build: shien takes it as a VirtualBox arm64 box with EFI firmware. test/e2e/arm64-push.test.ts
// pushes it and boots it through ie-virsh.
import {execa} from 'execa'
import {beforeAll, describe, expect, it} from 'vitest'

import {SHIEN_BIN} from '../support/cli.js'
import {testBoxPath} from '../support/test-box.js'

describe('the arm64 Debian test box', () => {
  let box: string

  beforeAll(async () => {
    box = await testBoxPath('arm64')
  }, 1_800_000)

  it('is a VirtualBox box shien box inspect takes as arm64 with EFI firmware, packed as vagrant package packs one', async () => {
    const run = await execa('node', [SHIEN_BIN, 'box', 'inspect', box, '--json'], {reject: false})
    expect(run.exitCode, run.stdout + run.stderr).toBe(0)
    const info = JSON.parse(run.stdout)
    expect(info.entries.map((e: {name: string}) => e.name)).toEqual(['box.ovf', 'box-disk001.vmdk', 'metadata.json', 'Vagrantfile'])
    expect(info.provider).toBe('virtualbox')
    expect(info.metadata).toEqual({provider: 'virtualbox', architecture: 'arm64'})
    expect(info.architecture).toBe('arm64')
    expect(info.firmware).toBe('efi')
    // Declared three times, and all three agree: metadata.json, the OVF's platform, its OS type.
    expect(info.architectureClaims.map((c: {source: string}) => c.source).join('\n')).toMatch(/metadata\.json[^]*Platform architecture="ARM"[^]*Debian12_arm64/)
    expect(info.disks).toHaveLength(1)
  })
})

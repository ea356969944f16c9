import {Console} from 'node:console'
import {dirname, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import {captureOutput} from '@oclif/test'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import BoxInspect from '../../../commands/box/inspect.js'
import type {BoxInfo} from '../../../src/box/inspect.js'
import {makeBox, tempDir} from '../../support/make-box.js'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')

let dir: string
let cleanup: () => Promise<void>
beforeAll(async () => ({dir, cleanup} = await tempDir()))
afterAll(() => cleanup())

/**
 * Runs the command and captures what it prints. oclif prints with console.log, which vitest
 * intercepts, so the command gets a console bound to the process streams captureOutput mocks.
 */
async function run(argv: string[]) {
  const vitestConsole = globalThis.console
  globalThis.console = new Console({stdout: process.stdout, stderr: process.stderr})
  try {
    return await captureOutput<BoxInfo>(() => BoxInspect.run(argv, root))
  } finally {
    globalThis.console = vitestConsole
  }
}

describe('shien box inspect', () => {
  it('prints a summary and a disk table', async () => {
    const box = await makeBox(dir, 'ok.box', {gzip: true, privateKey: true})
    const {stdout, error} = await run([box])
    expect(error).toBeUndefined()
    expect(stdout).toContain('VM        test-vm (Debian_64)')
    expect(stdout).toContain('2 CPUs, 1024 MiB memory, BIOS firmware')
    expect(stdout).toContain('tar.gz')
    expect(stdout).toContain('vagrant_private_key: a private key; shien leaves it out of the upload')
    expect(stdout).toMatch(/DISK\s+ENTRY\s+SIZE\s+FORMAT\s+CONTROLLER/)
    expect(stdout).toMatch(/vmdisk1\s+box-disk001\.vmdk\s+1 MiB\s+vmdk streamOptimized\s+sata port 0/)
    expect(stdout).toContain('Provider  virtualbox, has a Vagrantfile')
    expect(stdout).toContain('Arch      amd64 (box.ovf (OS type Debian_64))')
  })

  it('returns the BoxInfo under --json', async () => {
    const box = await makeBox(dir, 'json.box')
    const {stdout, result} = await run([box, '--json'])
    const parsed = JSON.parse(stdout) as BoxInfo
    expect(parsed.disks[0]).toMatchObject({format: 'vmdk', subformat: 'streamOptimized', vmdk: {createType: 'streamOptimized'}})
    expect(parsed).toMatchObject({provider: 'virtualbox', architecture: 'amd64', firmware: 'bios', machine: {cpus: 2}, ovf: {cpus: 2}})
    expect(result?.path).toBe(box)
  })

  it('exits 3 with the code, the reason and what to try when the box is refused', async () => {
    const box = await makeBox(dir, 'evil.box', {textDescriptor: '/etc/shadow'})
    const {stderr, error} = await run([box])
    expect(error?.oclif?.exit).toBe(3)
    expect(stderr).toContain('Error (VMDK_TEXT_DESCRIPTOR): The disk box-disk001.vmdk was refused')
    expect(stderr).toContain('Try this:')
  })

  it('puts the refusal in the JSON envelope under --json', async () => {
    const box = await makeBox(dir, 'link.box', {unsafe: 'symlink'})
    const {stdout, error} = await run([box, '--json'])
    expect(error?.oclif?.exit).toBe(3)
    expect(JSON.parse(stdout)).toMatchObject({error: {code: 'BOX_UNSAFE_ENTRY', exitCode: 3}})
  })
})

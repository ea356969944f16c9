import {createHash} from 'node:crypto'
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {pathToFileURL} from 'node:url'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {planPublish} from '../../../src/box/publish/plan.js'
import {publishBox} from '../../../src/box/publish/publish.js'
import {ExitCode} from '../../../src/errors.js'
import {makeBox, tempDir} from '../../support/make-box.js'
import {assertBuildIsCurrent, shien} from '../../support/run-command.js'

let dir: string
let cleanup: () => Promise<void>
beforeAll(async () => {
  assertBuildIsCurrent()
  ;({dir, cleanup} = await tempDir())
})
afterAll(() => cleanup())

describe('shien box inspect, in process', () => {
  it('routes "box inspect" to the command and prints the BoxInfo under --json', async () => {
    const box = await makeBox(dir, 'ok.box', {gzip: true})
    const run = await shien(['box', 'inspect', box, '--json'])
    expect(run.exitCode, run.stderr).toBe(0)
    expect(run.json).toMatchObject({path: box, ovf: {cpus: 2}})
    expect(run.json.disks[0].vmdk.createType).toBe('streamOptimized')
  })

  it('exits 3 with the refusal in the envelope', async () => {
    const box = await makeBox(dir, 'evil.box', {textDescriptor: '/etc/shadow'})
    const run = await shien(['box', 'inspect', box, '--json'])
    expect(run.exitCode).toBe(ExitCode.badInput)
    expect(run.json).toEqual({error: expect.objectContaining({code: 'VMDK_TEXT_DESCRIPTOR', exitCode: ExitCode.badInput})})
  })
})

describe('shien box verify, in process', () => {
  /** A catalog listing one VirtualBox box by file URL, with the given sha256. */
  async function catalogFor(name: string, checksum?: (bytes: Buffer) => string) {
    const box = await makeBox(dir, `${name}.box`)
    const bytes = readFileSync(box)
    const sha256 = checksum ? checksum(bytes) : createHash('sha256').update(bytes).digest('hex')
    const provider = {name: 'virtualbox', url: pathToFileURL(box).href, checksum_type: 'sha256', checksum: sha256}
    const path = join(dir, `${name}.json`)
    writeFileSync(path, JSON.stringify({name: 'os101/debian12', versions: [{version: '2026.1.0', providers: [provider]}]}))
    return path
  }

  it('verifies a catalog whose box matches its checksum', async () => {
    const run = await shien(['box', 'verify', await catalogFor('good')])
    expect(run.exitCode, run.stderr).toBe(0)
    expect(run.stdout).toContain('os101/debian12: 1 box in 1 version verified.')
  })

  it('exits 3 and names the box when the checksum does not match', async () => {
    const run = await shien(['box', 'verify', await catalogFor('bad', () => '0'.repeat(64)), '--json'])
    expect(run.exitCode).toBe(ExitCode.badInput)
    expect(run.json.error).toMatchObject({code: 'CHECKSUM_MISMATCH', exitCode: ExitCode.badInput})
    expect(run.json.error.message).toMatch(/2026\.1\.0 virtualbox/)
  })
})

describe('shien box unpublish, in process', () => {
  it('removes a version and prints the catalog\'s versions, as JSON and for people', async () => {
    const box = await makeBox(dir, 'course.box')
    const to = join(dir, 'unpublish')
    for (const version of ['2026.1.0', '2026.2.0', '2026.3.0']) {
      await publishBox(planPublish({box, name: 'os101/debian12', version, to, cwd: dir, libvirt: false}))
    }
    const json = await shien(['box', 'unpublish', '--name', 'os101/debian12', '--version', '2026.1.0', '--to', to, '--json'])
    expect(json.exitCode, json.stderr).toBe(0)
    expect(json.json).toMatchObject({name: 'os101/debian12', version: '2026.1.0', listed: true, versions: ['2026.2.0', '2026.3.0'], latest: '2026.3.0'})
    expect(json.json.removed).toEqual([join(to, 'os101/debian12/2026.1.0/virtualbox.box')])
    const human = await shien(['box', 'unpublish', '--name', 'os101/debian12', '--version', '2026.2.0', '--to', to])
    expect(human.exitCode, human.stderr).toBe(0)
    expect(human.stdout).toBe(`Unpublished os101/debian12 2026.2.0; the catalog lists 2026.3.0.\n  removed ${join(to, 'os101/debian12/2026.2.0/virtualbox.box')}\n`)
    expect(existsSync(join(to, 'os101/debian12/2026.2.0'))).toBe(false)
  })

  it('exits 6 with the refusal in the envelope for a version that is not published', async () => {
    const to = join(dir, 'unpublish-unknown')
    await publishBox(planPublish({box: await makeBox(dir, 'course.box'), name: 'os101/debian12', version: '2026.3.0', to, cwd: dir, libvirt: false}))
    const before = readFileSync(join(to, 'os101/debian12.json'), 'utf8')
    const run = await shien(['box', 'unpublish', '--name', 'os101/debian12', '--version', '2026.2.0', '--to', to, '--json'])
    expect(run.exitCode).toBe(ExitCode.refused)
    expect(run.json).toEqual({error: expect.objectContaining({code: 'VERSION_NOT_PUBLISHED', exitCode: ExitCode.refused})})
    expect(run.json.error.message).toContain('lists 2026.3.0')
    expect(readFileSync(join(to, 'os101/debian12.json'), 'utf8')).toBe(before)
  })

  it('has help that says what it removes, when it refuses, and how it is run', async () => {
    const run = await shien(['box', 'unpublish', '--help'])
    expect(run.exitCode).toBe(0)
    expect(run.stdout).toMatch(/\$ shien box unpublish --name <value> --version <value> --to <value>/)
    for (const part of ['empty versions list', 'BASE_IN_USE', 'BASE_USERS_UNCHECKED', 'as root on the blade', 'sudo shien box unpublish --name os101/debian12']) {
      expect(run.stdout.replaceAll(/\s+/g, ' ')).toContain(part)
    }
  })
})

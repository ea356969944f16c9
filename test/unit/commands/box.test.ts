import {createHash} from 'node:crypto'
import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {pathToFileURL} from 'node:url'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

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

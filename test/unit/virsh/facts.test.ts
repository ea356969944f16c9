import {lstat} from 'node:fs/promises'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {ExitCode} from '../../../src/errors.js'
import {clusterPaths} from '../../../src/config/storage-layout.js'
import {openDrainedBlades} from '../../../src/privileged/drained-blades.js'
import {Harness} from './harness.js'

const blade = (name: string, port: number) => ({name, ssh: `127.0.0.1:${port}`, migrationUri: `qemu+ssh://root@${name}/system`, native: ['x86_64']})
const CLUSTER = {blades: [blade('blade1', 2201), blade('blade2', 2202)], self: 'blade2'}

describe('ie-virsh facts (fake libvirt)', () => {
  const h = new Harness()
  beforeEach(() => h.setUp({bladeMemoryMiB: 12_288}))
  afterEach(() => h.tearDown())

  /** Two running VMs of k198584 and a stopped one of e195701, defined through ie-virsh. */
  async function someLoad(): Promise<void> {
    for (const slot of ['01', '02']) {
      expect(await h.run(['define', slot], 1002)).toBe(0)
      expect(await h.run(['start', slot], 1002)).toBe(0)
    }
    expect(await h.run(['define', '01'], 1001)).toBe(0)
  }

  it("gives the blade's memory, load and architectures, and no domain's name or owner", async () => {
    await someLoad()
    expect(await h.run(['facts', '--json'], 1001)).toBe(0)
    const text = h.out.join('')
    expect(JSON.parse(text)).toEqual({
      blade: 'blade1', memoryMiB: 16_384, runningMiB: 512, runningVms: 2, bladeMemoryMiB: 12_288, native: [], emulated: ['x86_64', 'aarch64'], drained: false,
    })
    expect(text).not.toMatch(/k198584|e195701/)
    // Without a cluster section nothing of the cluster is made.
    await expect(lstat(clusterPaths(h.root).dir)).rejects.toThrow(/ENOENT/)
  })

  it('is open to a caller with no role on the blades, and takes no --account', async () => {
    expect(await h.run(['facts', '--json'], 1004)).toBe(0)
    expect(h.json()).toMatchObject({blade: 'blade1', runningVms: 0})
    expect(await h.run(['facts', '--account', 'k198584', '--json'], 1003)).toBe(ExitCode.usage)
  })

  it('names the blade as cluster.self says, and says when an admin drained it', async () => {
    await h.writeConfig({bladeMemoryMiB: 12_288, cluster: CLUSTER})
    expect(await h.run(['facts', '--json'])).toBe(0)
    expect(h.json()).toMatchObject({blade: 'blade2', drained: false})
    await (await openDrainedBlades(h.root)).drain('blade2', 'admin1')
    expect(await h.run(['facts', '--json'])).toBe(0)
    expect(h.json()).toMatchObject({blade: 'blade2', drained: true})
    expect(await h.run(['facts'])).toBe(0)
    expect(h.out.join('')).toMatch(/^blade2 \(drained\): 16384 MiB, 0 VMs running/)
  })

  it('must run as root', async () => {
    expect(await h.run(['facts', '--json'], 1001, {realUid: 1001})).toBe(ExitCode.refused)
    expect(h.json().error.code).toBe('NOT_ROOT')
  })
})

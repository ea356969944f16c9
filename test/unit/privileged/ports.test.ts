import {mkdtemp, readFile, readdir, rm, writeFile, mkdir} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {ExitCode} from '../../../src/errors.js'
import {PortPool, SshPortPool} from '../../../src/privileged/ports.js'

describe('SSH port pool', () => {
  let dir: string
  beforeEach(async () => {
    dir = join(await mkdtemp(join(tmpdir(), 'shien-ports-')), 'ports', 'ssh')
  })
  afterEach(async () => {
    await rm(join(dir, '..', '..'), {recursive: true, force: true})
  })

  it('hands out the lowest free port and records the domain in its file', async () => {
    const pool = new SshPortPool(dir, {from: 22000, to: 22009})
    expect(await pool.allocate('e195701-01')).toBe(22000)
    expect(await pool.allocate('e195701-02')).toBe(22001)
    expect(await readFile(join(dir, '22001'), 'utf8')).toBe('e195701-02\n')
  })

  it('never hands the same port out twice, even to concurrent allocations', async () => {
    // Two pools on one folder stand in for two blades sharing the storage.
    const a = new SshPortPool(dir, {from: 22000, to: 22039})
    const b = new SshPortPool(dir, {from: 22000, to: 22039})
    const ports = await Promise.all(Array.from({length: 40}, (_, i) => (i % 2 ? a : b).allocate(`u${i}-01`)))
    expect(new Set(ports).size).toBe(40)
    expect((await readdir(dir)).length).toBe(40)
  })

  it('says clearly when the pool is empty', async () => {
    const pool = new SshPortPool(dir, {from: 22000, to: 22001})
    await pool.allocate('a-01')
    await pool.allocate('a-02')
    await expect(pool.allocate('a-03')).rejects.toMatchObject({code: 'POOL_EMPTY', exitCode: ExitCode.refused})
  })

  it("frees only the owner's ports, and a freed port is handed out again", async () => {
    const pool = new SshPortPool(dir, {from: 22000, to: 22009})
    await pool.allocate('a-01')
    await pool.allocate('b-01')
    await writeFile(join(dir, 'README'), 'a-01\n')
    expect(await pool.release('a-01')).toEqual([22000])
    expect((await readdir(dir)).sort()).toEqual(['22001', 'README'])
    expect(await pool.release('a-01')).toEqual([])
    expect(await pool.allocate('c-01')).toBe(22000)
  })

  it('treats a missing folder as an empty pool when releasing', async () => {
    expect(await new SshPortPool(dir, {from: 1, to: 2}).release('a-01')).toEqual([])
    await mkdir(dir, {recursive: true})
  })

  it('refuses a pool that is not a valid port range', () => {
    expect(() => new SshPortPool(dir, {from: 23000, to: 22000})).toThrow(/invalid/)
    expect(() => new SshPortPool(dir, {from: 0, to: 10})).toThrow(/invalid/)
    expect(() => new SshPortPool(dir, {from: 65535, to: 65536})).toThrow(/invalid/)
  })

  it("records the blade with a container port and reclaims only this blade's ports of domains not running", async () => {
    const here = new PortPool(dir, {from: 23000, to: 23009}, 'container', 'blade1')
    const there = new PortPool(dir, {from: 23000, to: 23009}, 'container', 'blade2')
    expect(await here.allocate('a-01')).toBe(23000)
    expect(await there.allocate('b-01')).toBe(23001)
    expect(await here.allocate('c-01')).toBe(23002)
    expect(await here.holders()).toEqual([
      {port: 23000, owner: 'a-01', host: 'blade1'},
      {port: 23001, owner: 'b-01', host: 'blade2'},
      {port: 23002, owner: 'c-01', host: 'blade1'},
    ])
    // Nothing runs on blade1 but c-01; blade2's b-01 is not blade1's to judge.
    expect(await here.reclaim((domain) => domain === 'c-01')).toEqual([23000])
    expect((await here.holders()).map((h) => h.port)).toEqual([23001, 23002])
    await expect(new PortPool(dir, {from: 23001, to: 23002}, 'container', 'blade1').allocate('d-01')).rejects.toMatchObject({
      code: 'POOL_EMPTY',
      message: 'All container ports 23001-23002 are in use.',
    })
  })
})

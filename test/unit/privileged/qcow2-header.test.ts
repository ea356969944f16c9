import {open, mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {readQcow2Header} from '../../../src/privileged/qcow2-header.js'

describe('qcow2 header, read by ie-virsh itself', () => {
  let dir: string
  const header = async (name: string) => {
    const handle = await open(join(dir, name), 'r')
    try {
      return await readQcow2Header(handle, join(dir, name))
    } finally {
      await handle.close()
    }
  }
  const qemuImg = (...args: string[]) => execa('qemu-img', ['create', '-q', '-f', 'qcow2', ...args], {cwd: dir})

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shien-qcow2-'))
    await qemuImg(join(dir, 'plain.qcow2'), '16M')
    await qemuImg('-b', 'plain.qcow2', '-F', 'qcow2', join(dir, 'relative.qcow2'))
    await qemuImg('-o', `data_file=${join(dir, 'data.raw')}`, join(dir, 'datafile.qcow2'), '16M')
    await qemuImg('-o', 'compat=0.10', join(dir, 'v2.qcow2'), '16M')
    await writeFile(join(dir, 'raw.qcow2'), Buffer.alloc(1 << 20))
  })
  afterAll(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('reads a standalone image', async () => {
    expect(await header('plain.qcow2')).toEqual({version: 3, externalDataFile: false, backingName: undefined})
    expect(await header('v2.qcow2')).toMatchObject({version: 2, externalDataFile: false})
  })

  it('reads the backing name exactly as stored', async () => {
    expect((await header('relative.qcow2')).backingName).toBe('plain.qcow2')
  })

  it('sees the external data file bit', async () => {
    expect((await header('datafile.qcow2')).externalDataFile).toBe(true)
  })

  it('refuses a raw file named .qcow2', async () => {
    await expect(header('raw.qcow2')).rejects.toMatchObject({code: 'IMAGE_NOT_QCOW2'})
  })
})

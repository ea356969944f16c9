import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {inspectBox} from '../../../src/box/inspect.js'
import {boxPayload} from '../../../src/box/payload.js'
import {collect, makeBox, readTar, tempDir, type MakeBoxOptions} from '../../support/make-box.js'

let dir: string
let cleanup: () => Promise<void>
beforeAll(async () => ({dir, cleanup} = await tempDir()))
afterAll(() => cleanup())

let boxes = 0
async function payloadOf(opts: MakeBoxOptions) {
  const path = await makeBox(dir, `p${boxes++}.box`, opts)
  const info = await inspectBox(path)
  return {path, info, payload: boxPayload(path, info)}
}

const LONG_NAME = `docs/${'a-rather-long-folder-name/'.repeat(6)}${'and-an-even-longer-file-name-'.repeat(6)}.txt`

describe('boxPayload', () => {
  it('sends a plain box without a private key as its own bytes, resumable at any offset', async () => {
    const {path, payload} = await payloadOf({})
    expect(payload.kind).toBe('file')
    const original = await readFile(path)
    expect(await payload.size()).toBe(original.length)
    expect((await collect(payload.open())).equals(original)).toBe(true)
    expect((await collect(payload.open({start: 1000}))).equals(original.subarray(1000))).toBe(true)
  })

  it('re-packs a plain box holding a private key, leaving every key out', async () => {
    const {path, payload} = await payloadOf({privateKey: true, extra: [{name: 'keys/', type: 'directory'}, {name: 'keys/vagrant_private_key', body: 'secret'}]})
    expect(payload.kind).toBe('repacked')
    const bytes = await collect(payload.open())
    const entries = await readTar(bytes)
    expect(entries.map((e) => e.name)).toEqual(['Vagrantfile', 'box-disk001.vmdk', 'box.ovf', 'metadata.json'])
    expect(bytes.includes('not a real key')).toBe(false)
    expect(bytes.includes('secret')).toBe(false)
    const originals = new Map((await readTar(await readFile(path))).map((e) => [e.name, e.body]))
    for (const entry of entries) expect(entry.body.equals(originals.get(entry.name)!), entry.name).toBe(true)
  })

  it('re-packs a gzip box as a plain tar with fixed headers, dropping directories', async () => {
    const {info, payload} = await payloadOf({gzip: true, dotSlash: true, extra: [{name: 'docs/', type: 'directory'}, {name: LONG_NAME, body: 'long'}]})
    expect(info.privateKeys).toEqual([])
    expect(payload.kind).toBe('repacked')
    const bytes = await collect(payload.open())
    expect(bytes.subarray(0, 2).equals(Buffer.from([0x1f, 0x8b]))).toBe(false)
    const entries = await readTar(bytes)
    expect(entries.map((e) => e.name)).toEqual(['Vagrantfile', 'box-disk001.vmdk', 'box.ovf', 'metadata.json', LONG_NAME])
    for (const entry of entries) {
      expect(entry).toMatchObject({type: 'file', mode: 0o644, mtime: Date.parse('2000-01-01T00:00:00Z')})
      expect(entry.size).toBe(info.entries.find((e) => e.name === entry.name)!.size)
    }
  })

  it('yields the same bytes every time, and size() is their exact length', async () => {
    const {payload} = await payloadOf({gzip: true, privateKey: true, extra: [{name: LONG_NAME, body: 'x'.repeat(700)}]})
    const first = await collect(payload.open())
    const second = await collect(payload.open())
    expect(second.equals(first)).toBe(true)
    expect(await payload.size()).toBe(first.length)
    // A resumed upload re-generates the stream and starts where the blade's copy ended.
    const resumed = await collect(payload.open({start: 5000}))
    expect(resumed.equals(first.subarray(5000))).toBe(true)
  })

  it('makes a payload that passes inspection again, as a plain box sent as it is', async () => {
    const {payload} = await payloadOf({gzip: true, privateKey: true})
    const path = join(dir, 'repacked.box')
    await writeFile(path, await collect(payload.open()))
    const info = await inspectBox(path)
    expect(info).toMatchObject({compression: 'none', privateKeys: [], disks: [{vmdk: {createType: 'streamOptimized'}}]})
    expect(boxPayload(path, info).kind).toBe('file')
  })

  it('fails with BOX_CHANGED when the box changed since it was inspected', async () => {
    const {path, info, payload} = await payloadOf({privateKey: true})
    await makeBox(dir, path.slice(dir.length + 1), {privateKey: true, extra: [{name: 'new.txt', body: 'added later'}]})
    await expect(collect(payload.open())).rejects.toMatchObject({code: 'BOX_CHANGED'})
    expect(info.entries.some((e) => e.name === 'new.txt')).toBe(false)
  })

  it('stops reading the box when the consumer destroys the stream', async () => {
    const {payload} = await payloadOf({gzip: true})
    const stream = payload.open()
    await new Promise((resolve) => stream.once('readable', resolve))
    stream.destroy()
    await new Promise((resolve) => stream.once('close', resolve))
    expect(stream.destroyed).toBe(true)
  })
})

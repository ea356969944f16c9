import {randomBytes} from 'node:crypto'
import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {Readable} from 'node:stream'
import {gzipSync} from 'node:zlib'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {detectCompression, readBoxEntries, type BoxEntry} from '../../../src/box/box-tar.js'
import {collect, makeBox, packTar, tempDir, type MakeBoxOptions} from '../../support/make-box.js'
import {rejection} from '../../support/refusal.js'

let dir: string
let cleanup: () => Promise<void>
beforeAll(async () => ({dir, cleanup} = await tempDir()))
afterAll(() => cleanup())

/** Reads a box, keeping every entry and its full body. */
async function readAll(source: string | Readable) {
  const seen: Array<BoxEntry & {body: string}> = []
  const {compression} = await readBoxEntries(source, {
    onEntry: async (entry, body) => void seen.push({...entry, body: (await collect(body)).toString('latin1')}),
  })
  return {compression, seen}
}


describe('readBoxEntries on good boxes', () => {
  it('streams a plain box entry by entry with names, sizes and bodies', async () => {
    const path = await makeBox(dir, 'plain.box')
    expect(await detectCompression(path)).toBe('none')
    const {compression, seen} = await readAll(path)
    expect(compression).toBe('none')
    expect(seen.map((e) => e.name)).toEqual(['Vagrantfile', 'box-disk001.vmdk', 'box.ovf', 'metadata.json'])
    expect(seen[1].body.slice(0, 4)).toBe('KDMV')
    expect(seen[1].size).toBe(seen[1].body.length)
    expect(JSON.parse(seen[3].body)).toEqual({provider: 'virtualbox'})
  })

  it('detects gzip by its magic bytes, whatever the file is called', async () => {
    const path = await makeBox(dir, 'gzipped.tar', {gzip: true})
    expect(await detectCompression(path)).toBe('gzip')
    const {compression, seen} = await readAll(path)
    expect(compression).toBe('gzip')
    expect(seen.map((e) => e.name)).toContain('box.ovf')
  })

  it('reads a gzip box from a stream that arrives one byte first', async () => {
    const bytes = await readFile(await makeBox(dir, 'stream.box', {gzip: true}))
    const source = Readable.from([bytes.subarray(0, 1), bytes.subarray(1)], {objectMode: false})
    const {compression, seen} = await readAll(source)
    expect(compression).toBe('gzip')
    expect(seen).toHaveLength(4)
  })

  it('strips ./ and skips the root directory entry that `tar -C dir .` writes', async () => {
    const {seen} = await readAll(await makeBox(dir, 'dotslash.box', {dotSlash: true, extra: [{name: 'docs/', type: 'directory'}]}))
    expect(seen.map((e) => `${e.type}:${e.name}`)).toEqual(['file:Vagrantfile', 'file:box-disk001.vmdk', 'file:box.ovf', 'file:metadata.json', 'directory:docs'])
  })

  it('delivers a large entry while the archive is still being read (never whole in memory)', async () => {
    const big = Buffer.alloc(8 * 1024 * 1024, 7)
    const tarBytes = await packTar([{name: 'big.vmdk', body: big}, {name: 'after.txt', body: 'x'}])
    let pulled = 0
    async function* slices() {
      for (let i = 0; i < tarBytes.length; i += 256 * 1024) {
        pulled = i
        yield tarBytes.subarray(i, i + 256 * 1024)
      }
    }
    let pulledAtFirstChunk = -1
    let total = 0
    await readBoxEntries(Readable.from(slices(), {objectMode: false}), {
      onEntry: async (entry, body) => {
        for await (const chunk of body) {
          if (pulledAtFirstChunk < 0) pulledAtFirstChunk = pulled
          if (entry.name === 'big.vmdk') total += (chunk as Buffer).length
        }
      },
    })
    expect(total).toBe(big.length)
    expect(pulledAtFirstChunk).toBeLessThan(2 * 1024 * 1024)
  })

  it('stops reading at once when a handler refuses the head of a large entry', async () => {
    const tarBytes = await packTar([{name: 'big.vmdk', body: Buffer.alloc(16 * 1024 * 1024, 1)}])
    let pulled = 0
    async function* slices() {
      for (let i = 0; i < tarBytes.length; i += 64 * 1024) {
        pulled = i
        yield tarBytes.subarray(i, i + 64 * 1024)
      }
    }
    const refused = new Error('refused at the head')
    const reading = readBoxEntries(Readable.from(slices(), {objectMode: false}), {
      onEntry: async (_entry, body) => {
        await new Promise((resolve) => body.once('readable', resolve))
        throw refused
      },
    })
    await expect(reading).rejects.toBe(refused)
    expect(pulled).toBeLessThan(4 * 1024 * 1024)
  })

  it('moves on when a handler ignores a body or stops reading it part way', async () => {
    const path = await makeBox(dir, 'partial.box', {extra: [{name: 'z.txt', body: 'last'}]})
    const names: string[] = []
    let last = ''
    await readBoxEntries(path, {
      onEntry: async (entry, body) => {
        names.push(entry.name)
        if (entry.name === 'box-disk001.vmdk') {
          for await (const _chunk of body) break // destroys this body only
        }
        if (entry.name === 'z.txt') last = (await collect(body)).toString()
      },
    })
    expect(names).toEqual(['Vagrantfile', 'box-disk001.vmdk', 'box.ovf', 'metadata.json', 'z.txt'])
    expect(last).toBe('last')
  })

  it('passes a handler error through and stops, and stops when the signal is aborted', async () => {
    const path = await makeBox(dir, 'stop.box')
    const boom = new Error('handler failed')
    await expect(readBoxEntries(path, {onEntry: async () => { throw boom }})).rejects.toBe(boom)
    const controller = new AbortController()
    const seen: string[] = []
    const reading = readBoxEntries(path, {
      signal: controller.signal,
      onEntry: async (entry) => {
        seen.push(entry.name)
        controller.abort()
      },
    })
    await expect(reading).rejects.toMatchObject({name: 'AbortError'})
    expect(seen.length).toBeLessThan(4)
  })
})

describe('readBoxEntries refusals', () => {
  const cases: Array<[NonNullable<MakeBoxOptions['unsafe']>, string, RegExp]> = [
    ['symlink', 'shadow.vmdk', /symbolic link/],
    ['hardlink', 'passwd', /hard link/],
    ['dotdot', 'a/../../escape.txt', /"\.\."/],
    ['absolute', '/etc/cron.d/evil', /absolute path/],
    ['fifo', 'pipe', /FIFO/],
    ['duplicate', 'box.ovf', /already has an entry/],
  ]
  for (const [unsafe, name, why] of cases) {
    it(`refuses a ${unsafe} entry, naming it and why, before handing it out`, async () => {
      const path = await makeBox(dir, `${unsafe}.box`, {unsafe})
      const handed: string[] = []
      const error = await rejection(readBoxEntries(path, {onEntry: async (entry) => void handed.push(entry.name)}))
      expect(error.code).toBe('BOX_UNSAFE_ENTRY')
      expect(error.message).toContain(`"${name}"`)
      expect(error.message).toMatch(why)
      expect(handed).toHaveLength(4)
    })
  }

  it('refuses devices and backslash names', async () => {
    for (const [entry, why] of [[{name: 'tty', type: 'character-device' as const}, /character device/], [{name: '..\\evil', body: 'x'}, /"\.\."/]] as const) {
      const path = join(dir, 'misc.box')
      await writeFile(path, await packTar([entry]))
      expect((await rejection(readAll(path))).message).toMatch(why)
    }
  })

  it('calls a truncated gzip box incomplete, not a zlib error', async () => {
    const bytes = await readFile(await makeBox(dir, 'whole.box.gz', {gzip: true}))
    const path = join(dir, 'cut.box')
    await writeFile(path, bytes.subarray(0, Math.floor(bytes.length * 0.6)))
    const error = await rejection(readAll(path))
    expect(error.code).toBe('BOX_TRUNCATED')
    expect(error.message).toContain('the box file is incomplete: download or package it again'.replace(/^t/, 'T'))
  })

  it('reports a gzip box cut inside an entry its handler was done with as incomplete, with no stray error event after', async () => {
    // An entry of 4 MiB that does not compress, so the cut falls inside it.
    const bytes = gzipSync(await packTar([{name: 'box-disk001.vmdk', body: randomBytes(4 * 2 ** 20)}]))
    const path = join(dir, 'cut-late.box')
    await writeFile(path, bytes.subarray(0, Math.floor(bytes.length / 2)))
    const stray: unknown[] = []
    const onStray = (error: unknown) => stray.push(error)
    process.on('uncaughtException', onStray)
    try {
      // The handler is done with the entry before the archive breaks inside it.
      const error = await rejection(readBoxEntries(path, {onEntry: async () => undefined}))
      expect(error.code).toBe('BOX_TRUNCATED')
      await new Promise((resolve) => setTimeout(resolve, 200))
      expect(stray).toEqual([])
    } finally {
      process.off('uncaughtException', onStray)
    }
  })

  it('calls a plain tar cut inside an entry, or cut cleanly between entries, incomplete', async () => {
    const bytes = await readFile(await makeBox(dir, 'whole.box'))
    const path = join(dir, 'cut.box')
    await writeFile(path, bytes.subarray(0, 3000))
    expect((await rejection(readAll(path))).code).toBe('BOX_TRUNCATED')
    // Cut right after the first entry (Vagrantfile: one header block and one data block).
    await writeFile(path, bytes.subarray(0, 1024))
    expect((await rejection(readAll(path))).code).toBe('BOX_TRUNCATED')
    await writeFile(path, Buffer.alloc(0))
    expect((await rejection(readAll(path))).code).toBe('BOX_TRUNCATED')
  })

  it('refuses a file that is not a tar, and says when the box does not exist', async () => {
    const path = join(dir, 'notes.box')
    await writeFile(path, 'these are my notes, not a box\n'.repeat(40))
    expect((await rejection(readAll(path))).code).toBe('BOX_CORRUPT')
    await writeFile(path, gzipSync(Buffer.from('a gzip of plain text, not of a tar\n'.repeat(40))))
    expect((await rejection(readAll(path))).code).toBe('BOX_CORRUPT')
    const missing = await rejection(readAll(join(dir, 'nope.box')))
    expect(missing.code).toBe('BOX_NOT_FOUND')
    expect(missing.message).toContain('nope.box')
  })
})

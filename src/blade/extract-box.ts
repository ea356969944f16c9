import {createHash} from 'node:crypto'
import {createReadStream, createWriteStream} from 'node:fs'
import {join} from 'node:path'
import type {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import {readBoxEntries} from '../box/box-tar.js'
import {badInput, ShienError} from '../errors.js'

/** What the blade keeps of a box: its OVF text and the disks written out to `workDir`. */
export interface ExtractedBox {
  ovf: string
  disks: Map<string, string>
}

const OVF_LIMIT = 4 * 1024 * 1024

/**
 * Unpacks a box in one pass, trusting nothing the laptop checked: the tar is validated again
 * entry by entry, only top-level `*.vmdk` files are written (into `workDir`, by their base
 * name), and the OVF is kept in memory. Everything else is read past.
 */
export async function extractBox(boxPath: string, workDir: string, opts: {sha256?: string; signal?: AbortSignal} = {}): Promise<ExtractedBox> {
  const {signal} = opts
  let ovf: string | undefined
  const disks = new Map<string, string>()
  // The upload's sha256 is checked on this pass, which reads every byte of the box anyway.
  const hash = createHash('sha256')
  const source = createReadStream(boxPath, {highWaterMark: 1 << 20})
  source.on('data', (chunk) => hash.update(chunk))
  await readBoxEntries(source, {
    signal,
    async onEntry(entry, body) {
      if (entry.type !== 'file') return drain(body)
      if (entry.name === 'box.ovf') {
        if (entry.size > OVF_LIMIT) throw badInput('OVF_TOO_LARGE', `box.ovf is ${entry.size} bytes; an OVF is a few KiB.`)
        ovf = await readText(body)
        return
      }
      if (/^[^/]+\.vmdk$/i.test(entry.name)) {
        const path = join(workDir, entry.name)
        await pipeline(body, createWriteStream(path, {flags: 'wx', mode: 0o600}), {signal})
        disks.set(entry.name, path)
        return
      }
      return drain(body)
    },
  })
  const digest = hash.digest('hex')
  if (opts.sha256 && digest !== opts.sha256) {
    throw new ShienError(`The box on the blade (sha256 ${digest}) is not the one that was sent (${opts.sha256}).`, {
      code: 'UPLOAD_CORRUPT',
      exit: 'remote',
      suggestions: [`Remove ${boxPath} on the blade and push again.`],
    })
  }
  if (ovf === undefined) throw badInput('BOX_NO_OVF', 'The box has no box.ovf: it is not a VirtualBox box.', ['Package it with "vagrant package" from a VirtualBox VM.'])
  return {ovf, disks}
}

async function readText(body: Readable): Promise<string> {
  const parts: Buffer[] = []
  for await (const chunk of body) parts.push(chunk as Buffer)
  return Buffer.concat(parts).toString('utf8')
}

async function drain(body: Readable): Promise<void> {
  for await (const _ of body) {
    // read past
  }
}

import {createHash} from 'node:crypto'
import {createReadStream, createWriteStream} from 'node:fs'
import {mkdir} from 'node:fs/promises'
import {dirname, join} from 'node:path'
import type {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import {isConfigText, judgeBox, type BoxLayout} from '../box/box-layout.js'
import {readBoxEntries} from '../box/box-tar.js'
import {readHeadOfFile} from '../box/entry-head.js'
import {parseMetadata} from '../box/inspect.js'
import type {BoxFiles} from '../box/provider-disks.js'
import {badInput, ShienError} from '../errors.js'

/** What the blade keeps of a box: its layout, judged again here, and its files under `workDir`. */
export interface ExtractedBox {
  layout: BoxLayout
  /** The folder the box's files were written into, by their names in the box. */
  root: string
}

const TEXT_LIMIT = 4 * 1024 * 1024
const PRIVATE_KEY = /(^|\/)vagrant_private_key$/
/** The only files a disk gate can accept: everything else (a VMware suspend file, say) is read past, not written. */
const DISK_FILE = /(\.vmdk|\.hds|^box\.img)$/i

/**
 * Unpacks a box in one pass, trusting nothing the laptop checked: the tar is validated again
 * entry by entry, every file a disk can be (`.vmdk`, `.hds`, `box.img`) is written into
 * `workDir` by its (checked) name, the machine's configuration and metadata.json are kept in
 * memory, and then the same layout and disk gates as the laptop's run over what was written.
 */
export async function extractBox(boxPath: string, workDir: string, opts: {sha256?: string; signal?: AbortSignal} = {}): Promise<ExtractedBox> {
  const {signal} = opts
  const files: BoxFiles = {entries: [], texts: new Map(), heads: new Map()}
  const written: string[] = []
  let metadataText: string | undefined
  // The upload's sha256 is checked on this pass, which reads every byte of the box anyway.
  const hash = createHash('sha256')
  const source = createReadStream(boxPath, {highWaterMark: 1 << 20})
  source.on('data', (chunk) => hash.update(chunk))
  await readBoxEntries(source, {
    signal,
    async onEntry(entry, body) {
      files.entries.push(entry)
      if (entry.type !== 'file' || PRIVATE_KEY.test(entry.name)) return drain(body)
      if (isConfigText(entry.name) || entry.name === 'metadata.json') {
        if (entry.size > TEXT_LIMIT) throw badInput('BOX_ENTRY_TOO_LARGE', `${entry.name} is ${entry.size} bytes; a machine's configuration is a few KiB.`)
        const text = await readText(body)
        if (entry.name === 'metadata.json') metadataText = text
        else files.texts.set(entry.name, text)
        return
      }
      if (!DISK_FILE.test(entry.name)) return drain(body)
      const path = join(workDir, entry.name)
      await mkdir(dirname(path), {recursive: true, mode: 0o700})
      await pipeline(body, createWriteStream(path, {flags: 'wx', mode: 0o600}), {signal})
      written.push(entry.name)
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
  for (const name of written) files.heads.set(name, await readHeadOfFile(join(workDir, name)))
  return {layout: judgeBox(files, parseMetadata(metadataText)), root: workDir}
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

import {createWriteStream} from 'node:fs'
import {pipeline} from 'node:stream/promises'
import tar from 'tar-stream'

import {readBoxEntries} from '../box-tar.js'
import type {BoxInfo} from '../inspect.js'

/**
 * What Vagrant writes into a box of its first format (box.ovf, no metadata.json) when it
 * upgrades it: `JSON.generate({provider: "virtualbox"})` in BoxCollection#v1_upgrade.
 */
export const UPGRADE_METADATA = '{"provider":"virtualbox"}'

/**
 * Writes the box again as a plain tar with every entry as it was, plus the metadata.json
 * Vagrant's upgrade adds: the box then is what Vagrant itself would have stored.
 */
export async function withUpgradeMetadata(info: BoxInfo, dest: string, signal?: AbortSignal): Promise<void> {
  const pack = tar.pack()
  const writing = pipeline(pack as unknown as NodeJS.ReadableStream, createWriteStream(dest, {flags: 'wx', mode: 0o644}), {signal})
  writing.catch(() => {})
  try {
    await readBoxEntries(info.path, {
      signal,
      async onEntry(entry, body) {
        if (entry.type === 'directory') {
          pack.entry({name: `${entry.name}/`, type: 'directory', mode: 0o755})
          return
        }
        const sink = pack.entry({name: entry.name, size: entry.size, type: 'file', mode: 0o644})
        await pipeline(body, sink as unknown as NodeJS.WritableStream, {signal})
      },
    })
    pack.entry({name: 'metadata.json', type: 'file', mode: 0o644}, UPGRADE_METADATA)
    pack.finalize()
  } catch (error) {
    pack.destroy(error as Error)
    throw error
  }
  await writing
}

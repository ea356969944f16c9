// oclif writes the manifest's commands in the order it happens to find them, which differs from
// one build to the next; sorted by id, the committed file changes only when a command does.
import {readFileSync, writeFileSync} from 'node:fs'

const path = new URL('../oclif.manifest.json', import.meta.url)
const manifest = JSON.parse(readFileSync(path, 'utf8'))
const commands = Object.fromEntries(Object.entries(manifest.commands).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
writeFileSync(path, `${JSON.stringify({...manifest, commands}, null, 2)}\n`)

import {existsSync, readFileSync} from 'node:fs'
import {rename, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {badInput} from '../errors.js'
import {PROJECT_FILE, type ProjectConfig} from '../client/project-config.js'

const MARKER = /config\.push\.define\s+["']shien["']|\.push\.define\s+["']shien["']/

/** The push stanza: `vagrant push shien` runs `shien push` in the project. */
export function pushStanza(configVar: string): string {
  return [
    `  # shien: "vagrant push shien" sends this VM to the blade named in .shien.json.`,
    `  ${configVar}.push.define "shien", strategy: "local-exec" do |push|`,
    `    push.inline = "shien push"`,
    `  end`,
  ].join('\n')
}

/**
 * Adds the push stanza inside `Vagrant.configure(...) do |config|`, before the block's closing
 * `end`. Returns undefined when it is already there.
 */
export function addPushStanza(vagrantfile: string): string | undefined {
  if (MARKER.test(vagrantfile)) return undefined
  const configure = /Vagrant\.configure\(\s*["']2["']\s*\)\s+do\s+\|(\w+)\|/.exec(vagrantfile)
  const lines = vagrantfile.split('\n')
  const closing = lines.findLastIndex((line) => /^end\b/.test(line))
  if (!configure || closing < 0) {
    throw badInput('VAGRANTFILE_SHAPE', 'Cannot find the Vagrant.configure("2") do |config| ... end block in the Vagrantfile.', [
      'Add this inside the block by hand:',
      pushStanza('config'),
    ])
  }
  lines.splice(closing, 0, pushStanza(configure[1]))
  return lines.join('\n')
}

export interface InitResult {
  projectFile: string
  vagrantfile?: string
  stanzaAdded: boolean
  config: ProjectConfig
}

/** Writes .shien.json and the Vagrantfile stanza (each atomically, through a temporary file). */
export async function initProject(dir: string, config: ProjectConfig, force: boolean): Promise<InitResult> {
  const projectFile = join(dir, PROJECT_FILE)
  if (existsSync(projectFile) && !force) {
    throw badInput('ALREADY_INIT', `${projectFile} exists already.`, ['Edit it, or run shien init --force to write it again.'])
  }
  const vagrantfile = join(dir, 'Vagrantfile')
  const updated = existsSync(vagrantfile) ? addPushStanza(readFileSync(vagrantfile, 'utf8')) : undefined
  await writeAtomic(projectFile, JSON.stringify(config, null, 2) + '\n')
  if (updated !== undefined) await writeAtomic(vagrantfile, updated)
  return {projectFile, vagrantfile: existsSync(vagrantfile) ? vagrantfile : undefined, stanzaAdded: updated !== undefined, config}
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const temp = `${path}.shien-${process.pid}`
  await writeFile(temp, text)
  await rename(temp, path)
}

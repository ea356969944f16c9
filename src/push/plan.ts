import {existsSync, statSync} from 'node:fs'
import {homedir} from 'node:os'
import {basename, join, resolve} from 'node:path'

import {ShienError} from '../errors.js'
import {SLOT_PATTERN} from '../names.js'
import {resolveSshTarget, type SshTarget} from '../transport/ssh-target.js'
import {loadProjectConfig} from '../client/project-config.js'
import {checkBoxName, isBoxName} from '../names.js'
import {bladeHost} from '../client/find-blade.js'
import {bladeNaming, type BladeNaming} from '../client/vm/vm-login.js'
import {type BaseChoice, chooseBase} from './base-choice.js'
import {vagrantDotDir} from './vagrant-box-meta.js'

/** Everything a push needs, resolved before anything runs. */
export interface PushPlan {
  /** The .box to send; undefined means `vagrant package` in `projectDir` makes one. */
  boxPath?: string
  projectDir: string
  /** The `.shien.json` the settings came from (the cwd's or a parent's), if any. */
  projectFile?: string
  name: string
  slot: string
  target: SshTarget
  /** How the blade was named, for the OpenSSH login to the VM the push reports. */
  naming: BladeNaming
  replace: boolean
  publicKeyFile?: string
  bladeCommand: string
  acceptNewHostKey: boolean
  /** The base a delta push is made against, or why the whole box goes (docs/delta.md). */
  base: BaseChoice
  /**
   * Where `vagrant package` puts the box, and the delta beside it, kept until the push
   * succeeds (`.vagrant/shien/`); undefined when a box file was named.
   */
  keepDir?: string
  /** Package again even when a box kept from a failed push is there. */
  repackage: boolean
  /** Start the VM once it is defined (`--no-start`: define it only). */
  start: boolean
  /** `--blade NAME`: the blade of the cluster to push to, instead of placement's choice. */
  blade?: string
}

export interface PushInputs {
  box?: string
  host?: string
  /** ProxyJump hops from the command line (`--jump`, like `ssh -J`). */
  jump?: string
  slot?: string
  name?: string
  replace?: boolean
  publicKey?: string
  acceptNewHostKey?: boolean
  /** `--base ORG/NAME@VERSION`. */
  base?: string
  full?: boolean
  repackage?: boolean
  start?: boolean
  blade?: string
  cwd: string
  env: NodeJS.ProcessEnv
}

/**
 * Resolves flags, `.shien.json`, the user's config and `~/.ssh/config` into a plan, and
 * reports every problem at once rather than the first.
 */
export function planPush(input: PushInputs): PushPlan {
  const problems: string[] = []
  const config = loadProjectConfig(input.cwd, input.env)
  // The folder of the .shien.json found in the cwd or a parent (as Vagrant finds its Vagrantfile).
  const projectDir = config.projectDir
  const home = input.env.HOME || homedir()
  const boxArg = input.box ?? config.box
  const boxPath = boxArg ? resolve(input.cwd, boxArg) : undefined
  if (boxPath && !(existsSync(boxPath) && statSync(boxPath).isFile())) problems.push(`${boxArg} is not a file.`)
  if (!boxPath && !existsSync(join(projectDir, 'Vagrantfile'))) {
    problems.push('No box given and no Vagrantfile here: name a .box file, or run shien push in your Vagrant project.')
  }
  const slot = normalizeSlot(input.slot ?? config.slot ?? '01')
  if (!SLOT_PATTERN.test(slot)) problems.push(`Slot "${input.slot ?? config.slot}" is not a two-digit slot such as 01.`)
  const host = bladeHost(input, config)
  if (!host) problems.push('No blade named: pass --host, or run shien init in your project.')
  const name = input.name ?? config.name ?? defaultName(boxPath, projectDir)
  if (!isBoxName(name)) problems.push(`"${name}" cannot name a box on the blade: use letters, digits, ".", "_" and "-" (--name).`)
  const base = chooseBase({base: input.base, full: input.full, configBase: config.base, packaging: !boxPath, projectDir, env: input.env}, problems)
  if (input.publicKey && !existsSync(input.publicKey)) problems.push(`Public key file ${input.publicKey} does not exist.`)
  let target: SshTarget | undefined
  if (host) {
    try {
      target = resolveSshTarget(host, {home, jump: input.jump})
    } catch (error) {
      problems.push((error as Error).message)
    }
  }
  if (problems.length > 0 || !target || !host) {
    throw new ShienError(problems.length === 1 ? problems[0] : `The push cannot start:\n  - ${problems.join('\n  - ')}`, {
      code: 'BAD_PUSH',
      exit: 'usage',
      suggestions: ['shien push --help shows every flag; shien init writes .shien.json for a project.'],
    })
  }
  return {
    boxPath,
    projectDir,
    projectFile: config.projectFile,
    name,
    slot,
    target,
    naming: bladeNaming(host, input.jump, home),
    replace: input.replace ?? false,
    publicKeyFile: input.publicKey ? resolve(input.cwd, input.publicKey) : undefined,
    bladeCommand: config.bladeCommand ?? 'shien',
    acceptNewHostKey: input.acceptNewHostKey ?? false,
    base,
    keepDir: boxPath ? undefined : join(vagrantDotDir(projectDir, input.env), 'shien'),
    repackage: input.repackage ?? false,
    start: input.start ?? true,
    ...(input.blade === undefined ? {} : {blade: input.blade}),
  }
}

/** Checks a --name flag early (shien init), with the same rule the blade applies. */
export function checkBoxNameForPlan(name: string | undefined): string | undefined {
  return name === undefined ? undefined : checkBoxName(name)
}

function normalizeSlot(slot: string): string {
  return /^[0-9]$/.test(slot) ? `0${slot}` : slot
}

function defaultName(boxPath: string | undefined, cwd: string): string {
  const base = boxPath ? basename(boxPath).replace(/\.box$/i, '') : basename(cwd)
  return base.replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '') || 'box'
}
